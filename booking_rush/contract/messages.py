"""The message schema shared by gateway and workers: ids, commands, events and replies.

Commands travel on the `reservations` topic (key = show id); events on `booking.events`;
replies on each gateway process's Redis pub/sub channel, one message per worker batch.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
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
LOAD_INVENTORY = "load_inventory"
INVENTORY_LOADED = "inventory.loaded"
SET_SALE_STATE = "set_sale_state"
SALE_STATE_CHANGED = "sale.state_changed"
SET_PRICING = "set_pricing"
VOUCHER = "voucher"
APPLY_VOUCHER = "apply_voucher"
VOUCHER_CHANGED = "voucher.changed"
PRICING_CHANGED = "pricing.changed"
BEGIN_PAYMENT = "begin_payment"
SETTLE_PAYMENT = "settle_payment"
REFUND = "refund"
BOOKING_PAYING = "booking.paying"
BOOKING_CONFIRMED = "booking.confirmed"
BOOKING_REFUNDED = "booking.refunded"
PAYMENT_CREATED = "payment.created"
PAYMENT_PROCESSING = "payment.processing"
PAYMENT_SUCCESS = "payment.success"
PAYMENT_FAILED = "payment.failed"
PAYMENT_REFUND_REQUESTED = "payment.refund_requested"
PAYMENT_REFUND_APPROVED = "payment.refund_approved"
PAYMENT_REFUND_REFUSED = "payment.refund_refused"
PAYMENT_REFUNDED = "payment.refunded"

# The event a booking record in each status is published as.
BOOKING_EVENT_OF = {
    "reserved": BOOKING_CREATED,
    "paying": BOOKING_PAYING,
    "confirmed": BOOKING_CONFIRMED,
    "cancelled": BOOKING_CANCELLED,
    "expired": BOOKING_EXPIRED,
    "refunded": BOOKING_REFUNDED,
}
BOOKING_EVENTS = frozenset(BOOKING_EVENT_OF.values())
PAYMENT_EVENTS = frozenset(
    {
        PAYMENT_CREATED,
        PAYMENT_PROCESSING,
        PAYMENT_SUCCESS,
        PAYMENT_FAILED,
        PAYMENT_REFUND_REQUESTED,
        PAYMENT_REFUND_APPROVED,
        PAYMENT_REFUND_REFUSED,
        PAYMENT_REFUNDED,
    }
)


def now_ms() -> int:
    """The time every command, event and record is stamped with: epoch milliseconds."""
    return int(time.time() * 1000)


_PUBLIC_ID = re.compile(r"[0-9a-f]{64}")


# How long a command's request id may be answered "pending" when it has no deadline of its own:
# the workers keep a result this long (BR_RESULT_TTL_SECONDS), so past it "no result" is final.
PENDING_WINDOW_MS = 900_000
# A reserve's: its deadline, plus the moment a worker takes to record a late one's refusal.
ANSWER_GRACE_MS = 5_000


def new_public_ids(event_id: str, answer_by_ms: int) -> tuple[str, str]:
    """A reserve's request id (see new_request_id) and its booking's id, from one read of the
    OS's RNG."""
    prefix = event_id.replace("-", "")
    random = os.urandom(26).hex()
    return prefix + f"{answer_by_ms:012x}" + random[:20], prefix + random[20:]


def new_request_id(event_id: str, answer_by_ms: int | None = None) -> str:
    """A command's request id: the event's uuid, the time (epoch ms, 48 bits) until which the
    command can still be answered, then 80 random bits. Polling it after that time without a
    result finds nothing (404), not "pending" for ever."""
    answer_by = now_ms() + PENDING_WINDOW_MS if answer_by_ms is None else answer_by_ms
    return event_id.replace("-", "") + f"{answer_by:012x}" + os.urandom(10).hex()


def answer_by(request_id: str) -> int:
    """The time (epoch ms) until which a request id from new_request_id can still be answered."""
    return int(request_id[32:44], 16)


def new_public_id(event_id: str) -> str:
    """An id handed to clients (booking id, request id): the event's uuid, then 128 random bits.

    The server finds the event (and so every key of it) from the id alone, with no lookup.
    `event_id` is a canonical (lower-case, hyphenated) UUID string.
    """
    return event_id.replace("-", "") + os.urandom(16).hex()


