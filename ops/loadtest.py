"""Run the flash-sale crowd (ops/locustfile.py) headless against a running gateway; summarise it.

Usage: python -m ops.loadtest [--users 200] [--spawn-rate 50] [--run-time 60s] [--host URL]
       [--event ID_OR_TITLE] [--seed [--seats-per-show N] [--room-rate N]] [--processes N] ...

Needs a gateway with its workers (command, sweeper, persistence, admitter) and a payment worker,
such as `ops/demo.sh --serve` leaves running on :8080; with --seed it first seeds a fresh event
(ops/seed.py, with buyers enough for the crowd) and, with --room-rate, puts it behind a waiting
room admitting that many a minute. Everything lands in --out (default .state/loadtest/<time>/):
locust.json (locust's statistics once every user stopped: what the summary reads),
locust_*.csv (rewritten every second while it runs), locust.log, and funnel.json (the
locustfile's own counts). Progress every 5 s; at the end requests, failures and p50/p95/p99
per request name, the booking funnel and the waits the buyers saw; the last line is one JSON
object. Exit status 0 only when no request failed unexpectedly (expected refusals such as 409
sold out or 429 are successes under their own names: see ops/locustfile.py), 1 otherwise, 2
when no gateway answers.

Every buyer signs in from this machine's address: the gateway must allow that many logins (the
demo lifts the login limits; otherwise start it with
BR_RATE_LIMITS=login=100000/10000,login_address=100000/10000: the whole crowd is one address).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from ops.config import REPO_ROOT, StackConfig

LOCUSTFILE = REPO_ROOT / "ops" / "locustfile.py"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
FUNNEL_SHOWN = ("signed in", "admitted", "reserved", "paid", "declined", "abandoned", "sold out")
WAIT_KINDS = ("queue", "reserve", "payment", "journey")


def say(msg: str) -> None:
    print(f"[loadtest] {msg}", flush=True)


def seconds(timespan: str) -> int:
    """locust's --run-time: 90, 90s, 1m30s, 1h."""
    if timespan.isdigit():
        return int(timespan)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", timespan)
    if not parts or not any(parts.groups()):
        raise argparse.ArgumentTypeError(f"not a time span: {timespan!r} (like 60s, 2m, 1h30m)")
    h, m, s = (int(g or 0) for g in parts.groups())
    return h * 3600 + m * 60 + s


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=f"http://127.0.0.1:{os.environ.get('BR_GATEWAY_PORT', '8080')}")
    p.add_argument("--users", type=int, default=200, help="concurrent buyers (locust users)")
    p.add_argument("--spawn-rate", type=float, default=50, help="users started per second")
    p.add_argument("--run-time", default="60s", help="like 60s, 2m")
    p.add_argument("--processes", type=int, default=1, help="locust worker processes (one per core helps)")
    p.add_argument(
        "--event", help="event id, or part of a title (default: the tenant's newest with seats left)"
    )
    p.add_argument("--tenant", help="the buyers' organisation (default demo-live)")
    p.add_argument(
        "--email", help="buyer email pattern, with {} for the number (default buyer{:06d}@demo.test)"
    )
    p.add_argument("--password", help="the buyers' password (default the demo's)")
    p.add_argument("--buyers", type=int, help="how many seeded buyers to use (default 100; --seed: enough)")
    p.add_argument("--think-min", type=float, help="seconds (default 1)")
    p.add_argument("--think-max", type=float, help="seconds (default 5)")
    p.add_argument("--pay-share", type=float, help="of buyers with a booking, who pay (default 0.8)")
    p.add_argument("--decline-share", type=float, help="of payers, whose card is declined (default 0.1)")
    p.add_argument("--cancel-share", type=float, help="of abandoners, who cancel (default 0.5)")
    p.add_argument("--sse-share", type=float, help="of buyers in line, who follow the stream (default 0.5)")
    p.add_argument("--seed", action="store_true", help="seed a fresh event (and buyers) first")
    p.add_argument("--seats-per-show", type=int, default=1000, help="--seed: seats per show (2 shows)")
    p.add_argument("--room-rate", type=int, default=0, help="--seed: a waiting room admitting N a minute")
    p.add_argument("--out", type=Path, help="folder for locust's CSV files, log and the funnel")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    args.run_seconds = seconds(args.run_time)
    return args


