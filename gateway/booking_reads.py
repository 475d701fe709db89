"""A user's bookings: `GET /api/v1/bookings`, `/bookings/pending` and `/bookings/{booking_id}`.

Live reservations are read from the sale Redis (the hold, and the user's per-event index that
lua/reserve_seats.lua writes with it), so a booking shows the moment its 201 is sent; PostgreSQL
(which follows through the persistence consumer) adds what Redis no longer holds. Only the owner
(or an admin of the event's tenant) sees a booking: anyone else's answers 404, as if it did not
exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from booking_rush.contract.messages import event_of
from gateway import appkeys, errors, event_store
from gateway.auth import current_principal
from gateway.event_store import iso, iso_ms
from gateway.params import PUBLIC_ID
from gateway.responses import ok, price_text
from lua import keys

LIST_LIMIT = 200  # per-user limits keep a person's bookings few; a bound all the same

ROW_COLUMNS = (
    "public_id, event_id, show_id, zone_id, quantity, total_price, status, reserved_at, expires_at, "
    "payment_id, ticket_code, cancel_reason"
)


def _from_hold(booking_id: str, event_id: str, hold: dict[bytes, bytes]) -> dict[str, Any]:
    field = {k.decode(): v.decode() for k, v in hold.items()}
    return {
        "booking_id": booking_id,
        "event_id": event_id,
        "show_id": field["show_id"],
        "zone_id": field["zone_id"],
        "quantity": int(field["quantity"]),
        "total_price": price_text(int(field["total_cents"])),
        "status": field["status"],
        "created_at": iso_ms(int(field["created_at"])),
        # A hold being paid for lasts until its paying deadline.
        "expires_at": iso_ms(int(field.get("paying_until") or field["expires_at"])),
        "payment_id": field.get("payment_id"),
        "ticket_code": field.get("ticket_code"),
        "cancel_reason": field.get("cancel_reason"),
    }


def _from_row(row) -> dict[str, Any]:
    return {
        "booking_id": row["public_id"],
        "event_id": str(row["event_id"]),
        "show_id": str(row["show_id"]),
        "zone_id": str(row["zone_id"]),
        "quantity": row["quantity"],
        "total_price": f"{row['total_price']:.2f}",
        "status": row["status"],
        "created_at": iso(row["reserved_at"]),
        "expires_at": iso(row["expires_at"]) if row["expires_at"] else None,
        "payment_id": row["payment_id"],
        "ticket_code": row["ticket_code"],
        "cancel_reason": row["cancel_reason"],
    }


async def may_manage(request: web.Request, event_id: str, owner_id: str) -> bool:
    """The owner, or an admin of the event's tenant, may see and change a booking."""
    principal = current_principal(request)
    if principal.user_id == owner_id:
        return True
    if principal.role != "admin":
        return False
    event = await event_store.get_event(request.app[appkeys.PG_POOL], event_id)
    return event is not None and str(event["tenant_id"]) == principal.tenant_id


async def find_booking(request: web.Request, booking_id: str) -> dict[str, Any]:
    """A booking the caller may see: the live hold in the sale Redis, else PostgreSQL's row."""
    event_id = event_of(booking_id)
    if event_id is None:
        raise errors.NotFound("no such booking")
    hold = await request.app[appkeys.SALE_REDIS].hgetall(keys.hold(event_id, booking_id))
    if hold and await may_manage(request, event_id, hold.get(b"user_id", b"").decode()):
        return _from_hold(booking_id, event_id, hold)
    row = await request.app[appkeys.PG_POOL].fetchrow(
        f"SELECT {ROW_COLUMNS}, user_id FROM bookings WHERE public_id = $1", booking_id
    )
    if row is None or not await may_manage(request, event_id, str(row["user_id"])):
        raise errors.NotFound("no such booking")  # someone else's does not exist for you
    return _from_row(row)


async def get_booking(request: web.Request) -> web.Response:
    return ok(await find_booking(request, request.match_info["booking_id"]))


async def confirm_booking(request: web.Request) -> web.Response:
    """`POST /api/v1/bookings/{id}/confirm`: the confirmed booking with its e-ticket code, only
    once its payment succeeded (the payment's success confirms it, through lua/settle_payment.lua;
    this says where it stands). Past its time: 410 RESERVATION_EXPIRED."""
    booking = await find_booking(request, request.match_info["booking_id"])
    status = booking["status"]
    if status == "confirmed":
        return ok(booking)
    if status == "expired" or (status == "reserved" and _time(booking["expires_at"]) <= datetime.now(UTC)):
        raise errors.ReservationExpired()
    if status == "reserved":
        raise errors.PaymentRequired("pay for the booking first (POST /api/v1/payments)")
    if status == "paying":
        raise errors.PaymentInProgress()
    if status == "cancelled" and booking["cancel_reason"] == "payment_failed":
        raise errors.PaymentFailed("the payment failed and the seats were released")
    raise errors.InvalidTransition(f"a {status} booking cannot be confirmed")


async def list_bookings(request: web.Request) -> web.Response:
    return ok(await _bookings_of(request, current_principal(request).user_id))


async def pending_bookings(request: web.Request) -> web.Response:
    """Reservations still holding their seats: what a buyer who lost the connection comes back
    to pay for (spec: resume payment within the hold)."""
    now = datetime.now(UTC)
    bookings = await _bookings_of(request, current_principal(request).user_id)
    live = ("reserved", "paying")  # paying: the buyer comes back to see how the payment ends
    return ok([b for b in bookings if b["status"] in live and _time(b["expires_at"]) > now])


def _time(iso_text: str | None) -> datetime:
    return datetime.fromisoformat(iso_text) if iso_text else datetime.min.replace(tzinfo=UTC)


async def _bookings_of(request: web.Request, user_id: str) -> list[dict[str, Any]]:
    redis = request.app[appkeys.SALE_REDIS]
    event_ids = sorted(e.decode() for e in await redis.smembers(keys.user_events(user_id)))
    async with redis.pipeline(transaction=False) as pipe:
        for event_id in event_ids:
            pipe.zrevrange(keys.user_bookings(event_id, user_id), 0, LIST_LIMIT - 1)
        per_event = await pipe.execute()
    found = [(event_id, b.decode()) for event_id, ids in zip(event_ids, per_event, strict=True) for b in ids]
    async with redis.pipeline(transaction=False) as pipe:
        for event_id, booking_id in found:
            pipe.hgetall(keys.hold(event_id, booking_id))
        holds = await pipe.execute()
    bookings = {
        booking_id: _from_hold(booking_id, event_id, hold)
        for (event_id, booking_id), hold in zip(found, holds, strict=True)
        if hold
    }
    rows = await request.app[appkeys.PG_POOL].fetch(
        f"SELECT {ROW_COLUMNS} FROM bookings WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
        user_id,
        LIST_LIMIT,
    )
    for row in rows:
        bookings.setdefault(row["public_id"], _from_row(row))  # Redis, where it has it, is newer
    newest_first = sorted(bookings.values(), key=lambda b: b["created_at"], reverse=True)
    return newest_first[:LIST_LIMIT]


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/bookings", list_bookings, name="list_bookings")
    app.router.add_get("/api/v1/bookings/pending", pending_bookings, name="pending_bookings")
    # Only a booking id's shape matches, so /bookings/reserve and /bookings/requests/... keep theirs.
    app.router.add_get(f"/api/v1/bookings/{{booking_id:{PUBLIC_ID}}}", get_booking, name="get_booking")
    app.router.add_post(
        f"/api/v1/bookings/{{booking_id:{PUBLIC_ID}}}/confirm", confirm_booking, name="confirm_booking"
    )
