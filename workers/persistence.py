"""The persistence consumer: `booking.events` into PostgreSQL, batched and idempotent.

A batch is one transaction. Created bookings are inserted with ON CONFLICT DO NOTHING, and only
rows that were really inserted (or really moved to expired) change the zone and show counters,
so a redelivered batch changes nothing. An event PostgreSQL refuses goes, with the error, to the
dead-letter topic, so one bad event cannot stall the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry.trace import SpanKind

from booking_rush.contract import messages
from booking_rush.contract.audit import AuditEntry
from booking_rush.services import audit_log
from booking_rush.services.clients import group_consumer
from booking_rush.telemetry import metrics, tracing
from workers.batch_stats import BatchStats
from workers.settings import WorkerSettings

log = logging.getLogger("workers.persistence")

# Before the upsert, in its own statement (a CTE would read the rows the upsert itself changed):
# what each row held, locked so a second consumer (a rebalance overlap) waits for this one.
LOCK_PRIOR = "SELECT id, status FROM bookings WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"

# Every booking event carries the whole record: insert it, or move the row forward when the
# event's version is newer. Seats move by what the row holds now minus what it held before, so
# a redelivered or older event (the row unchanged, not returned) moves nothing.
UPSERT_BOOKINGS = """
INSERT INTO bookings (id, public_id, reservation_id, user_id, event_id, show_id, zone_id,
                      quantity, total_price, request_id, body_hash, reserved_at, expires_at,
                      status, version, payment_id, cancel_reason, confirmed_at, ticket_code,
                      price_breakdown, promo_code, early_bird_seats, currency)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], $6::uuid[],
                     $7::uuid[], $8::int[], $9::numeric[], $10::text[], $11::text[],
                     $12::timestamptz[], $13::timestamptz[], $14::text[], $15::int[],
                     $16::text[], $17::text[], $18::timestamptz[], $19::text[],
                     $20::jsonb[], $21::text[], $22::int[], $23::text[])
ON CONFLICT (id) DO UPDATE
    SET status = EXCLUDED.status, version = EXCLUDED.version,
        expires_at = EXCLUDED.expires_at, payment_id = EXCLUDED.payment_id,
        cancel_reason = EXCLUDED.cancel_reason, confirmed_at = EXCLUDED.confirmed_at,
        ticket_code = EXCLUDED.ticket_code,
        -- a voucher applied to a reservation lowers its total (lua/apply_voucher.lua)
        total_price = EXCLUDED.total_price, price_breakdown = EXCLUDED.price_breakdown,
        updated_at = now()
    WHERE bookings.version < EXCLUDED.version
RETURNING id, public_id, user_id, event_id, zone_id, show_id, quantity, status, version
"""

HOLDING = frozenset({"reserved", "paying", "confirmed"})  # statuses that keep seats out of the zone

UPSERT_PAYMENTS = """
INSERT INTO payments (id, public_id, booking_id, event_id, amount, method, masked, status,
                      provider_ref, failure_reason, attempts, refund_status, refund_percent,
                      refund_amount, refund_reason, version, created_at, topup_status, topup_amount)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::numeric[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::text[],
                     $13::int[], $14::numeric[], $15::text[], $16::int[], $17::timestamptz[],
                     $18::text[], $19::numeric[])
ON CONFLICT (id) DO UPDATE
    SET status = EXCLUDED.status, provider_ref = EXCLUDED.provider_ref,
        failure_reason = EXCLUDED.failure_reason, attempts = EXCLUDED.attempts,
        refund_status = EXCLUDED.refund_status, refund_percent = EXCLUDED.refund_percent,
        refund_amount = EXCLUDED.refund_amount, refund_reason = EXCLUDED.refund_reason,
        topup_status = EXCLUDED.topup_status, topup_amount = EXCLUDED.topup_amount,
        version = EXCLUDED.version, updated_at = now()
    WHERE payments.version < EXCLUDED.version
RETURNING public_id, booking_id, event_id, status, refund_status, version
"""

UPSERT_PROMO_CODES = """
INSERT INTO promo_codes (event_id, code, definition, status, version)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::text[], $5::bigint[])
ON CONFLICT (event_id, code) DO UPDATE
    SET definition = EXCLUDED.definition, status = EXCLUDED.status, version = EXCLUDED.version,
        updated_at = now()
    WHERE promo_codes.version < EXCLUDED.version
