"""The demo's second act: the same buyers rush a second sale, this time behind the waiting room.

Every buyer joins at once (POST /api/v1/queue/join); half follow their place over the live
stream (SSE), half poll as the answers suggest; the admitters let them in at the operator's rate;
each admitted buyer reserves with their X-Queue-Pass (trying another zone when one runs out) until
the room closes as sold out and tells everyone still waiting. Afterwards the admissions are
audited against the tickets (nobody overtaken by a later ticket) and against what the buyers
were told (every admission reached its buyer).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import time
from collections import Counter

import aiohttp
import redis.asyncio as aioredis

from booking_rush.contract.messages import now_ms
from lua import keys
from ops import eta_error
from ops.sse import sse_events
from waiting_room.room import WaitingRoom


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


async def _follow_stream(session, base: str, event_id: str, ticket: str, seen) -> dict:
    """Read the live stream until it ends; the last standing or the admission. `seen` is told
    every standing."""
    params = {"event_id": event_id, "ticket": ticket}
    last: dict = {}
    async with session.get(f"{base}/api/v1/queue/stream", params=params) as r:
        if r.status != 200:
            return {"state": f"stream-{r.status}"}
        async for kind, data in sse_events(r.content):
            last = {**data, "via": kind}
            if kind in ("standing", "admitted"):
                seen(last)
    return last


async def _poll(session, base: str, event_id: str, auth: dict, seen) -> dict:
    """Ask where I stand as often as the answer suggests, until admitted or told it is over."""
    while True:
        async with session.get(
            f"{base}/api/v1/queue/status", params={"event_id": event_id}, headers=auth
        ) as r:
            body = await r.json()
        if r.status in (429, 503):  # the limiter's pacing; a store busy for a moment
            await asyncio.sleep(int(r.headers.get("Retry-After", "1")))
            continue
        if r.status != 200:
            raise RuntimeError(f"queue status answered {r.status}: {body}")
        standing = body["data"]
        seen(standing)
        if standing["state"] not in ("waiting", "prequeue"):
            return standing
        # The server's hint, capped for the demo's pace (a real browser takes the hint as is).
        await asyncio.sleep(min(2, standing["refresh_after_seconds"] or 2))


async def _reserve(
    session, base: str, event_id: str, targets: list, auth: dict, queue_pass: str, rng
) -> tuple:
    """One buyer's booking with the pass: a zone of their choice, others when it has run out, and
    one seat instead of two when two are nowhere to be had."""
    wanted = rng.randint(1, 2)
    headers = {**auth, "X-Queue-Pass": queue_pass}
    status, answer = None, {}
    for quantity in sorted({wanted, 1}, reverse=True):
        for show, zone in rng.sample(targets, len(targets)):
            body = {"event_id": event_id, "show_id": show, "zone_id": zone, "quantity": quantity}
            async with session.post(f"{base}/api/v1/bookings/reserve", json=body, headers=headers) as r:
                status, answer = r.status, await r.json()
            if status == 202:
                poll = f"{base}{answer['data']['poll']}"
                while status == 202:
                    await asyncio.sleep(0.25)  # a client's polling pace for a late answer
                    async with session.get(poll, headers=auth) as r:
                        status, answer = (201 if r.status == 200 else r.status), await r.json()
            if status != 409:
                return status, quantity if status == 201 else 0, (answer.get("error") or {}).get("code")
    return status, 0, (answer.get("error") or {}).get("code")


async def sale_over(room: WaitingRoom, event_id: str, told_admitted: int) -> tuple[str | None, bool]:
    """Why nobody more can buy now, if so: every seat is held, or the seats left are fewer than
    the live holds allow the room to admit for (oversubscription x seats available; holds count
    as active until paid or lapsed). Over only once every admission has reached its buyer; the
    second value says the sale would be over but for admissions not heard of yet."""
    stats = await room.stats(event_id, now_ms())
    why = None
    if stats["seats_remaining"] == 0:
        why = "every seat held"
    else:
        config = await room.config(event_id)
        cap = min(config.max_active, math.floor(config.oversubscription * stats["seats_remaining"]))
        if stats["active"] >= cap:
            why = f"{stats['seats_remaining']} seats left for holds to lapse"
    if told_admitted < stats["admitted"]:
        return None, why is not None  # someone let in has not heard yet (a poll or a stream event)
    return why, False


def user_of(token: str) -> str:
    """The user id in one of the demo's own access tokens (read, not verified: it made them)."""
    claims = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"]


async def never_told(room: WaitingRoom, event_id: str, heard: dict[str, str]) -> list[str]:
    """Admitted users whose buyer never heard of it, with how each was listening."""
    admitted = {u.decode() for u in await room.redis.zrange(keys.room(event_id, "admitted"), 0, -1)}
    return sorted(
        f"{user} ({heard.get(user, 'not yet listening')})" for user in admitted if heard.get(user) != "told"
    )


STALL_S = 30  # an admission heard of by nobody for this long is lost, not late


