"""Bookings (spec §4.4): reserve (a command through Kafka to a worker and back) and the 202
poll; a user's bookings (all, those still holding seats, one), confirm, and cancel.

Live reservations are read from the sale Redis (the hold, and the user's per-event index that
lua/reserve_seats.lua writes with it), so a booking shows the moment its 201 is sent; PostgreSQL
(which follows through the persistence consumer) adds what Redis no longer holds. Only the owner
(or an admin of the event's tenant) sees a booking: anyone else's answers 404, as if it did not
exist.

Cancelling, like every change of a hold, is a command through Kafka applied by one Lua script
(lua/cancel_hold.lua), which returns the seats and lowers the user's count exactly once; the
worker emits `booking.cancelled` and answers only after Kafka has it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from booking_rush.contract import messages, pricing
from booking_rush.contract.messages import now_ms
from gateway import appkeys, errors, promo_guard
from gateway.access import may_manage
from gateway.auth import current_principal
from gateway.event_store import iso, iso_ms
from gateway.params import PUBLIC_ID, parse_uuid, whole_number
from gateway.payloads import json_object, read_json_object
from gateway.queue_pass import admit_reserve
from gateway.responses import ok, price_text
from gateway.results import render_result
from gateway.roundtrip.dispatch import accepted, dispatch, pending_answer, reply_channel_ready, send
from gateway.show_index import Show
from lua import keys

_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_CURRENCY = "THB"  # spec: a tenant's unless it says otherwise
LIST_LIMIT = 200  # per-user limits keep a person's bookings few; a bound all the same

ROW_COLUMNS = (
    "public_id, event_id, show_id, zone_id, quantity, total_price, status, reserved_at, expires_at, "
    "payment_id, ticket_code, cancel_reason, price_breakdown, "
    # Bookings made before prices had rules kept no currency: their event's.
    "coalesce(currency, (SELECT e.currency FROM events e WHERE e.id = bookings.event_id)) AS currency"
)


@dataclass(frozen=True)
class ReserveRequest:
    event_id: str
    show_id: str
    zone_id: str
    quantity: int
    idempotency_key: str | None
    promo_code: str = ""  # upper case; '' : none


def _promo_field(body: dict[str, Any], problems: dict[str, str]) -> str:
    raw = body.get("promo_code")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return ""  # no code
    code = pricing.normal_code(raw) if isinstance(raw, str) else None
    if code is None or not pricing.CODE_PATTERN.fullmatch(code):
        problems["promo_code"] = "1-32 letters, digits or dashes"
        return ""
    return code


def _uuid_field(body: dict[str, Any], name: str, problems: dict[str, str]) -> str:
    value = body.get(name)
    parsed = parse_uuid(value)
    if parsed is None:
        problems[name] = "must be a UUID" if isinstance(value, str) else "required, a UUID string"
        return ""
    return parsed


def parse_reserve(raw: bytes, header_key: str | None) -> ReserveRequest:
    """Validate a reserve body's shape (the show index checks existence and limits next)."""
    body = json_object(raw)
    problems: dict[str, str] = {}
    event_id = _uuid_field(body, "event_id", problems)
    show_id = _uuid_field(body, "show_id", problems)
    zone_id = _uuid_field(body, "zone_id", problems)
    quantity = whole_number(body.get("quantity"))
    if quantity is None:
        problems["quantity"] = "required, an integer"
    body_key = body.get("idempotency_key")
    key = body_key if body_key is not None else header_key
    if body_key is not None and header_key is not None and body_key != header_key:
        problems["idempotency_key"] = "differs from the Idempotency-Key header"
    elif key is not None and (not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key)):
        problems["idempotency_key"] = "1-128 characters of A-Z a-z 0-9 . _ : -"
    promo_code = _promo_field(body, problems)
    if problems:
        raise errors.ValidationError("invalid reservation request", details=problems)
    return ReserveRequest(event_id, show_id, zone_id, quantity, key, promo_code)


