"""The flash-sale demo: the whole stack on loopback, then thousands of buyers rush 2,000 seats.

Usage: python -m ops.demo [--buyers 5000] [--requests-per-buyer 2] [--seats-per-show 1000] [--serve]

Starts the services (ops.stack), applies migrations, seeds an event with two shows, runs the
gateway (one process per core) and two workers, fires the rush over HTTP, waits for PostgreSQL
to catch up, and checks every count three ways (answers, Redis, PostgreSQL). The last line it
prints is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import sys
import time
from collections import Counter

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from booking_rush.services.web_push import VapidKey
from lua import keys, load_scripts
from ops import demo_pay, stack
from ops.config import StackConfig
from ops.demo_room import audit_admissions, queue_rush
from ops.demo_tenant import tenant_through_the_api
from ops.migrate import migrate
from ops.processes import free_port, service_env, start_gateway, start_payment_worker, start_worker
from ops.seed import DEMO_BCRYPT_COST, DEMO_PASSWORD, DEMO_TENANT, seed
from waiting_room.room import WaitingRoom


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def rush(
    base: str, event_id: str, shows: dict, tokens: list[str], per_buyer: int, concurrency: int
) -> tuple[list[tuple[int, float, int]], list[tuple[str, str, int]], float]:
    """Every buyer asks `per_buyer` times for 1-2 seats somewhere; returns (status, ms, qty) per
    request, (token, booking id, seats) per booking, and the seconds it took."""
    rng = random.Random(2026)
    targets = [(s, z) for s, zones in shows.items() for z in zones.values()]
    jobs = [(t, *rng.choice(targets), rng.randint(1, 2)) for t in tokens for _ in range(per_buyer)]
    rng.shuffle(jobs)
    results: list[tuple[int, float, int]] = []
    booked: list[tuple[str, str, int]] = []
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    done_count = 0

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal done_count
        while not queue.empty():
            token, show, zone, qty = queue.get_nowait()
            body = {"event_id": event_id, "show_id": show, "zone_id": zone, "quantity": qty}
            started = time.perf_counter()
            async with session.post(
                f"{base}/api/v1/bookings/reserve", json=body, headers={"Authorization": f"Bearer {token}"}
            ) as r:
                payload = await r.json()
                status = r.status
            if status == 202:  # late answer: poll the request until it is final
                poll = f"{base}{payload['data']['poll']}"
                wait = 0.1
                while status in (202, 429):
                    await asyncio.sleep(wait)
                    async with session.get(poll, headers={"Authorization": f"Bearer {token}"}) as r:
                        status = 201 if r.status == 200 else r.status
                        payload = await r.json()
                        # a polite client: as often as the rate limiter allows
                        wait = int(r.headers.get("Retry-After", 0)) or 0.25
            results.append((status, (time.perf_counter() - started) * 1000, qty))
            if status == 201:
                booked.append((token, payload["data"]["booking_id"], qty))
            done_count += 1
            if done_count % 2000 == 0:
                say(f"  {done_count}/{len(jobs)} answered")

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return results, booked, time.perf_counter() - started


async def log_in(base: str, tenant: str, emails: list[str], password: str, concurrency: int) -> list[str]:
    """Real logins through the gateway: each buyer's access token, in order."""
    sem = asyncio.Semaphore(concurrency)

    async def one(session: aiohttp.ClientSession, email: str) -> str:
        async with (
            sem,
            session.post(
                f"{base}/api/v1/auth/login", json={"tenant": tenant, "email": email, "password": password}
            ) as r,
        ):
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"login of {email} failed: {r.status} {body}")
            return body["data"]["access_token"]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        return await asyncio.gather(*(one(session, e) for e in emails))


