"""Payments (spec §2.1.5, §4.5): `POST /api/v1/payments`, `GET /api/v1/payments/{id}`,
`POST /api/v1/payments/{id}/refund`, and an organizer's or admin's
`POST /api/v1/admin/payments/{id}/refund/approve` and `/refuse` (with a reason), and the
requests waiting for them (`GET /api/v1/admin/events/{id}/refunds`). The buyer is mailed either
way.

Paying is two steps. First a command through Kafka, applied by lua/begin_payment.lua, moves the
reservation to `paying` (and gives it the longer paying deadline) before anything is charged;
then a payment worker (Dramatiq) charges the provider and sends the outcome back as a command.
One payment per booking: its id is derived from the booking id, so paying again answers the
payment already begun. The client follows it with `GET /api/v1/payments/{id}`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from booking_rush.contract import jobs, messages
from booking_rush.contract.payments import DETAIL_FIELD, METHODS
from gateway import appkeys, errors, event_input
from gateway.access import may_approve, may_manage
from gateway.auth import current_principal
from gateway.event_store import iso
from gateway.params import PUBLIC_ID, int_query, path_uuid, text_query
from gateway.payloads import json_object, read_json_object
from gateway.responses import ok
from gateway.results import payment_view, render_payment_result
from gateway.roundtrip.dispatch import dispatch, pending_answer, reply_channel_ready
from lua import keys

PAYMENT_ID = f"{{payment_id:{PUBLIC_ID}}}"
_DETAIL_PATTERN = {
    "card_number": re.compile(r"[0-9]{12,19}"),
    "account": re.compile(r"[A-Za-z0-9]{6,34}"),
    "wallet_id": re.compile(r"[A-Za-z0-9@.+_-]{4,64}"),
}
_EXPIRY = re.compile(r"(0[1-9]|1[0-2])/([0-9]{2})")
_CVC = re.compile(r"[0-9]{3,4}")


def parse_payment(raw: bytes, today: datetime) -> tuple[str, str, dict[str, str]]:
    """booking id, method, and the details the provider needs (card: number, expiry, cvc)."""
    body = json_object(raw)
    problems: dict[str, str] = {}
    expired = False
    booking_id = body.get("booking_id")
    if not isinstance(booking_id, str) or messages.event_of(booking_id) is None:
        problems["booking_id"] = "required, a booking id (64 hex characters)"
    method = body.get("method")
    details = body.get("details")
    if method not in METHODS:
        problems["method"] = f"one of {', '.join(METHODS)}"
    elif not isinstance(details, dict):
        problems["details"] = f"required, an object with {DETAIL_FIELD[method]}"
    else:
        field = DETAIL_FIELD[method]
        value = details.get(field)
        if not isinstance(value, str) or not _DETAIL_PATTERN[field].fullmatch(value):
            problems[f"details.{field}"] = "missing or malformed"
        if method == "card":
            expiry = details.get("expiry")
            match = _EXPIRY.fullmatch(expiry) if isinstance(expiry, str) else None
            if match is None:
                problems["details.expiry"] = "MM/YY"
            elif (2000 + int(match[2]), int(match[1])) < (today.year, today.month):
                expired = True
            if not isinstance(details.get("cvc"), str) or not _CVC.fullmatch(details["cvc"]):
                problems["details.cvc"] = "3 or 4 digits"
    if problems:
        raise errors.ValidationError("invalid payment request", details=problems)
    if expired:  # well formed, but no bank would take it: a declined payment, not bad input
        raise errors.PaymentFailed("the card has expired", details={"details.expiry": "the card has expired"})
    field = DETAIL_FIELD[method]
    kept = {field: details[field]} | ({"expiry": details["expiry"]} if method == "card" else {})
    return booking_id, method, kept


def masked(method: str, details: dict[str, str]) -> str:
    """What we keep and show of the payment means: the method and the last four characters."""
    return f"{method} ****{details[DETAIL_FIELD[method]][-4:]}"


def _row_view(row) -> dict[str, Any]:
    return {
        "payment_id": row["public_id"],
        "booking_id": row["booking_public_id"],
        "status": row["status"],
        "amount": f"{row['amount']:.2f}",
        "method": row["method"],
        "masked": row["masked"],
        "attempts": row["attempts"],
        "failure_reason": row["failure_reason"],
        "refund": None
        if row["refund_status"] is None
        else {
            "status": row["refund_status"],
            "percent": row["refund_percent"],
            "amount": f"{row['refund_amount']:.2f}",
            "reason": row["refund_reason"],
        },
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


async def _records(app: web.Application, event_id: str, payment_id: str) -> tuple[dict, dict]:
    """The payment and its booking's hold from the sale Redis ({} where it has none)."""
    redis = app[appkeys.SALE_REDIS]
    payment = await redis.hgetall(keys.payment(event_id, payment_id))
    if not payment:
        return {}, {}
    payment = messages.redis_record(payment)
    hold = await redis.hgetall(keys.hold(event_id, payment["booking_id"]))
    return payment, messages.redis_record(hold)


