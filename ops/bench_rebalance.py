"""The rebalance benchmark: what workers joining, leaving and dying mid-sale cost the requests in
flight, for each way of holding partitions.

Usage: python -m ops.bench_rebalance [--rate 40] [--configs static/range,static/sticky,...]
                                     [--session-timeout-ms 10000]          (about 4 minutes)

For each configuration (membership static or dynamic, assignor range, roundrobin or sticky), a
sale of its own at --rate reserve requests a second (open loop, spread over four shows, so over
the partitions) while: a second worker starts at 3 s, a third at 8 s, the first is stopped
(SIGTERM) at 13 s, the second killed (SIGKILL) at 19 s, a fourth starts at 24 s; 32 s in all.
Printed per configuration: the p99 of the requests sent in the 5 s after each change, the p99
of the whole sale, and any request that did not end 201. Last, one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import sys
import time
import uuid
from decimal import Decimal

import aiohttp

from gateway.auth import issue_access_token
from ops import stack
from ops.bench import reserve_path_env
from ops.migrate import migrate
from ops.open_loop import offered_at_rate, on_schedule, p99
from ops.processes import free_port, start_gateway, start_worker
from ops.seed import seed_sale
from ops.seed_data import ZoneSpec

SCHEDULE = ((3, "start w2"), (8, "start w3"), (13, "stop w1"), (19, "kill w2"), (24, "start w4"))
SECONDS = 32
PARTITIONS = 8
CONFIGS = "static/range,static/roundrobin,static/sticky,dynamic/range,dynamic/sticky"


def say(msg: str) -> None:
    print(f"[rebalance] {msg}", flush=True)


def p99_ms(values: list[float]) -> float | None:
    return round(p99(values) * 1000) if values else None


async def _book(session, base: str, token: str, body: dict) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{base}/api/v1/bookings/reserve", json=body, headers=headers) as r:
        status, answer = r.status, await r.json()
    poll = f"{base}{answer['data']['poll']}" if status == 202 else None
    while status == 202:
        await asyncio.sleep(0.25)  # a client's polling pace
        async with session.get(poll, headers=headers) as r:
            status, answer = (201 if r.status == 200 else r.status), await r.json()
    return status, answer


async def one_config(cfg, args, membership: str, assignor: str, log_dir) -> dict:
    run_id = uuid.uuid4().hex[:6]
    prefix = f"rebalance-{run_id}."
    await stack.ensure_topics(cfg, prefix, partitions=PARTITIONS)
    seeded = await seed_sale(
        cfg,
        tenant="rebalance",
        tenant_name="Rebalance benchmark",
        email="r{:04d}@rebalance.test",
        buyers=50,
        password="rebalance-pass-2026",
        title=f"Rebalance {run_id}",
        shows=4,
        zones=[ZoneSpec("GA", Decimal("10.00"), 1_000_000)],
        max_per_user=1_000_000,
    )
    secret = secrets.token_hex(32)
    tokens = [
        issue_access_token(secret, user_id=u, tenant_id=seeded["tenant_id"], ttl_s=3600)
        for u in seeded["buyers"]
    ]
    targets = [(show, zones["GA"]) for show, zones in seeded["shows"].items()]
    env = {
        **reserve_path_env(cfg, prefix, secret),
        "BR_RATE_LIMIT_NAMESPACE": f"rl-{prefix}",
        "BR_PERSISTENCE_GROUP": f"{prefix}persistence",
        "BR_WORKER_ROLES": "commands,persistence",
        "BR_KAFKA_ASSIGNOR": assignor,
        "BR_KAFKA_STATIC_MEMBERSHIP": "1" if membership == "static" else "0",
        "BR_KAFKA_SESSION_TIMEOUT_MS": str(args.session_timeout_ms),
    }
    workers = {"w1": await asyncio.to_thread(start_worker, f"{prefix}w1", env, log_dir)}
    port = free_port()
    gateway = await asyncio.to_thread(start_gateway, env, log_dir, port)
    base = f"http://127.0.0.1:{port}"
    answers: list[tuple[float, float, int]] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            started = time.monotonic()

            async def one(i: int) -> None:
                show, zone = targets[i % len(targets)]
                body = {"event_id": seeded["event_id"], "show_id": show, "zone_id": zone, "quantity": 1}
                sent = time.monotonic()
                status, _ = await _book(session, base, tokens[i % len(tokens)], body)
                answers.append((sent - started, time.monotonic() - sent, status))

            async def act(verb: str, name: str) -> None:
                if verb == "start":
                    workers[name] = await asyncio.to_thread(start_worker, f"{prefix}{name}", env, log_dir)
                elif verb == "stop":
                    await asyncio.to_thread(workers.pop(name).stop)
                else:
                    worker = workers.pop(name)
                    worker.proc.send_signal(signal.SIGKILL)
                    await asyncio.to_thread(worker.proc.wait)

            churning = asyncio.create_task(on_schedule(SCHEDULE, started, act))
            await offered_at_rate(args.rate, int(args.rate * SECONDS), started, one)
            changes = await churning
    finally:
        gateway.stop()
        for worker in workers.values():
            worker.stop()
        await stack.delete_topics(cfg, prefix)
    windows = {what: p99_ms([lat for sent, lat, _ in answers if at <= sent < at + 5]) for at, what in changes}
    return {
        "config": f"{membership}/{assignor}",
        "p99_ms_after": windows,
        "p99_ms_whole": p99_ms([lat for _, lat, _ in answers]),
        "requests": len(answers),
        "not_201": sum(status != 201 for _, _, status in answers),
    }


async def run(args, cfg) -> list[dict]:
    await migrate(cfg.database_url)
    log_dir = cfg.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for config in args.configs.split(","):
        membership, assignor = config.split("/")
        say(f"{config}: a sale at {args.rate}/s while workers come and go")
        r = await one_config(cfg, args, membership, assignor, log_dir)
        after = "  ".join(f"{what} {ms} ms" for what, ms in r["p99_ms_after"].items())
        say(f"{config}: p99 after  {after}  | whole {r['p99_ms_whole']} ms; {r['not_201']} not 201")
        results.append(r)
    return results


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m ops.bench_rebalance", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=40)
    p.add_argument("--configs", default=CONFIGS, help="membership/assignor, comma-separated")
    p.add_argument("--session-timeout-ms", type=int, default=10_000)
    args = p.parse_args()
    results = asyncio.run(run(args, stack.up()))
    say("summary (p99 ms of the requests sent in the 5 s after each change):")
    for r in results:
        say(f"  {r['config']:<18} " + "  ".join(f"{w}: {ms}" for w, ms in r["p99_ms_after"].items()))
    print(json.dumps(results))
    return 0 if all(r["not_201"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
