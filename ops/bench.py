"""The benchmark: how much of a bare aiohttp core the full reservation path keeps.

Usage: python -m ops.bench [--duration 10] [--connections 64] [--commands 30000] [--trace-ratio 0.1]

In one run, on this 2-core machine:
  (a) a bare aiohttp + uvloop JSON endpoint under wrk: requests per server CPU-second;
  (b) POST /api/v1/bookings/reserve through the whole path (gateway -> Kafka -> worker -> Lua
      -> Kafka event -> reply) under wrk: requests per gateway CPU-second, with the share of 201s;
  (c) worker reservations per worker CPU-second, from a backlog of commands on Kafka;
  (d) p50/p99 of (b) at a fixed offered rate of 70 % of (b)'s measured maximum (hey -q).
The server under test is pinned to core 0; load generators, workers and services to core 1.
It prints the ratio (b)/(a), and last one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import redis.asyncio as aioredis

from booking_rush.contract import messages
from booking_rush.contract.topics import Topics
from booking_rush.services.clients import idempotent_producer
from lua import keys
from ops import stack
from ops.config import REPO_ROOT, StackConfig
from ops.demo import log_in
from ops.inventory import unload_event
from ops.migrate import migrate
from ops.processes import Managed, cpu_seconds, service_env, start_gateway, start_worker, wait_ready
from ops.seed import seed_sale
from ops.seed_data import ZoneSpec

SERVER_CORE, LOAD_CORE = "0", "1"
BENCH_PASSWORD = "bench-pass-2026"
UNREACHABLE_LIMITS = ",".join(
    f"{p}=1000000000/1000000000"
    for p in ("reserve", "general", "login", "register", "login_address", "register_address")
)
BENCH_TOOLS = {"wrk": "wrk", "hey": "hey"}


def say(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def core_busy_ticks(core: str) -> tuple[int, int]:
    """(busy, total) jiffies of one core, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + values[4]  # idle + iowait
            return sum(values) - idle, sum(values)
    raise RuntimeError(f"no cpu{core} in /proc/stat")


class Measured:
    """CPU seconds of one process and the busy share of its core over a block of work."""

    def __init__(self, pid: int, core: str) -> None:
        self.pid, self.core = pid, core

    def __enter__(self) -> Measured:
        self.cpu0 = cpu_seconds(self.pid)
        self.busy0 = core_busy_ticks(self.core)
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.cpu = cpu_seconds(self.pid) - self.cpu0
        self.wall = time.monotonic() - self.t0
        busy1 = core_busy_ticks(self.core)
        self.core_busy = (busy1[0] - self.busy0[0]) / max(1, busy1[1] - self.busy0[1])


def wrk(
    url: str, duration: int, connections: int, script: Path | None = None, env: dict[str, str] | None = None
) -> dict:
    cmd = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    statuses = {int(c): int(n) for c, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": total,
        "statuses": statuses,
        "non2xx": int(errors.group(1)) if errors else 0,
        "raw": out,
    }


def tracing_env(ratio: float | None, spans_file: Path, say: Callable[[str], None]) -> dict[str, str]:
    """The services' environment for tracing at `ratio` (None: off), spans exported to a file:
    the exporter's cost is part of what a benchmark measures."""
    if ratio is None:
        return {}
    say(f"tracing on: sampling {ratio:.0%} of requests, spans to {spans_file}")
    return {"BR_TRACE_FILE": str(spans_file), "BR_TRACE_SAMPLE_RATIO": str(ratio)}


def service_pids(cfg: StackConfig) -> dict[str, int]:
    """The stack's own processes: both Redis, the Kafka JVM, the PostgreSQL postmaster."""
    pids = {}
    for role in ("sale", "aux"):
        pidfile = cfg.state_dir / f"redis-{role}.pid"
        if pidfile.exists():
            pids[f"redis-{role}"] = int(pidfile.read_text().strip())
    kafka = cfg.state_dir / "kafka" / "kafka.pid"
    if kafka.exists():
        pids["kafka"] = int(kafka.read_text().strip())
    postmaster = stack.pg_dir(cfg) / "postmaster.pid"
    if postmaster.exists():
        pids["postgres"] = int(postmaster.read_text().splitlines()[0])
    return pids


def pin_services(cfg: StackConfig, cores: str) -> None:
    """Move the already running services (every thread, PostgreSQL's backends too) onto `cores`."""
    found = service_pids(cfg)
    pids = [str(pid) for pid in found.values()]
    if "postgres" in found:
        children = subprocess.run(["pgrep", "-P", str(found["postgres"])], capture_output=True, text=True)
        pids += children.stdout.split()
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cores, pid], capture_output=True)


