"""Booking routes: reserve (through Kafka to a worker and back) and the 202 poll."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from booking_rush.contract import messages
from gateway import appkeys, errors
from gateway.auth import current_principal
from gateway.dispatch import dispatch, pending_answer, reply_channel_ready
from gateway.event_store import iso_ms
from gateway.params import parse_uuid
from gateway.payloads import json_object
from gateway.payments import PAYMENT_RESULTS, render_payment_result
from gateway.queue_pass import admit_reserve
from gateway.responses import ok, price_text
from lua import keys

_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class ReserveRequest:
    event_id: str
    show_id: str
    zone_id: str
    quantity: int
    idempotency_key: str | None


def _uuid_field(body: dict[str, Any], name: str, problems: dict[str, str]) -> str:
    value = body.get(name)
    parsed = parse_uuid(value)
    if parsed is None:
        problems[name] = "must be a UUID" if isinstance(value, str) else "required, a UUID string"
        return ""
    return parsed


def parse_reserve(raw: bytes, header_key: str | None) -> ReserveRequest:
    """Validate a reserve body's shape (the catalog checks existence and limits next)."""
    body = json_object(raw)
    problems: dict[str, str] = {}
    event_id = _uuid_field(body, "event_id", problems)
    show_id = _uuid_field(body, "show_id", problems)
    zone_id = _uuid_field(body, "zone_id", problems)
    quantity = body.get("quantity")
    if type(quantity) is not int:  # bool is an int subclass: refuse true/false too
        problems["quantity"] = "required, an integer"
    body_key = body.get("idempotency_key")
    key = body_key if body_key is not None else header_key
    if body_key is not None and header_key is not None and body_key != header_key:
        problems["idempotency_key"] = "differs from the Idempotency-Key header"
    elif key is not None and (not isinstance(key, str) or not _IDEMPOTENCY_KEY.match(key)):
        problems["idempotency_key"] = "1-128 characters of A-Z a-z 0-9 . _ : -"
    if problems:
        raise errors.ValidationError("invalid reservation request", details=problems)
    return ReserveRequest(event_id, show_id, zone_id, quantity, key)


def render_result(result: dict[str, Any], created_status: int) -> web.Response:
    """A worker's result, as the HTTP answer the client gets (also used by the poll)."""
    status = result["status"]
    if status in PAYMENT_RESULTS:
        return render_payment_result(result)
    if status == "reserved":
        return ok(
            {
                "booking_id": result["booking_id"],
                "status": "reserved",
                "show_id": result["show_id"],
                "zone_id": result["zone_id"],
                "quantity": result["quantity"],
                "expires_at": iso_ms(result["expires_at"]),
                "total_price": price_text(result["total_cents"]),
                "remaining": result["remaining"],
            },
            status=created_status,
        )
    if status == "cancelled":  # the owner's cancel (gateway/booking_cancel.py)
        return ok(
            {
                "booking_id": result["booking_id"],
                "status": "cancelled",
                "show_id": result["show_id"],
                "zone_id": result["zone_id"],
                "quantity": result["quantity"],
                "cancelled_at": iso_ms(result["cancelled_at"]),
                "remaining": result["remaining"],
            }
        )
    if status == "not_cancellable":
        raise errors.InvalidTransition(f"a {result['current']} booking cannot be cancelled")
    if status == "not_found":
        raise errors.NotFound("no such booking")
    if status == "insufficient_stock":
        raise errors.InsufficientStock(details={"remaining": result["remaining"]})
    if status == "max_per_user_exceeded":
        raise errors.MaxPerUserExceeded(
            f"at most {result['max_per_user']} seats per user for this event",
            details={"held": result["held"], "max_per_user": result["max_per_user"]},
        )
    if status == "idempotency_key_reused":
        raise errors.IdempotencyKeyReused()
    if status == "unknown_zone":
        raise errors.NotFound("zone has no inventory on sale")
    if status == "expired":
        raise errors.RequestExpired()
    # An organizer's seat-count change (gateway/event_admin.py) is answered the same way.
    if status == "adjusted":
        return ok(
            {"total_seats": result["total"], "available_seats": result["available"], "taken": result["taken"]}
        )
    if status == "below_taken":
        raise errors.SeatsBelowTaken(
            f"{result['taken']} seats are already held or sold; the zone cannot have fewer",
            details={"taken": result["taken"], "total_seats": result["total"]},
        )
    raise errors.ApiError(f"unexpected worker result {status!r}")


async def reserve(request: web.Request) -> web.Response:
    app = request.app
    settings = app[appkeys.SETTINGS]
    principal = current_principal(request)
    req = parse_reserve(await request.read(), request.headers.get(IDEMPOTENCY_HEADER))

    catalog = app[appkeys.CATALOG]
    show = catalog.show(req.show_id)
    if show is None or show.event_status != "published":  # or published a moment ago
        show = await catalog.show_after_reload(req.show_id, app[appkeys.PG_POOL])
    if show is None or show.event_id != req.event_id or show.event_status != "published":
        raise errors.NotFound("show not found for this event")
    if req.zone_id not in show.zones:
        raise errors.NotFound("zone not found in this show")
    now = time.time()
    if now >= show.closes_at:
        raise errors.BookingClosed(details={"closed_at": iso_ms(int(show.closes_at * 1000))})
    if show.min_age and not principal.is_at_least(show.min_age, datetime.fromtimestamp(now, UTC).date()):
        raise errors.AgeRestricted(details={"min_age": show.min_age})
    if not 1 <= req.quantity <= show.max_per_user:
        raise errors.ValidationError(
            f"quantity must be between 1 and {show.max_per_user}",
            details={"quantity": f"1..{show.max_per_user}"},
        )
    await admit_reserve(request, principal, req.event_id, now)

    reply_channel_ready(app)
    request_id, booking_id = messages.new_public_ids(req.event_id)
    command = messages.reserve_command(
        request_id=request_id,
        booking_id=booking_id,
        event_id=req.event_id,
        show_id=req.show_id,
        zone_id=req.zone_id,
        user_id=principal.user_id,
        quantity=req.quantity,
        idempotency_key=req.idempotency_key,
        body_hash=messages.body_hash(
            {
                "event_id": req.event_id,
                "show_id": req.show_id,
                "zone_id": req.zone_id,
                "quantity": req.quantity,
            }
        ),
        deadline_ms=int((now + settings.command_deadline_s) * 1000),
        accept_by_ms=int((now + settings.accept_timeout_s) * 1000),
        reply_to=app[appkeys.GATEWAY_ID],
    )
    reply = await dispatch(app, req.show_id, command)
    if reply is None:
        return pending_answer(request_id)
    return render_result(reply["result"], created_status=201)


async def request_status(request: web.Request) -> web.Response:
    """GET /api/v1/bookings/requests/{id}: the final answer of a reserve that got a 202."""
    app = request.app
    principal = current_principal(request)
    request_id = request.match_info["request_id"]
    event_id = messages.event_of(request_id)
    if event_id is None:
        raise errors.NotFound("no such request")
    try:
        raw = await app[appkeys.SALE_REDIS].get(keys.request_result(event_id, request_id))
    except RedisError as exc:
        raise errors.RedisUnavailable("the sale store is unavailable; poll again shortly") from exc
    if raw is None:
        return ok({"request_id": request_id, "status": "pending"}, status=202)
    reply = messages.decode(raw)
    if reply["user_id"] != principal.user_id:
        raise errors.NotFound("no such request")  # not 403: do not confirm the id exists
    return render_result(reply["result"], created_status=200)
