"""The soak benchmark: does the sale Redis stay bounded through a whole sale and after it?

Usage: python -m ops.bench_soak [--seats 600] [--rate 5] [--sale-minutes 2] [--hammer-minutes 4]
           [--bot-rate 100] [--sample-seconds 30] [--hold-seconds 30] [--window-seconds 20]
           [--success-ttl-seconds 120] [--result-ttl-seconds 30]       (about 9 minutes)
Quick run: python -m ops.bench_soak --seats 150 --sale-minutes 0.5 --hammer-minutes 2 --sample-seconds 10

Minutes stand for hours: a hold lasts --hold-seconds (10 minutes in production), the redelivery
window --window-seconds (5 minutes), a success's idempotency record --success-ttl-seconds (24 h),
a poll's result --result-ttl-seconds (15 minutes), a room's pass a minute. The sale Redis is the
run's own (its used_memory and key count are this event's alone); gateway, workers (every role, the archiver
included) and a payment worker with the fake provider are real processes on the loopback stack.

  1. sale: buyers arrive at --rate a second (open loop) behind an engaged waiting room; a share
     join and walk away (the admission tick drops them), the rest poll until admitted and reserve
     with their pass, then pay, cancel, let the hold expire, pay and have the refund approved,
     or pay with a declined card;
  2. close: the room is switched off and closers buy and pay for whatever comes back, until
     every seat is sold and nothing is held;
  3. hammer: bots keep reserving on the sold-out zone at --bot-rate a second for
     --hammer-minutes, half with a fresh request each time, half retrying under a few
     idempotency keys; then no traffic until every record with a TTL has run out (rest);
     ops.reconcile then checks the event;
  4. end: the show's date moves into the past; the archiver archives the event; ops.reconcile
     is asked about it again.
Printed every --sample-seconds: the sale Redis's used_memory and key count, the event's keys and
their MEMORY USAGE, and live bookings (holds still holding seats). At the end: the slope of the
event's bytes over the hammer phase once the refusals' records and poll results have had their
TTL to pile up (bytes a minute; flat is the target), bytes per live booking at rest, the keys
left after the archive (none is the target) and both reconcile verdicts. Exit 1 when a target is
missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import random
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from gateway.auth import issue_access_token
from lua import keys, load_scripts
from ops import stack
from ops.bench import reserve_path_env
from ops.demo_pay import DECLINED_CARD, GOOD_CARD, Mailbox
from ops.migrate import migrate
from ops.processes import (
    free_port,
    service_env,
    start_gateway,
    start_payment_worker,
    start_redis,
    start_worker,
    stop_redis,
)
from ops.reconcile import reconcile
from ops.seed import seed_sale
from ops.seed_data import ZoneSpec
from waiting_room.room import WaitingRoom
from workers.settings import WorkerSettings

# What a buyer admitted does with the hold (weights): the sale's whole life, money included.
FATES = {"pay": 45, "cancel": 15, "expire": 20, "refund": 10, "declined": 10}
ABANDON_SHARE = 0.2  # of buyers, who join the line and are never seen again
RETRY_KEYS = 8  # idempotency keys the retrying bots cycle through


def say(msg: str) -> None:
    print(f"[soak] {msg}", flush=True)


@dataclasses.dataclass
class Sale:
    base: str
    event_id: str
    show_id: str
    zone_id: str
    organizer_token: str
    tokens: list[str]  # buyers' access tokens, used in order
    told: Counter = dataclasses.field(default_factory=Counter)
    next_buyer: int = 0

    def buyer(self) -> str:
        token = self.tokens[self.next_buyer % len(self.tokens)]
        self.next_buyer += 1
        return token

    def body(self, quantity: int) -> dict:
        return {
            "event_id": self.event_id,
            "show_id": self.show_id,
            "zone_id": self.zone_id,
            "quantity": quantity,
        }


async def _call(session, method: str, url: str, token: str, body=None, headers=None) -> tuple[int, dict]:
    h = {"Authorization": f"Bearer {token}", **(headers or {})}
    async with session.request(method, url, json=body, headers=h) as r:
        return r.status, await r.json(content_type=None)


async def _answer(session, sale: Sale, token: str, status: int, answer: dict) -> tuple[int, dict]:
    """Follow a 202 to the final answer (the worker was slow to reply)."""
    poll = f"{sale.base}{answer['data']['poll']}" if status == 202 else None
    while status == 202:
        await asyncio.sleep(0.25)  # a client's polling pace
        status, answer = await _call(session, "GET", poll, token)
    return status, answer


async def _reserve(session, sale: Sale, token: str, quantity: int, headers=None) -> tuple[int, dict]:
    url = f"{sale.base}/api/v1/bookings/reserve"
    status, answer = await _call(session, "POST", url, token, sale.body(quantity), headers)
    status, answer = await _answer(session, sale, token, status, answer)
    return (201 if status == 200 else status), answer  # a poll answers a booking made with 200


async def _admitted(session, sale: Sale, token: str) -> str | None:
    """Join the line and poll until admitted: the queue pass, or None (sold out, closed)."""
    status, answer = await _call(
        session, "POST", f"{sale.base}/api/v1/queue/join", token, {"event_id": sale.event_id}
    )
    while True:
        standing = answer.get("data") or {}
        if standing.get("state") == "admitted":
            return standing["pass"]
        if standing.get("state") == "open":
            return ""
        if standing.get("state") not in ("waiting", "prequeue"):
            return None
        await asyncio.sleep(min(2, standing.get("refresh_after_seconds") or 1))
        url = f"{sale.base}/api/v1/queue/status?event_id={sale.event_id}"
        status, answer = await _call(session, "GET", url, token)


async def _payment_settles(session, sale: Sale, token: str, payment_id: str) -> dict:
    for _ in range(240):
        status, answer = await _call(session, "GET", f"{sale.base}/api/v1/payments/{payment_id}", token)
        if status == 200 and answer["data"]["status"] in ("success", "failed", "refunded"):
            return answer["data"]
        await asyncio.sleep(0.5)  # a paying page's polling pace
    return {"status": "unsettled"}


async def _pay(session, sale: Sale, token: str, booking_id: str, card: dict) -> dict:
    body = {"booking_id": booking_id, "method": "card", "details": card}
    status, answer = await _call(session, "POST", f"{sale.base}/api/v1/payments", token, body)
    status, answer = await _answer(session, sale, token, status, answer)
    if status not in (200, 201):
        return {"status": f"pay {status}"}
    return await _payment_settles(session, sale, token, answer["data"]["payment_id"])


async def buyer(session, sale: Sale, rng: random.Random) -> None:
    token = sale.buyer()
    if rng.random() < ABANDON_SHARE:
        await _call(session, "POST", f"{sale.base}/api/v1/queue/join", token, {"event_id": sale.event_id})
        sale.told["walked away from the line"] += 1
        return
    queue_pass = await _admitted(session, sale, token)
    if queue_pass is None:
        sale.told["not admitted"] += 1
        return
    headers = {"X-Queue-Pass": queue_pass} if queue_pass else {}
    status, answer = await _reserve(session, sale, token, rng.choice((1, 2)), headers)
    if status != 201:
        sale.told[f"reserve {status}"] += 1
        return
    booking_id = answer["data"]["booking_id"]
    fate = rng.choices(list(FATES), weights=list(FATES.values()))[0]
    sale.told[f"reserved, then {fate}"] += 1
    if fate == "cancel":
        await _call(session, "POST", f"{sale.base}/api/v1/bookings/{booking_id}/cancel", token)
    elif fate in ("pay", "refund", "declined"):
        payment = await _pay(
            session, sale, token, booking_id, DECLINED_CARD if fate == "declined" else GOOD_CARD
        )
        sale.told[f"payment {payment['status']}"] += 1
        if fate == "refund" and payment["status"] == "success":
            pid = payment["payment_id"]
            status, answer = await _call(
                session, "POST", f"{sale.base}/api/v1/payments/{pid}/refund", token, {}
            )
            await _answer(session, sale, token, status, answer)
            approve = f"{sale.base}/api/v1/admin/payments/{pid}/refund/approve"
            status, _ = await _call(session, "POST", approve, sale.organizer_token, {})
            sale.told[f"refund approved {status}"] += 1


async def open_loop(rate: float, seconds: float, spawn) -> int:
    """`spawn()` at a fixed rate for `seconds`, not waiting for what it started (open loop)."""
    started, n, running = time.monotonic(), 0, set()
    while (elapsed := time.monotonic() - started) < seconds:
        while n < elapsed * rate:
            task = asyncio.create_task(spawn())
            running.add(task)
            task.add_done_callback(running.discard)
            n += 1
        await asyncio.sleep(0.01)
    await asyncio.gather(*running, return_exceptions=True)
    return n


class Sampler:
    """The sale Redis's memory and keys every `every` seconds, printed, and kept per phase."""

    def __init__(self, redis, sale: Sale, every: float) -> None:
        self.redis, self.sale, self.every = redis, sale, every
        self.samples: list[dict] = []
        self.phase = "sale"
        self.started = time.monotonic()

    async def sample(self) -> dict:
        info = await self.redis.info("memory")
        keys_now = await self.redis.dbsize()
        event_keys = [
            k async for k in self.redis.scan_iter(match=f"{keys.tag(self.sale.event_id)}:*", count=1000)
        ]
        hold_prefix = keys.hold(self.sale.event_id, "").encode()
        holds = [k for k in event_keys if k.startswith(hold_prefix)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in event_keys:
                pipe.memory_usage(key)
            for key in holds:
                pipe.hget(key, "status")
            answers = await pipe.execute()
        sizes = answers[: len(event_keys)]
        event_bytes = sum(a or 0 for a in sizes)
        # By kind (the key's first part after the tag: hold, payment, idem, result, room, ...).
        by_kind: dict[str, list[int]] = {}
        tag_len = len(keys.tag(self.sale.event_id)) + 1
        for key, size in zip(event_keys, sizes, strict=True):
            kind = key[tag_len:].split(b":", 1)[0].decode()
            if kind == "room":
                kind = "room:" + key[tag_len:].split(b":")[1].decode()
            count_bytes = by_kind.setdefault(kind, [0, 0])
            count_bytes[0] += 1
            count_bytes[1] += size or 0
        holding = sum(st in (b"reserved", b"paying", b"confirmed") for st in answers[len(event_keys) :])
        s = {
            "phase": self.phase,
            "t_s": round(time.monotonic() - self.started, 1),
            "used_memory": info["used_memory"],
            "keys": keys_now,
            "event_keys": len(event_keys),
            "event_bytes": event_bytes,  # MEMORY USAGE of the event's keys, summed
            "live_bookings": holding,
            "event_bytes_per_live_booking": round(event_bytes / holding) if holding else None,
            "by_kind": {k: {"keys": n, "bytes": b} for k, (n, b) in sorted(by_kind.items())},
        }
        self.samples.append(s)
        say(
            f"{s['t_s']:>7.1f} s  {self.phase:<6} used_memory {s['used_memory']:>10,} B  keys {keys_now:>6,} "
            f"(event: {len(event_keys):>6,}, {event_bytes:>10,} B)  live bookings {holding:>5}"
        )
        return s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)


