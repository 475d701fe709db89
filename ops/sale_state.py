"""The EXPECTED sale state of events, worked out from what is durable (DESIGN.md rule 6).

The sale Redis is the live truth, but nothing checks it or brings it back by itself. What it must
hold follows from three durable sources, read in this order:

1. the persistence consumer group's committed offsets on `booking.events`;
2. PostgreSQL (one read-only snapshot): zones, bookings, payments, applied seat-count changes.
   Everything before those offsets is in it (the consumer commits only after its transaction);
3. the events after those offsets (not yet written, or written after the snapshot), and every
   event on the dead-letter topic (ones PostgreSQL refused are nowhere else).

Every booking and payment event carries the whole record and a version that only moves forward,
so records are merged per id keeping the highest version (on a tie the later source wins: an
event carries fields PostgreSQL has no column for, such as `paying_until`). Seat-count changes
are deltas recorded once by request id: a `zone_adjusted` event counts unless PostgreSQL already
recorded its request id. Nothing here writes anything; no offset is committed.

Used by ops/reconcile.py (compare with the live Redis) and ops/rebuild.py (restore it).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from booking_rush.contract import messages
from lua import keys
from workers.persistence import HOLDING  # statuses that keep seats out of the zone (and count for the user)
from workers.settings import WorkerSettings

Say = Callable[[str], None]


@contextlib.asynccontextmanager
async def sale_clients(settings: WorkerSettings):
    """(sale Redis, a small PostgreSQL pool) for a command-line tool, closed after."""
    redis = aioredis.from_url(settings.endpoints.sale_redis_url)
    pool = await asyncpg.create_pool(settings.endpoints.database_url, min_size=1, max_size=2)
    try:
        yield redis, pool
    finally:
        await pool.close()
        await redis.aclose()


def say_nothing(_: str) -> None:
    pass


async def event_keys(redis, event_id: str) -> list[str]:
    """Every key of one event in the sale Redis (they share its hash tag), in one SCAN."""
    found = redis.scan_iter(match=f"{keys.tag(event_id)}:*", count=1000)
    return [k if isinstance(k, str) else k.decode() async for k in found]


def add_sale_arguments(parser) -> None:
    """The options ops.reconcile and ops.rebuild share: which events, and whose topics."""
    parser.add_argument(
        "--event", action="append", dest="events", metavar="ID", help="an event id (repeatable)"
    )
    parser.add_argument("--prefix", help="topic prefix (default: $BR_TOPIC_PREFIX)")
    parser.add_argument("--persistence-group", help="default: $BR_PERSISTENCE_GROUP or booking-persistence")


def tool_settings(prefix: str | None = None, persistence_group: str | None = None) -> WorkerSettings:
    """The workers' own settings (from the environment: same services, topics and timings), with
    an operator's topic prefix and persistence group instead, when given."""
    settings = WorkerSettings.from_env()
    overrides: dict[str, Any] = {}
    if prefix is not None:
        overrides["endpoints"] = dataclasses.replace(settings.endpoints, topic_prefix=prefix)
    if persistence_group:
        overrides["persistence_group"] = persistence_group
    return dataclasses.replace(settings, **overrides)


@dataclass
class ZoneState:
    event_id: str
    show_id: str
    zone_id: str
    total: int
    price_cents: int
    held: int = 0
    eb_taken: int = 0  # early-bird places of the bookings holding seats (lua/_pricing.lua)

    @property
    def available(self) -> int:
        return self.total - self.held


@dataclass
class EventState:
    """What the sale Redis should hold for one event."""

    event_id: str
    max_per_user: int
    # The newest inventory load's version (lua/load_inventory.lua), None when none was recorded.
    inventory_version: int | None = None
    zones: dict[tuple[str, str], ZoneState] = field(default_factory=dict)  # (show, zone) ->
    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)  # public booking id -> record
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)  # public payment id -> record
    user_counts: dict[str, int] = field(default_factory=dict)  # user -> seats held or bought (> 0)
    # What a booking's reserve answered as `remaining`, where its booking.created event told it.
    remaining: dict[str, int] = field(default_factory=dict)
    suspended: bool = False  # its tenant is: nothing is sold (lua/sale_state.lua)
    cancelled: bool = False  # its organizer cancelled it: nothing is sold, ever
    # Pricing (lua/set_pricing.lua), each as its newest change left it: code -> definition,
    # (show, zone) -> early-bird rule, the bundle tiers; and the event's pricing version.
    promo_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    early_birds: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    bundles: list[dict[str, Any]] = field(default_factory=list)
    bundles_version: int = -1
    pricing_version: int = 0
    # What the bookings holding seats took: code -> uses, and "code|user" -> that user's.
    promo_uses: dict[str, int] = field(default_factory=dict)


