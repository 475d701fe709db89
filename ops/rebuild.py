"""rebuild: restore events' sale state in a sale Redis that lost its data.

Usage: python -m ops.rebuild [--event ID ...] [--prefix P] [--persistence-group G] [--yes]

Stop the command workers first (SIGTERM drains them). For each event (default: every published
event with a show still ahead) it writes, from the expected state of ops/sale_state.py
(PostgreSQL + the events after the persistence consumer's committed offsets + the dead-letter
topic), exactly what the scripts would have left:

- zones (total, available = total - held, price_cents), the zone index, the event's meta
  (max_per_user, suspended while its tenant is, and the newest inventory load's version) and its membership in
  keys.LIVE_EVENTS (lua/load_inventory.lua and the command consumer write the same);
- every booking's hold hash, in whatever status it is (a hold the archiver had trimmed to a
  tombstone comes back whole, and into the ended index, to be trimmed again); the expiry index (a
  reservation at its expires_at, a hold being paid for at its paying deadline, or now when that
  is unknown, so the sweeper asks the provider at once); each user's seat count, booking index
  and event set;
- each payment's hash, with the fields lua/begin_payment.lua and lua/settle_payment.lua write
  (settle_result too: without it a redelivered outcome would be applied a second time);
- each booking's idempotency record (h = body hash, r = the reserve's answer), so a redelivered
  or retried reserve command gets its first booking instead of selling again; and, while it is
  still within its TTL, the reserve's result key (what a client polling after a 202 reads).
  Idempotency records answered `unknown_zone` (written while the event had no inventory here)
  are dropped, so a client's retry is judged afresh.

It never sells a seat twice: an event whose zones already exist in Redis is refused (a live
counter is the truth) unless --yes, which replaces that event's zones, holds, payments, counts
and indexes with the expected state (the command workers must be stopped: it cannot tell). Keys
of those kinds left without a zone are cleared either way. An event is written in one MULTI/EXEC
transaction, watching its zone keys: a zone that appears meanwhile makes it write nothing. The
two sets outside the event's hash tag (users' events, live events) are added right after it, so
the transaction stays in one Redis Cluster slot.
An archived event (workers/archiver.py: its sale is over and its keys were removed) is never
brought back, named with --event or not. Waiting-room keys are not restored (the room starts
from its defaults), nor the answers of commands other than a booking's reserve. Exit status: 0
when every event was rebuilt (or skipped as archived), 1 when any was refused or is unknown, 2
on usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from redis.exceptions import WatchError

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from lua import keys
from ops.sale_state import (
    EventState,
    Say,
    add_sale_arguments,
    archived_events,
    bookings_by_user,
    event_keys,
    expected_state,
    sale_clients,
    say_nothing,
    tool_settings,
)
from workers.settings import WorkerSettings

# The fields the scripts keep on a hold (lua/reserve_seats.lua and every later transition).
HOLD_FIELDS = (
    "status",
    "user_id",
    "show_id",
    "zone_id",
    "quantity",
    "total_cents",
    "created_at",
    "expires_at",
    "request_id",
    "scope",
    "body_hash",
    "version",
    "payment_id",
    "paying_until",
    "confirmed_at",
    "ticket_code",
    "cancel_reason",
    "cancelled_at",
    "expired_at",
    "refunded_at",
    "remaining_after",
    "pricing",
    "eb_seats",
    "promo_code",
    "currency",
)

# The fields of a payment (lua/begin_payment.lua, settle_payment.lua, refund_payment.lua).
PAYMENT_FIELDS = (
    "payment_id",
    "booking_id",
    "user_id",
    "amount_cents",
    "method",
    "masked",
    "status",
    "attempts",
    "created_at",
    "updated_at",
    "version",
    "provider_ref",
    "failure_reason",
    "settle_result",
    "settled_at",
    "refund_status",
    "refund_reason",
    "refund_percent",
    "refund_cents",
    "refund_requested_at",
    "refund_approved_at",
    "refund_refused_at",
    "refund_superseded",
    "topup_status",
    "topup_cents",
    "topup_reason",
    "topup_approved_at",
    "topup_ref",
    "topup_refunded_at",
    "refund_ref",
    "refunded_at",
)

# What an event's keys are called after its tag: the state a rebuild writes (and --yes replaces).
STATE_PARTS = (
    "zone:",
    "hold:",
    "payment:",
    "user:",
    "bookings:",
    "expiry",
    "ended",
    "zones",
    "meta",
    "promos",
    "promo_uses",
)

ON_SALE = """
SELECT e.id FROM events e
WHERE e.status = 'published'
  AND EXISTS (SELECT 1 FROM shows s WHERE s.event_id = e.id AND s.show_date > now())
  AND NOT EXISTS (SELECT 1 FROM event_archives a WHERE a.event_id = e.id)
