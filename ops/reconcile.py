"""reconcile: does the sale Redis hold what the durable record says it should?

Usage: python -m ops.reconcile [--event ID ...] [--prefix P] [--persistence-group G]
                               [--review-group G] [--handled]

Compares, per event (default: every event in keys.LIVE_EVENTS; an archived one is listed as
such and not compared), the live sale Redis with the expected state of ops/sale_state.py
(PostgreSQL + the events after the persistence consumer's committed offsets + the dead-letter
topic): each zone's available and total seats, each hold's
status, quantity and owner (a tombstone, lua/trim_hold.lua: its status, and that only an ended
unpaid hold was trimmed), that every live hold is in the expiry index (or its seats never come
back), each user's seat count, each payment's status and refund, and holds or payments missing on
either side. Each difference is one line.

It also lists the dead letters nobody has handled yet. "Handled" is a consumer group of its own
on the dead-letter topic (default `<dead-letter topic>.review`): the listing shows the messages
after that group's committed offsets, and `--handled` commits the offsets just past what was
listed, so a letter that arrives meanwhile is still shown next time. Nothing else is written.

Run it when the sale is quiet: Redis changes before its events reach Kafka, so during a busy sale
a few in-flight bookings can show as differences that a second run no longer finds.

Exit status: 0 when there is no difference and no unhandled dead letter, 1 otherwise, 2 on usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from booking_rush.contract import messages
from lua import keys
from ops.sale_state import (
    EventState,
    Say,
    add_sale_arguments,
    archived_events,
    committed_offsets,
    decoded,
    event_keys,
    expected_state,
    read_between,
    sale_clients,
    say_nothing,
    tool_settings,
    topic_reader,
)
from workers.settings import WorkerSettings

# What lua/trim_hold.lua shrinks to a tombstone (when the hold never had a payment).
ENDED = frozenset({"expired", "cancelled"})

# A payment whose "processing" step did not bump its version may be "pending" in PostgreSQL
# while Redis says "processing": the same state as far as money and seats go.
_SAME_PAYMENT_STATUS = {"processing": "pending"}


@dataclass(frozen=True)
class Difference:
    event_id: str
    kind: str  # e.g. "zone available", "hold missing", "user count"
    subject: str  # the zone (show/zone), booking, user or payment it is about
    redis: Any
    expected: Any

    def __str__(self) -> str:
        return (
            f"event {self.event_id}: {self.kind}: {self.subject}: redis={self.redis} expected={self.expected}"
        )


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    error: str
    source: str  # topic:partition:offset of the original event
    about: str  # the event's type and ids, or what could not be decoded

    def __str__(self) -> str:
        return f"dead letter {self.partition}:{self.offset} ({self.source}): {self.about}: {self.error}"


@dataclass
class Report:
    events: list[str]
    differences: list[Difference] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)  # not handled (before this run)
    marked_handled: int = 0
    archived: list[str] = field(default_factory=list)  # named, but over and archived: not compared
    bookings: int = 0
    zones: int = 0

    @property
    def unhandled(self) -> int:
        return len(self.dead_letters) - self.marked_handled

    @property
    def ok(self) -> bool:
        return not self.differences and self.unhandled == 0

    def summary(self) -> str:
        handled = f", {self.marked_handled} marked handled now" if self.marked_handled else ""
        archived = f" ({len(self.archived)} archived, not compared)" if self.archived else ""
        return (
            f"summary: {len(self.events)} events{archived}, {self.zones} zones, "
            f"{self.bookings} bookings checked; "
            f"{len(self.differences)} differences; {len(self.dead_letters)} dead letters listed{handled}; "
            + ("OK" if self.ok else "NOT OK")
        )


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value) -> int | None:
    return None if value is None else int(value)


# --- the live side ---------------------------------------------------------------------------


@dataclass
class _Live:
    zones: dict[str, tuple[int | None, int | None]]  # zone key -> (available, total)
    eb_taken: dict[str, int]  # zone key -> early-bird places taken (lua/_pricing.lua)
    zone_index: set[str]
    holds: dict[str, dict[str, str]]  # booking id -> fields
    users: dict[str, int]
    payments: dict[str, dict[str, str]]
    expiry: set[str]
    promo_codes: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> definition
    promo_uses: dict[str, int] = field(default_factory=dict)  # code (and code|user) -> uses
    bundles: list[dict[str, Any]] = field(default_factory=list)


async def _hashes(redis, found: list[str], prefix: str, fields: tuple[str, ...]) -> dict[str, dict[str, str]]:
    async with redis.pipeline(transaction=False) as pipe:
        for key in found:
            pipe.hmget(key, *fields)
        values = await pipe.execute()
    return {
        key[len(prefix) :]: {f: _s(v) for f, v in zip(fields, row, strict=True) if v is not None}
        for key, row in zip(found, values, strict=True)
        if any(v is not None for v in row)  # not deleted since the scan
    }


async def read_live(redis, event_id: str) -> _Live:
    """One event's sale keys as the scripts left them (zones: those in the zone index)."""
    ev = event_id
    async with redis.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.zone_index(ev))
        pipe.zrange(keys.expiry_index(ev), 0, -1)
        pipe.hgetall(keys.promos(ev))
        pipe.hgetall(keys.promo_uses(ev))
        pipe.hget(keys.event_meta(ev), "bundles")
        index, expiry, promos, uses, bundles = await pipe.execute()
    zone_index = {_s(k) for k in index}
    hold_prefix, payment_prefix, user_prefix = (
        keys.hold(ev, ""),
        keys.payment(ev, ""),
        keys.user_count(ev, ""),
    )
    found = await event_keys(redis, ev)

    def under(prefix: str) -> list[str]:
        return [k for k in found if k.startswith(prefix)]

    holds = await _hashes(
        redis,
        under(hold_prefix),
        hold_prefix,
        ("status", "quantity", "user_id", "show_id", "zone_id"),
    )
    payments = await _hashes(
        redis,
        under(payment_prefix),
        payment_prefix,
        ("status", "refund_status", "booking_id"),
    )
    user_keys = under(user_prefix)
    counts = await redis.mget(user_keys) if user_keys else []
    live = _Live(
        zones={},
        eb_taken={},
        zone_index=zone_index,
        holds=holds,
        users={
            k[len(user_prefix) :]: int(v) for k, v in zip(user_keys, counts, strict=True) if v is not None
        },
        payments=payments,
        expiry={_s(b) for b in expiry},
        promo_codes={_s(c): messages.decode(d) for c, d in promos.items()},
        promo_uses={_s(c): int(n) for c, n in uses.items() if int(n) != 0},
        bundles=messages.decode(bundles) if bundles else [],
    )
    await read_zones(redis, live, sorted(zone_index))
    return live


