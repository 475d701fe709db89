"""Key names in the sale Redis. Every key of an event carries the hash tag {ev:<event_id>}.

Limits span all shows of an event, so one tag per event keeps every script's keys in one slot.
"""

from __future__ import annotations

# Not a script key: the set of event ids whose holds the sweeper watches.
LIVE_EVENTS = "sale:events"
# Not script keys: event ids whose waiting room the admitters tick, and the channel on which
# admitters and operators tell every gateway process what each room is doing.
LIVE_ROOMS = "rooms:live"
ROOM_CHANNEL = "rooms:broadcast"
# Not a script key: rooms to tick at the next tick even if they were quiet (a join, a config
# change); the admitter takes the whole set each tick.
ROOMS_WAKE = "rooms:wake"
# Not a script key: cancelled events whose bookings are still being settled
# (workers/payments/cancellation.py takes each out when done; the sweeper resumes the rest).
CANCELLATIONS = "sale:cancellations"


def tag(event_id: str) -> str:
    return f"{{ev:{event_id}}}"


def zone(event_id: str, show_id: str, zone_id: str) -> str:
    return f"{tag(event_id)}:zone:{show_id}:{zone_id}"


def user_count(event_id: str, user_id: str) -> str:
    return f"{tag(event_id)}:user:{user_id}"


def hold(event_id: str, booking_id: str) -> str:
    return f"{tag(event_id)}:hold:{booking_id}"


def payment(event_id: str, payment_id: str) -> str:
    """A booking's payment (lua/begin_payment.lua documents the fields)."""
    return f"{tag(event_id)}:payment:{payment_id}"


def user_bookings(event_id: str, user_id: str) -> str:
    """The user's bookings in the event: zset booking id -> created at (ms)."""
    return f"{tag(event_id)}:bookings:{user_id}"


def user_events(user_id: str) -> str:
    """The events a user has booked in: a set outside every event's tag, written by the worker
    before it answers the client (so "my bookings" lists a booking the moment its 201 is sent)."""
    return f"user:{user_id}:events"


def expiry_index(event_id: str) -> str:
    return f"{tag(event_id)}:expiry"


def ended_index(event_id: str) -> str:
    """Holds that ended with no payment (expired, cancelled): zset booking id -> ended at (ms).
    The archiver shrinks each to a tombstone once PostgreSQL has its final state."""
    return f"{tag(event_id)}:ended"


def zone_index(event_id: str) -> str:
    """Set of the event's zone keys (every show), written when its inventory is loaded."""
    return f"{tag(event_id)}:zones"


def event_meta(event_id: str) -> str:
    return f"{tag(event_id)}:meta"


def promos(event_id: str) -> str:
    """The event's promo codes: hash CODE -> definition JSON (lua/_pricing.lua)."""
    return f"{tag(event_id)}:promos"


def promo_uses(event_id: str) -> str:
    """Uses of the event's promo codes: hash CODE -> uses, CODE|<user> -> that user's."""
    return f"{tag(event_id)}:promo_uses"


def voucher(tenant_id: str, code: str) -> str:
    """A compensation voucher (lua/voucher.lua): in its tenant's slot, not an event's (it is
    spent on the tenant's other events, and an event's scripts never read another slot)."""
    return f"{{tn:{tenant_id}}}:voucher:{code}"


def cancellation(event_id: str) -> str:
    """A cancelled event's settlement (workers/payments/cancellation.py): hash of its progress."""
    return f"{tag(event_id)}:cancellation"


def cancellation_todo(event_id: str) -> str:
    """The bookings a cancelled event still has to settle: set of booking ids."""
    return f"{tag(event_id)}:cancellation:todo"


def idempotency(event_id: str, user_id: str, scope: str) -> str:
    return f"{tag(event_id)}:idem:{user_id}:{scope}"


def request_result(event_id: str, request_id: str) -> str:
    return f"{tag(event_id)}:result:{request_id}"


def room(event_id: str, part: str) -> str:
    """A waiting-room key: config, waiting, prequeue, seq, admitted, passes, presence, bucket,
    admit_log, revoked, shuffle, streams, leases, joined, pow_used, called, notify,
    join_addresses (lua/queue_*.lua document each)."""
    return f"{tag(event_id)}:room:{part}"


def reserve_keys(
    event_id: str, user_id: str, scope: str, show_id: str, zone_id: str, booking_id: str
) -> list[str]:
    """KEYS of lua/reserve_seats.lua, in its order."""
    return [
        idempotency(event_id, user_id, scope),
        zone(event_id, show_id, zone_id),
        user_count(event_id, user_id),
        hold(event_id, booking_id),
        expiry_index(event_id),
        event_meta(event_id),
        room(event_id, "admitted"),
        user_bookings(event_id, user_id),
        promos(event_id),
        promo_uses(event_id),
    ]


def hold_keys(event_id: str, booking_id: str, user_id: str, show_id: str, zone_id: str) -> list[str]:
    """KEYS of the scripts that end a hold (lua/expire_hold.lua, lua/cancel_hold.lua), in order."""
    return [
        hold(event_id, booking_id),
        zone(event_id, show_id, zone_id),
        user_count(event_id, user_id),
        expiry_index(event_id),
        ended_index(event_id),
        promo_uses(event_id),
    ]


def trim_keys(event_id: str, booking_id: str, user_id: str) -> list[str]:
    """KEYS of lua/trim_hold.lua, in order."""
    return [hold(event_id, booking_id), ended_index(event_id), user_bookings(event_id, user_id)]


def payment_keys(
    event_id: str, booking_id: str, payment_id: str, user_id: str, show_id: str, zone_id: str
) -> list[str]:
    """KEYS of lua/settle_payment.lua and lua/refund_payment.lua, in order."""
    return [
        hold(event_id, booking_id),
        payment(event_id, payment_id),
        zone(event_id, show_id, zone_id),
        user_count(event_id, user_id),
        expiry_index(event_id),
        promo_uses(event_id),
    ]


def quote_keys(event_id: str, show_id: str, zone_id: str) -> list[str]:
    """KEYS of lua/quote_price.lua, in order."""
    return [zone(event_id, show_id, zone_id), event_meta(event_id), promos(event_id), promo_uses(event_id)]


def pricing_keys(event_id: str, idempotency_key: str, zone_key: str | None = None) -> list[str]:
    """KEYS of lua/set_pricing.lua, in order (the zone's only for an early-bird rule)."""
    return [idempotency_key, promos(event_id), event_meta(event_id), *([zone_key] if zone_key else [])]


def inventory_keys(event_id: str, idempotency_key: str, zones: list[tuple[str, str]]) -> list[str]:
    """KEYS of lua/load_inventory.lua, in order, for `zones` [(show id, zone id)]."""
    return [
        idempotency_key,
        event_meta(event_id),
        zone_index(event_id),
        *(zone(event_id, show_id, zone_id) for show_id, zone_id in zones),
    ]


def reply_channel(gateway_id: str) -> str:
    return f"replies:{gateway_id}"
