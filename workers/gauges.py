"""Gauges read from the sale Redis on a clock (booking_rush/telemetry/worker_metrics.py): holds
live per event and the seats of their zones; plus the worker's PostgreSQL connections in use.
(The waiting rooms' depth and active count come with each admission tick: workers/admitter.py.)

Three pipelined round trips per period, however many events are live.
"""

from __future__ import annotations

import asyncio

from booking_rush.services.periodic import run_every
from booking_rush.telemetry import metrics, worker_metrics
from lua import keys


class SaleGauges:
    def __init__(self, redis, pool=None) -> None:
        self.redis, self.pool = redis, pool

    async def read_once(self) -> None:
        events = sorted(e.decode() for e in await self.redis.smembers(keys.LIVE_EVENTS))
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in events:
                pipe.zcard(keys.expiry_index(event_id))  # reserved and paying holds: not yet sold
                pipe.smembers(keys.zone_index(event_id))
            answers = await pipe.execute()
        for event_id, count in zip(events, answers[::2], strict=True):
            worker_metrics.ACTIVE_RESERVATIONS.labels(event_id).set(count)
        await self._zones(
            [(ev, key.decode()) for ev, index in zip(events, answers[1::2], strict=True) for key in index]
        )
        if self.pool is not None:
            metrics.record_db_connections("worker", self.pool)

    async def _zones(self, zones: list[tuple[str, str]]) -> None:
        """zone_seats_available / zone_seats_total for every (event, zone key) given."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, key in zones:
                pipe.hmget(key, "available", "total")
            counters = await pipe.execute()
        for (event_id, key), (available, total) in zip(zones, counters, strict=True):
            show_id, zone_id = key.rsplit(":", 2)[-2:]  # {ev:E}:zone:<show>:<zone>
            if available is not None and total is not None:
                worker_metrics.ZONE_AVAILABLE.labels(event_id, show_id, zone_id).set(int(available))
                worker_metrics.ZONE_TOTAL.labels(event_id, show_id, zone_id).set(int(total))

    async def run(self, stop: asyncio.Event, every_s: float = 5.0, timeout_s: float = 10.0) -> None:
        await run_every(stop, every_s, timeout_s, self.read_once, "sale gauges")
