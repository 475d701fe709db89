"""The cost of a booking at the steady rates a waiting room lets through, not only at saturation.

Usage: python -m ops.bench_rates [--rates 500,1000,2000,3000] [--step 10] [--runs 3] [--baseline COMMIT]
                                 [--arm NAME:KEY=VALUE[,KEY=VALUE...]] [--priced]
                                 [--max-from 1000] [--no-max] [--no-idle] [--gateway-processes 2]

What runs: `python -m gateway` (its default processes) and one `python -m workers` (every role:
commands, persistence, sweeper, admitter, archiver) on topics and consumer groups of the run's
own, against the stack's Redis, Kafka and PostgreSQL; nothing is pinned but the generator.
The generator is vegeta (open loop, fixed rate, pinned to core 1; installed with `go install`
the first time), sending POST /api/v1/bookings/reserve as distinct users with distinct
idempotency keys, the spec's rate limits in force (a pool of users big enough that none of them
meets the per-user reserve limit at the rates tried) and seats enough for 100 % 201s.

For each rate: a warm-up, then a step of `--step` seconds. The CPU window opens before the step
and closes only once the persistence consumer has committed every booking event and PostgreSQL
holds every booking the step was told 201 about. CPU is counted per process tree: the gateway,
the worker, the sale and aux Redis, the Kafka JVM, PostgreSQL (postmaster and backends), and
the generator apart. Figures are medians over `--runs` runs.

Also, in the same run:
  - the highest rate whose p99 stays under 50 ms (up or down from --max-from, steps of 500/s, each run
    twice, a step passing when one of its two runs does: one noisy second on a shared machine
    does not end the search);
  - idle: busy cores of the services alone for 60 s, then with our processes up, one room
    engaged and nobody asking (after 30 s of settling);
  - a calibration: the bare aiohttp hello endpoint's requests per CPU-second, and the sale
    Redis's CPU per reserve script on an idle stack. Figures are reported raw and normalised by
    it (multiplied by calibration-now / calibration-reference), so two runs on a machine that
    drifted can be compared.

As a before/after check for a change on the reserve path, `--baseline COMMIT` runs that commit's
gateway and workers (from a worktree) and this checkout's, taking turns run by run against the
same stack, event and generator, and reports each arm; compare `cpu_per_booking_ms` per rate.
`--arm NAME:KEY=VALUE,...` (repeatable) adds an arm of this checkout run with those environment
settings, for a setting's effect (e.g. `--arm librdkafka:BR_GATEWAY_KAFKA_CLIENT=librdkafka`).
`--priced` puts prices to work: an early bird on the zone, a bundle tier and a promo code every
request names (with --baseline: what pricing costs per booking, before and after).
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from booking_rush.contract import messages, pricing
from booking_rush.contract.topics import Topics
from gateway.auth import issue_access_token
from lua import execute_scripted, keys, load_scripts
from ops import stack
from ops.bench import (
    LOAD_CORE,
    SERVER_CORE,
    Measured,
    bench_reserve_command,
    bench_stack,
    forget,
    reserve_body,
    seed_bench_event,
    service_pids,
    wrk,
)
from ops.bench_compare import git, worktree
from ops.config import REPO_ROOT, StackConfig
from ops.processes import Managed, service_env, start_gateway, start_worker, wait_ready
from ops.roomctl import Gateway
from workers.command_scripts import queue_command
from workers.settings import WorkerSettings

VEGETA_MODULE = "github.com/tsenart/vegeta/v12@v12.13.0"
P99_LIMIT_MS = 50.0
DEPLOY_SETTLE_S = 5.0
# The calibration of the machine the targets were set on (hello per CPU-s, sale Redis µs per
# reserve script): the reference that "normalised" figures are scaled to.
REFERENCE_HELLO_PER_CPU_S = 30_000.0
REFERENCE_REDIS_US_PER_SCRIPT = 25.0
TARGETS = {
    500: {"cpu_per_booking_ms": 1.0, "p50_ms": 4, "p99_ms": 15},
    1000: {"cpu_per_booking_ms": 0.6, "p50_ms": 5, "p99_ms": 20},
    2000: {"cpu_per_booking_ms": 0.45, "p50_ms": 8, "p99_ms": 30},
}


def say(msg: str) -> None:
    print(f"[bench-rates] {msg}", flush=True)


# --- CPU of process trees -------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, own + reaped children's CPU seconds) of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> float:
    """CPU seconds of `root` and every live descendant (exited ones are in their parent's
    reaped-children time)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            todo += children.get(pid, [])
    return total