@dataclass
class SaleState:
    events: dict[str, EventState]
    missing: list[str]  # asked for, but not in PostgreSQL
    tail_events: int  # read after the committed offsets (all events, not only these events')
    dead_letters: int


# --- reading a Kafka topic between offsets --------------------------------------------------


@contextlib.asynccontextmanager
async def topic_reader(
    bootstrap: str, topic: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A consumer outside every group (it only reads, and can commit nothing by accident) and
    the topic's partitions (none when the topic does not exist). One per topic: a client only
    refreshes metadata for the topics it already uses."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:  # not in the first metadata answer: ask once more
            await consumer._client.force_metadata_update()  # noqa: SLF001
            parts = consumer.partitions_for_topic(topic) or set()
        yield consumer, [TopicPartition(topic, p) for p in sorted(parts)]
    finally:
        await consumer.stop()


async def committed_offsets(
    bootstrap: str, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """The group's committed offset per partition (None: it never committed there)."""
    if not partitions:
        return {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    out: dict[TopicPartition, int | None] = {}
    for tp in partitions:
        meta = found.get(tp)
        out[tp] = meta.offset if meta is not None and meta.offset >= 0 else None
    return out


async def read_between(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int | None],
    ends: dict[TopicPartition, int],
) -> AsyncIterator[ConsumerRecord]:
    """Every record from `starts` (None: the log's beginning) up to, not including, `ends`.

    The ends are fixed by the caller, so a topic still being written still gives a bounded read.
    """
    partitions = [tp for tp in starts if (starts[tp] or 0) < ends[tp]]
    if not partitions:
        return
    consumer.assign(partitions)
    for tp in partitions:
        if starts[tp] is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, starts[tp])
    while True:
        behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
        if not behind:
            return
        batches = await consumer.getmany(*behind, timeout_ms=500)
        for tp, records in batches.items():
            for record in records:
                if record.offset < ends[tp]:
                    yield record


def decoded(record: ConsumerRecord) -> dict[str, Any] | None:
    """The event in a record, or None when it is not a JSON object (a dead letter can be anything)."""
    try:
        value = messages.decode(record.value)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- PostgreSQL ------------------------------------------------------------------------------

ZONES = """
SELECT e.id AS event_id, e.max_tickets_per_user, s.id AS show_id, z.id AS zone_id, z.total_seats,
       (z.price * 100)::bigint AS price_cents
FROM events e JOIN shows s ON s.event_id = e.id JOIN seat_zones z ON z.show_id = s.id
WHERE e.id = ANY($1::uuid[])
"""

EVENTS = (
    "SELECT e.id, e.max_tickets_per_user, t.status = 'suspended' AS suspended, "
    "e.status = 'cancelled' AS cancelled "
    "FROM events e JOIN tenants t ON t.id = e.tenant_id WHERE e.id = ANY($1::uuid[])"
)

LOADS = "SELECT event_id, version FROM inventory_loads WHERE event_id = ANY($1::uuid[])"

BOOKINGS = """
SELECT public_id, event_id, user_id, show_id, zone_id, quantity,
       (total_price * 100)::bigint AS total_cents, status, version, reservation_id, request_id,
       body_hash, reserved_at, expires_at, payment_id, ticket_code, cancel_reason, confirmed_at,
       price_breakdown, promo_code, early_bird_seats, currency
FROM bookings WHERE event_id = ANY($1::uuid[])
"""

PAYMENTS = """
SELECT p.public_id, b.public_id AS booking_id, b.user_id, b.event_id,
       (p.amount * 100)::bigint AS amount_cents, p.method, p.masked, p.status, p.provider_ref,
       p.failure_reason, p.attempts, p.refund_status, p.refund_percent,
       (p.refund_amount * 100)::bigint AS refund_cents, p.refund_reason, p.version, p.created_at,
       p.updated_at, p.topup_status, (p.topup_amount * 100)::bigint AS topup_cents
FROM payments p JOIN bookings b ON b.id = p.booking_id
WHERE b.event_id = ANY($1::uuid[]) AND p.public_id IS NOT NULL
"""

PROMO_CODES = "SELECT event_id, definition, version FROM promo_codes WHERE event_id = ANY($1::uuid[])"
PRICING_RULES = "SELECT event_id, kind, rule, version FROM pricing_rules WHERE event_id = ANY($1::uuid[])"

ADJUSTMENTS = """
SELECT a.request_id FROM inventory_adjustments a
JOIN seat_zones z ON z.id = a.zone_id JOIN shows s ON s.id = z.show_id
WHERE s.event_id = ANY($1::uuid[])
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(ts: datetime | None) -> int | None:
    """A timestamptz back to the milliseconds the event carried (exact: no float on the way)."""
    if ts is None:
        return None
    return ((ts - _EPOCH) // timedelta(microseconds=1) + 500) // 1000


def _booking_from_row(r: asyncpg.Record) -> dict[str, Any]:
    """A bookings row in the shape of a booking event's record (the fields PostgreSQL keeps)."""
    record = {
        "booking_id": r["public_id"],
        "event_id": str(r["event_id"]),
        "user_id": str(r["user_id"]),
        "show_id": str(r["show_id"]),
        "zone_id": str(r["zone_id"]),
        "quantity": r["quantity"],
        "total_cents": r["total_cents"],
        "status": r["status"],
        "version": r["version"],
        "created_at": ms(r["reserved_at"]),
        "expires_at": ms(r["expires_at"]),
        "request_id": r["request_id"],
        # reservation_id is f"{event}:{user}:{scope}"; the scope itself may contain ':'.
        "idempotency_scope": r["reservation_id"].split(":", 2)[2],
        "body_hash": r["body_hash"],
        "payment_id": r["payment_id"],
        "ticket_code": r["ticket_code"],
        "cancel_reason": r["cancel_reason"],
        "confirmed_at": ms(r["confirmed_at"]),
        "pricing": messages.decode(r["price_breakdown"]) if r["price_breakdown"] else None,
        "promo_code": r["promo_code"],
        "eb_seats": r["early_bird_seats"] or None,
        "currency": r["currency"],
    }
    return {k: v for k, v in record.items() if v is not None}


def _payment_from_row(r: asyncpg.Record) -> dict[str, Any]:
    record = {
        "payment_id": r["public_id"],
        "booking_id": r["booking_id"],
        "event_id": str(r["event_id"]),
        "user_id": str(r["user_id"]),
        "amount_cents": r["amount_cents"],
        "method": r["method"],
        "masked": r["masked"],
        "status": r["status"],
        "provider_ref": r["provider_ref"],
        "failure_reason": r["failure_reason"],
        "attempts": r["attempts"],
        "refund_status": r["refund_status"],
        "refund_percent": r["refund_percent"],
        "refund_cents": r["refund_cents"],
        "refund_reason": r["refund_reason"],
        "topup_status": r["topup_status"],
        "topup_cents": r["topup_cents"],
        "version": r["version"],
        "created_at": ms(r["created_at"]),
        "updated_at": ms(r["updated_at"]),
    }
    return {k: v for k, v in record.items() if v is not None}


@dataclass
class _Snapshot:
    events: dict[str, int]  # event id -> max per user
    suspended: set[str]  # events whose tenant is suspended (lua/sale_state.lua)
    cancelled: set[str]  # events their organizer cancelled
    zones: list[asyncpg.Record]
    bookings: list[asyncpg.Record]
    payments: list[asyncpg.Record]
    adjustments: set[str]
    loads: dict[str, int]  # event id -> newest inventory load's version
    pricing: list[dict[str, Any]]  # promo_codes and pricing_rules rows as pricing.changed events


async def _pg_snapshot(pool: asyncpg.Pool, event_ids: list[str]) -> _Snapshot:
    """One consistent view of every table (a seat-count change and the zone it grew together)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(EVENTS, event_ids)
        events = {str(r["id"]): r["max_tickets_per_user"] for r in rows}
        return _Snapshot(
            events=events,
            suspended={str(r["id"]) for r in rows if r["suspended"]},
            cancelled={str(r["id"]) for r in rows if r["cancelled"]},
            zones=await conn.fetch(ZONES, event_ids),
            bookings=await conn.fetch(BOOKINGS, event_ids),
            payments=await conn.fetch(PAYMENTS, event_ids),
            adjustments={r["request_id"] for r in await conn.fetch(ADJUSTMENTS, event_ids)},
            loads={str(r["event_id"]): r["version"] for r in await conn.fetch(LOADS, event_ids)},
            pricing=[
                *(_pricing_event(r, "promo") for r in await conn.fetch(PROMO_CODES, event_ids)),
                *(_pricing_event(r, r["kind"]) for r in await conn.fetch(PRICING_RULES, event_ids)),
            ],
        )


def _pricing_event(row: asyncpg.Record, what: str) -> dict[str, Any]:
    """A promo_codes or pricing_rules row, as the pricing.changed event it was written from."""
    rule = messages.decode(row["definition"] if what == "promo" else row["rule"])
    return {
        "type": messages.PRICING_CHANGED,
        "event_id": str(row["event_id"]),
        "what": what,
        "rule": rule,
        "version": row["version"],
    }


# --- merging ---------------------------------------------------------------------------------

# Fields an event adds around the record it carries (not part of the hold or payment hash).
_EVENT_ONLY = ("type", "remaining")


def _keep_newest(into: dict[str, dict[str, Any]], key: str, record: dict[str, Any]) -> None:
    """Highest version wins; on a tie the record seen later (a richer source) replaces it."""
    seen = into.get(record[key])
    if seen is None or record.get("version", 1) >= seen.get("version", 1):
        into[record[key]] = record


class _Merger:
    def __init__(self, snapshot: _Snapshot) -> None:
        self.states = {
            e: EventState(
                e,
                max_per_user,
                snapshot.loads.get(e),
                suspended=e in snapshot.suspended,
                cancelled=e in snapshot.cancelled,
            )
            for e, max_per_user in snapshot.events.items()
        }
        for r in snapshot.zones:
            state = self.states[str(r["event_id"])]
            zone = ZoneState(
                state.event_id, str(r["show_id"]), str(r["zone_id"]), r["total_seats"], r["price_cents"]
            )
            state.zones[(zone.show_id, zone.zone_id)] = zone
        for r in snapshot.bookings:
            record = _booking_from_row(r)
            _keep_newest(self.states[record["event_id"]].bookings, "booking_id", record)
        for r in snapshot.payments:
            record = _payment_from_row(r)
            _keep_newest(self.states[record["event_id"]].payments, "payment_id", record)
        for event in snapshot.pricing:
            self.add(event)
        self.adjusted_in_pg = snapshot.adjustments
        self.adjustments: dict[str, dict[str, Any]] = {}  # request id -> zone_adjusted event

    def add(self, event: dict[str, Any]) -> bool:
        """Merge one event from the log; False when it is not about these events."""
        state = self.states.get(str(event.get("event_id")))
        kind = event.get("type")
        if state is None:
            return False
        if kind in messages.BOOKING_EVENTS and event.get("booking_id"):
            if kind == messages.BOOKING_CREATED and event.get("remaining") is not None:
                state.remaining.setdefault(event["booking_id"], event["remaining"])
            record = {k: v for k, v in event.items() if k not in _EVENT_ONLY}
            _keep_newest(state.bookings, "booking_id", record)
        elif kind in messages.PAYMENT_EVENTS and event.get("payment_id"):
            # An event adds show_id; the record keeps it (harmless: the hash lists its fields).
            record = {k: v for k, v in event.items() if k not in _EVENT_ONLY}
            _keep_newest(state.payments, "payment_id", record)
        elif kind == messages.ZONE_ADJUSTED and event.get("request_id"):
            if event["request_id"] not in self.adjusted_in_pg:
                self.adjustments.setdefault(event["request_id"], event)
        elif kind == messages.PRICING_CHANGED:
            _apply_pricing(state, event)
        elif kind == messages.INVENTORY_LOADED and event.get("version") is not None:
            state.inventory_version = max(event["version"], state.inventory_version or event["version"])
        else:
            return False
        return True

    def finish(self) -> dict[str, EventState]:
        for event in self.adjustments.values():
            zone = self.states[event["event_id"]].zones.get((event["show_id"], event["zone_id"]))
            if zone is not None:
                zone.total += event["total"] - event["previous_total"]
        for state in self.states.values():
            users: Counter[str] = Counter()
            uses: Counter[str] = Counter()
            for b in state.bookings.values():
                if b.get("status") in HOLDING:
                    users[b["user_id"]] += b["quantity"]
                    zone = state.zones.get((b["show_id"], b["zone_id"]))
                    if zone is not None:
                        zone.held += b["quantity"]
                        zone.eb_taken += b.get("eb_seats") or 0
                    if b.get("promo_code"):
                        uses[b["promo_code"]] += 1
                        uses[f"{b['promo_code']}|{b['user_id']}"] += 1
            state.user_counts = {u: n for u, n in users.items() if n > 0}
            state.promo_uses = dict(uses)
        return self.states


def _apply_pricing(state: EventState, event: dict[str, Any]) -> None:
    """A pricing change, unless the event already has a newer one of the same rule (a rule's
    whole state travels in each change: lua/set_pricing.lua)."""
    what, rule, version = event["what"], event["rule"], event["version"]
    state.pricing_version = max(state.pricing_version, version)
    if what in ("promo", "promo_status"):
        seen = state.promo_codes.get(rule["code"])
        if seen is None or seen["version"] < version:
            state.promo_codes[rule["code"]] = {**rule, "version": version}
    elif what == "early_bird":
        where = (rule["show_id"], rule["zone_id"])
        seen = state.early_birds.get(where)
        if seen is None or seen["version"] < version:
            state.early_birds[where] = {**rule, "version": version}
    elif what == "bundles":
        if state.bundles_version < version:
            state.bundles = rule["tiers"] if isinstance(rule.get("tiers"), list) else []
            state.bundles_version = version


# --- the whole computation -------------------------------------------------------------------


async def expected_state(
    pool: asyncpg.Pool, settings: WorkerSettings, event_ids: Iterable[str], say: Say = say_nothing
) -> SaleState:
    """The expected state of `event_ids` (see the module docstring for where each part comes from).

    `settings` gives the Kafka bootstrap, the topic names (its prefix) and the persistence group.
    """
    wanted = sorted(set(event_ids))
    topic, dlq = settings.topics.events, settings.topics.dead_letter
    async with topic_reader(settings.endpoints.kafka_bootstrap, topic) as (consumer, parts):
        # First the offsets, then PostgreSQL: whatever the consumer commits after this read is
        # in the tail we read next, so nothing falls between the two.
        starts = await committed_offsets(
            settings.endpoints.kafka_bootstrap, settings.persistence_group, parts
        )
        never = sum(1 for s in starts.values() if s is None)
        say(
            f"persistence group {settings.persistence_group!r}: committed offsets on {len(parts)} "
            f"partitions of {topic}" + (f" ({never} never committed: read from the start)" if never else "")
        )
        snapshot = await _pg_snapshot(pool, wanted)
        merger = _Merger(snapshot)
        say(
            f"PostgreSQL: {len(snapshot.events)} events, {len(snapshot.zones)} zones, "
            f"{len(snapshot.bookings)} bookings, {len(snapshot.payments)} payments"
        )
        ends = await consumer.end_offsets(parts) if parts else {}
        tail = used = 0
        async for record in read_between(consumer, starts, ends):
            tail += 1
            event = decoded(record)
            used += event is not None and merger.add(event)
        say(f"{topic}: {tail} events after the committed offsets, {used} about these events")
    async with topic_reader(settings.endpoints.kafka_bootstrap, dlq) as (consumer, parts):
        ends = await consumer.end_offsets(parts) if parts else {}
        letters = used = 0
        async for record in read_between(consumer, dict.fromkeys(parts), ends):
            letters += 1
            event = decoded(record)
            used += event is not None and merger.add(event)
        say(f"{dlq}: {letters} dead letters, {used} about these events")
    return SaleState(
        events=merger.finish(),
        missing=[e for e in wanted if e not in snapshot.events],
        tail_events=tail,
        dead_letters=letters,
    )


async def archived_events(pool: asyncpg.Pool, event_ids: Iterable[str]) -> dict[str, datetime]:
    """Those of `event_ids` the archiver removed from the sale Redis (workers/archiver.py): event
    id -> when. Neither tool brings them back or compares them."""
    rows = await pool.fetch(
        "SELECT event_id::text AS id, archived_at FROM event_archives WHERE event_id = ANY($1::uuid[])",
        messages.uuid_ids(event_ids),
    )
    return {r["id"]: r["archived_at"] for r in rows}


def bookings_by_user(state: EventState) -> dict[str, list[dict[str, Any]]]:
    """Each user's bookings of the event (every status), as keys.user_bookings lists them."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in state.bookings.values():
        out[b["user_id"]].append(b)
    return out