async def read_zones(redis, live: _Live, zone_keys: list[str]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for key in zone_keys:
            pipe.hmget(key, "available", "total", "eb_taken")
        rows = await pipe.execute()
    live.zones.update({k: (_int(a), _int(t)) for k, (a, t, _) in zip(zone_keys, rows, strict=True)})
    live.eb_taken.update({k: _int(e) or 0 for k, (_, _, e) in zip(zone_keys, rows, strict=True)})


# --- comparing -------------------------------------------------------------------------------


def compare(state: EventState, live: _Live) -> list[Difference]:
    """Every way the live Redis differs from the expected state of one event."""
    ev = state.event_id
    out: list[Difference] = []

    def diff(kind: str, subject: str, redis_value: Any, expected: Any) -> None:
        out.append(Difference(ev, kind, subject, redis_value, expected))

    for (show, zone_id), zone in sorted(state.zones.items()):
        subject = f"zone {show}/{zone_id}"
        if zone.held > zone.total:
            diff("zone oversold", subject, "-", f"held {zone.held} > total {zone.total}")
        key = keys.zone(ev, show, zone_id)
        available, total = live.zones[key]
        if available is None and total is None:
            diff("zone missing", subject, "absent", f"available {zone.available} of {zone.total}")
            continue
        if key not in live.zone_index:
            diff("zone not indexed", subject, "absent from the zone index", "in it")
        if available != zone.available:
            diff("zone available", subject, available, zone.available)
        if total != zone.total:
            diff("zone total", subject, total, zone.total)
        if live.eb_taken.get(key, 0) != zone.eb_taken:
            diff("zone early-bird places", subject, live.eb_taken.get(key, 0), zone.eb_taken)
    expected_zone_keys = {keys.zone(ev, s, z) for s, z in state.zones}
    for key in sorted(live.zone_index - expected_zone_keys):
        diff("zone extra", key, "in the zone index", "no such zone in PostgreSQL")

    for booking_id in sorted(state.bookings.keys() | live.holds.keys()):
        want, have = state.bookings.get(booking_id), live.holds.get(booking_id)
        subject = f"booking {booking_id}"
        if have is None:
            diff("hold missing", subject, "absent", f"{want['status']} x{want['quantity']}")
            continue
        if want is None:
            diff("hold extra", subject, f"{have.get('status')} x{have.get('quantity')}", "absent")
            continue
        if have.get("status") != want["status"]:
            diff("hold status", subject, have.get("status"), want["status"])
        if "user_id" not in have:  # a tombstone (lua/trim_hold.lua): only its status is left
            if want["status"] not in ENDED or want.get("payment_id"):
                diff("hold trimmed", subject, "tombstone", f"{want['status']} (only ended unpaid holds are)")
            continue
        if _int(have.get("quantity")) != want["quantity"]:
            diff("hold quantity", subject, have.get("quantity"), want["quantity"])
        owner = tuple(have.get(f) for f in ("user_id", "show_id", "zone_id"))
        if owner != (want["user_id"], want["show_id"], want["zone_id"]):
            diff(
                "hold owner",
                subject,
                "/".join(map(str, owner)),
                f"{want['user_id']}/{want['show_id']}/{want['zone_id']}",
            )
        if have.get("status") in ("reserved", "paying") and booking_id not in live.expiry:
            diff("hold not in expiry index", subject, "absent", "indexed (or its seats never return)")

    out += _compare_pricing(state, live)

    for user in sorted(state.user_counts.keys() | live.users.keys()):
        have_count, want_count = live.users.get(user, 0), state.user_counts.get(user, 0)
        if have_count != want_count:
            diff("user count", f"user {user}", have_count, want_count)

    for payment_id in sorted(state.payments.keys() | live.payments.keys()):
        want, have = state.payments.get(payment_id), live.payments.get(payment_id)
        subject = f"payment {payment_id}"
        if have is None:
            diff("payment missing", subject, "absent", want["status"])
        elif want is None:
            diff("payment extra", subject, have.get("status"), "absent")
        else:
            status = have.get("status")
            if _SAME_PAYMENT_STATUS.get(status, status) != _SAME_PAYMENT_STATUS.get(
                want["status"], want["status"]
            ):
                diff("payment status", subject, status, want["status"])
            if have.get("refund_status") != want.get("refund_status"):
                diff("payment refund", subject, have.get("refund_status"), want.get("refund_status"))
    return out


def _compare_pricing(state: EventState, live: _Live) -> list[Difference]:
    """Codes (each as its newest change left it), their uses (by the bookings holding seats),
    and the bundle tiers."""
    ev = state.event_id
    out = []
    for code in sorted(state.promo_codes.keys() | live.promo_codes.keys()):
        want = {k: v for k, v in state.promo_codes.get(code, {}).items() if k != "version"}
        have = live.promo_codes.get(code, {})
        if want != have:
            out.append(
                Difference(ev, "promo code", code, have.get("status", "absent"), want.get("status", "absent"))
            )
    for name in sorted(state.promo_uses.keys() | live.promo_uses.keys()):
        have_uses, want_uses = live.promo_uses.get(name, 0), state.promo_uses.get(name, 0)
        if have_uses != want_uses:
            out.append(Difference(ev, "promo code uses", name, have_uses, want_uses))
    if live.bundles != state.bundles:
        out.append(Difference(ev, "bundles", "tiers", live.bundles, state.bundles))
    return out


# --- dead letters ----------------------------------------------------------------------------


def review_group_of(settings: WorkerSettings) -> str:
    return f"{settings.topics.dead_letter}.review"


def _about(record) -> str:
    event = decoded(record)
    if event is None:
        return f"undecodable ({len(record.value or b'')} bytes)"
    ids = " ".join(f"{k}={event[k]}" for k in ("event_id", "booking_id", "payment_id") if event.get(k))
    return f"{event.get('type', '?')} {ids}".strip()


def _header(record, name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return value.decode(errors="replace")
    return ""


async def unhandled_dead_letters(
    settings: WorkerSettings, review_group: str
) -> tuple[list[DeadLetter], dict[TopicPartition, int]]:
    """The dead letters after the review group's committed offsets, and the offsets just past
    them (what `mark_handled` commits)."""
    async with topic_reader(settings.endpoints.kafka_bootstrap, settings.topics.dead_letter) as (
        consumer,
        parts,
    ):
        if not parts:
            return [], {}
        starts = await committed_offsets(settings.endpoints.kafka_bootstrap, review_group, parts)
        ends = await consumer.end_offsets(parts)
        letters = [
            DeadLetter(r.partition, r.offset, _header(r, "error"), _header(r, "source"), _about(r))
            async for r in read_between(consumer, starts, ends)
        ]
        return letters, ends


async def mark_handled(
    settings: WorkerSettings, review_group: str, offsets: dict[TopicPartition, int]
) -> None:
    """Commit `offsets` for the review group (a group nobody joins: it only keeps offsets)."""
    if not offsets:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.endpoints.kafka_bootstrap, group_id=review_group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


# --- the whole check -------------------------------------------------------------------------


async def live_events(redis) -> list[str]:
    return sorted(_s(e) for e in await redis.smembers(keys.LIVE_EVENTS))


async def reconcile(
    redis,
    pool: asyncpg.Pool,
    settings: WorkerSettings,
    event_ids: list[str] | None = None,
    *,
    review_group: str | None = None,
    handled: bool = False,
    say: Say = say_nothing,
) -> Report:
    """Compare the sale Redis with the expected state of `event_ids` (default: the live events)
    and list the unhandled dead letters; with `handled`, mark the listed ones handled."""
    events = sorted(set(event_ids)) if event_ids is not None else await live_events(redis)
    report = Report(events)
    archived = await archived_events(pool, events)
    for event_id, at in sorted(archived.items()):
        say(f"event {event_id}: archived {at:%Y-%m-%d %H:%M}; its sale state left Redis, not compared")
    report.archived = sorted(archived)
    events = [e for e in events if e not in archived]
    say(f"checking {len(events)} events")
    # The live side first: what Redis shows was applied by then, and its events (produced right
    # after the scripts ran) are in PostgreSQL or in the tail read after this.
    lives = {event_id: await read_live(redis, event_id) for event_id in events}
    states = {}
    if events:
        expected = await expected_state(pool, settings, events, say)
        for missing in expected.missing:
            report.differences.append(Difference(missing, "event unknown", "event", "-", "not in PostgreSQL"))
        states = expected.events
    for event_id, state in sorted(states.items()):
        live = lives[event_id]
        # A zone PostgreSQL has that the zone index lacks: read it on its own.
        await read_zones(
            redis,
            live,
            [
                keys.zone(event_id, s, z)
                for s, z in state.zones
                if keys.zone(event_id, s, z) not in live.zones
            ],
        )
        found = compare(state, live)
        report.differences += found
        report.bookings += len(state.bookings)
        report.zones += len(state.zones)
        say(
            f"event {event_id}: {len(state.zones)} zones, {len(state.bookings)} bookings, "
            f"{len(found)} differences"
        )
    group = review_group or review_group_of(settings)
    report.dead_letters, ends = await unhandled_dead_letters(settings, group)
    if handled and report.dead_letters:
        await mark_handled(settings, group, ends)
        report.marked_handled = len(report.dead_letters)
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops.reconcile", description=__doc__.split("\n\n")[0])
    add_sale_arguments(parser)
    parser.add_argument("--review-group", help="the dead letters' review group (default: <dlq topic>.review)")
    parser.add_argument("--handled", action="store_true", help="mark every dead letter listed as handled")
    return parser


async def _main(args: argparse.Namespace) -> int:
    settings = tool_settings(args.prefix, args.persistence_group)
    async with sale_clients(settings) as (redis, pool):
        report = await reconcile(
            redis,
            pool,
            settings,
            args.events,
            review_group=args.review_group,
            handled=args.handled,
            say=lambda line: print(line, flush=True),
        )
    for difference in report.differences:
        print(difference)
    for letter in report.dead_letters:
        print(letter)
    print(report.summary())
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