ORDER BY e.created_at
"""


@dataclass
class EventRebuild:
    event_id: str
    refused: str | None = None  # why nothing was written
    zones: int = 0
    holds: Counter[str] = field(default_factory=Counter)  # status -> holds
    payments: int = 0
    users: int = 0
    idempotency_records: int = 0
    results: int = 0
    dropped_records: int = 0  # unknown_zone answers removed
    cleared_keys: int = 0  # state keys there before (with --yes: the live state replaced)

    def __str__(self) -> str:
        if self.refused:
            return f"event {self.event_id}: REFUSED: {self.refused}"
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.holds.items())) or "none"
        extra = f", {self.cleared_keys} keys there before replaced" if self.cleared_keys else ""
        return (
            f"event {self.event_id}: {self.zones} zones, {sum(self.holds.values())} holds ({statuses}), "
            f"{self.payments} payments, {self.users} users, {self.idempotency_records} idempotency "
            f"records, {self.results} result keys, {self.dropped_records} unknown_zone answers dropped{extra}"
        )


@dataclass
class RebuildSummary:
    events: list[EventRebuild]
    missing: list[str]  # not in PostgreSQL
    archived: list[str] = field(default_factory=list)  # over and archived: never brought back

    @property
    def ok(self) -> bool:
        return not self.missing and all(e.refused is None for e in self.events)

    def summary(self) -> str:
        done = [e for e in self.events if e.refused is None]
        refused = len(self.events) - len(done)
        seats = sum(sum(e.holds.values()) for e in done)
        return (
            f"summary: {len(done)} events rebuilt ({seats} holds), {refused} refused, "
            f"{len(self.missing)} unknown, {len(self.archived)} archived (skipped); "
            + ("OK" if self.ok else "NOT OK")
        )


# --- what to write ---------------------------------------------------------------------------


def _fields(record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: record[n] for n in names if record.get(n) is not None and not isinstance(record[n], bool)}


def hold_hash(booking: dict[str, Any]) -> dict[str, Any]:
    pricing = booking.get("pricing")
    return _fields(
        {
            **booking,
            "scope": booking.get("idempotency_scope"),
            # The breakdown as lua/reserve_seats.lua keeps it: JSON text.
            "pricing": messages.encode(pricing).decode() if pricing else None,
        },
        HOLD_FIELDS,
    )


def settle_result(payment: dict[str, Any]) -> str | None:
    """What lua/settle_payment.lua recorded as the outcome (PostgreSQL has no column for it)."""
    if payment.get("settle_result"):
        return payment["settle_result"]
    status = payment["status"]
    if status == "failed":
        return "payment_failed"
    if status in ("success", "refunded"):
        return "late_success" if payment.get("refund_reason") == "late_payment" else "confirmed"
    return None  # pending or processing: not settled yet


def payment_hash(payment: dict[str, Any]) -> dict[str, Any]:
    return _fields({**payment, "settle_result": settle_result(payment)}, PAYMENT_FIELDS)


def reserve_answer(booking: dict[str, Any], remaining: int) -> bytes:
    """The JSON lua/reserve_seats.lua stored as its answer (`r` of the idempotency record)."""
    return orjson.dumps(
        {
            "status": "reserved",
            "booking_id": booking["booking_id"],
            "user_id": booking["user_id"],
            "show_id": booking["show_id"],
            "zone_id": booking["zone_id"],
            "quantity": booking["quantity"],
            "total_cents": booking["total_cents"],
            "remaining": remaining,
            "created_at": booking["created_at"],
            "expires_at": booking["expires_at"],
            "request_id": booking["request_id"],
            **({"pricing": booking["pricing"]} if booking.get("pricing") else {}),
        }
    )


def paying_deadline(booking: dict[str, Any], state: EventState, settings: WorkerSettings) -> int | None:
    """A paying hold's deadline: from its record, else its payment's start + the paying hold time
    (lua/begin_payment.lua sets both from one clock); None when neither is known."""
    if booking.get("paying_until"):
        return booking["paying_until"]
    payment = state.payments.get(booking.get("payment_id") or "")
    if payment and payment.get("created_at"):
        return payment["created_at"] + settings.payment_hold_ms
    return None


def _queue_event(pipe, state: EventState, settings: WorkerSettings, done: EventRebuild, now: int) -> None:
    """Every write of one event's state, on a transaction's pipeline."""
    ev = state.event_id
    zone_keys = []
    for (show, zone_id), zone in state.zones.items():
        key = keys.zone(ev, show, zone_id)
        zone_keys.append(key)
        pipe.hset(
            key, mapping={"available": zone.available, "total": zone.total, "price_cents": zone.price_cents}
        )
    if zone_keys:
        pipe.sadd(keys.zone_index(ev), *zone_keys)
    _queue_pricing(pipe, state)
    pipe.hset(keys.event_meta(ev), "max_per_user", state.max_per_user)
    if state.suspended:  # as lua/sale_state.lua left it (tenants.status says so)
        pipe.hset(keys.event_meta(ev), "suspended", "1")
    else:
        pipe.hdel(keys.event_meta(ev), "suspended")
    if state.cancelled:  # for good (events.status says so)
        pipe.hset(keys.event_meta(ev), "cancelled", "1")
    if state.inventory_version is not None:
        pipe.hset(keys.event_meta(ev), "inventory_version", state.inventory_version)
    done.zones = len(zone_keys)

    expiry: dict[str, int] = {}
    idem_ttl_ms, result_ttl_ms = settings.idempotency_ttl_s * 1000, settings.result_ttl_s * 1000
    for booking_id, b in state.bookings.items():
        fields = hold_hash(b)
        if b["status"] == "paying":
            deadline = paying_deadline(b, state, settings)
            if deadline is not None:
                fields["paying_until"] = deadline
            expiry[booking_id] = deadline if deadline is not None else now
        elif b["status"] == "reserved":
            expiry[booking_id] = b.get("expires_at") or now
        pipe.hset(keys.hold(ev, booking_id), mapping=fields)
        done.holds[b["status"]] += 1
        if b["status"] in ("expired", "cancelled") and not b.get("payment_id"):
            # The archiver trims it to a tombstone once PostgreSQL has it (lua/trim_hold.lua).
            ended_at = b.get("expired_at") or b.get("cancelled_at") or now
            pipe.zadd(keys.ended_index(ev), {booking_id: ended_at})

        zone = state.zones.get((b["show_id"], b["zone_id"]))
        answer = reserve_answer(b, state.remaining.get(booking_id, zone.available if zone else 0))
        scope = b.get("idempotency_scope") or f"r:{b['request_id']}"
        if b["created_at"] + idem_ttl_ms > now:  # one past its TTL would be gone by now anyway
            record = keys.idempotency(ev, b["user_id"], scope)
            pipe.hset(record, mapping={"h": b["body_hash"], "r": answer})
            pipe.pexpireat(record, b["created_at"] + idem_ttl_ms)
            done.idempotency_records += 1
        if b["created_at"] + result_ttl_ms > now:
            reply = {"request_id": b["request_id"], "user_id": b["user_id"], "result": orjson.loads(answer)}
            pipe.set(keys.request_result(ev, b["request_id"]), messages.encode(reply))
            pipe.pexpireat(keys.request_result(ev, b["request_id"]), b["created_at"] + result_ttl_ms)
            done.results += 1
    if expiry:
        pipe.zadd(keys.expiry_index(ev), expiry)

    for user, bookings in bookings_by_user(state).items():
        pipe.zadd(keys.user_bookings(ev, user), {b["booking_id"]: b["created_at"] for b in bookings})
    for user, seats in state.user_counts.items():
        pipe.set(keys.user_count(ev, user), seats)
    done.users = len(bookings_by_user(state))

    for payment_id, p in state.payments.items():
        pipe.hset(keys.payment(ev, payment_id), mapping=payment_hash(p))
    done.payments = len(state.payments)


def _queue_pricing(pipe, state: EventState) -> None:
    """The rules and codes as lua/set_pricing.lua left them, and what the bookings holding seats
    took of them (lua/reserve_seats.lua): the early-bird places per zone, the codes' uses."""
    ev = state.event_id
    for (show, zone_id), zone in state.zones.items():
        rule = state.early_birds.get((show, zone_id))
        fields: dict[str, Any] = {"eb_taken": zone.eb_taken} if rule or zone.eb_taken else {}
        if rule:
            fields["eb_on"] = "1" if rule.get("on") else "0"
            fields.update(
                {f"eb_{k}": rule[k] for k in ("kind", "value", "until", "seats") if rule.get(k) is not None}
            )
        if fields:
            pipe.hset(keys.zone(ev, show, zone_id), mapping=fields)
    if state.promo_codes:
        definitions = {
            code: messages.encode({k: v for k, v in d.items() if k != "version"})
            for code, d in state.promo_codes.items()
        }
        pipe.hset(keys.promos(ev), mapping=definitions)
    if state.promo_uses:
        pipe.hset(keys.promo_uses(ev), mapping=state.promo_uses)
    if state.bundles:
        pipe.hset(keys.event_meta(ev), "bundles", messages.encode(state.bundles))
    if state.pricing_version:
        pipe.hset(keys.event_meta(ev), "pricing_version", state.pricing_version)


