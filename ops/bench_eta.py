"""The wait people in line are told, against the wait they then have: issue 19's fixed scenario.

Usage: python -m ops.bench_eta [--scale 1.0] [--seed 19] [--tree PATH]

The scenario is fixed so the figure means the same to everyone: a room admitting 1,200 people a
minute (max_active high enough that only the rate binds); 3,000 people join in the first 5 s and
1,000 more over the next 2 minutes; half poll as the answers ask (refresh_after_seconds), half
hold the live stream; 10 % of them, drawn at random, leave the line 5–60 s after joining (stop
polling, close the stream); at minute 2 an operator halves the rate (PUT
/api/v1/admin/events/{id}/room). `--scale` shrinks the crowd and the times alike for a quick look.

What runs: `python -m gateway` (its default processes) and a `python -m workers` with the
admitter alone, against the stack; the people are asyncio clients in this process. `--tree`
runs another checkout's gateway and admitter (a worktree of an older commit) for a before/after
figure; a gateway from before ranges is judged on its single eta_seconds.

For every wait a person is shown (the join's answer, each poll's, each stream event's) the error
is |shown − actual| / max(actual, 30 s), 0 when the actual wait falls inside the range shown
(ops/eta_error.py); actual runs to their admission, read from their pass (its expiry less its
lifetime). Reported: median and p90 per phase — opening (waits shown in the first 60 s), steady
(60 s to the rate change), after the change — against the targets (median <= 20 %, p90 <= 50 %),
and how many answers in line said no wait while the room was neither paused nor unopened. The
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

import aiohttp

from gateway.auth import issue_access_token
from ops import eta_error
from ops.bench import bench_stack, forget, seed_bench_event
from ops.bench_queue import raise_open_files_limit
from ops.bench_rates import drop_from_postgres, mint_tokens
from ops.config import REPO_ROOT
from ops.processes import free_port, service_env, start_gateway, start_worker
from ops.roomctl import Gateway
from ops.sse import sse_events

RATE_PER_MIN = 1200
FIRST_WAVE, FIRST_WAVE_S = 3000, 5.0
SECOND_WAVE, SECOND_WAVE_S = 1000, 120.0
CHANGE_AT_S = 120.0
LEAVING, LEAVE_AFTER_S = 0.10, (5.0, 60.0)
PASS_TTL_S = 300
TARGET_MEDIAN, TARGET_P90 = 0.20, 0.50


def say(msg: str) -> None:
    print(f"[bench-eta] {msg}", flush=True)


class Crowd:
    """The people, their schedule, and what each was shown."""

    def __init__(self, base: str, event_id: str, tokens: list[str], scale: float, seed: int) -> None:
        self.base, self.event_id = base, event_id
        rng = random.Random(seed)
        first, second = round(FIRST_WAVE * scale), round(SECOND_WAVE * scale)
        self.plan = []  # (token, join at s, leaves at s or None, streams?)
        for i, token in enumerate(tokens[: first + second]):
            joins = (
                rng.uniform(0, FIRST_WAVE_S)
                if i < first
                else FIRST_WAVE_S + rng.uniform(0, SECOND_WAVE_S * scale)
            )
            leaves = joins + rng.uniform(*LEAVE_AFTER_S) if rng.random() < LEAVING else None
            self.plan.append((token, joins, leaves, i % 2 == 0))
        self.people = [eta_error.Person() for _ in self.plan]
        self.t0 = 0.0

    def now_s(self) -> float:
        return time.time() - self.t0

    def saw(self, person: eta_error.Person, standing: dict) -> bool:
        """Record one answer; True once the person is let in (or the line is over for them)."""
        return eta_error.record(person, standing, self.now_s(), self.t0, PASS_TTL_S)

    async def person(self, session: aiohttp.ClientSession, i: int) -> None:
        token, joins_s, leaves_s, streams = self.plan[i]
        person = self.people[i]
        await asyncio.sleep(max(0.0, joins_s - self.now_s()))  # the scenario's schedule
        auth = {"Authorization": f"Bearer {token}"}
        try:
            async with asyncio.timeout(None if leaves_s is None else leaves_s - self.now_s()):
                async with session.post(
                    f"{self.base}/api/v1/queue/join", json={"event_id": self.event_id}, headers=auth
                ) as r:
                    joined = (await r.json())["data"]
                if self.saw(person, joined):
                    return
                if streams:
                    await self._stream(session, person, joined["queue_ticket"])
                else:
                    await self._poll(session, person, auth, joined["refresh_after_seconds"])
        except TimeoutError:
            person.left = person.admitted_at_s is None

    async def _poll(self, session, person, auth: dict, after_s: int | None) -> None:
        while True:
            await asyncio.sleep(after_s or 2)  # as the answer asks
            async with session.get(
                f"{self.base}/api/v1/queue/status", params={"event_id": self.event_id}, headers=auth
            ) as r:
                if r.status in (429, 503):
                    after_s = int(r.headers.get("Retry-After", "1"))
                    continue
                standing = (await r.json())["data"]
            if self.saw(person, standing):
                return
            after_s = standing["refresh_after_seconds"]

    async def _stream(self, session, person, ticket: str) -> None:
        while True:  # a stream that drops is opened again with the freshest ticket
            params = {"event_id": self.event_id, "ticket": ticket}
            async with session.get(f"{self.base}/api/v1/queue/stream", params=params) as r:
                async for kind, data in sse_events(r.content):
                    if kind == "ticket":
                        ticket = data["ticket"]
                    elif kind in ("standing", "admitted") and self.saw(person, data):
                        return


async def change_room(base: str, event_id: str, admin_token: str, changes: dict) -> None:
    """An operator's change of the room, through the admin API (as ops.roomctl makes it)."""
    async with aiohttp.ClientSession() as session:
        gateway = Gateway(session, base, admin_token)
        await gateway.call("PUT", gateway.room(event_id), changes)