async def _bookable_show(app: web.Application, principal, req: ReserveRequest, now: float) -> Show:
    """The show a reserve (or a quote) names, checked against the catalog: this buyer's
    storefront, on sale, its booking window open, the buyer old enough, the quantity allowed."""
    shows = app[appkeys.SHOW_INDEX]
    show = shows.show(req.show_id)
    if show is None or show.event_status != "published":  # or published a moment ago
        show = await shows.show_after_reload(req.show_id, app[appkeys.PG_POOL])
    if show is None or show.event_id != req.event_id or show.tenant_id != principal.tenant_id:
        raise errors.NotFound("show not found for this event")  # another storefront's: not found
    if show.event_status == "cancelled":
        raise errors.EventCancelled()
    if show.event_status != "published":
        raise errors.NotFound("show not found for this event")
    if req.zone_id not in show.zones:
        raise errors.NotFound("zone not found in this show")
    if now >= show.closes_at:
        raise errors.BookingClosed(details={"closed_at": iso_ms(int(show.closes_at * 1000))})
    if show.min_age and not principal.is_at_least(show.min_age, datetime.fromtimestamp(now, UTC).date()):
        raise errors.AgeRestricted(details={"min_age": show.min_age})
    if req.quantity < 1:
        raise errors.ValidationError("quantity must be at least 1", details={"quantity": "1.."})
    if req.quantity > show.max_per_user:  # well formed, but over this event's limit
        raise errors.MaxPerUserExceeded(
            f"at most {show.max_per_user} seats per user for this event",
            details={"max_per_user": show.max_per_user},
        )
    return show


def _reserve_body_hash(req: ReserveRequest) -> str:
    fields = {
        "event_id": req.event_id,
        "show_id": req.show_id,
        "zone_id": req.zone_id,
        "quantity": req.quantity,
    }
    if req.promo_code:  # only when there is one: a body without a code hashes as it always did
        fields["promo_code"] = req.promo_code
    return messages.body_hash(fields)


async def reserve(request: web.Request) -> web.Response:
    app = request.app
    settings = app[appkeys.SETTINGS]
    principal = current_principal(request)
    if not principal.email_verified:
        raise errors.EmailNotVerified()
    req = parse_reserve(await request.read(), request.headers.get(IDEMPOTENCY_HEADER))
    now = time.time()
    show = await _bookable_show(app, principal, req, now)
    await admit_reserve(request, principal, req.event_id, now)
    if req.promo_code:
        await promo_guard.check_allowed(request, principal.user_id)

    reply_channel_ready(app)
    deadline_ms = int((now + settings.command_deadline_s) * 1000)
    request_id, booking_id = messages.new_public_ids(req.event_id, deadline_ms + messages.ANSWER_GRACE_MS)
    command = messages.reserve_command(
        request_id=request_id,
        booking_id=booking_id,
        event_id=req.event_id,
        show_id=req.show_id,
        zone_id=req.zone_id,
        user_id=principal.user_id,
        quantity=req.quantity,
        idempotency_key=req.idempotency_key,
        body_hash=_reserve_body_hash(req),
        deadline_ms=deadline_ms,
        accept_by_ms=int((now + settings.accept_timeout_s) * 1000),
        reply_to=app[appkeys.GATEWAY_ID],
        promo_code=req.promo_code,
        currency=show.currency,
    )
    reply = await dispatch(app, req.show_id, command)
    if reply is None:
        return pending_answer(request_id)
    if reply["result"]["status"] == "promo_invalid":
        await promo_guard.count_wrong(request, principal.user_id)
    return render_result(reply["result"], created_status=201)


async def quote(request: web.Request) -> web.Response:
    """POST /api/v1/bookings/quote: what a reservation would cost now (the breakdown), deciding
    nothing: no seat, early-bird place or code use is taken (lua/quote_price.lua)."""
    app = request.app
    principal = current_principal(request)
    req = parse_reserve(await request.read(), None)
    show = await _bookable_show(app, principal, req, time.time())
    if req.promo_code:
        await promo_guard.check_allowed(request, principal.user_id)
    try:
        raw = await app[appkeys.SCRIPTS].quote_price(
            keys=keys.quote_keys(req.event_id, req.show_id, req.zone_id),
            args=[
                req.quantity,
                now_ms(),
                req.show_id,
                req.zone_id,
                req.promo_code,
                principal.user_id,
                show.currency,
            ],
        )
    except RedisError as exc:
        raise errors.RedisUnavailable("the sale store is unavailable; ask again shortly") from exc
    result = messages.decode(raw[0])
    if result["status"] == "promo_invalid":
        await promo_guard.count_wrong(request, principal.user_id)
    if result["status"] != "quote":
        render_result(result, created_status=200)  # raises the refusal's error
    return ok(
        {
            "event_id": req.event_id,
            "show_id": req.show_id,
            "zone_id": req.zone_id,
            "quantity": req.quantity,
            "available": result["available"],
            "currency": show.currency,
            "total_price": price_text(result["pricing"]["total_cents"]),
            "price": pricing.breakdown_view(result["pricing"], req.quantity, 0, show.currency),
        }
    )


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
        if now_ms() > messages.answer_by(request_id):
            raise errors.NotFound("no such request")  # its time passed with no answer: none will come
        return ok({"request_id": request_id, "status": "pending"}, status=202)
    reply = messages.decode(raw)
    if reply["user_id"] != principal.user_id:
        raise errors.NotFound("no such request")  # not 403: do not confirm the id exists
    return render_result(reply["result"], created_status=200)