def slope_per_min(samples: list[dict], field: str) -> float | None:
    """Least-squares slope of `field` (bytes) over time, in bytes a minute."""
    if len(samples) < 2:
        return None
    xs, ys = [s["t_s"] / 60 for s in samples], [s[field] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else None


async def close_the_sale(session, sale: Sale, redis, rng: random.Random, timeout: float) -> bool:
    """Buy and pay for whatever comes back until the zone is sold out and nothing is held."""
    zone, held = keys.zone(sale.event_id, sale.show_id, sale.zone_id), keys.expiry_index(sale.event_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        available = int(await redis.hget(zone, "available") or 0)
        if available == 0 and await redis.zcard(held) == 0:
            return True
        if available:

            async def closer() -> None:
                token = sale.buyer()
                status, answer = await _reserve(session, sale, token, 1)
                if status == 201:
                    payment = await _pay(session, sale, token, answer["data"]["booking_id"], GOOD_CARD)
                    sale.told[f"closer payment {payment['status']}"] += 1

            await asyncio.gather(*(closer() for _ in range(min(available, 50))))
        else:
            await asyncio.sleep(1)  # holds still lapsing or being paid for
    return False


async def hammer(session, sale: Sale, bots: list[str], rate: float, seconds: float) -> Counter:
    """Bots reserving on the sold-out zone: half a fresh request each time, half retrying."""
    answers: Counter = Counter()
    n = 0

    async def one() -> None:
        nonlocal n
        n += 1
        token = bots[n % len(bots)]
        headers = {"Idempotency-Key": f"bot-retry-{n % RETRY_KEYS}"} if n % 2 else {}
        status, answer = await _reserve(session, sale, token, 1, headers)
        answers[f"{status} {(answer.get('error') or {}).get('code', '')}".strip()] += 1

    await open_loop(rate, seconds, one)
    return answers


async def event_keys(redis, event_id: str) -> int:
    return len([k async for k in redis.scan_iter(match=f"{keys.tag(event_id)}:*", count=1000)])


async def soak(args, cfg, sale_redis_url: str, env: dict, secret: str) -> dict:
    run_id = uuid.uuid4().hex[:6]
    own_cfg = dataclasses.replace(cfg, sale_redis_port=int(sale_redis_url.rsplit(":", 1)[1].split("/")[0]))
    buyers_needed = int(args.rate * args.sale_minutes * 60) + args.seats * 2 + 100
    say(f"seeding {buyers_needed} buyers and an event of {args.seats} seats")
    seeded = await seed_sale(
        own_cfg,
        tenant="soak",
        tenant_name="Soak benchmark",
        email="soak{:06d}@soak.test",
        buyers=buyers_needed,
        password="soak-pass-2026",
        title=f"Soak {run_id}",
        shows=1,
        zones=[ZoneSpec("GA", Decimal("20.00"), args.seats)],
        max_per_user=2,
    )
    ((show_id, zones),) = seeded["shows"].items()
    pg = await asyncpg.connect(cfg.database_url)
    organizer = await pg.fetchval(
        "SELECT id::text FROM users WHERE email = 'organizer@soak.test' AND tenant_id = $1",
        seeded["tenant_id"],
    )

    def token(user_id: str, role: str = "user") -> str:
        return issue_access_token(
            secret, user_id=user_id, role=role, tenant_id=seeded["tenant_id"], ttl_s=7200
        )

    tokens = [token(u) for u in seeded["buyers"]]
    bots = tokens[-100:]
    sale = Sale(
        env["BASE"], seeded["event_id"], show_id, zones["GA"], token(organizer, "organizer"), tokens[:-100]
    )
    redis = aioredis.from_url(sale_redis_url)
    room = WaitingRoom(redis, await load_scripts(redis))
    await room.configure(
        sale.event_id,
        {"mode": "always", "rate_per_min": int(args.rate * 60 * 2), "grace_s": 5, "pass_ttl_s": 60},
    )
    rng = random.Random(7)
    sampler = Sampler(redis, sale, args.sample_seconds)
    stop_sampling = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop_sampling))
    result: dict = {}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        say(f"phase 1, sale: {args.rate} buyers a second for {args.sale_minutes} min behind the waiting room")
        arrived = await open_loop(args.rate, args.sale_minutes * 60, lambda: buyer(session, sale, rng))
        result["buyers"] = arrived
        sampler.phase = "close"
        say("phase 2, close: room off; closers buy what comes back until sold out and nothing is held")
        await room.configure(sale.event_id, {"mode": "off"})
        result["closed"] = await close_the_sale(
            session, sale, redis, rng, timeout=args.hold_seconds * 6 + 120
        )
        close = await sampler.sample()
        result["at_close"] = close
        sampler.phase = "hammer"
        result["hammer_started_s"] = round(time.monotonic() - sampler.started, 1)
        say(f"phase 3, hammer: bots at {args.bot_rate}/s for {args.hammer_minutes} min on the sold-out zone")
        result["bot_answers"] = dict(
            await hammer(session, sale, bots, args.bot_rate, args.hammer_minutes * 60)
        )
        await sampler.sample()
    sampler.phase = "rest"
    rest_s = max(args.success_ttl_seconds, args.result_ttl_seconds, args.window_seconds) + 5
    say(f"phase 3b, rest: no traffic for {rest_s} s, until every record with a TTL has run out")
    await asyncio.sleep(rest_s)  # the passing of time is what is measured here
    result["at_rest"] = await sampler.sample()
    settings = WorkerSettings(endpoints=own_cfg.endpoints(env["BR_TOPIC_PREFIX"]))
    pool = await asyncpg.create_pool(cfg.database_url, min_size=1, max_size=2)
    report = await reconcile(redis, pool, settings, [sale.event_id])
    result["reconcile_before_archive"] = report.summary()
    for d in report.differences:
        say(f"difference: {d}")
    sampler.phase = "end"
    say("phase 4, end: the show is over; waiting for the archiver")
    await pg.execute(
        "UPDATE shows SET show_date = now() - interval '1 minute' WHERE event_id = $1", sale.event_id
    )
    keys_before = await event_keys(redis, sale.event_id)
    started = time.monotonic()
    for _ in range(600):  # the archiver's own interval (2 s here) paces it; 5 minutes at most
        marked = await pg.fetchval("SELECT 1 FROM event_archives WHERE event_id = $1", sale.event_id)
        if marked and not await event_keys(redis, sale.event_id):
            break
        await asyncio.sleep(0.5)
    result["archive_s"] = round(time.monotonic() - started, 1)
    result["event_keys_before_archive"] = keys_before
    result["event_keys_after_archive"] = await event_keys(redis, sale.event_id)
    result["at_end"] = await sampler.sample()
    stop_sampling.set()
    await sampling
    report = await reconcile(redis, pool, settings, [sale.event_id])
    result["reconcile_after_archive"] = report.summary()
    result["rows"] = {
        r["status"]: r["n"]
        for r in await pg.fetch(
            "SELECT status, count(*) AS n FROM bookings WHERE event_id = $1 GROUP BY status", sale.event_id
        )
    }
    await pool.close()
    await pg.close()
    await redis.aclose()
    # Refusals' records and poll results live a window and a result TTL: memory climbs for the
    # longer of the two, then must stay flat. The slope is of what follows that warm-up, taken
    # twice as long (Redis reclaims expired keys by sampling, a little behind their TTLs).
    warm_from = result["hammer_started_s"] + 2 * max(args.window_seconds, args.result_ttl_seconds) + 5
    hammer_samples = [s for s in sampler.samples if s["phase"] == "hammer" and s["t_s"] >= warm_from]
    result["hammer_steady_samples"] = len(hammer_samples)
    result["told"] = dict(sorted(sale.told.items()))
    result["samples"] = sampler.samples
    # The event's own keys (MEMORY USAGE) decide the verdict; used_memory also moves with client
    # buffers and allocator pages, so it is reported beside.
    result["hammer_slope_bytes_per_min"] = slope_per_min(hammer_samples, "event_bytes")
    result["hammer_used_memory_slope_bytes_per_min"] = slope_per_min(hammer_samples, "used_memory")
    result["hammer_event_bytes_range"] = (
        [min(s["event_bytes"] for s in hammer_samples), max(s["event_bytes"] for s in hammer_samples)]
        if hammer_samples
        else None
    )
    # At rest: every seat sold, nothing held, every record with a TTL gone: what each booking
    # costs the sale Redis until the archive (its hold, payment, index entries, and its share of
    # the tombstones of the holds that ended unpaid).
    result["bytes_per_live_booking"] = result["at_rest"]["event_bytes_per_live_booking"]
    result["keys_left_after_archive"] = [
        k.decode() async for k in redis.scan_iter(count=1000) if not k.startswith(b"rl")
    ][:20]
    await redis.aclose()
    return result