async def verify(
    cfg: StackConfig, event_id: str, shows: dict, booked: int, seats: int, timeout: float = 120
) -> dict:
    """Redis and PostgreSQL counts, once the persistence consumer has caught up."""
    redis = aioredis.from_url(cfg.sale_redis_url)
    conn = await asyncpg.connect(cfg.database_url)
    try:
        available = [
            int(await redis.hget(keys.zone(event_id, s, z), "available"))
            for s, zones in shows.items()
            for z in zones.values()
        ]
        deadline = time.monotonic() + timeout
        while True:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, coalesce(sum(quantity), 0) AS seats FROM bookings WHERE event_id = $1",
                event_id,
            )
            if row["n"] >= booked or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        return {
            "redis_available": sum(available),
            "redis_min_counter": min(available),
            "redis_sold": seats - sum(available),
            "pg_bookings": row["n"],
            "pg_seats": int(row["seats"]),
        }
    finally:
        await redis.aclose()
        await conn.close()


async def waiting_room_act(cfg: StackConfig, args: argparse.Namespace, base: str, tokens: list, seats: int):
    """Act two: a second sale of the same size behind the waiting room (ops/demo_room.py)."""
    say("act two: the same buyers rush a second sale, this time behind the waiting room")
    seeded = await seed(cfg, 0, args.seats_per_show, "Flash Sale Live: waiting room (demo)")
    redis = aioredis.from_url(cfg.sale_redis_url)
    try:
        room = WaitingRoom(redis, await load_scripts(redis))
        settings = {"mode": "always", "rate_per_min": args.admit_per_min, "max_active": seats, "grace_s": 120}
        config = await room.configure(seeded["event_id"], settings)
        say(f"  room: always on, {args.admit_per_min} admissions/min, at most {seats} buyers active at once")
        outcome = await queue_rush(
            base,
            seeded["event_id"],
            seeded["shows"],
            tokens,
            args.concurrency,
            room,
            config.pass_ttl_s,
        )
    finally:
        await redis.aclose()
    audit = await audit_admissions(cfg.sale_redis_url, seeded["event_id"])
    checks = await verify(cfg, seeded["event_id"], seeded["shows"], 0, seats, timeout=0)
    told_admitted = outcome["outcomes"].get("ended admitted", 0)
    return {
        **outcome,
        **audit,
        "redis_sold": checks["redis_sold"],
        "oversold": max(
            0, outcome["sold"] - seats, checks["redis_sold"] - seats, -checks["redis_min_counter"]
        ),
        "consistent": outcome["sold"] == checks["redis_sold"]
        and audit["admitted"] == told_admitted
        and audit["admitted_in_ticket_order"],
    }


async def payments_act(
    cfg, args, base: str, seeded: dict, tokens: list, booked: list, sold: int, mailbox
) -> dict:
    """Act three (ops/demo_pay.py): some of act one's buyers pay, some are declined, some cancel."""
    say(f"act three: {min(args.payers, len(booked))} of the buyers pay (8 in 10), are declined or cancel")
    outcome = await demo_pay.payment_act(base, booked, args.payers, args.concurrency)
    confirmed = outcome.pop("confirmed_ids")
    persisted = await demo_pay.persisted_payments(cfg.database_url, confirmed)
    declined = outcome["answers"].get("payment failed", 0)
    # Each confirmation: a receipt and the e-ticket; each decline: a failure notice.
    await asyncio.to_thread(mailbox.wait_for, 2 * outcome["tickets"] + declined)
    checks = await verify(cfg, seeded["event_id"], seeded["shows"], 0, 2 * args.seats_per_show, timeout=0)
    mails = dict(mailbox.subjects())  # before the code's buyers pay (theirs are not waited for)
    say(
        f"  then the {outcome['seats_released']} seats given back go to new buyers "
        f"with the promo code {demo_pay.PROMO_CODE}"
    )
    (organizer,) = await log_in(base, seeded["tenant_slug"], ["organizer@demo.test"], DEMO_PASSWORD, 1)
    booked_by = {token for token, _, _ in booked}
    fresh = [t for t in tokens if t not in booked_by]
    code = await demo_pay.code_act(
        base,
        organizer,
        seeded["event_id"],
        seeded["shows"],
        fresh,
        outcome["seats_released"],
        args.concurrency,
    )
    return {
        **outcome,
        **persisted,
        "mails": mails,
        "redis_sold_after": checks["redis_sold"],
        "promo_code": code,
        "consistent": checks["redis_sold"] == sold - outcome["seats_released"]
        and persisted["pg_confirmed"] == outcome["tickets"] == len(confirmed)
        and outcome["tickets_unique"]
        and code["bookings_with_code"] == code["code_uses"] > 0
        and code["charged_as_locked"],
    }


