"""The admitter role: every tick, one admission script per live waiting room that is due, then
one broadcast of every room's tick that every gateway process applies (engaged or not, state,
head, who was admitted): one message per TICKS_PER_MESSAGE rooms, not one per room. A quiet
room (nobody in line) is due at least every QUIET_RECHECK_MS, or at once when a join or an operator's
change wakes it.

Any number of admitters may run: the token bucket lives in Redis (lua/queue_admit.lua), so they
never add up their rates; admission speed is the operator's rate, not a function of load.
"""

from __future__ import annotations

import asyncio
import logging
import random

import orjson

from booking_rush.contract.messages import now_ms
from booking_rush.services.periodic import run_every
from booking_rush.telemetry import worker_metrics
from lua import keys
from waiting_room.room import WaitingRoom
from workers.settings import WorkerSettings
from workers.turn_notices import TurnNotices

log = logging.getLogger("workers.admitter")

# Rooms per broadcast message: a publish (and every gateway process's decode) per room per tick
# was most of an idle stack's cost with a few thousand rooms configured.
TICKS_PER_MESSAGE = 500
# A quiet room (is_quiet) is ticked at least this often, and at once when woken (keys.ROOMS_WAKE): with
# thousands of rooms configured, a script per room per second was most of an idle worker's and
# sale Redis's work.
QUIET_RECHECK_MS = 10_000
WAKE_BATCH = 100_000


def is_quiet(tick: dict) -> bool:
    """Nobody in line or before the opening, nobody let in: nothing can change until someone
    joins or an operator changes the room (both wake it), but for what seats and time do
    (sold out, a scheduled opening), which a quiet room shows within QUIET_RECHECK_MS. A room
    in mode auto engages on the request rate, which wakes nothing: it is never quiet; nor is one
    with a claim window open (its end lets the next person in and tells the one who missed it)."""
    quiet = not tick["waiting"] and not tick["prequeue"] and not tick["admitted"] and not tick["claims"]
    return tick["mode"] != "auto" and quiet


def tick_message(event_id: str, now_ms: int, tick: dict) -> dict:
    """What every gateway process hears of a room each tick: whether reserve needs a pass, and
    the room's progress (the live-position stream derives its clients' places from it)."""
    fields = ("engaged", "state", "head", "waiting", "recent", "admitted")
    message = {"type": "tick", "event_id": event_id, "at_ms": now_ms, **{f: tick[f] for f in fields}}
    # The pace (when admitting): each stream's wait estimate (waiting_room/eta.py).
    return {**message, "pass_ttl_ms": tick.get("pass_ttl_ms", 0), "pace": tick.get("pace")}


class Admitter:
    def __init__(
        self, room: WaitingRoom, settings: WorkerSettings, notices: TurnNotices | None = None
    ) -> None:
        self.room = room
        self.settings = settings
        self.notices = notices  # tells those called while away (None: nobody is told)
        self._quiet_until: dict[str, int] = {}  # event id -> when a quiet room is ticked again

    async def tick(self, now_ms: int) -> dict[str, dict]:
        """Admit in every live room that is due once; returns event id -> the script's answer.
        A fixed number of round trips per tick, however many rooms are live."""
        async with self.room.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(keys.LIVE_ROOMS)
            pipe.spop(keys.ROOMS_WAKE, WAKE_BATCH)  # taken and removed at once
            live, woken = await pipe.execute()
        events = sorted(e.decode() for e in live)
        woken = {e.decode() for e in woken or ()}
        on = set(events)
        self._quiet_until = {e: t for e, t in self._quiet_until.items() if e in on}
        due = [e for e in events if e in woken or self._quiet_until.get(e, 0) <= now_ms]
        if not due:
            return {}
        ticks = await self.room.admit_all(due, now_ms)
        for event_id, tick in ticks.items():
            if is_quiet(tick):  # spread, so rooms first ticked together do not recur together
                self._quiet_until[event_id] = now_ms + int(QUIET_RECHECK_MS * random.uniform(0.5, 1.0))
            else:
                self._quiet_until.pop(event_id, None)
        messages = [tick_message(event_id, now_ms, tick) for event_id, tick in ticks.items()]
        async with self.room.redis.pipeline(transaction=False) as pipe:
            for i in range(0, len(messages), TICKS_PER_MESSAGE):
                batch = messages[i : i + TICKS_PER_MESSAGE]
                pipe.publish(keys.ROOM_CHANNEL, orjson.dumps({"type": "ticks", "ticks": batch}))
            await pipe.execute()
        await self.observe_waits(ticks, now_ms)
        for event_id, tick in ticks.items():
            if self.notices is not None and (tick["called"] or tick["missed"]):
                self.notices.tell(event_id, tick)
            if tick["admitted"] or tick["called"]:
                worker_metrics.ADMITTED.labels(event_id).inc(len(tick["admitted"]) + len(tick["called"]))
            worker_metrics.QUEUE_DEPTH.labels(event_id).set(tick["waiting"] + tick["prequeue"])
            worker_metrics.ROOM_ACTIVE.labels(event_id).set(tick["active"])
            worker_metrics.ADMISSION_RATE.labels(event_id).set(tick["recent"])
        return ticks

    async def observe_waits(self, ticks: dict[str, dict], now_ms: int) -> None:
        """waiting_room_wait_seconds for everyone this tick let in: their join time, read and
        dropped. Not one transaction (the rooms' keys live in different cluster slots): two
        admitters reading the same user at the same instant would both observe it."""
        admitted = [
            (ev, [user for user, *_ in t["admitted"] + t["called"]])
            for ev, t in ticks.items()
            if t["admitted"] or t["called"]
        ]
        if not admitted:
            return
        async with self.room.redis.pipeline(transaction=False) as pipe:
            for event_id, users in admitted:
                pipe.hmget(keys.room(event_id, "joined"), users)
                pipe.hdel(keys.room(event_id, "joined"), *users)
            answers = await pipe.execute()
        for (event_id, _), joined in zip(admitted, answers[::2], strict=True):
            for at in joined:
                if at is not None:
                    worker_metrics.WAIT_SECONDS.labels(event_id).observe(max(0, now_ms - int(at)) / 1000)

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        await run_every(stop, s.admit_tick_s, s.redis_timeout_s, self._tick_and_say, "admission tick")

    async def _tick_and_say(self) -> None:
        ticks = await self.tick(now_ms())
        admitted = sum(len(t["admitted"]) for t in ticks.values())
        if admitted:
            log.info("admitted %d users in %d rooms", admitted, len(ticks))