"""

UPSERT_VOUCHERS = """
INSERT INTO vouchers (tenant_id, code, user_id, amount, currency, status, booking_id, from_booking, version)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::numeric[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::int[])
ON CONFLICT (tenant_id, code) DO UPDATE
    SET status = EXCLUDED.status, booking_id = EXCLUDED.booking_id, version = EXCLUDED.version,
        updated_at = now()
    WHERE vouchers.version < EXCLUDED.version
"""

UPSERT_PRICING_RULES = """
INSERT INTO pricing_rules (event_id, kind, scope, rule, version)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::bigint[])
ON CONFLICT (event_id, kind, scope) DO UPDATE
    SET rule = EXCLUDED.rule, version = EXCLUDED.version, updated_at = now()
    WHERE pricing_rules.version < EXCLUDED.version
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

# The newest inventory load of each event (one row per event; a batch is reduced to its
# newest per event first: one statement cannot update a row twice).
RECORD_LOADS = """
INSERT INTO inventory_loads (event_id, version)
SELECT * FROM unnest($1::uuid[], $2::bigint[])
ON CONFLICT (event_id) DO UPDATE
    SET version = GREATEST(inventory_loads.version, EXCLUDED.version), updated_at = now()
"""

# Summed per zone first: an UPDATE ... FROM joining a zone to two changes applies only one.
GROW_ZONES = """
UPDATE seat_zones z SET total_seats = z.total_seats + d.delta,
                        available_seats = GREATEST(z.available_seats + d.delta, 0), updated_at = now()
FROM (SELECT zone_id, sum(delta)::int AS delta
      FROM unnest($1::uuid[], $2::int[]) AS x(zone_id, delta) GROUP BY zone_id) d
WHERE z.id = d.zone_id
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


def _newest(events: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """One record per id, the highest version (one statement cannot write a row twice)."""
    newest: dict[str, dict[str, Any]] = {}
    for e in events:
        seen = newest.get(e[key])
        if seen is None or e.get("version", 1) > seen.get("version", 1):
            newest[e[key]] = e
    return list(newest.values())


def _money(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents) / 100


def _opt_ts(ms: int | None) -> datetime | None:
    return None if ms is None else _ts(ms)


async def _write_bookings(
    conn: asyncpg.Connection, events: list[dict[str, Any]]
) -> list[tuple[asyncpg.Record, int]]:
    """The rows really written, each with the seats it holds now minus what it held before."""
    rows = [
        (
            messages.row_id(e["booking_id"]),
            e["booking_id"],
            f"{e['event_id']}:{e['user_id']}:{e['idempotency_scope']}",
            e["user_id"],
            e["event_id"],
            e["show_id"],
            e["zone_id"],
            e["quantity"],
            _money(e["total_cents"]),
            e["request_id"],
            e["body_hash"],
            _ts(e["created_at"]),
            _ts(e["expires_at"]),
            e.get("status", "reserved"),
            e.get("version", 1),
            e.get("payment_id"),
            e.get("cancel_reason"),
            _opt_ts(e.get("confirmed_at")),
            e.get("ticket_code") or None,
            # What the reservation locked: the same in every event of the booking.
            messages.encode(e["pricing"]).decode() if e.get("pricing") else None,
            e.get("promo_code") or None,
            e.get("eb_seats") or 0,
            e.get("currency") or None,
        )
        for e in _newest(events, "booking_id")
    ]
    prior = {r["id"]: r["status"] for r in await conn.fetch(LOCK_PRIOR, [r[0] for r in rows])}
    written = await conn.fetch(UPSERT_BOOKINGS, *zip(*rows, strict=True))
    return [
        (w, w["quantity"] * ((w["status"] in HOLDING) - (prior.get(w["id"]) in HOLDING))) for w in written
    ]


async def _write_payments(conn: asyncpg.Connection, events: list[dict[str, Any]]) -> list[asyncpg.Record]:
    rows = [
        (
            messages.row_id(e["payment_id"]),
            e["payment_id"],
            messages.row_id(e["booking_id"]),
            e["event_id"],
            _money(e["amount_cents"]),
            e["method"],
            e.get("masked", ""),
            e["status"],
            e.get("provider_ref") or None,
            e.get("failure_reason") or None,
            e.get("attempts", 0),
            e.get("refund_status"),
            e.get("refund_percent"),
            _money(e.get("refund_cents")),
            e.get("refund_reason"),
            e.get("version", 1),
            _ts(e["created_at"]),
            e.get("topup_status"),
            _money(e.get("topup_cents")),
        )
        for e in _newest(events, "payment_id")
    ]
    return await conn.fetch(UPSERT_PAYMENTS, *zip(*rows, strict=True))


def _newest_vouchers(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for e in events:
        v = e["voucher"]
        key = (v["tenant_id"], v["code"])
        if key not in newest or newest[key]["version"] < v["version"]:
            newest[key] = v
    return list(newest.values())


async def _write_pricing(conn: asyncpg.Connection, events: list[dict[str, Any]]) -> None:
    """Rules and codes as their newest change left them (an older event changes nothing)."""
    codes = {}
    rules = {}
    for e in events:
        rule, what = e["rule"], e["what"]
        if what in ("promo", "promo_status"):
            key = (e["event_id"], rule["code"])
            if key not in codes or codes[key]["version"] < e["version"]:
                codes[key] = e
        else:
            scope = rule["zone_id"] if what == "early_bird" else "event"
            key = (e["event_id"], what, scope)
            if key not in rules or rules[key]["version"] < e["version"]:
                rules[key] = e
    if codes:
        await conn.execute(
            UPSERT_PROMO_CODES,
            [k[0] for k in codes],
            [k[1] for k in codes],
            [messages.encode(e["rule"]).decode() for e in codes.values()],
            [e["rule"]["status"] for e in codes.values()],
            [e["version"] for e in codes.values()],
        )
    if rules:
        await conn.execute(
            UPSERT_PRICING_RULES,
            [k[0] for k in rules],
            [k[1] for k in rules],
            [k[2] for k in rules],
            [messages.encode(e["rule"]).decode() for e in rules.values()],
            [e["version"] for e in rules.values()],
        )


async def _audit(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> None:
    """An audit row per booking or payment transition written (spec §8.5), in the same
    transaction: a redelivered event writes no row, so it audits nothing twice."""
    tenants = {
        r["id"]: str(r["tenant_id"])
        for r in await conn.fetch(
            "SELECT id, tenant_id FROM events WHERE id = ANY($1::uuid[])", list({r["event_id"] for r in rows})
        )
    }
    entries = []
    for row in rows:
        if "quantity" in row.keys():  # a booking row
            kind, status, details = "booking", row["status"], {"user_id": str(row["user_id"])}
        else:
            kind, details = "payment", {"booking": str(row["booking_id"])}
            refund = row["refund_status"]  # requested, approved: the payment's status stays success
            status = f"refund_{refund}" if refund in ("requested", "approved", "refused") else row["status"]
        entries.append(
            AuditEntry(
                action=f"{kind}.{status}",
                entity_type=kind,
                entity_id=row["public_id"],
                tenant_id=tenants.get(row["event_id"]),
                details={**details, "version": row["version"]},
            )
        )
    await audit_log.record(conn, entries)


async def apply_events(conn: asyncpg.Connection, events: list[dict[str, Any]]) -> None:
    """Write one batch of events in the caller's transaction (idempotent, order-insensitive)."""
    held: Counter[tuple[str, str]] = Counter()  # (zone, show) -> seats now held minus before
    changed: list[asyncpg.Record] = []  # rows really written: each one transition, audited once
    bookings = [e for e in events if e["type"] in messages.BOOKING_EVENTS]
    if bookings:
        for written, seats in await _write_bookings(conn, bookings):
            held[(written["zone_id"], written["show_id"])] += seats
            changed.append(written)
    payments = [e for e in events if e["type"] in messages.PAYMENT_EVENTS]
    if payments:
        changed += await _write_payments(conn, payments)
    if changed:
        await _audit(conn, changed)
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
    vouchers = _newest_vouchers([e for e in events if e["type"] == messages.VOUCHER_CHANGED])
    if vouchers:
        await conn.execute(
            UPSERT_VOUCHERS,
            [v["tenant_id"] for v in vouchers],
            [v["code"] for v in vouchers],
            [v["user_id"] for v in vouchers],
            [_money(v["amount_cents"]) for v in vouchers],
            [v["currency"] for v in vouchers],
            [v["status"] for v in vouchers],
            [v.get("booking_id") or None for v in vouchers],
            [v["from_booking"] for v in vouchers],
            [v["version"] for v in vouchers],
        )
    pricing = [e for e in events if e["type"] == messages.PRICING_CHANGED]
    if pricing:
        await _write_pricing(conn, pricing)
    loads: dict[str, int] = {}
    for e in events:
        if e["type"] == messages.INVENTORY_LOADED and e.get("version") is not None:
            loads[e["event_id"]] = max(e["version"], loads.get(e["event_id"], e["version"]))
    if loads:
        await conn.execute(RECORD_LOADS, list(loads), list(loads.values()))
    moved = {where: seats for where, seats in held.items() if seats}
    if moved:
        await conn.execute(ADJUST_ZONES, [z for z, _ in moved], list(moved.values()))
        await conn.execute(ADJUST_SHOWS, [s for _, s in moved], list(moved.values()))