async def run_demo(cfg: StackConfig, args: argparse.Namespace, procs: list, mailbox) -> dict:
    """The rush; the gateway and worker processes it starts go into `procs` (the caller stops them)."""
    await migrate(cfg.database_url)
    seats = 2 * args.seats_per_show
    secret = os.environ.get("BR_JWT_SECRET") or secrets.token_hex(32)
    # Every buyer logs in from this one address: the demo lifts the per-address login limit.
    env = service_env(
        cfg.service_env(),
        BR_JWT_SECRET=secret,
        # The waiting room offers Web Push turn notices (a key made for this run unless given).
        BR_VAPID_PRIVATE_KEY=os.environ.get("BR_VAPID_PRIVATE_KEY") or VapidKey.generate(),
        # 5,000 buyers sign in from this one address: its per-address login limit lifted.
        BR_RATE_LIMITS="login=1000000/100000,login_address=1000000/100000",
        BR_SMTP_PORT=str(mailbox.controller.port),
    )
    log_dir = cfg.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    say("starting 2 workers, a payment worker and the gateway")
    workers = [start_worker(f"demo-worker-{i}", env, log_dir) for i in range(2)]
    procs.extend(workers)
    for worker in workers:  # the group has settled: every worker holds partitions
        worker.wait_for_line("assigned")
    procs.append(start_payment_worker("demo-payments", env, log_dir))
    procs.append(start_gateway(env, log_dir, args.port))
    base = f"http://127.0.0.1:{args.port}"
    say(f"the tenant {DEMO_TENANT}: made by a system admin through POST /api/v1/system/tenants")
    tenant_made = await tenant_through_the_api(
        cfg,
        base,
        mailbox,
        slug=DEMO_TENANT,
        name="Demo Live Entertainment",
        admin_email="admin@demo.test",
        password=DEMO_PASSWORD,
        bcrypt_cost=DEMO_BCRYPT_COST,
    )
    made = (
        "created, its admin invited" if tenant_made == "created" else "there already (an earlier run made it)"
    )
    say(f"  {made}")
    say(f"seeding {args.buyers} buyers and an event of 2 shows x {args.seats_per_show} seats")
    seeded = await seed(cfg, args.buyers, args.seats_per_show, "Flash Sale Live (demo)")
    say(f"{len(seeded['buyer_emails'])} buyers log in (POST /api/v1/auth/login)")
    started = time.perf_counter()
    tokens = await log_in(
        base, seeded["tenant_slug"], seeded["buyer_emails"], seeded["password"], args.concurrency
    )
    login_s = time.perf_counter() - started
    say(f"  logged in in {login_s:.1f}s")
    total = len(tokens) * args.requests_per_buyer
    say(f"the rush: {total} reservation requests from {len(tokens)} buyers for {seats} seats")
    results, booked, elapsed = await rush(
        base, seeded["event_id"], seeded["shows"], tokens, args.requests_per_buyer, args.concurrency
    )
    statuses = Counter(s for s, _, _ in results)
    sold = sum(q for s, _, q in results if s == 201)
    say("waiting for PostgreSQL to hold every booking (the workers' persistence consumers)")
    rush_over = time.perf_counter()
    checks = await verify(cfg, seeded["event_id"], seeded["shows"], statuses[201], seats)
    # Spec §4.3: PostgreSQL's seat counts follow Redis within 5 s.
    checks["pg_caught_up_s"] = round(time.perf_counter() - rush_over, 2)
    latencies = sorted(ms for _, ms, _ in results)
    oversold = max(0, sold - seats, checks["redis_sold"] - seats, -checks["redis_min_counter"])
    paying = await payments_act(cfg, args, base, seeded, tokens, booked, sold, mailbox)
    room = await waiting_room_act(cfg, args, base, tokens, seats)
    say("the organizer cancels the first sale: every booking of it settled once (refunds, releases)")
    organizer, admin = await log_in(
        base, seeded["tenant_slug"], ["organizer@demo.test", "admin@demo.test"], DEMO_PASSWORD, 2
    )
    cancelled = await demo_pay.cancellation_act(base, admin, organizer, seeded["event_id"], cfg.database_url)
    return {
        "seats": seats,
        "sold": sold,
        "oversold": oversold,
        "requests": len(results),
        "answers": {str(k): v for k, v in sorted(statuses.items())},
        "logins": len(tokens),
        "login_s": round(login_s, 1),
        "throughput_rps": round(len(results) / elapsed, 1),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p99": round(percentile(latencies, 0.99), 1),
        },
        "consistent": sold == checks["redis_sold"] == checks["pg_seats"]
        and statuses[201] == checks["pg_bookings"],
        **checks,
        "payments": paying,
        "waiting_room": room,
        "cancellation": cancelled,
        "tenant": seeded["tenant_slug"],
        "tenant_made": tenant_made,
        "first_buyer": seeded["buyer_emails"][0],
    }