def run(args: argparse.Namespace) -> dict:
    cfg = stack.up()
    asyncio.run(migrate(cfg.database_url))
    log_dir = cfg.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    prefix = f"soak-{uuid.uuid4().hex[:8]}."
    with contextlib.ExitStack() as cleanup:
        folder = Path(tempfile.mkdtemp(prefix="bench-soak-redis-"))
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        port = free_port()
        start_redis(port, folder)  # noeviction, like the sale Redis (its default)
        cleanup.callback(stop_redis, port, "nosave")
        own = dataclasses.replace(cfg, sale_redis_port=port)
        asyncio.run(stack.ensure_topics(cfg, prefix))
        cleanup.callback(lambda: asyncio.run(stack.delete_topics(cfg, prefix)))
        smtp_port = free_port()
        mailbox = cleanup.enter_context(Mailbox(smtp_port))
        env = service_env(
            reserve_path_env(own, prefix, secret),
            BR_RATE_LIMIT_NAMESPACE=f"rl-{prefix}",
            BR_PERSISTENCE_GROUP=f"{prefix}persistence",
            BR_SMTP_PORT=str(smtp_port),
            BR_HOLD_SECONDS=str(args.hold_seconds),
            BR_PAYMENT_HOLD_SECONDS=str(args.hold_seconds * 2),
            BR_REDELIVERY_WINDOW_SECONDS=str(args.window_seconds),
            BR_IDEMPOTENCY_TTL_SECONDS=str(args.success_ttl_seconds),
            BR_RESULT_TTL_SECONDS=str(args.result_ttl_seconds),
            BR_ARCHIVE_INTERVAL_SECONDS="2",
            BR_ARCHIVE_AFTER_LAST_SHOW_SECONDS="0",
            BR_FAKEPAY_LATENCY_MS="20",
        )
        say(f"sale Redis of its own on :{port}; topics {prefix}*; logs in {log_dir}")
        roles = "commands,sweeper,persistence,admitter,archiver"
        worker = start_worker(f"soak-worker-{prefix}", {**env, "BR_WORKER_ROLES": roles}, log_dir)
        cleanup.callback(worker.stop)
        payer = start_payment_worker(f"soak-payer-{prefix}", env, log_dir)
        cleanup.callback(payer.stop)
        gw_port = free_port()
        gateway = start_gateway(env, log_dir, gw_port)
        cleanup.callback(gateway.stop)
        env["BASE"] = f"http://127.0.0.1:{gw_port}"
        result = asyncio.run(soak(args, cfg, own.sale_redis_url, env, secret))
        result["mails"] = len(mailbox.messages)
    return result