class CpuWindow:
    """CPU seconds of each named process tree between open() and close()."""

    def __init__(self, trees: dict[str, int]) -> None:
        self.trees = trees

    def open(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = {name: tree_cpu(pid) for name, pid in self.trees.items()}

    def close(self) -> dict[str, float]:
        self.wall = time.monotonic() - self.t0
        return {name: tree_cpu(pid) - self.cpu0[name] for name, pid in self.trees.items()}


# --- the generator --------------------------------------------------------------------------------


def ensure_vegeta(cfg: StackConfig) -> str:
    """vegeta's path: on PATH, or built with `go install` into the stack's tools folder."""
    found = subprocess.run(["sh", "-c", "command -v vegeta"], capture_output=True, text=True).stdout.strip()
    if found:
        return found
    bindir = cfg.state_dir / "tools" / "bin"
    binary = bindir / "vegeta"
    if not binary.exists():
        say(f"installing vegeta ({VEGETA_MODULE}) with go install, once (about 30 s)")
        bindir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "install", VEGETA_MODULE], check=True, env={**os.environ, "GOBIN": str(bindir)})
    return str(binary)


@dataclass
class Buyers:
    """Bearer tokens of the benchmark's buyers, handed out in turn so each user's requests are
    spaced as far apart as the pool allows."""

    tokens: list[str]
    next: int = 0

    def take(self) -> str:
        token = self.tokens[self.next % len(self.tokens)]
        self.next += 1
        return token


def write_targets(path: Path, url: str, body: str, buyers: Buyers, count: int) -> None:
    """`count` vegeta JSON targets: each its own user in turn and its own idempotency key."""
    encoded = base64.b64encode(body.encode()).decode()
    run = uuid.uuid4().hex[:10]
    with open(path, "w") as f:
        for i in range(count):
            f.write(
                json.dumps(
                    {
                        "method": "POST",
                        "url": url,
                        "body": encoded,
                        "header": {
                            "Authorization": [f"Bearer {buyers.take()}"],
                            "Content-Type": ["application/json"],
                            "Idempotency-Key": [f"rate-{run}-{i}"],
                        },
                    }
                )
            )
            f.write("\n")