def load_env(args: argparse.Namespace, report: Path) -> dict[str, str]:
    """The locustfile's settings (LOAD_*): those given here over those in the environment."""
    env = {**os.environ, "LOAD_REPORT": str(report), "LOAD_PROCESSES": str(max(1, args.processes))}
    if args.event:
        env["LOAD_EVENT_ID" if UUID.match(args.event) else "LOAD_EVENT_TITLE"] = args.event
    given = {
        "LOAD_TENANT": args.tenant,
        "LOAD_EMAIL": args.email,
        "LOAD_PASSWORD": args.password,
        "LOAD_BUYERS": args.buyers,
        "LOAD_THINK_MIN": args.think_min,
        "LOAD_THINK_MAX": args.think_max,
        "LOAD_PAY_SHARE": args.pay_share,
        "LOAD_DECLINE_SHARE": args.decline_share,
        "LOAD_CANCEL_SHARE": args.cancel_share,
        "LOAD_SSE_SHARE": args.sse_share,
    }
    env.update({k: str(v) for k, v in given.items() if v is not None})
    return env


def ready(host: str) -> str | None:
    """None when the gateway says it is ready, else why not."""
    try:
        with urllib.request.urlopen(f"{host}/readyz", timeout=5) as r:
            return None if r.status == 200 else f"/readyz answered {r.status}"
    except OSError as exc:
        return str(exc)


async def seed_event(args: argparse.Namespace) -> dict:
    """A fresh demo-tenant event with `args.buyers` buyers, behind a room when --room-rate."""
    import redis.asyncio as aioredis

    from lua import load_scripts
    from ops.seed import seed
    from waiting_room.room import WaitingRoom

    cfg = StackConfig.from_env()
    title = f"Load test {datetime.now():%Y-%m-%d %H:%M:%S}"
    seeded = await seed(cfg, args.buyers, args.seats_per_show, title)
    if args.room_rate:
        redis = aioredis.from_url(cfg.sale_redis_url)
        try:
            room = WaitingRoom(redis, await load_scripts(redis))
            await room.configure(seeded["event_id"], {"mode": "always", "rate_per_min": args.room_rate})
        finally:
            await redis.aclose()
    return seeded


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def funnel_line(funnel: dict) -> str:
    return ", ".join(f"{k} {funnel.get(k, 0)}" for k in FUNNEL_SHOWN)


class Progress:
    """A line every few seconds from the locustfile's report: users, rates, the funnel so far."""

    def __init__(self, report: Path) -> None:
        self.report = report
        self.started = time.monotonic()
        self.last = (self.started, 0)

    def show(self) -> None:
        now = time.monotonic()
        counted = read_json(self.report)
        requests = counted.get("requests", 0)
        rate = (requests - self.last[1]) / max(now - self.last[0], 1e-3)
        self.last = (now, requests)
        say(
            f"{now - self.started:5.0f}s  users {counted.get('users', 0)}  req/s {rate:.1f}  "
            f"failures {counted.get('failures', 0)} | {funnel_line(counted.get('funnel', {}))}"
        )


def run_locust(args: argparse.Namespace, out: Path, env: dict[str, str]) -> tuple[int, Path]:
    """Locust, headless, until its run time is over; (exit status, prefix of its files)."""
    prefix = out / "locust"
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--host", args.host, "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
        "--run-time", args.run_time, "--only-summary", "--logfile", str(out / "locust.log"),
        "--csv", str(prefix), "--json-file", str(prefix),
    ]  # fmt: skip
    if args.processes > 1:
        command += ["--processes", str(args.processes)]
    shown = Progress(Path(env["LOAD_REPORT"]))
    give_up = time.monotonic() + args.run_seconds + 90
    with open(out / "locust.out", "wb") as output:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    if not args.quiet:
                        shown.show()
                    if time.monotonic() > give_up:
                        say("locust did not stop after its run time: stopping it")
                        proc.terminate()
                        proc.wait(30)
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait(30)
            raise
    return proc.returncode, prefix


def percentile(histogram: dict[int, int], q: float) -> int:
    """Locust's way: response times are kept rounded, as a histogram (ms -> requests)."""
    total = sum(histogram.values())
    if not total:
        return 0
    wanted, seen = int(total * q), 0
    for ms in sorted(histogram, reverse=True):
        seen += histogram[ms]
        if total - seen <= wanted:
            return ms
    return 0


def entry(requests: int, failures: int, histogram: dict[int, int], seconds: float) -> dict:
    return {
        "requests": requests,
        "failures": failures,
        "rps": round(requests / seconds, 1) if seconds > 0 else 0.0,
        **{f"p{int(q * 100)}_ms": percentile(histogram, q) for q in (0.5, 0.95, 0.99)},
    }