async def sale(crowd: Crowd, admin_token: str, scale: float) -> None:
    connector = aiohttp.TCPConnector(limit=0)  # streams stay open: no pool limit
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        crowd.t0 = time.time()
        people = [asyncio.create_task(crowd.person(session, i)) for i in range(len(crowd.plan))]

        async def operator() -> None:
            await asyncio.sleep(CHANGE_AT_S * scale)  # the scenario's schedule
            await change_room(crowd.base, crowd.event_id, admin_token, {"rate_per_min": RATE_PER_MIN // 2})
            say(f"  {crowd.now_s():5.0f} s: the operator halves the rate to {RATE_PER_MIN // 2} a minute")

        changing = asyncio.create_task(operator())
        while not all(p.done() for p in people):
            await asyncio.wait(people, timeout=10)  # progress, every 10 s
            done = sum(1 for p in crowd.people if p.admitted_at_s is not None)
            say(f"  {crowd.now_s():5.0f} s: {done} let in, {sum(1 for p in crowd.people if p.left)} left")
        await changing
        for p in people:
            p.result()  # a person's error is the benchmark's


def report(result: dict) -> None:
    print()
    print(f"  {result['people']} people, {result['left']} left the line, {result['let_in']} let in")
    print("  phase            waits shown   median error   p90 error   (targets: 20 %, 50 %)")
    for phase, figures in result["phases"].items():
        median, p90 = figures["median"], figures["p90"]
        print(
            f"  {phase:<16} {figures['shown']:>11}   {'-' if median is None else f'{median:.1%}':>12}"
            f"   {'-' if p90 is None else f'{p90:.1%}':>9}"
        )
    print(f"  answers in line that said no wait: {result['unanswered']}")


def run(args: argparse.Namespace) -> dict:
    cfg, log_dir = bench_stack()
    raise_open_files_limit()  # thousands of streams and polls; the gateway inherits it
    secret = os.urandom(32).hex()
    people = round((FIRST_WAVE + SECOND_WAVE) * args.scale)
    say(f"seeding {people} people and an event")
    sale_info = asyncio.run(seed_bench_event(cfg, people))
    event_id = sale_info["event_id"]
    env = service_env(cfg.service_env(), BR_JWT_SECRET=secret, BR_WORKER_ROLES="admitter")
    port = free_port()
    procs = []
    try:
        procs.append(start_worker("bench-eta-admitter", env, log_dir, cwd=args.tree))
        procs.append(start_gateway(env, log_dir, port, cwd=args.tree))
        base = f"http://127.0.0.1:{port}"
        admin = issue_access_token(
            secret, user_id=sale_info["buyers"][0], role="admin", tenant_id=sale_info["tenant_id"]
        )
        # The room engaged at the scenario's rate, with no limit but the rate.
        room = {"mode": "always", "rate_per_min": RATE_PER_MIN, "max_active": 10**6, "pass_ttl_s": PASS_TTL_S}
        asyncio.run(change_room(base, event_id, admin, room))
        crowd = Crowd(
            base, event_id, mint_tokens(secret, sale_info, sale_info["tenant_id"]), args.scale, args.seed
        )
        say(f"the sale: {len(crowd.plan)} people, the rate halved at {CHANGE_AT_S * args.scale:.0f} s")
        asyncio.run(sale(crowd, admin, args.scale))
    finally:
        for p in reversed(procs):
            p.stop()
        asyncio.run(forget(cfg, event_id))
        asyncio.run(drop_from_postgres(cfg, event_id))
    opening, change = 60.0 * args.scale, CHANGE_AT_S * args.scale
    phases = {"opening": (0.0, opening), "steady": (opening, change), "after the change": (change, 1e9)}
    result = {
        "people": len(crowd.people),
        "left": sum(1 for p in crowd.people if p.left),
        "let_in": sum(1 for p in crowd.people if p.admitted_at_s is not None),
        "phases": eta_error.by_phase(crowd.people, phases),
        "unanswered": sum(p.unanswered for p in crowd.people),
        "targets": {"median": TARGET_MEDIAN, "p90": TARGET_P90},
        "scale": args.scale,
        "tree": str(args.tree),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="the crowd and its times, scaled")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument(
        "--tree", type=Path, default=REPO_ROOT, help="the checkout whose gateway and admitter run"
    )
    result = run(parser.parse_args(argv))
    report(result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
