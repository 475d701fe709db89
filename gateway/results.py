"""Worker results as HTTP answers: what a client is told when the worker's reply arrives, or
when it polls for a reply that came late (`GET /api/v1/bookings/requests/{id}`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from booking_rush.contract import messages, pricing
from gateway import errors
from gateway.event_store import iso_ms
from gateway.responses import ok, price_text


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
                "currency": (result.get("pricing") or {}).get("currency") or None,
                "price": pricing.breakdown_view(
                    result.get("pricing"), result["quantity"], result["total_cents"], ""
                ),
                "remaining": result["remaining"],
            },
            status=created_status,
        )
    if status in PROMO_REFUSALS:
        raise_promo_refusal(result)
    if status == "cancelled":  # the owner's cancel
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
    if status == "booking_ended":  # the booking this very request made ended long ago
        if result["current"] == "expired":
            raise errors.ReservationExpired()
        raise errors.InvalidTransition(f"the booking this request made is {result['current']}")
    # An organizer's seat-count change (routes/events.py) is answered the same way.
    if status == "adjusted":
        return ok(
            {"total_seats": result["total"], "available_seats": result["available"], "taken": result["taken"]}
        )
    # An organizer's pricing change (routes/pricing.py), likewise.
    if status == "pricing_set":
        return ok({"what": result["what"], "rule": result["rule"], "version": result["version"]})
    if status == "promo_exists":
        raise errors.Conflict(
            "this event has a promo code of that name already", details={"code": result["code"]}
        )
    if status == "promo_not_found":
        raise errors.NotFound("no such promo code")
    if status == "below_taken":
        raise errors.SeatsBelowTaken(
            f"{result['taken']} seats are already held or sold; the zone cannot have fewer",
            details={"taken": result["taken"], "total_seats": result["total"]},
        )
    raise errors.ApiError(f"unexpected worker result {status!r}")


PROMO_REFUSALS = frozenset(
    {"promo_invalid", "promo_expired", "promo_not_applicable", "promo_used_up", "promo_user_limit"}
)


def raise_promo_refusal(result: dict[str, Any]) -> None:
    """A promo code refused (lua/_pricing.lua), as its own error: nothing was taken."""
    status = result["status"]
    if status == "promo_invalid":
        raise errors.PromoCodeInvalid()
    if status == "promo_expired":
        details = {k: iso_ms(result[k]) for k in ("starts_at", "ends_at") if result.get(k)}
        raise errors.PromoCodeExpired(details=details or None)
    if status == "promo_not_applicable":
        reason = result["reason"]
        message = {
            "show": "this promo code is for another show",
            "zone": "this promo code is for another zone",
            "min_quantity": f"this promo code needs at least {result.get('min_quantity')} seats",
        }[reason]
        raise errors.PromoCodeNotApplicable(message, details={"reason": reason})
    if status == "promo_used_up":
        raise errors.PromoCodeUsedUp()
    raise errors.PromoCodeLimitReached(details={"per_user": result.get("per_user")})


PAYMENT_SHOWN = frozenset(
    {"paying", "payment_exists", "refund_requested", "refund_exists", "refund_approved", "refund_refused"}
)
PAYMENT_RESULTS = PAYMENT_SHOWN | {
    "reservation_expired",
    "not_payable",
    "not_refundable",
    "tenant_suspended",
    "event_cancelled",
}


def render_payment_result(result: dict[str, Any]) -> web.Response:
    """A worker's answer to a begin or refund command (also what the 202 poll shows)."""
    status = result["status"]
    if status in PAYMENT_SHOWN:
        payment = messages.typed_record(result["payment"])
        return ok(payment_view(payment), status=201 if status == "paying" else 200)
    if status == "reservation_expired":
        raise errors.ReservationExpired()
    if status == "not_payable":
        raise errors.InvalidTransition(f"a {result['current']} booking cannot be paid for")
    if status == "not_refundable":
        raise errors.RefundNotAllowed(f"not refundable: {result['current']}")
    if status == "tenant_suspended":  # a reserve or a payment applied after the suspension
        raise errors.TenantSuspended("this event's organisation is suspended: nothing is sold")
    if status == "event_cancelled":  # a reserve or a payment applied after the cancellation
        raise errors.EventCancelled()
    raise errors.NotFound("no such booking or payment")


def payment_view(payment: dict[str, Any]) -> dict[str, Any]:
    """A payment record (sale Redis, typed) as the API shows it."""
    refund = payment.get("refund_status")
    return {
        "payment_id": payment["payment_id"],
        "booking_id": payment["booking_id"],
        "status": payment["status"],
        "amount": price_text(payment["amount_cents"]),
        "method": payment["method"],
        "masked": payment.get("masked", ""),
        "attempts": payment.get("attempts", 0),
        "failure_reason": payment.get("failure_reason") or None,
        "refund": None
        if refund is None
        else {
            "status": refund,
            "percent": payment.get("refund_percent", 0),
            "amount": price_text(payment.get("refund_cents", 0)),
            "reason": payment.get("refund_reason"),
        },
        "created_at": iso_ms(payment["created_at"]),
        "updated_at": iso_ms(payment.get("updated_at", payment["created_at"])),
    }
