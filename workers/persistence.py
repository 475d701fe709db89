"""The persistence consumer: `booking.events` into PostgreSQL, batched and idempotent.

A batch is one transaction. Created bookings are inserted with ON CONFLICT DO NOTHING, and only
rows that were really inserted (or really moved to expired) change the zone and show counters,
so a redelivered batch changes nothing. An event PostgreSQL refuses goes, with the error, to the
dead-letter topic, so one bad event cannot stall the log.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from workers import messages
from workers.clients import group_consumer
from workers.commands import BatchStats
from workers.settings import WorkerSettings

log = logging.getLogger("workers.persistence")

INSERT_CREATED = """
WITH inserted AS (
    INSERT INTO bookings (id, public_id, reservation_id, user_id, event_id, show_id, zone_id,
                          quantity, total_price, status, request_id, body_hash, reserved_at,
                          expires_at)
    SELECT b.id, b.public_id, b.reservation_id, b.user_id, b.event_id, b.show_id, b.zone_id,
           b.quantity, b.total_price, 'reserved', b.request_id, b.body_hash, b.reserved_at,
           b.expires_at
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], $6::uuid[],
                $7::uuid[], $8::int[], $9::numeric[], $10::text[], $11::text[],
                $12::timestamptz[], $13::timestamptz[])
         AS b(id, public_id, reservation_id, user_id, event_id, show_id, zone_id, quantity,
              total_price, request_id, body_hash, reserved_at, expires_at)
    ON CONFLICT DO NOTHING
    RETURNING zone_id, show_id, quantity
)
SELECT zone_id, show_id, sum(quantity)::int AS seats FROM inserted GROUP BY zone_id, show_id
"""

# A live reservation ends ($2: expired or cancelled); only a row that really changed moves seats.
MARK_ENDED = """
WITH ended AS (
    UPDATE bookings SET status = $2, updated_at = now()
    WHERE id = ANY($1::uuid[]) AND status = 'reserved'
    RETURNING zone_id, show_id, quantity
)
SELECT zone_id, show_id, -sum(quantity)::int AS seats FROM ended GROUP BY zone_id, show_id
"""

RECORD_ADJUSTMENTS = """
WITH recorded AS (
    INSERT INTO inventory_adjustments (request_id, zone_id, previous_total, total)
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::int[], $4::int[])
    ON CONFLICT DO NOTHING
    RETURNING zone_id, total - previous_total AS delta
)
SELECT r.zone_id, z.show_id, r.delta FROM recorded r JOIN seat_zones z ON z.id = r.zone_id
"""

GROW_ZONES = """
UPDATE seat_zones z SET total_seats = z.total_seats + d.delta,
                        available_seats = GREATEST(z.available_seats + d.delta, 0), updated_at = now()
FROM unnest($1::uuid[], $2::int[]) AS d(zone_id, delta) WHERE z.id = d.zone_id
"""

GROW_SHOWS = """
UPDATE shows s SET total_seats = s.total_seats + d.delta,
                   available_seats = GREATEST(s.available_seats + d.delta, 0), updated_at = now()
FROM (SELECT show_id, sum(delta)::int AS delta
      FROM unnest($1::uuid[], $2::int[]) AS x(show_id, delta) GROUP BY show_id) d
WHERE s.id = d.show_id
"""

ADJUST_ZONES = """
UPDATE seat_zones z SET available_seats = GREATEST(z.available_seats - d.seats, 0),
                        updated_at = now()
FROM unnest($1::uuid[], $2::int[]) AS d(zone_id, seats) WHERE z.id = d.zone_id
"""

ADJUST_SHOWS = """
UPDATE shows s SET available_seats = GREATEST(s.available_seats - d.seats, 0), updated_at = now()
FROM (SELECT show_id, sum(seats)::int AS seats
      FROM unnest($1::uuid[], $2::int[]) AS x(show_id, seats) GROUP BY show_id) d