def print_summary(summary: dict) -> None:
    print()
    print(f"  seats      {summary['seats']}")
    print(
        f"  sold       {summary['sold']}  (Redis says {summary['redis_sold']}, "
        f"PostgreSQL {summary['pg_seats']} in {summary['pg_bookings']} bookings, "
        f"{summary['pg_caught_up_s']} s after the last answer)"
    )
    print(f"  oversold   {summary['oversold']}")
    print(f"  answers    {summary['answers']}  (201 booked, 409 sold out or over the limit)")
    print(f"  throughput {summary['throughput_rps']} req/s over {summary['requests']} requests")
    print(f"  latency    p50 {summary['latency_ms']['p50']} ms, p99 {summary['latency_ms']['p99']} ms")
    pay = summary["payments"]
    print("  payments (act three):")
    print(f"    answers    {pay['answers']}")
    print(
        f"    tickets    {pay['tickets']} e-tickets (unique: {pay['tickets_unique']}), "
        f"payment p50 {pay['payment_s_p50']} s"
    )
    print(f"    seats back {pay['seats_released']} (declined, cancelled); sold now {pay['redis_sold_after']}")
    print(f"    PostgreSQL {pay['pg_confirmed']} confirmed, {pay['pg_paid']} payments succeeded")
    print(f"    mails      {pay['mails']}")
    code = pay["promo_code"]
    example = code["example"]
    shown = (
        f"; one seat quoted {example['subtotal']} - {example['discounts'][-1]['amount']} "
        f"= {example['total']} {example['currency']}"
        if example
        else ""
    )
    print(
        f"    code       {code['code']}: {code['bookings_with_code']} seats given back sold again with it "
        f"(uses counted {code['code_uses']}, charged as locked: {code['charged_as_locked']}){shown}"
    )
    room = summary["waiting_room"]
    print("  behind the waiting room (act two):")
    print(f"    buyers     {room['buyers']}: {room['outcomes']}")
    print(f"    admitted   {room['admitted']}, in ticket order: {room['admitted_in_ticket_order']}")
    print(f"    reserved   {room['reserve_answers']}; {room['sold']} seats in {room['sale_s']} s")
    print(f"    oversold   {room['oversold']}")
    eta = room["eta_error"]
    if eta["shown"]:  # none when everyone let in was let in before any answer reached them
        print(f"    waits told {eta['shown']}: error median {eta['median']:.1%}, p90 {eta['p90']:.1%}")
    cancelled = summary["cancellation"]
    print("  the first sale cancelled:")
    failures = len(cancelled.get("failures", []))
    print(
        f"    settled    {cancelled.get('bookings')} bookings in {cancelled['settle_s']} s: "
        f"{cancelled.get('outcomes')} ({cancelled.get('status')}, {failures} failures); "
        f"{cancelled.get('vouchers')} compensation vouchers ({demo_pay.COMPENSATION_PERCENT} %)"
    )
    print(f"  verdict    {'OK' if succeeded(summary) else 'FAILED'}")
    print("  stop everything with: .venv/bin/python -m ops.stack down")
    print(json.dumps(summary))