def _price_fields(breakdown: dict | None, quantity: int, total_cents: int, currency: str) -> dict[str, Any]:
    view = pricing.breakdown_view(breakdown, quantity, total_cents, currency)
    return {"currency": view["currency"], "price": view}


def _from_hold(booking_id: str, event_id: str, hold: dict[bytes, bytes]) -> dict[str, Any]:
    field = {k.decode(): v.decode() for k, v in hold.items()}
    return {
        "booking_id": booking_id,
        "event_id": event_id,
        "show_id": field["show_id"],
        "zone_id": field["zone_id"],
        "quantity": int(field["quantity"]),
        "total_price": price_text(int(field["total_cents"])),
        **_price_fields(
            messages.decode(field["pricing"]) if field.get("pricing") else None,
            int(field["quantity"]),
            int(field["total_cents"]),
            field.get("currency") or DEFAULT_CURRENCY,
        ),
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
        **_price_fields(
            messages.decode(row["price_breakdown"]) if row["price_breakdown"] else None,
            row["quantity"],
            int(row["total_price"] * 100),
            row["currency"] or DEFAULT_CURRENCY,
        ),
        "status": row["status"],
        "created_at": iso(row["reserved_at"]),
        "expires_at": iso(row["expires_at"]) if row["expires_at"] else None,
        "payment_id": row["payment_id"],
        "ticket_code": row["ticket_code"],
        "cancel_reason": row["cancel_reason"],
    }


async def find_booking(request: web.Request, booking_id: str) -> dict[str, Any]:
    """A booking the caller may see: the live hold in the sale Redis, else PostgreSQL's row."""
    event_id = messages.event_of(booking_id)
    if event_id is None:
        raise errors.NotFound("no such booking")
    hold = await request.app[appkeys.SALE_REDIS].hgetall(keys.hold(event_id, booking_id))
    # A tombstone (status and version: lua/trim_hold.lua) has no owner: PostgreSQL has the rest.
    if b"user_id" in hold and await may_manage(request, event_id, hold[b"user_id"].decode()):
        return _from_hold(booking_id, event_id, hold)
    return await stored_booking(request, event_id, booking_id)


async def stored_booking(request: web.Request, event_id: str, booking_id: str) -> dict[str, Any]:
    """PostgreSQL's record of a booking the caller may see (an ended or archived one)."""
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
        if b"user_id" in hold  # not a tombstone (its booking is in PostgreSQL's rows below)
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


async def cancel(request: web.Request) -> web.Response:
    app = request.app
    booking_id = request.match_info["booking_id"]
    event_id = messages.event_of(booking_id)
    if event_id is None:
        raise errors.NotFound("no such booking")
    show_id, zone_id, owner = await app[appkeys.SALE_REDIS].hmget(
        keys.hold(event_id, booking_id), "show_id", "zone_id", "user_id"
    )
    if owner is None:
        # Ended long ago (a tombstone) or archived: PostgreSQL says what it became, if it is yours.
        booking = await stored_booking(request, event_id, booking_id)
        raise errors.InvalidTransition(f"a {booking['status']} booking cannot be cancelled")
    if not await may_manage(request, event_id, owner.decode()):
        raise errors.NotFound("no such booking")  # someone else's does not exist for you
    reply_channel_ready(app)
    command = messages.cancel_command(
        request_id=messages.new_request_id(event_id),
        event_id=event_id,
        booking_id=booking_id,
        user_id=owner.decode(),  # an admin cancels on the owner's behalf: the owner's count drops
        show_id=show_id.decode(),
        zone_id=zone_id.decode(),
        reply_to=app[appkeys.GATEWAY_ID],
    )
    command["requester"] = current_principal(request).user_id
    reply = await dispatch(app, command["show_id"], command)
    if reply is None:
        return pending_answer(command["request_id"])
    return render_result(reply["result"], created_status=200)