async def _register_event(redis, state: EventState) -> None:
    """The keys outside the event's hash tag (each user's set of events, the sweeper's set of
    live events), after the transaction: on a Redis Cluster one transaction holds one slot."""
    async with redis.pipeline(transaction=False) as pipe:
        for user in bookings_by_user(state):
            pipe.sadd(keys.user_events(user), state.event_id)
        pipe.sadd(keys.LIVE_EVENTS, state.event_id)
        await pipe.execute()


async def _unknown_zone_answers(redis, event_id: str, found_keys: list[str]) -> list[str]:
    """Idempotency records of reserves answered while the event had no inventory here."""
    found = [k for k in found_keys if k.startswith(f"{keys.tag(event_id)}:idem:")]
    if not found:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key in found:
            pipe.hget(key, "r")
        answers = await pipe.execute()
    return [
        key
        for key, raw in zip(found, answers, strict=True)
        if raw and b'"unknown_zone"' in raw and messages.decode(raw).get("status") == "unknown_zone"
    ]


def _state_keys(event_id: str, found_keys: list[str]) -> list[str]:
    prefix = keys.tag(event_id) + ":"
    return [k for k in found_keys if k[len(prefix) :].startswith(STATE_PARTS)]


async def rebuild_event(
    redis, state: EventState, settings: WorkerSettings, *, replace: bool = False
) -> EventRebuild:
    """Write one event's expected state in one transaction (see the module docstring)."""
    ev = state.event_id
    done = EventRebuild(ev)
    guarded = [keys.zone(ev, s, z) for s, z in state.zones] + [keys.zone_index(ev)]
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.watch(*guarded)
        if await pipe.exists(*guarded) and not replace:
            await pipe.reset()
            done.refused = "its zones already exist in the sale Redis (a live counter); --yes replaces"
            return done
        # With --yes the live state; without, leftovers no zone backs (a count, a hold): either
        # way they go, or a stale count or field would outlive the rebuild.
        found = await event_keys(redis, ev)
        stale = _state_keys(ev, found)
        dropped = await _unknown_zone_answers(redis, ev, found)
        pipe.multi()
        if stale:
            pipe.delete(*stale)
        if dropped:
            pipe.delete(*dropped)
        _queue_event(pipe, state, settings, done, now_ms())
        try:
            await pipe.execute()
        except WatchError:
            return EventRebuild(
                ev, refused="a zone changed while rebuilding (workers running?); nothing written"
            )
    await _register_event(redis, state)
    done.cleared_keys, done.dropped_records = len(stale), len(dropped)
    return done