def fire(vegeta: str, targets: Path, rate: int, seconds: float, results: Path) -> dict:
    """vegeta attack at a fixed rate, then its report: latencies from each request's scheduled
    send, status codes, and the generator's own CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(results, "wb") as out:
        subprocess.run(
            ["taskset", "-c", LOAD_CORE, vegeta, "attack", "-format=json", "-lazy", f"-targets={targets}"]
            + [f"-rate={rate}/s", f"-duration={seconds}s", "-timeout=10s", "-max-workers=20000"],
            stdout=out,
            check=True,
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads(
        subprocess.run([vegeta, "report", "-type=json", str(results)], capture_output=True, check=True).stdout
    )
    latencies = report["latencies"]
    return {
        "requests": report["requests"],
        "achieved_rps": round(report["throughput"], 1),
        "p50_ms": round(latencies["50th"] / 1e6, 2),
        "p90_ms": round(latencies["90th"] / 1e6, 2),
        "p99_ms": round(latencies["99th"] / 1e6, 2),
        "max_ms": round(latencies["max"] / 1e6, 2),
        "statuses": report["status_codes"],
        "generator_cpu_s": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 3),
    }


# --- waiting for the durable record -------------------------------------------------------------


async def caught_up(cfg: StackConfig, topics: Topics, event_id: str, bookings: int, timeout: float) -> float:
    """Until the command group and the persistence group have committed everything on their
    topics and PostgreSQL has at least `bookings` bookings of the event (nothing of a step,
    not even an overloaded one's backlog, left to land in the next); how long that took."""
    groups = {f"{topics.prefix}commands": topics.reservations, f"{topics.prefix}persistence": topics.events}
    t0 = time.monotonic()
    deadline = t0 + timeout
    consumers = {
        group: AIOKafkaConsumer(
            bootstrap_servers=cfg.kafka_bootstrap, group_id=group, enable_auto_commit=False
        )
        for group in groups
    }
    pool = await asyncpg.connect(cfg.database_url)
    for consumer in consumers.values():
        await consumer.start()
        await consumer._client.force_metadata_update()  # noqa: SLF001 - topics new to this client
    try:
        while True:
            lag = 0
            for group, topic in groups.items():
                consumer = consumers[group]
                parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
                ends = await consumer.end_offsets(parts)
                for tp in parts:
                    lag += ends[tp] - (await consumer.committed(tp) or 0)
            stored = await pool.fetchval(
                "SELECT count(*) FROM bookings WHERE event_id = $1", uuid.UUID(event_id)
            )
            if lag == 0 and stored >= bookings:
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                raise RuntimeError(f"not caught up in {timeout:.0f}s (lag {lag}, {stored}/{bookings} stored)")
            await asyncio.sleep(0.05)  # polling a figure nothing announces
    finally:
        for consumer in consumers.values():
            await consumer.stop()
        await pool.close()


# --- one deployment under test -------------------------------------------------------------------


@dataclass
class Bench:
    """What every deployment of a run shares: the stack, the event and its buyers, the tools."""

    cfg: StackConfig
    env: dict[str, str]
    log_dir: Path
    port: int
    sale: dict
    buyers: Buyers
    vegeta: str
    work_dir: Path
    booked: int = 0  # 201s so far, every deployment's: what PostgreSQL must come to hold


@dataclass
class Deployment:
    """`python -m gateway` and `python -m workers` from one checkout, on topics and consumer
    groups of their own (a static member that stops stays in its group for a session timeout,
    so the next deployment must not share it)."""

    bench: Bench
    topics: Topics
    gateway: Managed
    worker: Managed

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.bench.port}"

    def trees(self) -> dict[str, int]:
        return {
            "gateway": self.gateway.proc.pid,
            "worker": self.worker.proc.pid,
            **service_pids(self.bench.cfg),
        }

    def step(self, rate: int, seconds: float, warmup: float) -> dict:
        bench = self.bench
        url = f"{self.base}/api/v1/bookings/reserve"
        body = reserve_body(bench.sale)
        targets = bench.work_dir / "targets.jsonl"
        results = bench.work_dir / "results.bin"
        if warmup:
            write_targets(targets, url, body, bench.buyers, int(rate * warmup) + rate)
            warm = fire(bench.vegeta, targets, rate, warmup, results)
            bench.booked += warm["statuses"].get("201", 0)
        write_targets(targets, url, body, bench.buyers, int(rate * seconds) + rate)
        # Begin on a quiet system: the warm-up's (and any earlier step's) commands applied and
        # bookings stored before the window opens.
        asyncio.run(self._caught_up(180))
        window = CpuWindow(self.trees())
        window.open()
        shot = fire(bench.vegeta, targets, rate, seconds, results)
        bench.booked += shot["statuses"].get("201", 0)
        drain_s = asyncio.run(self._caught_up(120))
        cpu = window.close()
        total = sum(cpu.values())
        created = shot["statuses"].get("201", 0)
        return {
            "rate": rate,
            **shot,
            "created": created,
            "drain_s": round(drain_s, 2),
            "window_s": round(window.wall, 2),
            "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
            "cpu_total_s": round(total, 3),
            "busy_cores": round(total / window.wall, 3),
            "cpu_per_booking_ms": round(1000 * total / max(1, created), 3),
            "cpu_per_booking_ms_by_process": {
                k: round(1000 * v / max(1, created), 3) for k, v in cpu.items()
            },
        }

    async def _caught_up(self, timeout: float) -> float:
        bench = self.bench
        return await caught_up(bench.cfg, self.topics, bench.sale["event_id"], bench.booked, timeout)