def event_of(public_id: str) -> str | None:
    """The event id inside a public id, or None when the string is not one of ours."""
    if not isinstance(public_id, str) or not _PUBLIC_ID.fullmatch(public_id):
        return None
    return str(uuid.UUID(public_id[:32]))


def uuid_ids(ids) -> list[str]:
    """Those of `ids` that are UUIDs (event ids in the sale Redis's live sets; a query casting
    them to uuid would fail on anything else)."""
    out = []
    for i in ids:
        try:
            uuid.UUID(i)
        except ValueError:
            continue
        out.append(i)
    return out


def row_id(public_id: str) -> str:
    """The booking's primary key in PostgreSQL: the random half of its public id."""
    return str(uuid.UUID(public_id[32:]))


def payment_id_of(booking_id: str) -> str:
    """The one payment of a booking: an id of the same event, derived from the booking id (so a
    second "pay" for the booking names the same payment, and no lookup is needed)."""
    return booking_id[:32] + hashlib.sha256(b"payment:" + booking_id.encode()).hexdigest()[:32]


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
    promo_code: str = "",
    currency: str = "",
) -> dict[str, Any]:
    """`accept_by_ms`: the broker must append it by then; `deadline_ms`: a worker must apply it.
    `promo_code`: upper case, '' for none; `currency`: the event's, kept on the hold."""
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
        "promo_code": promo_code,
        "currency": currency,
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


def begin_payment_command(
    *, request_id: str, hold: dict[str, Any], booking_id: str, method: str, masked: str, reply_to: str
) -> dict[str, Any]:
    """reserved -> paying, before the provider is charged (answered like a client command)."""
    return {
        "type": BEGIN_PAYMENT,
        "request_id": request_id,
        "event_id": event_of(booking_id),
        "booking_id": booking_id,
        "payment_id": payment_id_of(booking_id),
        "user_id": hold["user_id"],
        "show_id": hold["show_id"],
        "zone_id": hold["zone_id"],
        "method": method,
        "masked": masked,
        "reply_to": reply_to,
    }


def _payment_target(payment: dict[str, Any], hold: dict[str, Any]) -> dict[str, Any]:
    """What a payment script's keys are named after: the payment, its booking and the hold's
    user, show and zone."""
    return {
        "event_id": event_of(payment["booking_id"]),
        "booking_id": payment["booking_id"],
        "payment_id": payment["payment_id"],
        "user_id": hold["user_id"],
        "show_id": hold["show_id"],
        "zone_id": hold["zone_id"],
    }


def settle_payment_command(
    *, payment: dict[str, Any], hold: dict[str, Any], outcome: str, provider_ref: str = "", reason: str = ""
) -> dict[str, Any]:
    """A system command: the provider's outcome (success, failed). No deadline, no reply; it is
    retried until it applies. A success carries the e-ticket code the booking gets if this
    confirms it: random, so nobody can derive another booking's ticket."""
    return {
        "type": SETTLE_PAYMENT,
        **_payment_target(payment, hold),
        "outcome": outcome,
        "provider_ref": provider_ref,
        "reason": reason,
        "ticket_code": new_ticket_code() if outcome == "success" else "",
    }


