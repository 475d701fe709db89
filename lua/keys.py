"""Key names in the sale Redis. Every key of an event carries the hash tag {ev:<event_id>}.

Limits span all shows of an event, so one tag per event keeps every script's keys in one slot.
"""

from __future__ import annotations

# Not a script key: the set of event ids whose holds the sweeper watches.
LIVE_EVENTS = "sale:events"


def tag(event_id: str) -> str:
    return f"{{ev:{event_id}}}"


def zone(event_id: str, show_id: str, zone_id: str) -> str:
    return f"{tag(event_id)}:zone:{show_id}:{zone_id}"


def user_count(event_id: str, user_id: str) -> str:
    return f"{tag(event_id)}:user:{user_id}"


def hold(event_id: str, booking_id: str) -> str:
    return f"{tag(event_id)}:hold:{booking_id}"


def expiry_index(event_id: str) -> str:
    return f"{tag(event_id)}:expiry"


def event_meta(event_id: str) -> str:
    return f"{tag(event_id)}:meta"


def idempotency(event_id: str, user_id: str, scope: str) -> str:
    return f"{tag(event_id)}:idem:{user_id}:{scope}"


def request_result(event_id: str, request_id: str) -> str:
    return f"{tag(event_id)}:result:{request_id}"


def reply_channel(gateway_id: str) -> str:
    return f"replies:{gateway_id}"
