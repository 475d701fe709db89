"""The sweeper: finds holds past their deadline in each event's index and acts on them.

It never changes a seat itself. A reservation past its expiry gets an expire command, through
the command consumer like any other, so expiry is applied once by `lua/expire_hold.lua` and
emits `booking.expired`. A hold being paid for is not released blindly when its (longer)
deadline passes: the sweeper has a payment worker ask the provider (`check_payment`), and asks
again every reissue period while the outcome is unknown. Two sweepers at once only produce
duplicate commands and jobs, which the scripts turn into no-ops.

Its Redis work follows what can be due, not how many events are on sale (workers/due_schedule.py):
an event's index is looked at when its earliest hold falls due, or after the horizon (the
shortest life a new hold can get: one made after a look is due no sooner), all the events of a
tick in one pipelined round trip. Thousands of events on sale with nothing due cost a round trip
a second, not thousands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from booking_rush.contract import jobs, messages
from booking_rush.contract.messages import now_ms
from booking_rush.services.job_queue import JobQueue
from booking_rush.services.periodic import run_every
from lua import keys
from workers.due_schedule import DueSchedule
from workers.settings import WorkerSettings

log = logging.getLogger("workers.sweeper")

MAX_HORIZON_MS = 30_000  # a look at every event on sale at least this often, whatever the hold times


class Sweeper:
    """Scans expiry indexes; one `sweep_once` per tick."""

    def __init__(
        self, redis, producer: AIOKafkaProducer, settings: WorkerSettings, per_event_limit: int = 1000
    ) -> None:
        self.redis = redis
        self.producer = producer
        self.settings = settings
        self.per_event_limit = per_event_limit
        self.job_queue = JobQueue(settings.endpoints.aux_redis_url, settings.endpoints.topic_prefix)
        # No hold made after a look can fall due sooner than this after it (reserve and
        # begin-payment scores are now + their hold time; the sweeper's own reissue is known).
        self.horizon_ms = min(
            settings.hold_ms, settings.payment_hold_ms, settings.sweep_reissue_ms, MAX_HORIZON_MS
        )
        self.schedule = DueSchedule(self.horizon_ms)

    async def sweep_once(self, as_of_ms: int | None = None, event_ids: Iterable[str] | None = None) -> int:
        """Issue expire commands for holds due as of `as_of_ms`; return how many were issued.
        With `event_ids`, look at each of them now; without, at the live events that may have
        something due."""
        as_of = now_ms() if as_of_ms is None else as_of_ms
        if event_ids is None:
            if self.schedule.wants_events(as_of):
                self.schedule.events({_s(e) for e in await self.redis.smembers(keys.LIVE_EVENTS)}, as_of)
            event_ids = self.schedule.due(as_of)
        else:
            event_ids = list(event_ids)
        if not event_ids:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                index = keys.expiry_index(event_id)
                pipe.zrangebyscore(index, "-inf", as_of, start=0, num=self.per_event_limit)
                pipe.zrange(index, 0, 0, withscores=True)
            answers = await pipe.execute()
        issued = 0
        for event_id, due, first in zip(event_ids, answers[::2], answers[1::2], strict=True):
            if due:
                issued += await self._expire(event_id, due, as_of)
                self.schedule.looked(event_id, as_of, as_of)  # next tick: what is left, the reissues
            else:
                self.schedule.looked(event_id, as_of, int(first[0][1]) if first else None)
        return issued

    async def _expire(self, event_id: str, due: list, as_of: int) -> int:
        index = keys.expiry_index(event_id)
        booking_ids = [_s(b) for b in due]
        async with self.redis.pipeline(transaction=False) as pipe:
            for booking_id in booking_ids:
                pipe.hmget(
                    keys.hold(event_id, booking_id), "user_id", "show_id", "zone_id", "status", "payment_id"
                )
            holds = await pipe.execute()
        sends = []
        for booking_id, hold in zip(booking_ids, holds, strict=True):
            user_id, show_id, zone_id, status, payment_id = hold
            if status == b"paying":
                await self.job_queue.send(jobs.CHECK_PAYMENT, event_id, _s(payment_id))
                continue
            if show_id is None:
                # An index entry without its hold: let the script clean it up.
                user_id = show_id = zone_id = b""
            command = messages.expire_command(
                event_id=event_id,
                booking_id=booking_id,
                user_id=_s(user_id),
                show_id=_s(show_id),
                zone_id=_s(zone_id),
            )
            command["as_of_ms"] = as_of
            sends.append(
                await self.producer.send(
                    self.settings.topics.reservations, messages.encode(command), key=_s(show_id).encode()
                )
            )
        await asyncio.gather(*sends)
        # Acked: look again only if the command has not been applied in a while.
        retry_at = as_of + self.settings.sweep_reissue_ms
        await self.redis.zadd(index, {b: retry_at for b in booking_ids}, xx=True)
        return len(booking_ids)

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        await run_every(stop, s.sweep_interval_s, s.redis_timeout_s, self._sweep_and_say, "sweep")

    async def _sweep_and_say(self) -> None:
        issued = await self.sweep_once()
        if issued:
            log.info("issued %d expire commands", issued)
        await self.resume_cancellations()

    async def resume_cancellations(self, as_of_ms: int | None = None) -> list[str]:
        """A cancelled event whose settling has had no round for a reissue period (its payment
        worker died holding the round, or no worker had started it): a round is sent again.
        Rounds at once are harmless: each booking is counted and mailed once."""
        events = [_s(e) for e in await self.redis.smembers(keys.CANCELLATIONS)]
        if not events:
            return []
        as_of = now_ms() if as_of_ms is None else as_of_ms
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in events:
                pipe.hmget(keys.cancellation(event_id), "round_at", "status", "started_at")
            rounds = await pipe.execute()
        resumed = []
        for event_id, (round_at, status, started_at) in zip(events, rounds, strict=True):
            last = int(round_at or started_at or 0)
            if status != b"done" and as_of - last >= self.settings.sweep_reissue_ms:
                await self.job_queue.send(jobs.SETTLE_CANCELLATION, event_id)
                await self.redis.hset(keys.cancellation(event_id), "round_at", as_of)  # once a period
                resumed.append(event_id)
        if resumed:
            log.info("resumed the settling of %d cancelled events", len(resumed))
        return resumed


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")
