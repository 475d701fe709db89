"""What tracing costs the gateway, each variant measured against tracing off in the same run.

Usage: python -m ops.bench_tracing [--ratios 0,0.1,1] [--rounds 3] [--duration 6] [--connections 256]

POST /api/v1/bookings/reserve through the whole path (gateway -> Kafka -> two command workers ->
Lua -> Kafka event -> reply) under wrk, with a fresh gateway process for each variant: tracing
off, then each of --ratios (spans exported to a file, so the exporter's own work counts; 0: the
tracing machinery on, nothing sampled). The variants take turns, --rounds times, so the
machine's drift (these shared cores move 20-30 % between runs) falls on all of them alike. Per
variant: the median requests per gateway CPU-second and its ratio to tracing off, and p50/p99 at
one fixed offered rate (70 % of tracing off's measured maximum, hey -q). Only the gateway's CPU
is measured (pinned to core 0; workers, Redis, Kafka and the load generators on core 1); the
workers do not trace. It prints a table, and last one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import uuid

from ops import stack
from ops.bench import (
    BENCH_PASSWORD,
    LOAD_CORE,
    SERVER_CORE,
    Measured,
    bench_stack,
    forget,
    hey_fixed_rate,
    pin_services,
    reserve_body,
    reserve_path_env,
    seed_bench_event,
    tracing_env,
    wrk,
)
from ops.config import REPO_ROOT
from ops.demo import log_in
from ops.processes import start_gateway, start_worker


def say(msg: str) -> None:
    print(f"[bench-tracing] {msg}", flush=True)


def label(ratio: float | None) -> str:
    return "off" if ratio is None else f"{ratio:.0%}"


def run(args: argparse.Namespace) -> dict:
    cfg, log_dir = bench_stack()
    prefix = f"bench-tracing-{uuid.uuid4().hex[:8]}."
    asyncio.run(stack.ensure_topics(cfg, prefix))
    env = reserve_path_env(cfg, prefix, secrets.token_hex(32))
    variants: list[float | None] = [None, *args.ratios]
    rates: dict[str, list[float]] = {label(v): [] for v in variants}
    latency: dict[str, list[dict]] = {label(v): [] for v in variants}
    pin_services(cfg, LOAD_CORE)
    workers = []
    sale = asyncio.run(seed_bench_event(cfg, args.users))
    tokens_file = None
    try:
        workers = [
            start_worker(
                f"bench-tracing-worker-{i}", {**env, "BR_WORKER_ROLES": "commands"}, log_dir, LOAD_CORE
            )
            for i in range(2)
        ]
        body = reserve_body(sale)
        url = f"http://127.0.0.1:{args.port}/api/v1/bookings/reserve"
        script = REPO_ROOT / "ops" / "bench_reserve.lua"
        fixed_rate = None
        for round_no in range(1, args.rounds + 1):
            for ratio in variants:
                name = label(ratio)
                spans = log_dir / f"bench-tracing-spans-{prefix}{round_no}-{name.strip('%')}.jsonl"
                gateway = start_gateway(
                    {**env, **tracing_env(ratio, spans, lambda _: None)}, log_dir, args.port, cpus=SERVER_CORE
                )
                try:
                    if tokens_file is None:  # the users log in once, through the first gateway
                        tokens = asyncio.run(
                            log_in(
                                f"http://127.0.0.1:{args.port}", "bench", sale["emails"], BENCH_PASSWORD, 64
                            )
                        )
                        with tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False) as f:
                            f.write("\n".join(tokens))
                        tokens_file = f.name
                    script_env = {"BENCH_TOKENS": tokens_file, "BENCH_BODY": body}
                    wrk(url, 2, args.connections, script, script_env)  # warm-up: token cache, connections
                    with Measured(gateway.proc.pid, SERVER_CORE) as m:
                        out = wrk(url, args.duration, args.connections, script, script_env)
                    created = out["statuses"].get(201, 0) / max(1, out["requests"])
                    rate = out["requests"] / m.cpu
                    rates[name].append(rate)
                    if fixed_rate is None:  # set by tracing off's first round, then the same for all
                        fixed_rate = 0.7 * out["requests"] / m.wall
                    lat = hey_fixed_rate(url, tokens[0], body, fixed_rate, args.duration)
                    latency[name].append(lat)
                    say(
                        f"round {round_no}, tracing {name:>4}: {rate:8.1f} req per gateway CPU-s "
                        f"({created:.1%} 201s); at {fixed_rate:.0f} req/s p50 {lat['p50_ms']} ms, "
                        f"p99 {lat['p99_ms']} ms"
                    )
                finally:
                    gateway.stop()
    finally:
        for w in workers:
            w.stop()
        if tokens_file:
            os.unlink(tokens_file)
        asyncio.run(stack.delete_topics(cfg, prefix))
        pin_services(cfg, f"0-{(os.cpu_count() or 2) - 1}")
        removed = asyncio.run(forget(cfg, sale["event_id"]))
        say(f"removed the benchmark event's {removed} keys from the sale Redis")

    off = statistics.median(rates["off"])
    result: dict = {
        "rounds": args.rounds,
        "duration_s": args.duration,
        "fixed_rate_rps": round(fixed_rate, 1),
    }
    for name in rates:
        median = statistics.median(rates[name])
        result[name] = {
            "reserve_per_cpu_s": round(median, 1),
            "ratio_to_off": round(median / off, 3),
            "rounds_per_cpu_s": [round(r, 1) for r in rates[name]],
            "p50_ms": statistics.median(lat["p50_ms"] for lat in latency[name]),
            "p99_ms": statistics.median(lat["p99_ms"] for lat in latency[name]),
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ratios",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[0.0, 0.1, 1.0],
        help="sampling ratios to compare with tracing off",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6, help="seconds of each wrk and hey run")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--port", type=int, default=18094)
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        print("[bench-tracing] needs at least 2 cores (server on one, load on the other)", file=sys.stderr)
        return 2
    r = run(args)
    print()
    print(f"  {'tracing':>8}  {'reserve/CPU-s':>13}  {'vs off':>6}  {'p50 ms':>7}  {'p99 ms':>7}")
    for name, v in r.items():
        if isinstance(v, dict):
            print(
                f"  {name:>8}  {v['reserve_per_cpu_s']:>13}  {v['ratio_to_off']:>6}  "
                f"{v['p50_ms']:>7}  {v['p99_ms']:>7}"
            )
    print(f"  (medians of {r['rounds']} rounds; latency at a fixed {r['fixed_rate_rps']} req/s)")
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