async def queue_rush(
    base: str,
    event_id: str,
    shows: dict,
    tokens: list[str],
    concurrency: int,
    room: WaitingRoom,
    pass_ttl_s: int,
) -> dict:
    """The sale ends for the demo when every admitted buyer has had their answer and nobody more
    can be admitted (see sale_over): those still in line then stay in line (held seats come back
    only when holds lapse, and only then would the room move on, or sell out and tell them)."""
    rng = random.Random(4)
    targets = [(s, z) for s, zones in shows.items() for z in zones.values()]
    outcomes: Counter = Counter()
    reserve_answers: Counter = Counter()
    sold = 0
    reserving = 0
    started = time.perf_counter()
    opened = time.time()
    waits: list[eta_error.Person] = []  # the waits each buyer was shown, against their turn
    connector = aiohttp.TCPConnector(limit=0)  # the streams stay open: no pool limit
    timeout = aiohttp.ClientTimeout(total=600, sock_read=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        joining = asyncio.Semaphore(concurrency)

        heard: dict[str, str] = {}  # user -> how they listen, then "told" once admitted

        async def buyer(i: int, token: str) -> None:
            nonlocal sold, reserving
            auth = {"Authorization": f"Bearer {token}"}
            user = user_of(token)
            person = eta_error.Person()
            waits.append(person)

            def seen(standing: dict) -> None:
                eta_error.record(person, standing, time.time() - opened, opened, pass_ttl_s)

            async with (
                joining,
                session.post(f"{base}/api/v1/queue/join", json={"event_id": event_id}, headers=auth) as r,
            ):
                joined = (await r.json())["data"]
            seen(joined)
            standing = joined
            if joined["state"] in ("waiting", "prequeue"):
                heard[user] = "stream" if i % 2 == 0 else "polling"
                if i % 2 == 0:
                    standing = await _follow_stream(session, base, event_id, joined["queue_ticket"], seen)
                    outcomes["followed the stream"] += 1
                else:
                    standing = await _poll(session, base, event_id, auth, seen)
                    outcomes["polled"] += 1
            outcomes[f"ended {standing.get('state')}"] += 1
            if standing.get("state") == "admitted":
                heard[user] = "told"
                reserving += 1
                try:
                    status, seats, code = await _reserve(
                        session, base, event_id, targets, auth, standing["pass"], rng
                    )
                finally:
                    reserving -= 1
                reserve_answers[code or str(status)] += 1
                sold += seats

        say(f"  {len(tokens)} buyers join the waiting room; half follow the stream, half poll")
        buyers = [asyncio.create_task(buyer(i, t)) for i, t in enumerate(tokens)]
        untold_since = None
        while not all(b.done() for b in buyers):
            await asyncio.wait(buyers, timeout=0.5)  # the observer's pace
            failed = next((b for b in buyers if b.done() and not b.cancelled() and b.exception()), None)
            if failed is not None:  # a buyer's error ends the act at once, not after a stall
                for b in buyers:
                    b.cancel()
                await asyncio.gather(*buyers, return_exceptions=True)
                raise failed.exception()
            told = outcomes["ended admitted"]
            why, untold = await sale_over(room, event_id, told) if reserving == 0 else (None, False)
            untold_since = (untold_since or time.monotonic()) if untold else None
            if untold_since is not None and time.monotonic() - untold_since > STALL_S:
                # An admission that never reaches its buyer is a bug: say whose, and stop
                # rather than wait for holds to lapse (the audit then fails the demo).
                lost = await never_told(room, event_id, heard)
                say(f"  {len(lost)} admitted buyers never heard of it in {STALL_S} s: {lost[:5]}")
                outcomes["admitted but never told"] = len(lost)
                why = "stalled"
            if why is not None:
                still = [b for b in buyers if not b.done()]
                outcomes[f"still in line at the end ({why})"] = len(still)
                for b in still:
                    b.cancel()
                await asyncio.gather(*still, return_exceptions=True)
                break
        for b in buyers:
            if b.done() and not b.cancelled() and b.exception():
                raise b.exception()
    return {
        "buyers": len(tokens),
        "outcomes": dict(sorted(outcomes.items())),
        "reserve_answers": dict(sorted(reserve_answers.items())),
        "sold": sold,
        "sale_s": round(time.perf_counter() - started, 1),
        # How far the waits shown were from the waits had (ops/eta_error.py), over the whole act.
        "eta_error": eta_error.by_phase(waits, {"all": (0.0, float("inf"))})["all"],
    }


async def audit_admissions(sale_redis_url: str, event_id: str) -> dict:
    """From the room's admission records (ticket, admitted at): was anyone overtaken by a later
    ticket?"""
    redis = aioredis.from_url(sale_redis_url)
    try:
        records = await redis.hgetall(keys.room(event_id, "passes"))
    finally:
        await redis.aclose()
    admissions = sorted(tuple(int(p) for p in raw.decode().split(":")[:2]) for raw in records.values())
    tickets_in_admission_order = [ticket for ticket, _ in sorted(admissions, key=lambda a: (a[1], a[0]))]
    return {
        "admitted": len(admissions),
        "admitted_in_ticket_order": tickets_in_admission_order == sorted(tickets_in_admission_order),
    }