async def open_a_room_for_the_browser(cfg: StackConfig) -> None:
    """--serve: a fresh sale behind a slow waiting room, for a person to queue for and book."""
    seeded = await seed(cfg, 0, 100, "Try the waiting room (demo)")
    redis = aioredis.from_url(cfg.sale_redis_url)
    try:
        room = WaitingRoom(redis, await load_scripts(redis))
        await room.configure(seeded["event_id"], {"mode": "always", "rate_per_min": 30, "grace_s": 120})
    finally:
        await redis.aclose()
    event_id = seeded["event_id"]
    say(f"'Try the waiting room (demo)' admits 30 people a minute: /waiting-room/{event_id}")
    say(
        f"  operate it: BR_PASSWORD={DEMO_PASSWORD} .venv/bin/roomctl --email admin@demo.test "
        f"--tenant {seeded['tenant_slug']} show {event_id}"
    )


def succeeded(summary: dict) -> bool:
    room = summary["waiting_room"]
    return (
        summary["consistent"]
        and not summary["oversold"]
        and summary["payments"]["consistent"]
        and room["consistent"]
        and not room["oversold"]
        and summary["cancellation"].get("status") == "done"
        and not summary["cancellation"].get("failures")
        and summary["cancellation"].get("left") == 0
        and summary["cancellation"].get("vouchers")
        == summary["cancellation"].get("outcomes", {}).get("refunded")
    )


def serve_until_interrupted(summary: dict, port: int) -> None:
    """--serve: keep the gateway and workers up so a person can use the pages."""
    say(
        f"serving: open http://127.0.0.1:{port}/events and sign in as {summary['first_buyer']} "
        f"(organisation {summary['tenant']}, password {DEMO_PASSWORD}); Ctrl-C stops"
    )
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # delivered to sigwait, so the caller's cleanup runs
    signal.sigwait(stop)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=5000)
    parser.add_argument("--requests-per-buyer", type=int, default=2)
    parser.add_argument("--seats-per-show", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--payers", type=int, default=300, help="act three: bookings that pay or cancel")
    parser.add_argument("--admit-per-min", type=int, default=60_000, help="the waiting room's admission rate")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BR_GATEWAY_PORT", 8080)))
    parser.add_argument(
        "--serve", action="store_true", help="keep the gateway and workers running afterwards (Ctrl-C stops)"
    )
    args = parser.parse_args()
    try:
        cfg = stack.up()
    except stack.StackError as exc:
        print(f"[demo] the stack did not start: {exc}", file=sys.stderr)
        return 1
    procs: list = []
    mailbox = demo_pay.Mailbox(free_port())  # the buyers' inboxes: confirmations, failure notices
    mailbox.__enter__()
    try:
        summary = asyncio.run(run_demo(cfg, args, procs, mailbox))
        print_summary(summary)
        if args.serve:
            asyncio.run(open_a_room_for_the_browser(cfg))
            serve_until_interrupted(summary, args.port)
    finally:
        say("stopping gateway and workers (the services keep running)")
        for p in reversed(procs):
            p.stop()
        mailbox.__exit__()
    return 0 if succeeded(summary) else 1


if __name__ == "__main__":
    sys.exit(main())