def reserve_body(sale: dict) -> str:
    """The benchmark's reserve request body: one seat of the benchmark event's zone (with its
    promo code, when the sale has one: ops/bench_rates.py --priced)."""
    body = {
        "event_id": sale["event_id"],
        "show_id": sale["show_id"],
        "zone_id": sale["zone_id"],
        "quantity": 1,
    }
    if sale.get("promo_code"):
        body["promo_code"] = sale["promo_code"]
    return json.dumps(body)


def reserve_path_env(cfg: StackConfig, prefix: str, secret: str) -> dict[str, str]:
    """The gateway's and workers' environment for a benchmark of the reserve path: one gateway
    process, topics and consumer group of the run's own (`prefix`), and a rate limiter in the
    path with limits no load-test user can reach."""
    return service_env(
        cfg.service_env(),
        BR_JWT_SECRET=secret,
        BR_GATEWAY_PROCESSES="1",
        BR_RATE_LIMITS=UNREACHABLE_LIMITS,
        BR_TOPIC_PREFIX=prefix,
        BR_COMMAND_GROUP=f"{prefix}commands",
    )


async def seed_bench_event(cfg: StackConfig, users: int) -> dict:
    """An event with seats enough that nearly every request is a 201, and many buyers."""
    seeded = await seed_sale(
        cfg,
        tenant="bench",
        tenant_name="Benchmark",
        email="b{:06d}@bench.test",
        buyers=users,
        password=BENCH_PASSWORD,
        title=f"Benchmark {uuid.uuid4().hex[:6]}",
        shows=1,
        zones=[ZoneSpec("GA", Decimal("10.00"), 50_000_000)],
        max_per_user=1_000_000_000,
    )
    ((show, zones),) = seeded["shows"].items()
    return {
        "event_id": seeded["event_id"],
        "show_id": show,
        "zone_id": zones["GA"],
        "emails": seeded["buyer_emails"],
        "buyers": seeded["buyers"],
        "tenant_id": seeded["tenant_id"],
    }


def bench_reserve_command(sale: dict, user_id: str, reply_to: str) -> dict:
    """A reserve command for one seat of the benchmark event, as a gateway would produce it,
    with an hour to be applied."""
    far = int((time.time() + 3600) * 1000)
    return messages.reserve_command(
        request_id=messages.new_public_id(sale["event_id"]),
        booking_id=messages.new_public_id(sale["event_id"]),
        event_id=sale["event_id"],
        show_id=sale["show_id"],
        zone_id=sale["zone_id"],
        user_id=user_id,
        quantity=1,
        idempotency_key=None,
        body_hash=messages.body_hash({"bench": True}),
        deadline_ms=far,
        accept_by_ms=far,
        reply_to=reply_to,
    )


async def backlog(cfg: StackConfig, prefix: str, sale: dict, count: int) -> None:
    """`count` reserve commands on a fresh topic, as gateways would have produced them."""
    await stack.ensure_topics(cfg, prefix)
    async with idempotent_producer(cfg.kafka_bootstrap, linger_ms=20) as producer:
        sends = []
        for i in range(count):
            command = bench_reserve_command(sale, sale["buyers"][i % len(sale["buyers"])], "bench-nobody")
            sends.append(
                await producer.send(
                    Topics(prefix).reservations, messages.encode(command), key=sale["show_id"].encode()
                )
            )
        await asyncio.gather(*sends)


async def forget(cfg: StackConfig, event_id: str) -> int:
    redis = aioredis.from_url(cfg.sale_redis_url)
    try:
        return await unload_event(redis, event_id)
    finally:
        await redis.aclose()


async def zone_available(
    cfg: StackConfig, sale: dict, down_to: int | None = None, timeout: float = 300
) -> int:
    """The zone's seats available now, or (with `down_to`) once they have fallen that far: one
    connection, polled every 50 ms (nothing is published when a worker drains a backlog)."""
    redis = aioredis.from_url(cfg.sale_redis_url)
    zone = keys.zone(sale["event_id"], sale["show_id"], sale["zone_id"])
    deadline = time.monotonic() + timeout
    try:
        while True:
            available = int(await redis.hget(zone, "available"))
            if down_to is None or available <= down_to:
                return available
            if time.monotonic() > deadline:
                raise RuntimeError(f"the zone did not fall to {down_to} seats in {timeout:.0f} s")
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()


