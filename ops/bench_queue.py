"""The waiting-room benchmark: what live-position streams and joins cost the gateway and Redis.

Usage: python -m ops.bench_queue [--clients 18000] [--small-clients 5000] [--multi-clients 45000]
           [--processes 3] [--ticks 20] [--rate 600] [--duration 10] [--connections 256]
           [--trace-ratio 0.1]
Quick run: python -m ops.bench_queue --clients 2000 --multi-clients 3000 --ticks 5 --duration 3

In one run, on this 2-core machine (the server under test on core 0; clients, Redis, the admitter
and wrk on core 1), in an engaged room admitting --rate a minute, where every streaming client is
a distinct user in line, and the people admitted meanwhile are others ahead of them who poll
instead of streaming (so no stream ends, and every tick moves every client's place):
  (a) GET /api/v1/queue/stream on one gateway process, with --small-clients and then --clients
      streams open: memory per client (the gateway's RSS with the streams open minus before the
      first, over the streams); Redis commands and Redis CPU per admission tick over about --ticks
      ticks (whole stream heartbeat periods: each brings a batch of corrections) with every stream
      open and idle (a sale Redis of the benchmark's own: INFO commandstats and INFO cpu before and
      after; ticks by a real admitter worker, stopped while streams open); the tick fan-out the
      gateway logs with each stream heartbeat; the gateway's CPU per tick; the events received;
  (b) the same --clients streams on a bare aiohttp + uvloop SSE server (ops/bench_sse_baseline.py):
      our fan-out's median over its, and our CPU per tick over its;
  (c) --multi-clients streams over --processes gateway processes (BR_GATEWAY_PROCESSES: one port,
      SO_REUSEPORT), measured as in (a);
  (d) POST /api/v1/queue/join under wrk for --duration s, rotating through distinct users with
      real access tokens: joins per gateway CPU-second, and the share of 200s.
Streams are held by client processes (ops/bench_sse_clients.py), at most --per-process each, each
connecting from its own 127.0.0.x address. It prints progress, and last one JSON object with every
figure; it exits 1 if the clients received no position updates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import asyncpg
import orjson
import redis
import redis.asyncio as aioredis

from booking_rush.contract.messages import now_ms
from gateway.auth import issue_access_token
from gateway.queue_ticket import issue_queue_ticket
from lua import keys, load_scripts
from ops.bench import (
    LOAD_CORE,
    SERVER_CORE,
    UNREACHABLE_LIMITS,
    Measured,
    bench_stack,
    pin_services,
    tracing_env,
    wrk,
)
from ops.config import REPO_ROOT, StackConfig
from ops.inventory import load_event_inventory
from ops.processes import (
    Managed,
    cpu_seconds,
    free_port,
    service_env,
    start_redis,
    start_worker,
    stop_redis,
    wait_ready,
)
from ops.seed_data import ZoneSpec, create_event, ensure_tenant, ensure_users
from waiting_room.room import WaitingRoom

TENANT = "bench-queue"
EMAIL = "q{:06d}@bench-queue.test"
SEATS = 50_000_000
TICKET_TTL_S = 4 * 3600
UPKEEP_SETTLE_S = 0.5  # a stream upkeep round's Redis work follows its log line by milliseconds
FANOUT_LINE = re.compile(
    rb"(\d+) streams open; tick fan-out over (\d+) ticks: median ([\d.]+) ms, max ([\d.]+) ms"
)
TARGETS = {
    "memory_per_client_kib": 15,
    "redis_commands_besides_corrections_ratio_large_over_small": 1.0,
    "fanout_ratio_ours_over_baseline": 1.5,
    "joins_per_cpu_s": 5000,
}


def say(msg: str) -> None:
    print(f"[bench-queue] {msg}", flush=True)


def raise_open_files_limit() -> int:
    """The soft limit on open files up to the hard one, for this process and what it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (a multi-process gateway's children), by parent pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def listeners(port: int) -> int:
    """Listening TCP sockets on `port` (one per gateway process with SO_REUSEPORT)."""
    found = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            found += 1
    return found


class Server:
    """A server under test (gateway or baseline): its process tree, memory and fan-out lines."""

    def __init__(self, managed: Managed, processes: int) -> None:
        self.managed = managed
        self.processes = processes  # how many log a fan-out line each heartbeat

    def rss_kib(self) -> int:
        return rss_kib(process_tree(self.managed.proc.pid))

    def cpu_s(self) -> float:
        total = 0.0
        for pid in process_tree(self.managed.proc.pid):
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def log_size(self) -> int:
        return self.managed.log_path.stat().st_size

    def log_since(self, since: int) -> bytes:
        with open(self.managed.log_path, "rb") as f:
            f.seek(since)
            return f.read()

    def fanout_lines(self, since: int) -> list[dict]:
        text = self.log_since(since)
        return [
            {"streams": int(n), "ticks": int(k), "median_ms": float(med), "max_ms": float(mx)}
            for n, k, med, mx in FANOUT_LINE.findall(text)
        ]

    def wait_fanout_lines(self, since: int, timeout: float = 120) -> list[dict]:
        """The fan-out lines after log offset `since`, once every process has logged one more."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.fanout_lines(since)
            if len(lines) >= self.processes:
                return lines
            if self.managed.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.managed.name} logged no tick fan-out; see {self.managed.log_path}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM (a multi-process gateway passes it on), then SIGKILL whatever is left of the tree."""
        tree = process_tree(self.managed.proc.pid)
        self.managed.stop()
        for pid in tree[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_server(
    name: str, args: list[str], env: dict, port: int, ready_path: str, processes: int, log_dir: Path
) -> Server:
    server = Server(Managed(name, args, env, log_dir, cpus=SERVER_CORE), processes)
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready_path}", server.managed)
        deadline = time.monotonic() + 60
        while listeners(port) < processes:  # every process listening, so each gets its share
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: only {listeners(port)} of {processes} processes listen")
            time.sleep(0.2)
    except BaseException:
        server.stop()
        raise
    return server


class ClientFleet:
    """The client processes (ops/bench_sse_clients.py), on the load core, each from its own
    127.0.0.x; streams are spread over them evenly."""

    def __init__(self, processes: int, log_dir: Path) -> None:
        self.procs: list[subprocess.Popen] = []
        self.log_dir = log_dir
        for i in range(processes):
            with open(log_dir / f"bench-queue-clients-{i}.log", "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        ["taskset", "-c", LOAD_CORE, sys.executable, "-m", "ops.bench_sse_clients"]
                        + ["--source", f"127.0.0.{11 + i}"],
                        cwd=REPO_ROOT,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        text=True,
                        start_new_session=True,  # stopped as a group below
                    )
                )

    def _ask(self, commands: list[dict]) -> list[dict]:
        for proc, command in zip(self.procs, commands, strict=True):
            proc.stdin.write(json.dumps(command) + "\n")
            proc.stdin.flush()
        answers = []
        for i, proc in enumerate(self.procs):
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(
                    f"client process {i} exited; see {self.log_dir}/bench-queue-clients-{i}.log"
                )
            answers.append(json.loads(line))
        return answers

    def open(self, port: int, paths: list[str], concurrency: int) -> dict:
        n = len(self.procs)
        share = max(2, concurrency // n)
        answers = self._ask(
            [{"op": "open", "port": port, "paths": paths[i::n], "concurrency": share} for i in range(n)]
        )
        errors: Counter[str] = Counter()
        for a in answers:
            errors.update(a["errors"])
        return {
            "opened": sum(a["opened"] for a in answers),
            "failed": sum(a["failed"] for a in answers),
            "errors": dict(errors),
            "seconds": max(a["seconds"] for a in answers),
        }

    def stats(self) -> dict:
        answers = self._ask([{"op": "stats"}] * len(self.procs))
        return {k: sum(a[k] for a in answers) for k in answers[0]}

    def close(self) -> int:
        return sum(a["closed"] for a in self._ask([{"op": "close"}] * len(self.procs)))

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # end of input: each closes its streams and exits
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def seed(cfg: StackConfig, sale_redis_url: str, users: int, run_id: str) -> dict:
    """`users` buyers (no password: their tokens are minted) and two events with their seats in
    the benchmark's sale Redis: one to stream in, one to join."""
    conn = await asyncpg.connect(cfg.database_url)
    sale = aioredis.from_url(sale_redis_url)
    try:
        tenant_id = await ensure_tenant(conn, TENANT, "Waiting-room benchmark")
        (organizer_id,) = await ensure_users(conn, tenant_id, ["organizer@bench-queue.test"], "organizer")
        emails = [EMAIL.format(i) for i in range(users)]
        user_ids = await ensure_users(conn, tenant_id, emails)
        events = {}
        for name in ("streams", "joins"):
            event = await create_event(
                conn,
                tenant_id=tenant_id,
                organizer_id=organizer_id,
                title=f"Waiting-room benchmark ({name}) {run_id}",
                shows=1,
                zones=[ZoneSpec("GA", Decimal("10.00"), SEATS)],
            )
            await load_event_inventory(sale, conn, event.event_id)
            events[name] = event.event_id
        return {"tenant_id": tenant_id, "users": user_ids, "emails": emails, **events}
    finally:
        await conn.close()
        await sale.aclose()


async def fill_line(
    sale_redis_url: str, events: list[str], line: list[str], rate: int, concurrency: int = 256
) -> Counter:
    """Engage the rooms (admitting `rate` a minute, seats and active passes no limit) and put
    `line` in the first room, in that order, through the real join script."""
    sale = aioredis.from_url(sale_redis_url, max_connections=concurrency)
    try:
        room = WaitingRoom(sale, await load_scripts(sale))
        config = {"mode": "always", "rate_per_min": rate, "grace_s": 3600, "pass_ttl_s": 3600}
        for event_id in events:
            await room.configure(event_id, {**config, "max_active": 10_000_000})
        gate = asyncio.Semaphore(concurrency)
        states: Counter[str] = Counter()

        async def join(user_id: str) -> None:
            async with gate:
                standing = await room.enter(events[0], user_id, now_ms(), "join")
                states[standing.state] += 1

        await asyncio.gather(*(join(u) for u in line))
        return states
    finally:
        await sale.aclose()


def redis_snapshot(client: redis.Redis) -> tuple[dict[str, int], float]:
    """Calls so far by command (INFO's own left out) and the server's CPU seconds so far."""
    stats = client.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info"}
    cpu = client.info("cpu")
    return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def upkeep_window(
    sale_redis_url: str, event_id: str, rounds: int, server: Server, fleet: ClientFleet, cap_s: float
) -> dict:
    """Redis commands and CPU, the server's CPU and the events the clients received, per
    admission tick, over `rounds` rounds of every gateway process's stream upkeep (one each
    heartbeat period: its fan-out line, lease renewal, heartbeats and a batch of corrections),
    from just after one round to just after the last, so that the window holds whole rounds
    (a window of N ticks would hold one round more or less, by chance, than its neighbour).
    An overloaded gateway's rounds come late (each of its awaits waits out a whole fan-out):
    the window then ends after `cap_s` seconds, with fewer rounds."""
    client = redis.Redis.from_url(sale_redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.ROOM_CHANNEL)
    ticks: list[dict] = []

    def listen_until(done, cap_s: float) -> bool:
        """Count the room's ticks until `done()` (True) or for `cap_s` seconds (False)."""
        deadline = time.monotonic() + cap_s
        while not done():
            if time.monotonic() > deadline:
                return False
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                broadcast = orjson.loads(message["data"])
                for tick in broadcast.get("ticks", ()) if broadcast.get("type") == "ticks" else (broadcast,):
                    if tick.get("type") == "tick" and tick.get("event_id") == event_id:
                        ticks.append(tick)
        return True

    def after_rounds(n: int, cap_s: float) -> int:
        """How many rounds began, once `n` have (or `cap_s` seconds have passed)."""
        mark = server.log_size()
        listen_until(lambda: len(server.fanout_lines(mark)) >= n, cap_s)
        settled = time.monotonic() + UPKEEP_SETTLE_S
        listen_until(lambda: time.monotonic() >= settled, 2 * UPKEEP_SETTLE_S)
        return len(server.fanout_lines(mark))

    try:
        after_rounds(server.processes, cap_s)
        ticks.clear()
        calls0, cpu0 = redis_snapshot(client)
        server0, clients0 = server.cpu_s(), fleet.stats()
        started = time.monotonic()
        began = after_rounds(rounds * server.processes, cap_s)
        calls1, cpu1 = redis_snapshot(client)
        server1, clients1 = server.cpu_s(), fleet.stats()
        wall = time.monotonic() - started
    finally:
        pubsub.close()
        client.close()
    if not ticks:
        raise RuntimeError("no admission tick in the window: is the admitter running?")
    n = len(ticks)
    calls = {k: v - calls0.get(k, 0) for k, v in calls1.items() if v > calls0.get(k, 0)}
    per_command = {k: v / n for k, v in calls.items()}
    # Corrections (WaitingRoom.exact_ranks, the only transaction on this Redis while streams
    # idle): MULTI, the room's head, a ZRANK and a ZSCORE per client, EXEC.
    corrections = calls.get("exec", 0)
    correction_commands = corrections * 3 + 2 * calls.get("zrank", 0)
    return {
        "ticks": n,
        "upkeep_rounds": began,  # of all the gateway's processes together
        "correction_rounds": corrections,
        "wall_s": round(wall, 3),
        "admitted": sum(len(t["admitted"]) for t in ticks),
        "waiting": ticks[-1]["waiting"],
        "commands_per_tick": round(sum(per_command.values()), 1),
        "commands_per_tick_besides_corrections": round((sum(calls.values()) - correction_commands) / n, 1),
        "commands_per_correction_round": round(correction_commands / max(1, corrections), 1),
        "top_commands_per_tick": {
            k: round(v, 1) for k, v in sorted(per_command.items(), key=lambda kv: -kv[1])[:12]
        },
        "cpu_ms_per_tick": round((cpu1 - cpu0) * 1000 / n, 3),
        "server_cpu_ms_per_tick": round((server1 - server0) * 1000 / n, 1),
        "received": {k: clients1[k] - clients0[k] for k in ("standing", "admitted", "heartbeats", "bytes")},
        "streams_open": clients1["open"],
        "streams_ended": clients1["ended"],
    }


def fanout_summary(lines: list[dict]) -> dict:
    if not lines:
        return {"fanout_median_ms": None, "fanout_max_ms": None, "fanout_lines": []}
    return {
        "fanout_median_ms": round(statistics.median(line["median_ms"] for line in lines), 1),
        "fanout_max_ms": max(line["max_ms"] for line in lines),
        "fanout_lines": lines,
    }


def open_streams(fleet: ClientFleet, port: int, paths: list[str], concurrency: int, label: str) -> dict:
    say(f"{label}: opening {len(paths)} streams")
    opened = fleet.open(port, paths, concurrency)
    rate = opened["opened"] / max(opened["seconds"], 1e-3)
    say(
        f"{label}: {opened['opened']} opened in {opened['seconds']:.1f} s ({rate:.0f}/s), "
        f"{opened['failed']} failed {opened['errors'] or ''}"
    )
    return opened


class Admission:
    """The admitter worker, ticking once a second; stopped while streams open, since on one
    saturated core the per-tick fan-outs would slow the opening of tens of thousands of streams
    to a crawl (the line then stands still; nothing else changes)."""

    def __init__(self, env: dict, log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.worker: Managed | None = None
        self.starts = 0

    def start(self) -> None:
        if self.worker is None:
            self.starts += 1
            name = f"bench-queue-admitter-{self.starts}"
            self.worker = start_worker(name, self.env, self.log_dir, cpus=LOAD_CORE)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


@dataclasses.dataclass
class Rig:
    """What every streaming phase uses: the clients, the admitter, the room and its Redis."""

    fleet: ClientFleet
    admission: Admission
    sale_redis_url: str
    event_id: str
    ticks: int
    heartbeat_s: float
    open_concurrency: int


def stream_phase(rig: Rig, server: Server, port: int, paths: list[str], rss_before: int, label: str) -> dict:
    """Open `paths` with admission stopped, then measure with ticks and every stream open."""
    rig.admission.stop()
    opening = open_streams(rig.fleet, port, paths, rig.open_concurrency, label)
    rig.admission.start()
    return {"opening": opening, **measure_streams(rig, server, rss_before, label)}


def measure_streams(rig: Rig, server: Server, rss_before: int, label: str) -> dict:
    """With every stream open: memory, Redis per tick, fan-out and events received over about
    `rig.ticks` admission ticks (whole heartbeat periods)."""
    # One fan-out line from each process first: the window sees no tick from while streams opened.
    server.wait_fanout_lines(server.log_size())
    rss_after = server.rss_kib()
    log_from = server.log_size()
    rounds = max(1, round(rig.ticks / rig.heartbeat_s))
    say(f"{label}: measuring over {rounds} stream heartbeat periods (about {rig.ticks} admission ticks)")
    cap_s = max(60.0, 3.0 * rig.ticks)
    window = upkeep_window(rig.sale_redis_url, rig.event_id, rounds, server, rig.fleet, cap_s)
    lines = server.fanout_lines(log_from)
    # An overloaded process times out its upkeep: no lease renewal, no heartbeats, no corrections.
    log_text = server.log_since(log_from)
    upkeep_failures = log_text.count(b"stream heartbeat failed") + log_text.count(
        b"stream corrections failed"
    )
    clients = window["streams_open"]
    result = {
        "clients": clients,
        "server_processes": server.processes,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "memory_per_client_kib": round((rss_after - rss_before) / max(1, clients), 2),
        **window,
        "upkeep_failures": upkeep_failures,
        "server_cpu_us_per_client_per_tick": round(
            window["server_cpu_ms_per_tick"] * 1000 / max(1, clients), 2
        ),
        "events_per_client_per_tick": round(
            window["received"]["standing"] / max(1, clients * window["ticks"]), 3
        ),
        **fanout_summary(lines),
    }
    say(
        f"{label}: {clients} streams: {result['memory_per_client_kib']} KiB per client, "
        f"{window['commands_per_tick']} Redis commands and {window['cpu_ms_per_tick']} ms Redis CPU a tick, "
        f"fan-out median {result['fanout_median_ms']} ms (max {result['fanout_max_ms']} ms), "
        f"{result['events_per_client_per_tick']} events per client per tick, "
        f"server CPU {result['server_cpu_ms_per_tick']} ms a tick"
        + (f"; {upkeep_failures} stream upkeep rounds timed out" if upkeep_failures else "")
    )
    return result


def baseline_window(server: Server, fleet: ClientFleet, rss_before: int, ticks: int) -> dict:
    """The baseline ticks by itself, once a second: the window is its fan-out lines."""
    server.wait_fanout_lines(server.log_size())
    rss_after = server.rss_kib()
    clients0, server0, started = fleet.stats(), server.cpu_s(), time.monotonic()
    log_from = server.log_size()
    lines: list[dict] = []
    while sum(line["ticks"] for line in lines) < ticks:
        lines = server.wait_fanout_lines(log_from, timeout=60 + ticks)
        time.sleep(0.5)
    clients1, server1, wall = fleet.stats(), server.cpu_s(), time.monotonic() - started
    clients = clients1["open"]
    cpu_ms_per_tick = (server1 - server0) * 1000 / wall  # one tick a second
    standing = clients1["standing"] - clients0["standing"]
    if clients0["open"] != clients:
        say(f"baseline: {clients0['open'] - clients} streams ended during the window")
    result = {
        "clients": clients,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "memory_per_client_kib": round((rss_after - rss_before) / max(1, clients), 2),
        "received": {"standing": standing, "bytes": clients1["bytes"] - clients0["bytes"]},
        "events_per_client_per_tick": round(standing / max(1, clients * wall), 3),
        "server_cpu_ms_per_tick": round(cpu_ms_per_tick, 1),
        "server_cpu_us_per_client_per_tick": round(cpu_ms_per_tick * 1000 / max(1, clients), 2),
        **fanout_summary(lines),
    }
    say(
        f"baseline: {clients} streams: {result['memory_per_client_kib']} KiB per client, fan-out median "
        f"{result['fanout_median_ms']} ms (max {result['fanout_max_ms']} ms), "
        f"{result['events_per_client_per_tick']} events per client per tick, "
        f"server CPU {result['server_cpu_ms_per_tick']} ms a tick"
    )
    return result


def measure_joins(
    env: dict, log_dir: Path, port: int, secret: str, sale: dict, args: argparse.Namespace
) -> dict:
    """(d): POST /queue/join from distinct users, wrk on the load core, one gateway process."""
    users = sale["users"][: args.join_users]
    tokens = [
        issue_access_token(
            secret, user_id=u, tenant_id=sale["tenant_id"], email=sale["emails"][i], ttl_s=TICKET_TTL_S
        )
        for i, u in enumerate(users)
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False) as f:
        f.write("\n".join(tokens))
    gateway = None
    try:
        gateway = start_server(
            "bench-queue-gateway-joins",
            [sys.executable, "-m", "gateway"],
            {**env, "BR_GATEWAY_PROCESSES": "1", "BR_GATEWAY_PORT": str(port)},
            port,
            "/readyz",
            1,
            log_dir,
        )
        script_env = {
            "BENCH_TOKENS": f.name,
            "BENCH_BODY": json.dumps({"event_id": sale["joins"]}),
            "BENCH_PATH": "/api/v1/queue/join",
        }
        url = f"http://127.0.0.1:{port}/api/v1/queue/join"
        script = REPO_ROOT / "ops" / "bench_reserve.lua"
        say(f"(d) POST /queue/join from {len(users)} users, {args.duration} s of wrk -c{args.connections}")
        wrk(url, 2, args.connections, script, script_env)  # warm-up: token cache, connections
        with Measured(gateway.managed.proc.pid, SERVER_CORE) as m:
            out = wrk(url, args.duration, args.connections, script, script_env)
    finally:
        os.unlink(f.name)
        if gateway is not None:
            gateway.stop()
    ok = out["statuses"].get(200, 0)
    result = {
        "users": len(users),
        "requests": out["requests"],
        "joins_per_cpu_s": round(out["requests"] / m.cpu, 1),
        "rps": round(out["requests"] / m.wall, 1),
        "gateway_cpu_share": round(m.cpu / m.wall, 3),
        "core_busy": round(m.core_busy, 3),
        "share_200": round(ok / max(1, out["requests"]), 4),
        "statuses": {str(k): v for k, v in sorted(out["statuses"].items())},
    }
    say(
        f"(d) {result['joins_per_cpu_s']} joins per gateway CPU-s ({result['rps']} req/s, "
        f"200s {result['share_200']:.1%})"
    )
    return result


def run(args: argparse.Namespace) -> dict:
    nofile = raise_open_files_limit()
    cfg, log_dir = bench_stack()
    run_id = uuid.uuid4().hex[:8]
    secret = secrets.token_hex(32)
    small = min(args.small_clients, max(1, args.clients // 2))
    users_needed = max(args.clients, args.multi_clients, args.join_users)
    fillers = args.fillers if args.fillers is not None else args.rate * 30  # half an hour's admissions
    fleet_size = math.ceil(max(args.clients, args.multi_clients) / args.per_process)
    result: dict = {
        "run": {
            "clients": args.clients,
            "small_clients": small,
            "multi_clients": args.multi_clients,
            "gateway_processes": args.processes,
            "client_processes": fleet_size,
            "ticks": args.ticks,
            "rate_per_min": args.rate,
            "people_ahead": fillers,
            "heartbeat_s": args.heartbeat,
            "open_files_limit": nofile,
            "trace_ratio": args.trace_ratio,
        }
    }
    with contextlib.ExitStack() as cleanup:
        # The benchmark's own sale Redis: its INFO counts nothing but the waiting room's work.
        folder = Path(tempfile.mkdtemp(prefix="bench-queue-redis-"))
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        redis_port = free_port()
        sale_redis = start_redis(redis_port, folder, "--maxclients", "10000")
        cleanup.callback(stop_redis, redis_port, "nosave")
        subprocess.run(["taskset", "-a", "-p", "-c", LOAD_CORE, str(sale_redis.pid)], capture_output=True)
        sale_cfg = dataclasses.replace(cfg, sale_redis_port=redis_port)
        pin_services(cfg, LOAD_CORE)
        cleanup.callback(pin_services, cfg, f"0-{(os.cpu_count() or 2) - 1}")

        say(f"seeding {users_needed} users and two events; sale Redis on :{redis_port}")
        sale = asyncio.run(seed(cfg, sale_cfg.sale_redis_url, users_needed, run_id))
        streamers = sale["users"][: max(args.clients, args.multi_clients)]
        say(f"{fillers} people ahead, then {len(streamers)} streaming users, join the line")
        started = time.monotonic()
        ahead = [f"ahead-{run_id}-{i}" for i in range(fillers)]
        states = asyncio.run(
            fill_line(sale_cfg.sale_redis_url, [sale["streams"], sale["joins"]], ahead, args.rate)
        )
        states += asyncio.run(fill_line(sale_cfg.sale_redis_url, [sale["streams"]], streamers, args.rate))
        if set(states) != {"waiting"}:
            raise RuntimeError(f"joins did not all wait in line: {dict(states)}")
        say(f"line filled in {time.monotonic() - started:.1f} s")

        env = service_env(
            sale_cfg.service_env(),
            BR_JWT_SECRET=secret,
            BR_RATE_LIMITS=UNREACHABLE_LIMITS,
            BR_RATE_LIMIT_NAMESPACE=f"rl-bench-queue-{run_id}",
            BR_STREAM_HEARTBEAT_SECONDS=str(args.heartbeat),
            **tracing_env(args.trace_ratio, log_dir / f"bench-queue-spans-{run_id}.jsonl", say),
        )
        admission = Admission({**env, "BR_WORKER_ROLES": "admitter", "BR_ADMIT_TICK_SECONDS": "1"}, log_dir)
        cleanup.callback(admission.stop)
        fleet = ClientFleet(fleet_size, log_dir)
        cleanup.callback(fleet.stop)
        rig = Rig(
            fleet,
            admission,
            sale_cfg.sale_redis_url,
            sale["streams"],
            args.ticks,
            args.heartbeat,
            args.open_concurrency,
        )
        now = time.time()
        paths = [
            f"/api/v1/queue/stream?event_id={sale['streams']}&ticket="
            + issue_queue_ticket(secret, u, sale["streams"], TICKET_TTL_S, now)
            for u in streamers
        ]

        # (a) one gateway process
        port = free_port()
        gateway = start_server(
            "bench-queue-gateway-1",
            [sys.executable, "-m", "gateway"],
            {**env, "BR_GATEWAY_PROCESSES": "1", "BR_GATEWAY_PORT": str(port)},
            port,
            "/readyz",
            1,
            log_dir,
        )
        try:
            rss0 = gateway.rss_kib()
            a = {
                key: stream_phase(rig, gateway, port, paths[lo:hi], rss0, f"(a) {hi} streams")
                for key, lo, hi in (("small", 0, small), ("large", small, args.clients))
            }
            fleet.close()
        finally:
            gateway.stop()
        for key in ("commands_per_tick", "commands_per_tick_besides_corrections", "cpu_ms_per_tick"):
            a[f"{key}_ratio_large_over_small"] = round(a["large"][key] / max(a["small"][key], 1e-9), 3)
        result["a_one_process"] = a

        # (b) the bare aiohttp baseline, same clients
        port = free_port()
        baseline = start_server(
            "bench-queue-baseline",
            [
                sys.executable,
                "-m",
                "ops.bench_sse_baseline",
                "--port",
                str(port),
                "--heartbeat",
                str(args.heartbeat),
            ],
            env,
            port,
            "/",
            1,
            log_dir,
        )
        try:
            rss0 = baseline.rss_kib()
            places = [f"/stream?n={fillers + i + 1}" for i in range(args.clients)]
            admission.stop()  # nothing to admit for the baseline, which ticks by itself
            opening = open_streams(fleet, port, places, args.open_concurrency, "(b) baseline")
            b = {"opening": opening, **baseline_window(baseline, fleet, rss0, args.ticks)}
            fleet.close()
        finally:
            baseline.stop()
        ours = a["large"]["fanout_median_ms"]
        b["fanout_ratio_ours_over_baseline"] = (
            round(ours / b["fanout_median_ms"], 3) if ours is not None and b["fanout_median_ms"] else None
        )
        b["server_cpu_ratio_ours_over_baseline"] = round(
            a["large"]["server_cpu_ms_per_tick"] / max(b["server_cpu_ms_per_tick"], 1e-9), 3
        )
        result["b_baseline"] = b

        # (c) several gateway processes on one port
        port = free_port()
        gateway = start_server(
            f"bench-queue-gateway-{args.processes}",
            [sys.executable, "-m", "gateway"],
            {**env, "BR_GATEWAY_PROCESSES": str(args.processes), "BR_GATEWAY_PORT": str(port)},
            port,
            "/readyz",
            args.processes,
            log_dir,
        )
        try:
            rss0 = gateway.rss_kib()
            label = f"(c) {args.multi_clients} streams, {args.processes} processes"
            c = stream_phase(rig, gateway, port, paths[: args.multi_clients], rss0, label)
            fleet.close()
        finally:
            gateway.stop()
        result["c_multi_process"] = c

        # (d) joins
        result["d_joins"] = measure_joins(env, log_dir, free_port(), secret, sale, args)

    result["headline"] = {
        "memory_per_client_kib_small": a["small"]["memory_per_client_kib"],
        "memory_per_client_kib_large": a["large"]["memory_per_client_kib"],
        "memory_per_client_kib_multi": c["memory_per_client_kib"],
        "memory_per_client_kib_baseline": b["memory_per_client_kib"],
        "redis_commands_per_tick_small": a["small"]["commands_per_tick"],
        "redis_commands_per_tick_large": a["large"]["commands_per_tick"],
        "redis_commands_per_tick_multi": c["commands_per_tick"],
        "redis_cpu_ms_per_tick_small": a["small"]["cpu_ms_per_tick"],
        "redis_cpu_ms_per_tick_large": a["large"]["cpu_ms_per_tick"],
        "redis_cpu_ms_per_tick_multi": c["cpu_ms_per_tick"],
        "redis_commands_ratio_large_over_small": a["commands_per_tick_ratio_large_over_small"],
        "redis_commands_besides_corrections_per_tick_small": a["small"][
            "commands_per_tick_besides_corrections"
        ],
        "redis_commands_besides_corrections_per_tick_large": a["large"][
            "commands_per_tick_besides_corrections"
        ],
        "redis_commands_besides_corrections_ratio_large_over_small": a[
            "commands_per_tick_besides_corrections_ratio_large_over_small"
        ],
        "redis_commands_per_correction_round_small": a["small"]["commands_per_correction_round"],
        "redis_commands_per_correction_round_large": a["large"]["commands_per_correction_round"],
        "correction_rounds_per_tick_small": round(a["small"]["correction_rounds"] / a["small"]["ticks"], 3),
        "correction_rounds_per_tick_large": round(a["large"]["correction_rounds"] / a["large"]["ticks"], 3),
        "redis_cpu_ratio_large_over_small": a["cpu_ms_per_tick_ratio_large_over_small"],
        "fanout_median_ms_large": a["large"]["fanout_median_ms"],
        "fanout_median_ms_baseline": b["fanout_median_ms"],
        "fanout_median_ms_multi": c["fanout_median_ms"],
        "fanout_ratio_ours_over_baseline": b["fanout_ratio_ours_over_baseline"],
        "server_cpu_ms_per_tick_large": a["large"]["server_cpu_ms_per_tick"],
        "server_cpu_ms_per_tick_baseline": b["server_cpu_ms_per_tick"],
        "server_cpu_ratio_ours_over_baseline": b["server_cpu_ratio_ours_over_baseline"],
        "events_per_client_per_tick_large": a["large"]["events_per_client_per_tick"],
        "events_per_client_per_tick_multi": c["events_per_client_per_tick"],
        "joins_per_cpu_s": result["d_joins"]["joins_per_cpu_s"],
        "joins_share_200": result["d_joins"]["share_200"],
    }
    result["targets"] = TARGETS
    return result


def summary(r: dict) -> list[str]:
    h, run = r["headline"], r["run"]
    return [
        f"memory per client    {h['memory_per_client_kib_small']} KiB at {run['small_clients']} streams, "
        f"{h['memory_per_client_kib_large']} KiB at {run['clients']} (one process), "
        f"{h['memory_per_client_kib_multi']} KiB at {run['multi_clients']} ({run['gateway_processes']} "
        f"processes); bare aiohttp {h['memory_per_client_kib_baseline']} KiB   target <= 15",
        f"Redis per tick       {h['redis_commands_per_tick_small']} then "
        f"{h['redis_commands_per_tick_large']} commands (x{h['redis_commands_ratio_large_over_small']}), "
        f"{h['redis_cpu_ms_per_tick_small']} then {h['redis_cpu_ms_per_tick_large']} ms CPU "
        f"(x{h['redis_cpu_ratio_large_over_small']})   target flat",
        f"  of which           {h['redis_commands_besides_corrections_per_tick_small']} then "
        f"{h['redis_commands_besides_corrections_per_tick_large']} not corrections "
        f"(x{h['redis_commands_besides_corrections_ratio_large_over_small']}); correction rounds of "
        f"{h['redis_commands_per_correction_round_small']} then "
        f"{h['redis_commands_per_correction_round_large']} commands, "
        f"{h['correction_rounds_per_tick_small']} then {h['correction_rounds_per_tick_large']} a tick",
        f"tick fan-out median  {h['fanout_median_ms_large']} ms, "
        f"bare aiohttp {h['fanout_median_ms_baseline']} ms: x{h['fanout_ratio_ours_over_baseline']}"
        f"   target <= 1.5; {h['fanout_median_ms_multi']} ms "
        f"with {run['multi_clients']} over {run['gateway_processes']} processes",
        f"server CPU per tick  {h['server_cpu_ms_per_tick_large']} ms, "
        f"bare aiohttp {h['server_cpu_ms_per_tick_baseline']} ms: "
        f"x{h['server_cpu_ratio_ours_over_baseline']}",
        f"joins                {h['joins_per_cpu_s']} per gateway CPU-s, 200s {h['joins_share_200']:.1%}"
        "   target >= 5000",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=18_000, help="streams on one gateway process")
    parser.add_argument(
        "--small-clients", type=int, default=5_000, help="the first measurement on one process"
    )
    parser.add_argument(
        "--multi-clients", type=int, default=45_000, help="streams over --processes processes"
    )
    parser.add_argument("--processes", type=int, default=3, help="gateway processes for --multi-clients")
    parser.add_argument("--per-process", type=int, default=9_000, help="streams per client process, at most")
    parser.add_argument(
        "--ticks",
        type=int,
        default=20,
        help="measurement window in admission ticks (whole heartbeat periods)",
    )
    parser.add_argument("--rate", type=int, default=600, help="the room's admissions per minute")
    parser.add_argument(
        "--fillers", type=int, default=None, help="people ahead of the streamers (default 30 min)"
    )
    parser.add_argument(
        "--heartbeat", type=float, default=5.0, help="stream heartbeat (fan-out log) period, s"
    )
    parser.add_argument("--open-concurrency", type=int, default=128, help="streams opening at once, in all")
    parser.add_argument("--join-users", type=int, default=45_000, help="distinct users in (d)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk in (d)")
    parser.add_argument("--connections", type=int, default=256, help="wrk connections in (d)")
    parser.add_argument(
        "--trace-ratio", type=float, default=None, help="trace the gateways and the admitter at this ratio"
    )
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        print("[bench-queue] needs at least 2 cores (server on one, load on the other)", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so every process started here is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    r = run(args)
    print()
    for line in summary(r):
        print(f"  {line}")
    print(json.dumps(r))
    starved = [
        name
        for name, phase in (
            ("a small", r["a_one_process"]["small"]),
            ("a large", r["a_one_process"]["large"]),
            ("b baseline", r["b_baseline"]),
            ("c multi", r["c_multi_process"]),
        )
        if phase["received"]["standing"] == 0
    ]
    if starved:
        print(f"[bench-queue] FAILED: no position updates reached the clients in {starved}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