async def owned_hold(request: web.Request, booking_id: str) -> dict[str, Any]:
    """The caller's live hold of `booking_id` (anyone else's is not found)."""
    event_id = messages.event_of(booking_id)
    raw = await request.app[appkeys.SALE_REDIS].hgetall(keys.hold(event_id, booking_id)) if event_id else {}
    hold = messages.redis_record(raw)
    principal = current_principal(request)
    user_id = principal.user_id
    if event_id and request.app[appkeys.SHOW_INDEX].tenants.get(event_id) != principal.tenant_id:
        raise errors.NotFound("no such booking")  # another storefront's: not for this account
    if hold and "user_id" not in hold:  # a tombstone: it ended long ago (lua/trim_hold.lua)
        owner = await request.app[appkeys.PG_POOL].fetchval(
            "SELECT user_id::text FROM bookings WHERE public_id = $1", booking_id
        )
        if owner == user_id:
            if hold["status"] == "expired":
                raise errors.ReservationExpired()
            raise errors.InvalidTransition(f"a {hold['status']} booking cannot be paid for")
    if hold.get("user_id") != user_id:
        raise errors.NotFound("no such booking")
    return hold


async def create_payment(request: web.Request) -> web.Response:
    app = request.app
    booking_id, method, details = parse_payment(await request.read(), datetime.now(UTC))
    hold = await owned_hold(request, booking_id)
    reply_channel_ready(app)
    command = messages.begin_payment_command(
        request_id=messages.new_request_id(messages.event_of(booking_id)),
        hold=hold,
        booking_id=booking_id,
        method=method,
        masked=masked(method, details),
        reply_to=app[appkeys.GATEWAY_ID],
    )
    reply = await dispatch(app, command["show_id"], command)
    result = None if reply is None else reply["result"]
    if result is None or (
        result["status"] in ("paying", "payment_exists") and result["payment"]["status"] == "pending"
    ):
        # Charged by a payment worker once the payment is begun (it waits for that). The card
        # details travel only in this job, never on Kafka or in the sale Redis; a real
        # provider's client-side token would take their place.
        await app[appkeys.JOBS].send(
            jobs.PROCESS_PAYMENT, command["event_id"], command["payment_id"], details
        )
    if result is None:
        return pending_answer(command["request_id"])
    return render_payment_result(result)


async def get_payment(request: web.Request) -> web.Response:
    payment_id = request.match_info["payment_id"]
    event_id = messages.event_of(payment_id)
    payment, hold = await _records(request.app, event_id, payment_id)
    if payment and await may_manage(request, event_id, hold.get("user_id", "")):
        return ok(payment_view(payment))
    row = await request.app[appkeys.PG_POOL].fetchrow(
        "SELECT p.*, b.public_id AS booking_public_id, b.user_id FROM payments p "
        "JOIN bookings b ON b.id = p.booking_id WHERE p.public_id = $1",
        payment_id,
    )
    if row is None or not await may_manage(request, event_id, str(row["user_id"])):
        raise errors.NotFound("no such payment")
    return ok(_row_view(row))


def refund_percent(show_date: datetime, event_status: str, now: datetime) -> int:
    """Spec §2.2.3: more than 7 days before the show 100 %, 3 to 7 days 50 %, less 0 %; an event
    the organizer cancelled, 100 %."""
    if event_status == "cancelled":
        return 100
    days = (show_date - now).total_seconds() / 86_400
    return 100 if days > 7 else 50 if days >= 3 else 0


async def request_refund(request: web.Request) -> web.Response:
    app = request.app
    payment_id = request.match_info["payment_id"]
    event_id = messages.event_of(payment_id)
    payment, hold = await _records(app, event_id, payment_id)
    if not payment or hold.get("user_id") != current_principal(request).user_id:
        raise errors.NotFound("no such payment")
    show = await app[appkeys.PG_POOL].fetchrow(
        "SELECT s.show_date, e.status FROM shows s JOIN events e ON e.id = s.event_id WHERE s.id = $1",
        hold["show_id"],
    )
    percent = refund_percent(show["show_date"], show["status"], datetime.now(UTC))
    if percent == 0 and payment.get("refund_status") is None:
        raise errors.RefundNotAllowed(
            "less than 3 days before the show: no refund (spec §2.2.3)", details={"percent": 0}
        )
    return await _refund_step(request, "request", payment, hold, percent)