def new_ticket_code() -> str:
    """An e-ticket code people can read out: BR- and 12 characters of Crockford base32."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    raw = int.from_bytes(os.urandom(8), "big")
    chars = "".join(alphabet[(raw >> (5 * i)) & 31] for i in range(12))
    return f"BR-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def refund_command(
    *,
    step: str,
    payment: dict[str, Any],
    hold: dict[str, Any],
    request_id: str | None = None,
    reply_to: str | None = None,
    percent: int = 0,
    amount_cents: int = 0,
    provider_ref: str = "",
    reason: str = "",
) -> dict[str, Any]:
    """One refund step (request, approve, refuse: answered to the gateway; complete: a system
    command). `reason`: a refusal's, told to the buyer."""
    return {
        "type": REFUND,
        "step": step,
        "request_id": request_id,
        **_payment_target(payment, hold),
        "percent": percent,
        "amount_cents": amount_cents,
        "provider_ref": provider_ref,
        "reason": reason,
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


def load_inventory_command(
    *,
    request_id: str,
    event_id: str,
    user_id: str,
    version: int | None,
    max_per_user: int,
    zones: list[list],
    reply_to: str,
) -> dict[str, Any]:
    """Publishing (or editing a published event): its zones go on sale, prices and the per-user
    limit are refreshed. `zones`: [show id, zone id, total seats, price in cents] each;
    `version`: the catalog generation of the edit (the newest load's prices win; None: the
    tools' direct load, unversioned). A system-side command: no deadline, applied once."""
    return {
        "type": LOAD_INVENTORY,
        "request_id": request_id,
        "event_id": event_id,
        "user_id": user_id,
        "version": version,
        "max_per_user": max_per_user,
        "zones": zones,
        "reply_to": reply_to,
    }


def sale_state_command(
    *, request_id: str, event_id: str, user_id: str, state: str, reason: str, reply_to: str
) -> dict[str, Any]:
    """An event's sale suspended ("suspended": its tenant was) or active again, by `user_id` (a
    system admin); applied in order with what reaches the sale Redis (lua/sale_state.lua). A
    system-side command: no deadline."""
    return {
        "type": SET_SALE_STATE,
        "request_id": request_id,
        "event_id": event_id,
        "user_id": user_id,
        "state": state,
        "reason": reason,
        "reply_to": reply_to,
    }


def set_pricing_command(
    *, request_id: str, event_id: str, user_id: str, what: str, change: dict[str, Any], reply_to: str
) -> dict[str, Any]:
    """An organizer's pricing change (lua/set_pricing.lua documents `what` and `change`): a
    system-side command, no deadline, applied once, in order with the reservations."""
    return {
        "type": SET_PRICING,
        "request_id": request_id,
        "event_id": event_id,
        "user_id": user_id,
        "what": what,
        "change": change,
        "reply_to": reply_to,
    }


def voucher_command(
    *,
    op: str,
    event_id: str,
    tenant_id: str,
    code: str,
    user_id: str,
    booking_id: str,
    request_id: str | None = None,
    reply_to: str = "",
    claim_until: int = 0,
    amount_cents: int = 0,
    currency: str = "",
) -> dict[str, Any]:
    """A step of a compensation voucher (lua/voucher.lua: issue, claim, release, use), applied in
    its tenant's slot; `event_id`: the booking's event (its answer is kept under its tag)."""
    return {
        "type": VOUCHER,
        "op": op,
        "request_id": request_id or new_request_id(event_id),
        "event_id": event_id,
        "tenant_id": tenant_id,
        "code": code,
        "user_id": user_id,
        "booking_id": booking_id,
        "claim_until": claim_until,
        "amount_cents": amount_cents,
        "currency": currency,
        "reply_to": reply_to,
    }


def apply_voucher_command(
    *, request_id: str, booking_id: str, hold: dict[str, Any], voucher: dict[str, Any], reply_to: str
) -> dict[str, Any]:
    """A claimed voucher taken off a reservation (lua/apply_voucher.lua, the event's slot)."""
    return {
        "type": APPLY_VOUCHER,
        "request_id": request_id,
        "event_id": event_of(booking_id),
        "booking_id": booking_id,
        "user_id": hold["user_id"],
        "show_id": hold["show_id"],
        "zone_id": hold["zone_id"],
        "code": voucher["code"],
        "amount_cents": int(voucher["amount_cents"]),
        "tenant_id": voucher["tenant_id"],
        "reply_to": reply_to,
    }


def voucher_changed_event(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The durable record of a voucher after a step (newest version wins)."""
    return {
        "type": VOUCHER_CHANGED,
        "event_id": command["event_id"],
        "voucher": typed_record(result["voucher"]),
    }


def pricing_changed_event(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The durable record of a pricing change as applied in the sale Redis (newest version wins)."""
    return {
        "type": PRICING_CHANGED,
        "event_id": command["event_id"],
        "request_id": command["request_id"],
        "what": result["what"],
        "rule": result["rule"],
        "version": result["version"],
        "at": result["at"],
    }


def sale_state_changed_event(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The durable record of a suspension or reactivation, as applied in the sale Redis."""
    return {
        "type": SALE_STATE_CHANGED,
        "event_id": command["event_id"],
        "request_id": command["request_id"],
        "state": result["status"],
        "reason": command["reason"],
        "room": result["room"],
    }


def inventory_loaded_event(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The durable record of a load: what was put on sale (counters never overwritten), and
    whether its prices and limit were applied (not when a newer load's were there already)."""
    return {
        "type": INVENTORY_LOADED,
        "event_id": command["event_id"],
        "request_id": command["request_id"],
        "version": command["version"],
        "max_per_user": command["max_per_user"],
        "zones": command["zones"],
        "created": result["created"],
        "prices_applied": result["status"] == "loaded",
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
        "pricing": result.get("pricing"),
        "eb_seats": (result.get("pricing") or {}).get("early_bird_seats", 0),
        "promo_code": command.get("promo_code", ""),
        "currency": command.get("currency", ""),
        "remaining": result["remaining"],
        "created_at": result["created_at"],
        "expires_at": result["expires_at"],
        # The first request's id; a same-key retry is answered from this record.
        "request_id": result["request_id"],
        "idempotency_scope": idempotency_scope(command.get("idempotency_key"), result["request_id"]),
        "body_hash": command["body_hash"],
        "status": "reserved",
        "version": 1,
    }


_INT_FIELDS = frozenset(
    {
        "quantity",
        "total_cents",
        "amount_cents",
        "created_at",
        "expires_at",
        "updated_at",
        "version",
        "paying_until",
        "confirmed_at",
        "cancelled_at",
        "expired_at",
        "refunded_at",
        "settled_at",
        "remaining_after",
        "attempts",
        "refund_percent",
        "refund_cents",
        "refund_requested_at",
        "refund_approved_at",
        "refund_refused_at",
        "topup_cents",
        "topup_approved_at",
        "topup_refunded_at",
        "voucher_cents",
        "claim_until",
        "eb_seats",
    }
)


def typed_record(record: dict[str, Any]) -> dict[str, Any]:
    """A hold or payment hash as the scripts return it (every value a string), with numbers as
    numbers."""
    return {k: int(v) if k in _INT_FIELDS and v not in ("", None) else v for k, v in record.items()}


def redis_record(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """A hold or payment hash as HGETALL returns it (bytes), typed ({} when there is none)."""
    return typed_record({k.decode(): v.decode() for k, v in raw.items()})


def booking_event(event_id: str, booking_id: str, hold: dict[str, Any]) -> dict[str, Any]:
    """A booking's whole record after a transition, as the event its status is published as.
    Every booking event carries every column, so PostgreSQL can be written from whichever of a
    booking's events arrives first, and its version says which is newest."""
    record = typed_record(hold)
    if record.get("pricing"):  # kept on the hold as the JSON text the script wrote
        record["pricing"] = decode(record["pricing"])
    return {
        **record,
        "type": BOOKING_EVENT_OF[record["status"]],
        "event_id": event_id,
        "booking_id": booking_id,
        "idempotency_scope": record.pop("scope", None) or f"r:{record.get('request_id')}",
        "remaining": record.get("remaining_after"),
    }


def payment_event(event_id: str, payment: dict[str, Any], booking: dict[str, Any]) -> dict[str, Any]:
    """A payment's whole record after a step (keyed by its booking's show, like the booking)."""
    record = typed_record(payment)
    refund = record.get("refund_status")
    kind = {
        "pending": PAYMENT_CREATED,
        "processing": PAYMENT_PROCESSING,
        "success": {
            None: PAYMENT_SUCCESS,
            "requested": PAYMENT_REFUND_REQUESTED,
            "refused": PAYMENT_REFUND_REFUSED,
        }.get(refund, PAYMENT_REFUND_APPROVED),
        "failed": PAYMENT_FAILED,
        "refunded": PAYMENT_REFUNDED,
    }[record["status"]]
    return {**record, "type": kind, "event_id": event_id, "show_id": booking["show_id"]}


def booking_expired_event(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return booking_event(command["event_id"], command["booking_id"], result["booking"])


def booking_cancelled_event(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return booking_event(command["event_id"], command["booking_id"], result["booking"])


def reply(command: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """What a gateway is told about one request (also stored under the request's result key).
    `user_id` is who may poll it: whoever asked (an admin acting on an owner's booking, an
    organizer approving a refund), else the booking's owner."""
    return {
        "request_id": command["request_id"],
        "user_id": command.get("requester") or command["user_id"],
        "result": result,
    }