@contextlib.contextmanager
def deployed(bench: Bench, code: Path, settings: dict[str, str] | None = None) -> Iterator[Deployment]:
    prefix = f"bench-rates-{uuid.uuid4().hex[:8]}."
    env = {
        **bench.env,
        **(settings or {}),
        "BR_TOPIC_PREFIX": prefix,
        "BR_COMMAND_GROUP": f"{prefix}commands",
        "BR_PERSISTENCE_GROUP": f"{prefix}persistence",
    }
    asyncio.run(stack.ensure_topics(bench.cfg, prefix))
    procs: list[Managed] = []
    try:
        procs.append(start_worker("bench-rates-worker", env, bench.log_dir, cwd=code))
        procs.append(start_gateway(env, bench.log_dir, bench.port, cwd=code))
        # What a worker does once at start (its first look at every event and room) is not
        # the cost of a booking: let it pass before anything is measured.
        time.sleep(DEPLOY_SETTLE_S)
        yield Deployment(bench, Topics(prefix), gateway=procs[1], worker=procs[0])
    finally:
        for p in reversed(procs):
            p.stop()
        asyncio.run(stack.delete_topics(bench.cfg, prefix))


def mint_tokens(secret: str, sale: dict, tenant_id: str) -> list[str]:
    return [
        issue_access_token(secret, user_id=user_id, tenant_id=tenant_id, email=email, ttl_s=6 * 3600)
        for user_id, email in zip(sale["buyers"], sale["emails"], strict=True)
    ]