WHERE s.id = d.show_id
"""


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


async def apply_events(conn: asyncpg.Connection, events: list[dict[str, Any]]) -> None:
    """Write one batch of events in the caller's transaction (idempotent)."""
    created = [e for e in events if e["type"] == messages.BOOKING_CREATED]
    expired = [e["booking_id"] for e in events if e["type"] == messages.BOOKING_EXPIRED]
    deltas: list[asyncpg.Record] = []
    if created:
        columns = list(
            zip(
                *[
                    (
                        messages.row_id(e["booking_id"]),
                        e["booking_id"],
                        f"{e['event_id']}:{e['user_id']}:{e['idempotency_scope']}",
                        e["user_id"],
                        e["event_id"],
                        e["show_id"],
                        e["zone_id"],
                        e["quantity"],
                        Decimal(e["total_cents"]) / 100,
                        e["request_id"],
                        e["body_hash"],
                        _ts(e["created_at"]),
                        _ts(e["expires_at"]),
                    )
                    for e in created
                ],
                strict=True,
            )
        )
        deltas += await conn.fetch(INSERT_CREATED, *columns)
    if expired:
        deltas += await conn.fetch(MARK_ENDED, [messages.row_id(b) for b in expired], "expired")
    cancelled = [e["booking_id"] for e in events if e["type"] == messages.BOOKING_CANCELLED]
    if cancelled:
        deltas += await conn.fetch(MARK_ENDED, [messages.row_id(b) for b in cancelled], "cancelled")
    adjusted = [e for e in events if e["type"] == messages.ZONE_ADJUSTED]
    if adjusted:
        # Seat-count changes as deltas, recorded once: they commute with the booking deltas.
        grown = await conn.fetch(
            RECORD_ADJUSTMENTS,
            [e["request_id"] for e in adjusted],
            [e["zone_id"] for e in adjusted],
            [e["previous_total"] for e in adjusted],
            [e["total"] for e in adjusted],
        )
        if grown:
            await conn.execute(GROW_ZONES, [g["zone_id"] for g in grown], [g["delta"] for g in grown])
            await conn.execute(GROW_SHOWS, [g["show_id"] for g in grown], [g["delta"] for g in grown])
    if deltas:
        zone_ids = [d["zone_id"] for d in deltas]
        show_ids = [d["show_id"] for d in deltas]
        seats = [d["seats"] for d in deltas]
        await conn.execute(ADJUST_ZONES, zone_ids, seats)
        await conn.execute(ADJUST_SHOWS, show_ids, seats)


class PersistenceConsumer:
    """Consumes `booking.events`; commits offsets only after the transaction commits."""

    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: WorkerSettings) -> None:
        self.pool = pool
        self.producer = producer
        self.settings = settings
        self.stats = BatchStats(log, "events")
        self.consumer = group_consumer(
            settings.events_topic, settings.persistence_group, "persistence", settings
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self.consumer.start()
        try:
            while not stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=500, max_records=self.settings.batch_size)
                if not batches:
                    continue
                records = [r for rs in batches.values() for r in rs]
                try:
                    await self._write(records)
                except (
                    OSError,
                    asyncpg.exceptions.ConnectionDoesNotExistError,
                    asyncpg.exceptions.CannotConnectNowError,
                ):
                    log.exception("PostgreSQL unavailable; retrying the batch")
                    for tp, rs in batches.items():
                        self.consumer.seek(tp, rs[0].offset)
                    await asyncio.sleep(1.0)  # back off before refetching (retry pacing)
                    continue
                await self.consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
                self.stats.add(len(records))
                self.stats.maybe_log()
        finally:
            await asyncio.wait_for(self.consumer.stop(), self.settings.shutdown_timeout_s)

    async def _write(self, records) -> None:
        decoded = []
        for record in records:
            try:
                decoded.append((record, messages.decode(record.value)))
            except ValueError as exc:
                await self._dead_letter(record, exc)
        records = [r for r, _ in decoded]
        events = [e for _, e in decoded]
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await apply_events(conn, events)
            return
        except asyncpg.PostgresError:
            log.exception("batch of %d events refused; writing them one by one", len(events))
        for record, event in zip(records, events, strict=True):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await apply_events(conn, [event])
            except asyncpg.PostgresError as exc:
                await self._dead_letter(record, exc)

    async def _dead_letter(self, record, exc: Exception) -> None:
        log.error("dead-lettering event at %s:%s: %s", record.partition, record.offset, exc)
        await self.producer.send_and_wait(
            self.settings.dead_letter_topic,
            record.value,
            key=record.key,
            headers=[
                ("error", str(exc).encode()[:1000]),
                ("source", f"{record.topic}:{record.partition}:{record.offset}".encode()),
            ],
        )