def verdict(r: dict, args: argparse.Namespace) -> list[str]:
    """The targets missed (empty: all met)."""
    missed = []
    slope = r["hammer_slope_bytes_per_min"]
    # Flat: after the warm-up, memory moves by less than a tenth of what one window's refusal
    # records take (a few hundred bytes each) over the phase: they come and go, nothing piles up.
    allowed = args.bot_rate * args.window_seconds * 300 / 10
    if slope is None or slope * args.hammer_minutes > allowed:
        missed.append(f"memory not flat under the bots: {slope} B/min")
    if r["keys_left_after_archive"]:
        missed.append(f"keys left in the sale Redis after the archive: {r['keys_left_after_archive']}")
    if r["event_keys_after_archive"]:
        missed.append(f"{r['event_keys_after_archive']} keys of the event left after the archive")
    if "NOT OK" in r["reconcile_before_archive"]:
        missed.append("reconcile found differences before the archive")
    if "NOT OK" in r["reconcile_after_archive"]:
        missed.append("reconcile after the archive not OK")
    if not r["closed"]:
        missed.append("the sale never sold out with nothing held")
    return missed


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m ops.bench_soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--seats", type=int, default=600)
    p.add_argument("--rate", type=float, default=5, help="buyers arriving a second in the sale phase")
    p.add_argument("--sale-minutes", type=float, default=2)
    p.add_argument("--hammer-minutes", type=float, default=4)
    p.add_argument("--bot-rate", type=float, default=100, help="bot reserve requests a second after sell-out")
    p.add_argument("--sample-seconds", type=float, default=30)
    p.add_argument("--hold-seconds", type=int, default=30, help="a hold's life (10 minutes in production)")
    p.add_argument("--window-seconds", type=int, default=20, help="the redelivery window (5 minutes)")
    p.add_argument("--success-ttl-seconds", type=int, default=120, help="a success's record (24 h)")
    p.add_argument("--result-ttl-seconds", type=int, default=30, help="a poll's result (15 minutes)")
    args = p.parse_args()
    r = run(args)
    print(json.dumps({k: v for k, v in r.items() if k != "samples"}, indent=2))
    missed = verdict(r, args)
    slope = r["hammer_slope_bytes_per_min"]
    say(
        f"summary: after warm-up, the event's keys grow {slope:+,.0f} B/min (used_memory "
        f"{r['hammer_used_memory_slope_bytes_per_min']:+,.0f} B/min) under {args.bot_rate} bots/s; "
        f"{r['bytes_per_live_booking']} B per live booking; event keys {r['event_keys_before_archive']} -> "
        f"{r['event_keys_after_archive']} after the archive ({r['archive_s']} s); "
        + ("all targets met" if not missed else "MISSED: " + "; ".join(missed))
        if slope is not None
        else "no hammer samples"
    )
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