def calibrate(cfg: StackConfig, env: dict, log_dir: Path, port: int, seconds: int) -> dict:
    """The machine's speed now: the bare aiohttp hello endpoint (pinned to core 0, wrk on core
    1) per CPU-second, and the sale Redis's CPU per reserve script."""
    hello = Managed(
        "bench-rates-hello",
        [sys.executable, "-m", "ops.bench_hello", "--port", str(port)],
        env,
        log_dir,
        cpus=SERVER_CORE,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/", hello)
        wrk(f"http://127.0.0.1:{port}/", 1, 64)
        with Measured(hello.proc.pid, SERVER_CORE) as m:
            out = wrk(f"http://127.0.0.1:{port}/", seconds, 64)
    finally:
        hello.stop()
    redis_us = asyncio.run(redis_script_cost(cfg))
    return {"hello_per_cpu_s": round(out["requests"] / m.cpu, 1), "redis_us_per_reserve_script": redis_us}


async def redis_script_cost(cfg: StackConfig, count: int = 20_000) -> float:
    """µs of sale-Redis CPU per reserve script, run pipelined (500 a round trip) as the worker
    does, on an event of its own that is removed afterwards."""
    sale = await seed_bench_event(cfg, 1)
    redis = aioredis.from_url(cfg.sale_redis_url)
    scripts = await load_scripts(redis)
    settings = WorkerSettings.from_env()
    commands = [bench_reserve_command(sale, sale["buyers"][0], "calibration") for _ in range(count)]
    pid = service_pids(cfg)["redis-sale"]
    try:
        before = tree_cpu(pid)
        now = messages.now_ms()
        for i in range(0, count, 500):
            chunk = commands[i : i + 500]
            await execute_scripted(
                redis,
                lambda pipe, chunk=chunk: [queue_command(pipe, scripts, c, now, settings) for c in chunk],
                scripts,
            )
        return round(1e6 * (tree_cpu(pid) - before) / count, 2)
    finally:
        await redis.aclose()
        await forget(cfg, sale["event_id"])


# --- idle ----------------------------------------------------------------------------------------


def idle_cores(trees: dict[str, int], seconds: float) -> dict:
    window = CpuWindow(trees)
    window.open()
    time.sleep(seconds)  # measuring an idle interval: the wait is the measurement
    cpu = window.close()
    return {
        "busy_cores": round(sum(cpu.values()) / window.wall, 4),
        "by_process": {k: round(v / window.wall, 4) for k, v in cpu.items()},
    }


async def engage_room(base: str, cfg: StackConfig, secret: str, sale: dict) -> None:
    """The benchmark event's waiting room in mode "always" (nobody in it), through the admin API."""
    conn = await asyncpg.connect(cfg.database_url)
    try:
        admin = await conn.fetchrow(
            "SELECT id, email FROM users WHERE tenant_id = $1 AND role = 'admin' LIMIT 1",
            uuid.UUID(sale["tenant_id"]),
        )
    finally:
        await conn.close()
    token = issue_access_token(
        secret, user_id=str(admin["id"]), role="admin", tenant_id=sale["tenant_id"], email=admin["email"]
    )
    async with aiohttp.ClientSession() as session:
        gateway = Gateway(session, base, token)
        await gateway.call("PUT", gateway.room(sale["event_id"]), {"mode": "always"})


# --- the run -------------------------------------------------------------------------------------


def passes(step: dict) -> bool:
    created = step["created"] / max(1, step["requests"])
    return step["p99_ms"] < P99_LIMIT_MS and created >= 0.99 and step["achieved_rps"] >= 0.97 * step["rate"]


def highest_rate_under_p99(
    deployment: Deployment, start: int, cap: int, seconds: float, warmup: float
) -> tuple[int, list[dict]]:
    """The highest rate, in steps of 500/s, at which a step passes (one of its two runs with p99
    under 50 ms, 99 % 201s and the rate achieved): up from `start` while steps pass, or down
    from it until one does (0: not even 500/s)."""
    tried: list[dict] = []

    def passing(rate: int) -> bool:
        runs = [deployment.step(rate, seconds, warmup) for _ in range(2)]
        tried.extend(runs)
        say(f"max search {rate}/s: p99 {[r['p99_ms'] for r in runs]} ms, 201s {[r['created'] for r in runs]}")
        return any(passes(r) for r in runs)

    if passing(start):
        best = start
        while best + 500 <= cap and passing(best + 500):
            best += 500
        return best, tried
    rate = start - 500
    while rate >= 500 and not passing(rate):
        rate -= 500
    return max(rate, 0), tried


def median_of(steps: list[dict], field: str) -> float:
    return round(statistics.median(s[field] for s in steps), 3)


def summarise(by_rate: dict[int, list[dict]], calibration: dict) -> dict:
    scale = calibration["hello_per_cpu_s"] / REFERENCE_HELLO_PER_CPU_S
    out = {}
    for rate, steps in by_rate.items():
        processes = steps[0]["cpu_per_booking_ms_by_process"].keys()
        cpu = median_of(steps, "cpu_per_booking_ms")
        out[str(rate)] = {
            "cpu_per_booking_ms": cpu,
            "cpu_per_booking_ms_normalised": round(cpu * scale, 3),
            "p50_ms": median_of(steps, "p50_ms"),
            "p99_ms": median_of(steps, "p99_ms"),
            "busy_cores": median_of(steps, "busy_cores"),
            "achieved_rps": median_of(steps, "achieved_rps"),
            "generator_cpu_per_request_ms": round(
                statistics.median(1000 * s["generator_cpu_s"] / max(1, s["requests"]) for s in steps), 3
            ),
            "cpu_per_booking_ms_by_process": {
                p: round(statistics.median(s["cpu_per_booking_ms_by_process"][p] for s in steps), 3)
                for p in processes
            },
            "non_201": sum(s["requests"] - s["created"] for s in steps),
            "targets": TARGETS.get(rate),
        }
    return out


def measure_arm(deployment: Deployment, args: argparse.Namespace, run_no: int, arm: str) -> dict:
    """One run of every rate (and the search for the highest) on one deployment."""
    steps, tried, best = [], [], None
    for rate in args.rates:
        step = deployment.step(rate, args.step, args.warmup)
        steps.append(step)
        say(
            f"{arm} run {run_no}/{args.runs} {rate}/s: p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms, "
            f"{step['cpu_per_booking_ms']} ms CPU per booking ({step['busy_cores']} cores), "
            f"201s {step['created']}/{step['requests']}, drained in {step['drain_s']} s"
        )
    if args.max:
        best, tried = highest_rate_under_p99(deployment, args.max_from, args.max_cap, args.step, args.warmup)
        say(f"{arm} run {run_no}/{args.runs}: highest rate with p99 < {P99_LIMIT_MS:.0f} ms: {best}/s")
    return {"steps": steps, "max_rate": best, "search": tried}


def arm_result(runs: list[dict], args: argparse.Namespace, calibration: dict) -> dict:
    by_rate = {rate: [s for r in runs for s in r["steps"] if s["rate"] == rate] for rate in args.rates}
    out: dict = {"by_rate": summarise({r: s for r, s in by_rate.items() if s}, calibration)}
    out["steps"] = [s for r in runs for s in r["steps"]]
    if args.max and runs:
        out["max_rate_p99_under_50ms"] = statistics.median(r["max_rate"] for r in runs)
        out["max_rate_runs"] = [r["max_rate"] for r in runs]
        out["max_search_steps"] = [
            {k: s[k] for k in ("rate", "p50_ms", "p99_ms", "achieved_rps", "created", "requests")}
            for r in runs
            for s in r["search"]
        ]
    by = out["by_rate"]
    if "500" in by and "2000" in by:
        out["flatness_500_over_2000"] = round(
            by["500"]["cpu_per_booking_ms"] / by["2000"]["cpu_per_booking_ms"], 2
        )
    return out


def idle_of(bench: Bench, arm: Arm, args: argparse.Namespace, secret: str, alone: dict) -> dict:
    with deployed(bench, arm.code, arm.settings) as deployment:
        asyncio.run(engage_room(deployment.base, bench.cfg, secret, bench.sale))
        say(f"idle: our processes up, one room engaged; {args.settle}s to settle, then {args.idle_seconds}s")
        time.sleep(args.settle)  # settling before an idle measurement: part of its definition
        ours = idle_cores(deployment.trees(), args.idle_seconds)
    return {
        "idle_with_ours": ours,
        "idle_above_services_cores": round(ours["busy_cores"] - alone["busy_cores"], 4),
    }


def run(args: argparse.Namespace) -> dict:
    cfg, log_dir = bench_stack()
    vegeta = ensure_vegeta(cfg)
    secret = os.urandom(32).hex()
    env = service_env(cfg.service_env(), BR_JWT_SECRET=secret)
    if args.gateway_processes:
        env["BR_GATEWAY_PROCESSES"] = str(args.gateway_processes)
    arms = {"new (this checkout)": Arm(REPO_ROOT)}
    if args.baseline:
        base = git("rev-parse", "--short", args.baseline)
        root = cfg.state_dir / "bench-worktrees"
        root.mkdir(parents=True, exist_ok=True)
        arms = {f"base {base}": Arm(worktree(base, f"{base}-rates", root)), **arms}
    arms.update({name: Arm(REPO_ROOT, settings) for name, settings in args.arm})
    result: dict = {"rates": args.rates, "step_s": args.step, "warmup_s": args.warmup, "runs": args.runs}
    result["live_events"], result["live_rooms"] = asyncio.run(live_counts(cfg))
    say(f"the sale Redis has {result['live_events']} events on sale, {result['live_rooms']} rooms configured")

    say(
        f"calibration: bare aiohttp hello per CPU-second ({args.calibration}s of wrk), sale Redis per reserve"
    )
    calibration = calibrate(cfg, env, log_dir, args.port + 1, args.calibration)
    result["calibration"] = calibration
    say(f"calibration: {calibration}")
    alone = None
    if args.idle:
        say(f"idle: the services alone for {args.idle_seconds}s")
        alone = result["idle_services_alone"] = idle_cores(service_pids(cfg), args.idle_seconds)

    say(f"seeding {args.users} buyers and an event of 50,000,000 seats")
    sale = asyncio.run(seed_bench_event(cfg, args.users))
    if args.priced:
        say(f"pricing: an early bird (10 %), a bundle tier, and the promo code {BENCH_CODE} in every request")
        asyncio.run(price_bench_event(cfg, sale))
    work_dir = Path(tempfile.mkdtemp(prefix="bench-rates-"))
    bench = Bench(
        cfg,
        env,
        log_dir,
        args.port,
        sale,
        Buyers(mint_tokens(secret, sale, sale["tenant_id"])),
        vegeta,
        work_dir,
    )
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    try:
        names = list(arms)
        for n in range(args.runs):
            # The arms take turns, the order rotating: a drift of the machine falls on each.
            for arm in names[n % len(names) :] + names[: n % len(names)]:
                with deployed(bench, arms[arm].code, arms[arm].settings) as deployment:
                    runs[arm].append(measure_arm(deployment, args, n + 1, arm))
        result["arms"] = {arm: arm_result(runs[arm], args, calibration) for arm in arms}
        if args.idle:
            for name, arm in arms.items():
                result["arms"][name].update(idle_of(bench, arm, args, secret, alone))
    finally:
        removed = asyncio.run(forget(cfg, sale["event_id"]))
        say(f"removed the benchmark event's {removed} keys from the sale Redis")
        dropped = asyncio.run(drop_from_postgres(cfg, sale["event_id"]))
        say(f"removed the benchmark event and its {dropped} bookings from PostgreSQL")
        shutil.rmtree(work_dir, ignore_errors=True)
    return result


BENCH_CODE = "BENCH-CODE-05"


async def price_bench_event(cfg: StackConfig, sale: dict) -> None:
    """--priced: the benchmark zone gets an early bird that never runs out (10 % off), the event
    a bundle tier (2 or more: the one-seat requests do not reach it, its rule is read all the
    same) and a promo code (5 % off, no limits) that every request names. Applied by
    lua/set_pricing.lua, as the organizer's commands are; the baseline's scripts ignore them."""
    redis = aioredis.from_url(cfg.sale_redis_url)
    scripts = await load_scripts(redis)
    settings = WorkerSettings.from_env()
    code = pricing.promo_definition(BENCH_CODE, "percent", 5)
    early_bird = {"on": True, "kind": "percent", "value": 10, "until": 0, "seats": 0}
    changes = [
        ("early_bird", {"show_id": sale["show_id"], "zone_id": sale["zone_id"], **early_bird}),
        ("bundles", {"tiers": [{"min_quantity": 2, "percent": 5, "name": "Two or more"}]}),
        ("promo", code),
    ]
    commands = [
        messages.set_pricing_command(
            request_id=messages.new_request_id(sale["event_id"]),
            event_id=sale["event_id"],
            user_id="bench",
            what=what,
            change=change,
            reply_to="",
        )
        for what, change in changes
    ]
    try:
        now = messages.now_ms()
        await execute_scripted(
            redis, lambda pipe: [queue_command(pipe, scripts, c, now, settings) for c in commands], scripts
        )
    finally:
        await redis.aclose()
    sale["promo_code"] = BENCH_CODE


async def drop_from_postgres(cfg: StackConfig, event_id: str) -> int:
    """The benchmark event's rows (hundreds of thousands of bookings a run would otherwise pile
    up in a developer's database); its shows and zones go with it. Returns the bookings removed."""
    conn = await asyncpg.connect(cfg.database_url)
    try:
        async with conn.transaction():
            event = uuid.UUID(event_id)
            await conn.execute("DELETE FROM payments WHERE event_id = $1", event)
            removed = await conn.execute("DELETE FROM bookings WHERE event_id = $1", event)
            await conn.execute("DELETE FROM events WHERE id = $1", event)
        return int(removed.split()[-1])
    finally:
        await conn.close()


async def live_counts(cfg: StackConfig) -> tuple[int, int]:
    """Events on sale and rooms configured: the periodic roles' work grows with them."""
    redis = aioredis.from_url(cfg.sale_redis_url)
    try:
        return await redis.scard(keys.LIVE_EVENTS), await redis.scard(keys.LIVE_ROOMS)
    finally:
        await redis.aclose()


@dataclass
class Arm:
    """What one arm runs: a checkout's gateway and workers, with environment settings of its own."""

    code: Path
    settings: dict[str, str] = field(default_factory=dict)


def parse_arm(text: str) -> tuple[str, dict[str, str]]:
    """`NAME:KEY=VALUE,KEY=VALUE` → (NAME, {KEY: VALUE})."""
    name, sep, assignments = text.partition(":")
    pairs = [a.partition("=") for a in assignments.split(",") if a]
    if not name or not sep or not pairs or any(not k or not eq for k, eq, _ in pairs):
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE[,KEY=VALUE...], got {text!r}")
    return name, {k: v for k, _, v in pairs}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates", type=lambda s: [int(r) for r in s.split(",")], default=[500, 1000, 2000, 3000]
    )
    parser.add_argument("--step", type=float, default=10.0, help="seconds of each measured step")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the step's rate before it")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--users", type=int, default=12_000)
    parser.add_argument(
        "--max",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="search the highest rate with p99 < 50 ms",
    )
    parser.add_argument("--max-from", type=int, default=1000)
    parser.add_argument("--max-cap", type=int, default=8000)
    parser.add_argument("--idle", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--calibration", type=int, default=5, help="seconds of the hello calibration")
    parser.add_argument(
        "--gateway-processes", type=int, default=None, help="default: the gateway's own default"
    )
    parser.add_argument("--port", type=int, default=18190)
    parser.add_argument(
        "--priced",
        action="store_true",
        help="an early bird, a bundle tier and a promo code on the event, the code in every request",
    )
    parser.add_argument(
        "--baseline",
        help="also run this commit's gateway and workers (a worktree), taking turns with this checkout",
    )
    parser.add_argument(
        "--arm",
        type=parse_arm,
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="also run this checkout with these environment settings, taking turns",
    )
    return parser.parse_args(argv)


def report(r: dict) -> None:
    cal = r["calibration"]
    print()
    print(
        f"  calibration: hello {cal['hello_per_cpu_s']} req per CPU-s "
        f"(reference {REFERENCE_HELLO_PER_CPU_S:.0f}), "
        f"sale Redis {cal['redis_us_per_reserve_script']} µs per reserve script; "
        f"{r['live_events']} events on sale, {r['live_rooms']} rooms configured"
    )
    for arm, a in r["arms"].items():
        print(f"  {arm}")
        print(
            f"  {'rate':>6} {'CPU/booking':>12} {'normalised':>11} {'p50':>8} {'p99':>8} {'cores':>6}"
            "   target (CPU, p50, p99)"
        )
        for rate, f in a["by_rate"].items():
            t = f["targets"]
            target = f"{t['cpu_per_booking_ms']} ms, {t['p50_ms']} ms, {t['p99_ms']} ms" if t else ""
            print(
                f"  {rate:>6} {f['cpu_per_booking_ms']:>9} ms {f['cpu_per_booking_ms_normalised']:>8} ms "
                f"{f['p50_ms']:>5} ms {f['p99_ms']:>5} ms {f['busy_cores']:>6}   {target}"
            )
            print(
                "         by process (ms/booking): "
                + ", ".join(f"{k} {v}" for k, v in f["cpu_per_booking_ms_by_process"].items())
            )
        if "flatness_500_over_2000" in a:
            print(f"  CPU per booking at 500/s over 2,000/s: {a['flatness_500_over_2000']}   target <= 2")
        if "max_rate_p99_under_50ms" in a:
            print(
                f"  highest rate with p99 < 50 ms: {a['max_rate_p99_under_50ms']}/s "
                f"(runs {a['max_rate_runs']})   target >= 4000"
            )
        if "idle_above_services_cores" in a:
            print(
                f"  idle: {a['idle_above_services_cores']} busy cores above the services alone"
                "   target <= 0.02"
            )
    print(json.dumps(r))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Stopped (a timeout, a terminal closed): unwind, so the gateway and worker it started stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if (os.cpu_count() or 1) < 2:
        print("[bench-rates] needs at least 2 cores (the generator has one to itself)", file=sys.stderr)
        return 2
    report(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
