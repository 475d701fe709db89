"""The message schema shared by gateway and workers: ids, commands, events and replies.

Commands travel on the `reservations` topic (key = show id); events on `booking.events`;
replies on each gateway process's Redis pub/sub channel, one message per worker batch.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from typing import Any

import orjson

RESERVE = "reserve"
EXPIRE = "expire"
ADJUST_ZONE = "adjust_zone"
BOOKING_CREATED = "booking.created"
BOOKING_EXPIRED = "booking.expired"
CANCEL = "cancel"
BOOKING_CANCELLED = "booking.cancelled"
ZONE_ADJUSTED = "inventory.zone_adjusted"

_PUBLIC_ID = re.compile(r"^[0-9a-f]{64}$")


def new_public_ids(event_id: str) -> tuple[str, str]:
    """Two public ids of one event (a request and its booking) from one read of the OS's RNG."""
    prefix = event_id.replace("-", "")
    random = os.urandom(32).hex()
    return prefix + random[:32], prefix + random[32:]


def new_public_id(event_id: str) -> str:
    """An id handed to clients (booking id, request id): the event's uuid, then 128 random bits.

    The server finds the event (and so every key of it) from the id alone, with no lookup.
    `event_id` is a canonical (lower-case, hyphenated) UUID string.
    """
    return event_id.replace("-", "") + os.urandom(16).hex()


def event_of(public_id: str) -> str | None:
    """The event id inside a public id, or None when the string is not one of ours."""
    if not _PUBLIC_ID.match(public_id):
        return None
    return str(uuid.UUID(public_id[:32]))


def row_id(public_id: str) -> str:
    """The booking's primary key in PostgreSQL: the random half of its public id."""
    return str(uuid.UUID(public_id[32:]))


def body_hash(fields: dict[str, Any]) -> str:
    """A stable hash of a request body's meaningful fields (same key + other body -> 422)."""
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def idempotency_scope(idempotency_key: str | None, request_id: str) -> str:
    return f"k:{idempotency_key}" if idempotency_key else f"r:{request_id}"


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def decode(raw: bytes | str) -> dict[str, Any]:
    return orjson.loads(raw)


def reserve_command(
    *,
    request_id: str,
    booking_id: str,
    event_id: str,
    show_id: str,
    zone_id: str,
    user_id: str,
    quantity: int,
    idempotency_key: str | None,
    body_hash: str,
    deadline_ms: int,
    accept_by_ms: int,
    reply_to: str,
) -> dict[str, Any]:
    """`accept_by_ms`: the broker must append it by then; `deadline_ms`: a worker must apply it."""
    return {
        "type": RESERVE,
        "request_id": request_id,
        "booking_id": booking_id,
        "event_id": event_id,
        "show_id": show_id,
        "zone_id": zone_id,
        "user_id": user_id,
        "quantity": quantity,
        "idempotency_key": idempotency_key,
        "body_hash": body_hash,
        "deadline_ms": deadline_ms,
        "accept_by_ms": accept_by_ms,
        "reply_to": reply_to,
    }


def expire_command(
    *, event_id: str, booking_id: str, user_id: str, show_id: str, zone_id: str
) -> dict[str, Any]:
    """A system command: no deadline, retried until it applies."""
    return {
        "type": EXPIRE,
        "event_id": event_id,
        "booking_id": booking_id,
        "user_id": user_id,
        "show_id": show_id,
        "zone_id": zone_id,
    }


def cancel_command(
    *,
    request_id: str,
    event_id: str,
    booking_id: str,
    user_id: str,
    show_id: str,
    zone_id: str,
    reply_to: str,
) -> dict[str, Any]:
    """The owner cancels a reservation; like a system command it has no deadline (cancelling
    late only returns seats later) and applies once."""
    return {
        "type": CANCEL,
        "request_id": request_id,
        "event_id": event_id,
        "booking_id": booking_id,
        "user_id": user_id,
        "show_id": show_id,
        "zone_id": zone_id,
        "reply_to": reply_to,
    }


def adjust_zone_command(
    *, request_id: str, event_id: str, show_id: str, zone_id: str, user_id: str, total: int, reply_to: str
) -> dict[str, Any]:
    """An organizer's seat-count change; a system-side command: no deadline, applied once."""
    return {
        "type": ADJUST_ZONE,
        "request_id": request_id,
        "event_id": event_id,
        "show_id": show_id,
        "zone_id": zone_id,
        "user_id": user_id,
        "total": total,
        "reply_to": reply_to,
    }


def zone_adjusted_event(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": ZONE_ADJUSTED,
        "event_id": command["event_id"],
        "show_id": command["show_id"],
        "zone_id": command["zone_id"],
        "request_id": command["request_id"],
        "previous_total": result["previous_total"],
        "total": result["total"],
        "available": result["available"],
    }


def booking_created_event(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The durable record of a reservation: enough to rebuild the booking and its idempotency."""
    return {
        "type": BOOKING_CREATED,
        "event_id": command["event_id"],
        "booking_id": result["booking_id"],
        "user_id": result["user_id"],
        "show_id": result["show_id"],
        "zone_id": result["zone_id"],
        "quantity": result["quantity"],
        "total_cents": result["total_cents"],
        "remaining": result["remaining"],
        "created_at": result["created_at"],
        "expires_at": result["expires_at"],
        # The first request's id; a same-key retry is answered from this record.
        "request_id": result["request_id"],
        "idempotency_scope": idempotency_scope(command.get("idempotency_key"), result["request_id"]),
        "body_hash": command["body_hash"],
    }


def _hold_ended_event(
    kind: str, at_field: str, command: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any]:
    """A hold that ended (expired, cancelled): its seats went back to the zone."""
    fields = ("booking_id", "user_id", "show_id", "zone_id", "quantity", "remaining", at_field)
    return {"type": kind, "event_id": command["event_id"], **{f: result[f] for f in fields}}


def booking_expired_event(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return _hold_ended_event(BOOKING_EXPIRED, "expired_at", command, result)


def booking_cancelled_event(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return _hold_ended_event(BOOKING_CANCELLED, "cancelled_at", command, result)


def reply(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """What a gateway is told about one request (also stored under the request's result key)."""
    return {"request_id": command["request_id"], "user_id": command["user_id"], "result": result}