def measure_worker(cfg: StackConfig, env: dict, log_dir: Path, sale: dict, count: int) -> dict:
    """(c): one worker, pinned to the load core, drains a backlog of `count` commands."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    say(f"(c) producing a backlog of {count} reserve commands")
    asyncio.run(backlog(cfg, prefix, sale, count))  # 12 partitions, as in production
    before = asyncio.run(zone_available(cfg, sale))
    worker_env = {
        **env,
        "BR_TOPIC_PREFIX": prefix,
        "BR_WORKER_ROLES": "commands",
        "BR_COMMAND_GROUP": f"{prefix}commands",
    }
    worker = start_worker(f"bench-worker-{prefix[6:14]}", worker_env, log_dir, cpus=LOAD_CORE)
    try:
        with Measured(worker.proc.pid, LOAD_CORE) as m:
            asyncio.run(zone_available(cfg, sale, down_to=before - count))
    finally:
        worker.stop()
        asyncio.run(stack.delete_topics(cfg, prefix))
    return {
        "commands": count,
        "worker_cpu_s": round(m.cpu, 3),
        "wall_s": round(m.wall, 3),
        "per_cpu_second": round(count / m.cpu, 1),
        "per_wall_second": round(count / m.wall, 1),
    }


def hey_fixed_rate(url: str, token: str, body: str, rate: float, duration: int) -> dict:
    # hey's workers are closed-loop: enough of them that each needs < 1 request per 60 ms.
    workers = max(50, int(rate * 0.06))
    per_worker = max(1, round(rate / workers, 1))
    out = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CORE,
            "hey",
            "-z",
            f"{duration}s",
            "-c",
            str(workers),
            "-q",
            str(per_worker),
            "-m",
            "POST",
            "-T",
            "application/json",
            "-H",
            f"Authorization: Bearer {token}",
            "-d",
            body,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pct = {p: float(v) * 1000 for p, v in re.findall(r"(\d+)% in ([\d.]+) secs", out)}
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {
        "offered_rps": round(per_worker * workers, 1),
        "achieved_rps": round(rps, 1),
        "p50_ms": round(pct.get("50", 0.0), 2),
        "p99_ms": round(pct.get("99", 0.0), 2),
        "statuses": codes,
    }


def bench_stack() -> tuple[StackConfig, Path]:
    """The load tools installed, the services up and migrated: (their config, the log folder)."""
    stack.ensure_packages(BENCH_TOOLS)
    cfg = stack.up()
    asyncio.run(migrate(cfg.database_url))
    log_dir = cfg.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    return cfg, log_dir


def run(args: argparse.Namespace) -> dict:
    cfg, log_dir = bench_stack()
    secret = secrets.token_hex(32)
    # Topics and consumer groups of its own (deleted at the end): the benchmark's events must
    # not become a backlog for the real persistence consumers. The limiter stays in the path,
    # with limits no single load-test user can reach.
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    asyncio.run(stack.ensure_topics(cfg, prefix))
    env = reserve_path_env(cfg, prefix, secret)
    env.update(tracing_env(args.trace_ratio, log_dir / f"bench-spans-{prefix}jsonl", say))
    pin_services(cfg, LOAD_CORE)
    procs: list[Managed] = []
    try:
        # (a) the baseline
        say(f"(a) bare aiohttp + uvloop JSON endpoint, {args.duration}s of wrk -c{args.connections}")
        hello = Managed(
            "bench-hello",
            [sys.executable, "-m", "ops.bench_hello", "--port", str(args.port + 1)],
            env,
            log_dir,
            cpus=SERVER_CORE,
        )
        procs.append(hello)
        wait_ready(f"http://127.0.0.1:{args.port + 1}/", hello)
        wrk(f"http://127.0.0.1:{args.port + 1}/", 2, args.connections)  # warm-up
        with Measured(hello.proc.pid, SERVER_CORE) as ma:
            a = wrk(f"http://127.0.0.1:{args.port + 1}/", args.duration, args.connections)
        hello.stop()
        procs.remove(hello)

        # (b) the full reservation path
        sale = asyncio.run(seed_bench_event(cfg, args.users))
        procs += [
            start_worker(f"bench-worker-{i}", {**env, "BR_WORKER_ROLES": "commands"}, log_dir, cpus=LOAD_CORE)
            for i in range(2)
        ]
        gateway = start_gateway(env, log_dir, args.port, cpus=SERVER_CORE)
        procs.append(gateway)
        # Real tokens: every load-test user logs in through the gateway first.
        tokens = asyncio.run(
            log_in(f"http://127.0.0.1:{args.port}", "bench", sale["emails"], BENCH_PASSWORD, 64)
        )
        body = reserve_body(sale)
        with tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False) as f:
            f.write("\n".join(tokens))
        script_env = {"BENCH_TOKENS": f.name, "BENCH_BODY": body}
        url = f"http://127.0.0.1:{args.port}/api/v1/bookings/reserve"
        script = REPO_ROOT / "ops" / "bench_reserve.lua"
        say(f"(b) POST /bookings/reserve through the full path, {args.duration}s")
        wrk(url, 2, args.connections, script, script_env)  # warm-up: token cache, connections
        with Measured(gateway.proc.pid, SERVER_CORE) as mb:
            b = wrk(url, args.duration, args.connections, script, script_env)
        os.unlink(f.name)
        created = b["statuses"].get(201, 0)

        # (d) latency at 70 % of (b)'s maximum, offered at a fixed rate
        max_rps = b["requests"] / mb.wall
        say(f"(d) fixed rate {0.7 * max_rps:.0f} req/s (70 % of {max_rps:.0f}) for {args.duration}s with hey")
        d = hey_fixed_rate(url, tokens[0], body, 0.7 * max_rps, args.duration)
    finally:
        for p in procs:
            p.stop()
        asyncio.run(stack.delete_topics(cfg, prefix))

    # (c) worker throughput, alone on the load core
    try:
        c = measure_worker(cfg, env, log_dir, sale, args.commands)
    finally:
        pin_services(cfg, f"0-{os.cpu_count() - 1}")
        removed = asyncio.run(forget(cfg, sale["event_id"]))
        say(f"removed the benchmark event's {removed} keys from the sale Redis")

    a_rate = a["requests"] / ma.cpu
    b_rate = b["requests"] / mb.cpu
    return {
        "a_hello_per_cpu_s": round(a_rate, 1),
        "a_hello_rps": round(a["requests"] / ma.wall, 1),
        "a_core_busy": round(ma.core_busy, 3),
        "b_reserve_per_cpu_s": round(b_rate, 1),
        "b_reserve_rps": round(b["requests"] / mb.wall, 1),
        "b_core_busy": round(mb.core_busy, 3),
        "b_gateway_cpu_share": round(mb.cpu / mb.wall, 3),
        "b_201_share": round(created / max(1, b["requests"]), 4),
        "b_statuses": {str(k): v for k, v in sorted(b["statuses"].items())},
        "ratio_b_over_a": round(b_rate / a_rate, 3),
        "c_worker_per_cpu_s": c["per_cpu_second"],
        "c_worker_per_wall_s": c["per_wall_second"],
        "d_offered_rps": d["offered_rps"],
        "d_achieved_rps": d["achieved_rps"],
        "d_p50_ms": d["p50_ms"],
        "d_p99_ms": d["p99_ms"],
        "d_statuses": {str(k): v for k, v in sorted(d["statuses"].items())},
        "targets": {"ratio_b_over_a": 0.35, "c_worker_per_cpu_s": 20000, "d_p99_ms": 50},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--commands", type=int, default=30000)
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument(
        "--trace-ratio", type=float, default=None, help="trace the gateway and workers at this sampling ratio"
    )
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        print("[bench] needs at least 2 cores (server on one, load on the other)", file=sys.stderr)
        return 2
    r = run(args)
    print()
    print(
        f"  (a) bare aiohttp      {r['a_hello_per_cpu_s']:>9} req per CPU-s "
        f"({r['a_hello_rps']} req/s, core 0 busy {r['a_core_busy']:.0%})"
    )
    print(
        f"  (b) reserve, full     {r['b_reserve_per_cpu_s']:>9} req per gateway CPU-s "
        f"({r['b_reserve_rps']} req/s, core 0 busy {r['b_core_busy']:.0%}, "
        f"201s {r['b_201_share']:.1%})"
    )
    print(f"      ratio (b)/(a)     {r['ratio_b_over_a']:>9}   target >= 0.35")
    print(
        f"  (c) worker            {r['c_worker_per_cpu_s']:>9} reservations per worker CPU-s "
        f"  target >= 20000"
    )
    print(
        f"  (d) at {r['d_offered_rps']} req/s   p50 {r['d_p50_ms']} ms, p99 {r['d_p99_ms']} ms"
        f"   target p99 < 50 ms"
    )
    print(json.dumps({**r, "trace_ratio": args.trace_ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