async def events_on_sale(pool: asyncpg.Pool) -> list[str]:
    return [str(r["id"]) for r in await pool.fetch(ON_SALE)]


async def rebuild(
    redis,
    pool: asyncpg.Pool,
    settings: WorkerSettings,
    event_ids: list[str] | None = None,
    *,
    replace: bool = False,
    say: Say = say_nothing,
) -> RebuildSummary:
    """Rebuild `event_ids` (default: the events on sale) in the sale Redis; `replace` is --yes."""
    events = sorted(set(event_ids)) if event_ids is not None else await events_on_sale(pool)
    archived = await archived_events(pool, events)
    for event_id, at in sorted(archived.items()):
        say(f"event {event_id}: archived {at:%Y-%m-%d %H:%M} (its sale is over); not brought back")
    events = [e for e in events if e not in archived]
    say(f"rebuilding {len(events)} events")
    expected = await expected_state(pool, settings, events, say)
    summary = RebuildSummary([], expected.missing, sorted(archived))
    for missing in expected.missing:
        say(f"event {missing}: not in PostgreSQL; skipped")
    for _, state in sorted(expected.events.items()):
        done = await rebuild_event(redis, state, settings, replace=replace)
        summary.events.append(done)
        say(str(done))
    return summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops.rebuild", description=__doc__.split("\n\n")[0])
    add_sale_arguments(parser)
    parser.add_argument(
        "--yes", action="store_true", help="replace an event whose zones exist in Redis (workers stopped!)"
    )
    return parser


async def _main(args: argparse.Namespace) -> int:
    settings = tool_settings(args.prefix, args.persistence_group)
    async with sale_clients(settings) as (redis, pool):
        summary = await rebuild(
            redis, pool, settings, args.events, replace=args.yes, say=lambda line: print(line, flush=True)
        )
    print(summary.summary())
    return 0 if summary.ok else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_main(_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