def trace_persisted(events: list[dict[str, Any]], started: int, ended: int) -> None:
    """A span per traced event, in its reservation's trace: the batch's transaction."""
    for event in events:
        if event.get("trace"):
            span = tracing.TRACER.start_span(
                f"persist {event['type']}",
                context=tracing.context_of(event["trace"]),
                kind=SpanKind.CONSUMER,
                start_time=started,
                attributes={"messaging.destination.name": "booking.events", "db.system": "postgresql"},
            )
            span.end(end_time=ended)


# What PostgreSQL (or a malformed event's missing field) refuses: never the whole role's end.
REFUSALS = (asyncpg.PostgresError, KeyError, TypeError, ValueError)


class PersistenceConsumer:
    """Consumes `booking.events`; commits offsets only after the transaction commits."""

    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: WorkerSettings) -> None:
        self.pool = pool
        self.producer = producer
        self.settings = settings
        self.stats = BatchStats(log, "events")
        self.consumer = group_consumer(
            settings.topics.events,
            settings.persistence_group,
            "persistence",
            settings,
            fetch_min_bytes=settings.persistence_fetch_min_bytes,
            fetch_max_wait_ms=settings.persistence_fetch_wait_ms,
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self.consumer.start()
        try:
            while not stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=500, max_records=self.settings.batch_size)
                metrics.record_lag(
                    self.consumer, self.settings.persistence_group, self.settings.topics.events, batches
                )
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
                        if tp in self.consumer.assignment():  # a rebalance may have moved it
                            self.consumer.seek(tp, rs[0].offset)
                    await asyncio.sleep(1.0)  # back off before refetching (retry pacing)
                    continue
                if self.settings.crash_after_persist:  # test hook: the rows are durable, the offsets not
                    os.kill(os.getpid(), signal.SIGKILL)
                await self._commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
                self.stats.add(len(records))
                self.stats.maybe_log()
        finally:
            await asyncio.wait_for(self.consumer.stop(), self.settings.shutdown_timeout_s)

    async def _commit(self, offsets) -> None:
        """Commit a written batch's offsets. A rebalance may have moved its partitions meanwhile
        (the commit is refused: not assigned, unknown member, generation gone): their new owner
        is given the batch again and writes it again, which changes nothing (idempotent)."""
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("offset commit refused (%r): the partitions' new owner writes the batch again", exc)

    async def _write(self, records) -> None:
        decoded = []
        for record in records:
            try:
                event = messages.decode(record.value)
            except ValueError as exc:
                await self._dead_letter(record, exc)
                continue
            carried = tracing.from_kafka_headers(record.headers)
            if carried and isinstance(event, dict):  # anything else is refused below
                event["trace"] = carried
            decoded.append((record, event))
        records = [r for r, _ in decoded]
        events = [e for _, e in decoded]
        try:
            started = time.time_ns()
            async with self.pool.acquire() as conn, conn.transaction():
                await apply_events(conn, events)
            trace_persisted(events, started, time.time_ns())
            return
        except REFUSALS:
            log.exception("batch of %d events refused; writing them one by one", len(events))
        for record, event in zip(records, events, strict=True):
            await self._write_one(record, event)

    async def _write_one(self, record, event: dict[str, Any]) -> None:
        """One event, tried `dead_letter_after` times (a deadlock or a serialization failure
        passes); one that keeps failing goes to the dead-letter topic, so its partition moves on."""
        for attempt in range(1, self.settings.dead_letter_after + 1):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await apply_events(conn, [event])
                return
            except REFUSALS as exc:
                if attempt == self.settings.dead_letter_after:
                    await self._dead_letter(record, exc)
                    return
                log.warning(
                    "event at %s:%s refused (try %d): %s", record.partition, record.offset, attempt, exc
                )

    async def _dead_letter(self, record, exc: Exception) -> None:
        log.error("dead-lettering event at %s:%s: %s", record.partition, record.offset, exc)
        await self.producer.send_and_wait(
            self.settings.topics.dead_letter,
            record.value,
            key=record.key,
            headers=[
                *(record.headers or ()),  # the event's own (its trace) stay with it
                ("error", str(exc).encode()[:1000]),
                ("source", f"{record.topic}:{record.partition}:{record.offset}".encode()),
            ],
        )