VOUCHER_CODE = re.compile(r"V-[A-Z0-9]{12}")


async def apply_voucher(request: web.Request) -> web.Response:
    """POST /api/v1/bookings/{id}/voucher {code}: a compensation voucher of the buyer's taken off
    a reservation of theirs. Two commands: the voucher claimed in its tenant's slot
    (lua/voucher.lua), then taken off the hold in the event's (lua/apply_voucher.lua: only while
    it is `reserved`, so a claim racing the start of payment loses). If the second refuses, the
    claim is released; one left by a gateway gone in between frees itself when the booking could
    no longer be paid (its claim_until)."""
    app = request.app
    principal = current_principal(request)
    booking_id = request.match_info["booking_id"]
    event_id = messages.event_of(booking_id)
    raw_code = (await read_json_object(request)).get("code")
    code = raw_code.strip().upper() if isinstance(raw_code, str) else ""
    if not VOUCHER_CODE.fullmatch(code):
        raise errors.ValidationError("invalid voucher code", details={"code": "V- and 12 letters or digits"})
    hold = messages.redis_record(await app[appkeys.SALE_REDIS].hgetall(keys.hold(event_id, booking_id)))
    if hold.get("user_id") != principal.user_id:
        raise errors.NotFound("no such booking")
    if hold["status"] != "reserved":
        raise errors.VoucherNotApplicable(details={"current": hold["status"]})
    tenant_id = principal.tenant_id  # a buyer's bookings are their storefront's (the voucher's too)
    reply_channel_ready(app)
    claim_until = hold["expires_at"] + int(app[appkeys.SETTINGS].payment_hold_s * 1000)
    claim = messages.voucher_command(
        op="claim",
        event_id=event_id,
        tenant_id=tenant_id,
        code=code,
        user_id=principal.user_id,
        booking_id=booking_id,
        claim_until=claim_until,
        reply_to=app[appkeys.GATEWAY_ID],
    )
    claimed = await dispatch(app, tenant_id, claim)
    if claimed is None:
        raise errors.ServiceUnavailable("no answer in time; try again")  # an unused claim frees itself
    result = claimed["result"]
    if result["status"] == "not_found":
        raise errors.VoucherNotFound()
    if result["status"] != "claimed":
        raise errors.VoucherUnavailable(details={"reason": result.get("reason")})
    apply = messages.apply_voucher_command(
        request_id=messages.new_request_id(event_id),
        booking_id=booking_id,
        hold=hold,
        voucher=result["voucher"],
        reply_to=app[appkeys.GATEWAY_ID],
    )
    applied = await dispatch(app, hold["show_id"], apply)
    if applied is None or applied["result"]["status"] != "voucher_applied":
        release = {**claim, "op": "release", "request_id": messages.new_request_id(event_id), "reply_to": ""}
        await accepted(app, send(app, tenant_id, release))
        current = applied["result"].get("current") if applied else "no answer in time"
        raise errors.VoucherNotApplicable(details={"current": current})
    return ok(await find_booking(request, booking_id))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/bookings/reserve", reserve, name="reserve")
    app.router.add_post("/api/v1/bookings/quote", quote, name="quote")
    app.router.add_get("/api/v1/bookings/requests/{request_id}", request_status)
    app.router.add_get("/api/v1/bookings", list_bookings, name="list_bookings")
    app.router.add_get("/api/v1/bookings/pending", pending_bookings, name="pending_bookings")
    # Only a booking id's shape matches, so /bookings/reserve and /bookings/requests/... keep theirs.
    app.router.add_get(f"/api/v1/bookings/{{booking_id:{PUBLIC_ID}}}", get_booking, name="get_booking")
    app.router.add_post(
        f"/api/v1/bookings/{{booking_id:{PUBLIC_ID}}}/confirm", confirm_booking, name="confirm_booking"
    )
    app.router.add_post(f"/api/v1/bookings/{{booking_id:{PUBLIC_ID}}}/cancel", cancel, name="cancel_booking")
    app.router.add_post(
        f"/api/v1/bookings/{{booking_id:{PUBLIC_ID}}}/voucher", apply_voucher, name="apply_voucher"
    )
