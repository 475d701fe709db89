"""Gauges read from the sale Redis on a clock (workers/metrics.py): holds live per event, and
the people active in each waiting room; plus the worker's PostgreSQL connections in use.

One pipelined round trip per period for the holds; `WaitingRoom.stats` per live room for the
active count (a few commands each, every `every_s`).
"""

from __future__ import annotations

import asyncio

from lua import keys
from waiting_room.room import WaitingRoom
from workers import metrics
from workers.commands import now_ms
from workers.periodic import run_every


class SaleGauges:
    def __init__(self, redis, room: WaitingRoom | None = None, pool=None) -> None:
        self.redis, self.room, self.pool = redis, room, pool

    async def read_once(self) -> None:
        events = sorted(e.decode() for e in await self.redis.smembers(keys.LIVE_EVENTS))
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in events:
                pipe.zcard(keys.expiry_index(event_id))  # reserved and paying holds: not yet sold
            counts = await pipe.execute()
        for event_id, count in zip(events, counts, strict=True):
            metrics.ACTIVE_RESERVATIONS.labels(event_id).set(count)
        await self._zones(events)
        if self.room is not None:
            now = now_ms()
            for event_id in sorted(e.decode() for e in await self.redis.smembers(keys.LIVE_ROOMS)):
                stats = await self.room.stats(event_id, now)
                metrics.ROOM_ACTIVE.labels(event_id).set(stats["active"])
                metrics.QUEUE_DEPTH.labels(event_id).set(stats["waiting"] + stats["prequeue"])
        if self.pool is not None:
            metrics.DB_CONNECTIONS.labels("worker").set(self.pool.get_size() - self.pool.get_idle_size())

    async def _zones(self, events: list[str]) -> None:
        """zone_seats_available / zone_seats_total for every zone of every live event."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in events:
                pipe.smembers(keys.zone_index(event_id))
            indexes = await pipe.execute()
        zones = [(ev, key.decode()) for ev, index in zip(events, indexes, strict=True) for key in index]
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, key in zones:
                pipe.hmget(key, "available", "total")
            counters = await pipe.execute()
        for (event_id, key), (available, total) in zip(zones, counters, strict=True):
            show_id, zone_id = key.rsplit(":", 2)[-2:]  # {ev:E}:zone:<show>:<zone>
            if available is not None and total is not None:
                metrics.ZONE_AVAILABLE.labels(event_id, show_id, zone_id).set(int(available))
                metrics.ZONE_TOTAL.labels(event_id, show_id, zone_id).set(int(total))

    async def run(self, stop: asyncio.Event, every_s: float = 5.0, timeout_s: float = 10.0) -> None:
        await run_every(stop, every_s, timeout_s, self.read_once, "sale gauges")