def summarise(args: argparse.Namespace, prefix: Path, report: Path, rc: int) -> dict:
    """Locust's final statistics (its JSON file: written once every user has stopped) and the
    locustfile's own counts."""
    stats = read_json(Path(f"{prefix}.json")) or []
    counted = read_json(report)
    by_name, total = {}, Counter()
    first = min((e["start_time"] for e in stats), default=0)
    last = max((e["last_request_timestamp"] or 0 for e in stats), default=0)
    for e in sorted(stats, key=lambda e: (e["name"], e["method"])):
        histogram = {int(ms): n for ms, n in e["response_times"].items()}
        total.update(histogram)
        span = (e["last_request_timestamp"] or 0) - e["start_time"]
        by_name[f"{e['method']} {e['name']}"] = entry(e["num_requests"], e["num_failures"], histogram, span)
    requests = sum(e["num_requests"] for e in stats)
    failures = sum(e["num_failures"] for e in stats)
    exceptions = sum(counted.get("exceptions", {}).values())
    return {
        "host": args.host,
        "users": args.users,
        "run_time_s": args.run_seconds,
        "event": counted.get("event", {}),
        **entry(requests, failures, dict(total), last - first),
        "exceptions": exceptions,
        "by_name": by_name,
        "failure_kinds": counted.get("failure_kinds", {}),
        "exception_kinds": counted.get("exceptions", {}),
        "funnel": counted.get("funnel", {}),
        "waits_s": counted.get("waits", {}),
        "locust_exit": rc,
        "files": str(prefix),
        "ok": rc == 0 and failures == 0 and exceptions == 0 and requests > 0 and bool(counted.get("event")),
    }


def print_summary(s: dict) -> None:
    print()
    event = s["event"]
    if event:
        seats = event["seats_when_found"]
        print(f"  event      {event['title']!r} ({event['id']}), {seats} seats left at the start")
    share = 100 * s["failures"] / s["requests"] if s["requests"] else 0
    print(
        f"  requests   {s['requests']} in {s['run_time_s']} s ({s['rps']}/s) from {s['users']} users; "
        f"failures {s['failures']} ({share:.2f} %); errors in the locustfile {s['exceptions']}"
    )
    width = max([len(n) for n in s["by_name"]] + [20])

    def row(name: str, *cells) -> None:
        print(f"  {name:<{width}}" + "".join(f"{c:>8}" for c in cells))

    row("request", "reqs", "fails", "p50 ms", "p95 ms", "p99 ms")
    for name, r in [*s["by_name"].items(), ("all", s)]:
        row(name, r["requests"], r["failures"], r["p50_ms"], r["p95_ms"], r["p99_ms"])
    print('  (a name ending "[status CODE]" is an expected refusal, counted as a success)')
    funnel = s["funnel"]
    print(f"  funnel     journeys {funnel.get('journeys', 0)}: {funnel_line(funnel)}")
    others = {k: v for k, v in funnel.items() if k not in FUNNEL_SHOWN and k != "journeys"}
    if others:
        print(f"             also: {', '.join(f'{k} {v}' for k, v in others.items())}")
    for kind in WAIT_KINDS:
        w = s["waits_s"].get(kind)
        if w:
            spread = ", ".join(f"{q} {w[q]:.2f} s" for q in ("p50", "p95", "p99"))
            print(f"  wait       {kind:<8} {spread} ({w['count']})")
    for kind, n in [*s["failure_kinds"].items(), *s["exception_kinds"].items()]:
        print(f"  failed     {n}x {kind}")
    print(f"  files      {s['files']}.json, {s['files']}_*.csv, locust.log")
    if not event:
        print("  event      none found: see locust.log (LOAD_EVENT_ID / --event, or --seed)")
    print(f"  verdict    {'OK: no request failed unexpectedly' if s['ok'] else 'FAILED'}")
    print(json.dumps(s))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = ready(args.host)
    if problem:
        say(f"the gateway at {args.host} is not ready ({problem})")
        say("start one with its workers, e.g. `ops/demo.sh --serve` (gateway on :8080), then run again")
        return 2
    out = args.out or StackConfig.from_env().state_dir / "loadtest" / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    report = out / "funnel.json"
    report.unlink(missing_ok=True)
    if args.seed:
        args.buyers = args.buyers or max(1000, 10 * args.users)
        say(f"seeding an event of 2 shows x {args.seats_per_show} seats and {args.buyers} buyers")
        seeded = asyncio.run(seed_event(args))
        args.event = seeded["event_id"]
        room = f", behind a room admitting {args.room_rate}/min" if args.room_rate else ""
        say(f"  event {args.event}{room}")
    env = load_env(args, report)
    say(
        f"{args.users} users (spawn {args.spawn_rate}/s) for {args.run_time} against {args.host}; "
        f"output in {out}"
    )
    rc, prefix = run_locust(args, out, env)
    summary = summarise(args, prefix, report, rc)
    if not summary["requests"]:
        say(f"locust made no request (exit {rc}); its output:")
        print((out / "locust.out").read_text(errors="replace")[-3000:])
    print_summary(summary)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