async def _to_decide(request: web.Request) -> tuple[dict, dict]:
    """The payment whose refund an organizer or admin of its event's tenant decides, and its
    hold; after the event was cancelled there is nothing to decide (the cancellation refunds
    it in full)."""
    app = request.app
    payment_id = request.match_info["payment_id"]
    event_id = messages.event_of(payment_id)
    payment, hold = await _records(app, event_id, payment_id)
    if not payment or not await may_approve(request, event_id):
        raise errors.NotFound("no such payment")
    if await app[appkeys.SALE_REDIS].hget(keys.event_meta(event_id), "cancelled") == b"1":
        raise errors.RefundSuperseded()
    return payment, hold


async def approve_refund(request: web.Request) -> web.Response:
    payment, hold = await _to_decide(request)
    return await _refund_step(request, "approve", payment, hold)


async def refuse_refund(request: web.Request) -> web.Response:
    """`{reason}`: a requested refund refused; the buyer is mailed the reason (final)."""
    reason = event_input.text_field(await read_json_object(request), "reason", required=True, limit=500)
    payment, hold = await _to_decide(request)
    return await _refund_step(request, "refuse", payment, hold, reason=reason)


REFUNDS = """
SELECT p.public_id, b.public_id AS booking_public_id, u.email, u.full_name, b.quantity, p.amount,
       p.method, p.masked, p.status, p.attempts, p.failure_reason, p.refund_status, p.refund_percent,
       p.refund_amount, p.refund_reason, p.created_at, p.updated_at, count(*) OVER () AS total
FROM payments p JOIN bookings b ON b.id = p.booking_id JOIN users u ON u.id = b.user_id
WHERE p.event_id = $1 AND p.refund_status IS NOT NULL AND ($2::text IS NULL OR p.refund_status = $2)
ORDER BY p.updated_at, p.public_id
LIMIT $3 OFFSET $4
"""
REFUND_STATUSES = ("requested", "approved", "refunded", "refused")


async def list_refunds(request: web.Request) -> web.Response:
    """The event's refunds, oldest change first, `?status=` (requested: those waiting for a
    decision), paged; for its organizers and admins. From PostgreSQL (a moment behind)."""
    event_id = path_uuid(request, "event_id")
    if not await may_approve(request, event_id):
        raise errors.NotFound("no such event")
    status = text_query(request, "status", 20)
    if status is not None and status not in REFUND_STATUSES:
        raise errors.ValidationError(
            "invalid status", details={"status": "one of " + ", ".join(REFUND_STATUSES)}
        )
    page = int_query(request, "page", 1, 1, 100_000)
    per_page = int_query(request, "per_page", 20, 1, 100)
    rows = await request.app[appkeys.PG_POOL].fetch(
        REFUNDS, event_id, status, per_page, (page - 1) * per_page
    )
    refunds = [
        {
            **_row_view(r),
            "buyer": {"email": r["email"], "full_name": r["full_name"]},
            "quantity": r["quantity"],
        }
        for r in rows
    ]
    total = rows[0]["total"] if rows else 0
    return ok(refunds, meta={"page": page, "per_page": per_page, "total": total})


async def _refund_step(
    request: web.Request, step: str, payment: dict, hold: dict, percent: int = 0, reason: str = ""
) -> web.Response:
    app = request.app
    reply_channel_ready(app)
    command = messages.refund_command(
        step=step,
        payment=payment,
        hold=hold,
        request_id=messages.new_request_id(messages.event_of(payment["payment_id"])),
        reply_to=app[appkeys.GATEWAY_ID],
        percent=percent,
        amount_cents=payment["amount_cents"] * percent // 100,
        reason=reason,
    )
    command["requester"] = current_principal(request).user_id
    reply = await dispatch(app, command["show_id"], command)
    if reply is None:
        return pending_answer(command["request_id"])
    return render_payment_result(reply["result"])


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/payments", create_payment, name="create_payment")
    app.router.add_get(f"/api/v1/payments/{PAYMENT_ID}", get_payment, name="get_payment")
    app.router.add_post(f"/api/v1/payments/{PAYMENT_ID}/refund", request_refund, name="request_refund")
    app.router.add_post(
        f"/api/v1/admin/payments/{PAYMENT_ID}/refund/approve", approve_refund, name="approve_refund"
    )
    app.router.add_post(
        f"/api/v1/admin/payments/{PAYMENT_ID}/refund/refuse", refuse_refund, name="refuse_refund"
    )
    app.router.add_get("/api/v1/admin/events/{event_id}/refunds", list_refunds, name="list_refunds")
