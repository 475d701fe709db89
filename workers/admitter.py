"""The admitter role: every tick, one admission script per live waiting room, then one broadcast
per room that every gateway process applies (engaged or not, state, head, who was admitted).

Any number of admitters may run: the token bucket lives in Redis (lua/queue_admit.lua), so they
never add up their rates; admission speed is the operator's rate, not a function of load.
"""

from __future__ import annotations

import asyncio
import logging
import time

from lua import keys
from waiting_room.room import WaitingRoom
from workers.settings import WorkerSettings

log = logging.getLogger("workers.admitter")


class Admitter:
    def __init__(self, room: WaitingRoom, settings: WorkerSettings) -> None:
        self.room = room
        self.settings = settings

    async def tick(self, now_ms: int) -> dict[str, dict]:
        """Admit in every live room once; returns event id -> the script's answer."""
        events = sorted(e.decode() for e in await self.room.redis.smembers(keys.LIVE_ROOMS))
        ticks = {}
        for event_id in events:
            tick = await self.room.admit(event_id, now_ms)
            ticks[event_id] = tick
            await self.room.broadcast(
                {
                    "type": "tick",
                    "event_id": event_id,
                    "at_ms": now_ms,
                    "engaged": tick["engaged"],
                    "state": tick["state"],
                    "head": tick["head"],
                    "waiting": tick["waiting"],
                    "recent": tick["recent"],
                    "admitted": tick["admitted"],
                }
            )
        return ticks

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with asyncio.timeout(self.settings.redis_timeout_s):
                    ticks = await self.tick(int(time.time() * 1000))
                admitted = sum(len(t["admitted"]) for t in ticks.values())
                if admitted:
                    log.info("admitted %d users in %d rooms", admitted, len(ticks))
            except Exception:
                log.exception("admission tick failed; will retry next tick")
            try:
                await asyncio.wait_for(stop.wait(), self.settings.admit_tick_s)
            except TimeoutError:
                pass
