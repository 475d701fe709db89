"""The OpenAPI 3 document of the whole API, served at /api/v1/openapi.json.

Schemas are written inline (no $ref) so a test can validate real responses against them with
nothing but jsonschema; tests/test_openapi.py keeps this document true: every route must be
here, and real answers must match it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.params import PUBLIC_ID
from gateway.responses import ok

UUID = {"type": "string", "format": "uuid"}
TEXT = {"type": "string"}
INT = {"type": "integer"}
TIME = {"type": ["string", "null"], "format": "date-time"}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_TEXT = {"type": ["string", "null"]}


def obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


def success(data: dict[str, Any], paged: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {"success": {"const": True}, "data": data}
    if paged:
        props["meta"] = obj(["page", "per_page", "total"], page=INT, per_page=INT, total=INT)
    return obj(["success", "data"] + (["meta"] if paged else []), **props)


ERROR = obj(
    ["success", "error"],
    success={"const": False},
    error=obj(["code", "message", "details"], code=TEXT, message=TEXT, details={}),
)

USER = obj(
    ["id", "tenant_id", "email", "full_name", "role", "birth_date"],
    id=UUID,
    tenant_id=UUID,
    email=TEXT,
    full_name=TEXT,
    role={"enum": ["user", "organizer", "admin"]},
    birth_date={"type": ["string", "null"], "format": "date"},
)
SESSION = obj(
    ["access_token", "token_type", "expires_in", "refresh_token", "user"],
    access_token=TEXT,
    token_type={"const": "Bearer"},
    expires_in=INT,
    refresh_token=TEXT,
    user=USER,
)
SHOW = obj(
    ["id", "event_id", "show_date", "total_seats"], id=UUID, event_id=UUID, show_date=TIME, total_seats=INT
)
EVENT = obj(
    [
        "id",
        "tenant_id",
        "title",
        "status",
        "max_tickets_per_user",
        "booking_window_minutes",
        "min_age",
        "shows_count",
        "next_show",
    ],
    id=UUID,
    tenant_id=UUID,
    title=TEXT,
    description=TEXT,
    venue=TEXT,
    status={"enum": ["draft", "published", "cancelled"]},
    category=NULLABLE_TEXT,
    max_tickets_per_user=INT,
    booking_window_minutes=INT,
    min_age=NULLABLE_INT,
    shows_count=INT,
    next_show=TIME,
    created_at=TIME,
    updated_at=TIME,
)
EVENT_DETAIL = {
    **EVENT,
    "required": [*EVENT["required"], "shows"],
    "properties": {**EVENT["properties"], "shows": {"type": "array", "items": SHOW}},
}
LIVE_ZONES = {
    "type": "array",
    "items": obj(
        ["id", "name", "price", "total_seats", "available_seats"],
        id=UUID,
        name=TEXT,
        price={"type": "string", "pattern": r"^\d+\.\d{2}$"},
        total_seats=INT,
        available_seats=INT,
    ),
}
ZONES = obj(["show_id", "event_id", "zones"], show_id=UUID, event_id=UUID, zones=LIVE_ZONES)
AVAILABILITY = obj(
    ["event_id", "shows"],
    event_id=UUID,
    shows={
        "type": "array",
        "items": obj(["show_id", "show_date", "zones"], show_id=UUID, show_date=TIME, zones=LIVE_ZONES),
    },
)
RESERVED = obj(
    ["booking_id", "status", "show_id", "zone_id", "quantity", "expires_at", "total_price", "remaining"],
    booking_id={"type": "string", "pattern": f"^{PUBLIC_ID}$"},
    status={"const": "reserved"},
    show_id=UUID,
    zone_id=UUID,
    quantity=INT,
    expires_at=TIME,
    total_price={"type": "string", "pattern": r"^\d+\.\d{2}$"},
    remaining=INT,
)
BOOKING = obj(
    ["booking_id", "event_id", "show_id", "zone_id", "quantity", "total_price", "status", "created_at"],
    booking_id={"type": "string", "pattern": f"^{PUBLIC_ID}$"},
    event_id=UUID,
    show_id=UUID,
    zone_id=UUID,
    quantity=INT,
    total_price={"type": "string", "pattern": r"^\d+\.\d{2}$"},
    status={"enum": ["reserved", "paying", "confirmed", "cancelled", "expired", "refunded"]},
    created_at=TIME,
    expires_at=TIME,
    payment_id=NULLABLE_TEXT,
    ticket_code=NULLABLE_TEXT,
    cancel_reason=NULLABLE_TEXT,
)
MONEY = {"type": "string", "pattern": r"^\d+\.\d{2}$"}
PAYMENT = obj(
    ["payment_id", "booking_id", "status", "amount", "method", "masked", "attempts", "refund", "created_at"],
    payment_id={"type": "string", "pattern": f"^{PUBLIC_ID}$"},
    booking_id={"type": "string", "pattern": f"^{PUBLIC_ID}$"},
    status={"enum": ["pending", "processing", "success", "failed", "refunded"]},
    amount=MONEY,
    method={"enum": ["card", "bank_transfer", "e_wallet"]},
    masked=TEXT,
    attempts=INT,
    failure_reason=NULLABLE_TEXT,
    refund={
        "anyOf": [
            {"type": "null"},
            obj(
                ["status", "percent", "amount"],
                status={"enum": ["requested", "approved", "refunded"]},
                percent=INT,
                amount=MONEY,
                reason=NULLABLE_TEXT,
            ),
        ]
    },
    created_at=TIME,
    updated_at=TIME,
)
PAYMENT_BODY = obj(
    ["booking_id", "method", "details"],
    booking_id=TEXT,
    method={"enum": ["card", "bank_transfer", "e_wallet"]},
    details=obj([], card_number=TEXT, expiry=TEXT, cvc=TEXT, account=TEXT, wallet_id=TEXT),
)
CANCELLED = obj(
    ["booking_id", "status", "show_id", "zone_id", "quantity", "cancelled_at", "remaining"],
    booking_id={"type": "string", "pattern": f"^{PUBLIC_ID}$"},
    status={"const": "cancelled"},
    show_id=UUID,
    zone_id=UUID,
    quantity=INT,
    cancelled_at=TIME,
    remaining=INT,
)
PENDING = obj(["request_id", "status"], request_id=TEXT, status={"const": "pending"}, poll=TEXT)
CATEGORY = obj(["id", "name", "slug"], id=UUID, name=TEXT, slug=TEXT)
ADMIN_USER = obj(
    ["id", "tenant_id", "email", "full_name", "role", "disabled"],
    id=UUID,
    tenant_id=UUID,
    email=TEXT,
    full_name=TEXT,
    role=TEXT,
    disabled={"type": "boolean"},
    created_at=TIME,
)
ZONE_CHANGE = obj(
    ["total_seats", "available_seats", "taken"], total_seats=INT, available_seats=INT, taken=INT
)


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def op(
    summary: str,
    responses: dict[int, dict[str, Any]],
    *,
    auth: bool = False,
    body: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (400,),
) -> dict[str, Any]:
    """One operation: its success answers, the envelope for every error it can give."""
    out: dict[str, Any] = {"summary": summary, "responses": {}}
    for status, schema in responses.items():
        out["responses"][str(status)] = {"description": summary, **_content(schema)}
    # Any body can be too large (413), and any request can meet the limiter or a failing service.
    bodily = (413,) if body is not None else ()
    for status in sorted({*errors, *bodily, *((401,) if auth else ()), 429, 500, 503}):
        out["responses"][str(status)] = {"description": "error", **_content(ERROR)}
    if auth:
        out["security"] = [{"bearer": []}]
    if body is not None:
        out["requestBody"] = {"required": True, **_content(body)}
    return out


CREDENTIALS = obj(["tenant", "email", "password"], tenant=TEXT, email=TEXT, password=TEXT)
EVENT_BODY = obj(
    ["title", "shows"],
    title=TEXT,
    description=TEXT,
    venue=TEXT,
    category=TEXT,
    max_tickets_per_user=INT,
    booking_window_minutes=INT,
    min_age=NULLABLE_INT,
    shows={
        "type": "array",
        "items": obj(
            ["show_date", "zones"],
            show_date=TIME,
            zones={"type": "array", "items": obj(["name", "price", "seats"], name=TEXT, price={}, seats=INT)},
        ),
    },
)
RESERVE_BODY = obj(
    ["event_id", "show_id", "zone_id", "quantity"],
    event_id=UUID,
    show_id=UUID,
    zone_id=UUID,
    quantity=INT,
    idempotency_key=TEXT,
)
REFRESH_BODY = obj(["refresh_token"], refresh_token=TEXT)

STANDING = obj(
    ["event_id", "state", "position", "ahead", "waiting", "eta_seconds", "queue_ticket", "pass"],
    event_id=UUID,
    state={"enum": ["open", "closed", "sold_out", "prequeue", "waiting", "paused", "admitted", "not_joined"]},
    opens_at=TIME,
    position=NULLABLE_INT,
    ahead=NULLABLE_INT,
    waiting=INT,
    eta_seconds=NULLABLE_INT,
    admission_rate_per_min=INT,
    refresh_after_seconds=NULLABLE_INT,
    queue_ticket=TEXT,
    pass_expires_at=TIME,
    **{"pass": NULLABLE_TEXT},  # a Python keyword
)
STREAM = op(
    "Live position (Server-Sent Events; `ticket` is the join answer's queue_ticket)",
    {},
    errors=(400, 401, 404),
)
STREAM["responses"]["200"] = {
    "description": "text/event-stream: `standing` events (state, position, ahead, waiting, eta_seconds, "
    "admission_rate_per_min), heartbeats as comments, then `admitted` with the pass; resumable with "
    "Last-Event-ID",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
NUMBER = {"type": "number"}
ROOM_CONFIG = obj(
    ["mode", "rate_per_min", "max_active", "pass_ttl_s", "grace_s", "oversubscription", "opens_at"],
    mode={"enum": ["off", "auto", "always", "paused", "closed"]},
    rate_per_min=INT,
    max_active=INT,
    pass_ttl_s=INT,
    grace_s=INT,
    oversubscription=NUMBER,
    opens_at=TIME,
    shuffle_seed=NULLABLE_INT,
    auto_active=INT,
    auto_rps=INT,
)
ROOM_CHANGES = obj(
    [],
    mode=TEXT,
    rate_per_min=INT,
    max_active=INT,
    pass_ttl_s=INT,
    grace_s=INT,
    oversubscription=NUMBER,
    opens_at=NULLABLE_TEXT,
    auto_active=INT,
    auto_rps=INT,
)
ROOM_STATS = obj(
    ["waiting", "prequeue", "active", "admitted", "admission_rate_per_min", "engaged", "sold_out"],
    waiting=INT,
    prequeue=INT,
    active=INT,
    admitted=INT,
    admission_rate_per_min=INT,
    engaged={"type": "boolean"},
    sold_out={"type": "boolean"},
    held_bookings=INT,
    seats_total=INT,
    seats_remaining=INT,
    seats_taken=INT,
)
ROOM = obj(["event_id", "config", "stats"], event_id=UUID, config=ROOM_CONFIG, stats=ROOM_STATS)
REVOKED = obj(
    ["event_id", "user_id", "pass_id", "revoked"],
    event_id=UUID,
    user_id=UUID,
    pass_id=UUID,
    revoked={"const": True},
)
JWKS = obj(
    ["keys"],
    keys={
        "type": "array",
        "items": obj(
            ["kty", "crv", "kid", "x"], kty={"const": "OKP"}, crv={"const": "Ed25519"}, kid=TEXT, x=TEXT
        ),
    },
)

PATHS: dict[str, dict[str, Any]] = {
    "/healthz": {"get": op("Liveness", {200: success(obj(["status"], status=TEXT))}, errors=())},
    "/readyz": {
        "get": op(
            "Readiness of Redis, Kafka, PostgreSQL and the reply channel",
            {200: success(obj(["status", "checks"], status=TEXT, checks={"type": "object"}))},
            errors=(),
        )
    },
    "/api/v1/openapi.json": {"get": op("This document", {200: success({"type": "object"})}, errors=())},
    "/api/v1/auth/register": {
        "post": op(
            "Register",
            {201: success(obj(["user"], user=USER))},
            body=obj(["tenant", "email", "password"], tenant=TEXT, email=TEXT, password=TEXT, full_name=TEXT),
            errors=(400, 404, 409),
        )
    },
    "/api/v1/auth/login": {
        "post": op("Log in", {200: success(SESSION)}, body=CREDENTIALS, errors=(400, 401, 403, 404))
    },
    "/api/v1/auth/refresh": {
        "post": op(
            "Rotate the refresh token", {200: success(SESSION)}, body=REFRESH_BODY, errors=(400, 401, 403)
        )
    },
    "/api/v1/auth/logout": {
        "post": op(
            "End this session",
            {200: success(obj(["revoked"], revoked={"type": "boolean"}))},
            auth=True,
            body=REFRESH_BODY,
        )
    },
    "/api/v1/auth/me": {
        "get": op("My profile", {200: success(obj(["user"], user=USER))}, auth=True, errors=(404,)),
        "put": op(
            "Change my profile",
            {200: success(obj(["user"], user=USER))},
            auth=True,
            body=obj([], full_name=TEXT, birth_date=TEXT),
            errors=(400, 404),
        ),
    },
    "/api/v1/auth/forgot-password": {
        "post": op(
            "Mail a reset token",
            {200: success(obj(["sent"], sent={"const": True}))},
            body=obj(["tenant", "email"], tenant=TEXT, email=TEXT),
            errors=(400, 404),
        )
    },
    "/api/v1/auth/reset-password": {
        "post": op(
            "Set a new password with a reset token",
            {200: success(obj(["reset"], reset={"const": True}))},
            body=obj(["token", "password"], token=TEXT, password=TEXT),
        )
    },
    "/api/v1/categories": {
        "get": op("Categories", {200: success({"type": "array", "items": CATEGORY})}, errors=()),
        "post": op(
            "Add a category (admins)",
            {201: success(CATEGORY)},
            auth=True,
            body=obj(["name", "slug"], name=TEXT, slug=TEXT),
            errors=(400, 403, 409),
        ),
    },
    "/api/v1/events": {
        "get": op("Published events", {200: success({"type": "array", "items": EVENT}, paged=True)}),
        "post": op(
            "Create an event (organizers)",
            {201: success(EVENT_DETAIL)},
            auth=True,
            body=EVENT_BODY,
            errors=(400, 403),
        ),
    },
    "/api/v1/events/{event_id}": {
        "get": op("An event and its shows", {200: success(EVENT_DETAIL)}, errors=(404,)),
        "put": op(
            "Edit, publish or cancel an event (its organizers)",
            {200: success(EVENT_DETAIL)},
            auth=True,
            body=obj([]),
            errors=(400, 403, 404, 409),
        ),
        "delete": op(
            "Delete a draft (its organizers)",
            {200: success(obj(["deleted"], deleted=UUID))},
            auth=True,
            errors=(403, 404, 409),
        ),
    },
    "/api/v1/events/{event_id}/shows": {
        "get": op("An event's shows", {200: success({"type": "array", "items": SHOW})}, errors=(404,))
    },
    "/api/v1/events/{event_id}/availability": {
        "get": op(
            "Every show's zones with live availability, in one answer",
            {200: success(AVAILABILITY)},
            errors=(404,),
        )
    },
    "/api/v1/shows/{show_id}/zones": {
        "get": op("Zones with live availability", {200: success(ZONES)}, errors=(404,))
    },
    "/api/v1/shows/{show_id}/zones/{zone_id}": {
        "put": op(
            "Change a zone's seat count (its organizers)",
            {200: success(ZONE_CHANGE), 202: success(PENDING)},
            auth=True,
            body=obj(["seats"], seats=INT),
            errors=(400, 403, 404, 409),
        )
    },
    "/api/v1/admin/users": {
        "get": op(
            "My tenant's users (admins)",
            {200: success({"type": "array", "items": ADMIN_USER}, paged=True)},
            auth=True,
            errors=(400, 403),
        )
    },
    "/api/v1/admin/users/{user_id}": {
        "put": op(
            "Change a user's role or disable them (admins)",
            {200: success(ADMIN_USER)},
            auth=True,
            body=obj([], role=TEXT, disabled={"type": "boolean"}),
            errors=(400, 403, 404),
        )
    },
    "/api/v1/admin/events/{event_id}/room": {
        "get": op(
            "An event's waiting room: settings and live stats (admins)",
            {200: success(ROOM)},
            auth=True,
            errors=(400, 403, 404),
        ),
        "put": op(
            "Change a waiting room's settings; every gateway and admitter within one tick (admins)",
            {200: success(ROOM)},
            auth=True,
            body=ROOM_CHANGES,
            errors=(400, 403, 404),
        ),
    },
    "/api/v1/admin/events/{event_id}/room/revocations": {
        "post": op(
            "Revoke a user's queue pass; every gateway refuses it within one tick (admins)",
            {200: success(REVOKED)},
            auth=True,
            body=obj(["user_id"], user_id=UUID),
            errors=(400, 403, 404),
        )
    },
    "/api/v1/queue/join": {
        "post": op(
            "Join the event's waiting room (again: keeps the place)",
            {200: success(STANDING)},
            auth=True,
            body=obj(["event_id"], event_id=UUID),
            errors=(400, 404),
        )
    },
    "/api/v1/queue/status": {
        "get": op(
            "Where I stand (a heartbeat); the pass once admitted",
            {200: success(STANDING)},
            auth=True,
            errors=(400, 404),
        )
    },
    "/api/v1/queue/stream": {"get": STREAM},
    "/.well-known/jwks.json": {
        "get": {
            "summary": "Queue-pass public keys (a plain JWKS document, not the envelope)",
            "responses": {"200": {"description": "keys", **_content(JWKS)}},
        }
    },
    "/api/v1/bookings/reserve": {
        "post": op(
            "Reserve seats",
            {201: success(RESERVED), 202: success(PENDING)},
            auth=True,
            body=RESERVE_BODY,
            errors=(400, 403, 404, 409, 413, 422),
        )
    },
    "/api/v1/bookings": {
        "get": op(
            "My bookings, newest first (live holds from the sale Redis, the rest from PostgreSQL)",
            {200: success({"type": "array", "items": BOOKING})},
            auth=True,
        )
    },
    "/api/v1/bookings/{booking_id}/cancel": {
        "post": op(
            "Cancel my reservation: its seats return, once",
            {200: success(CANCELLED), 202: success(PENDING)},
            auth=True,
            errors=(400, 404, 409),
        )
    },
    "/api/v1/bookings/pending": {
        "get": op(
            "My reservations still holding their seats (resume payment)",
            {200: success({"type": "array", "items": BOOKING})},
            auth=True,
        )
    },
    "/api/v1/bookings/{booking_id}": {
        "get": op("One of my bookings", {200: success(BOOKING)}, auth=True, errors=(400, 404))
    },
    "/api/v1/bookings/requests/{request_id}": {
        "get": op(
            "The final answer of a command that got 202 (reserve, cancel, pay, refund, seat change)",
            {
                200: success({"anyOf": [RESERVED, CANCELLED, ZONE_CHANGE, PAYMENT]}),
                201: success(PAYMENT),
                202: success(PENDING),
            },
            auth=True,
            errors=(404, 409, 410, 422),
        )
    },
    "/api/v1/bookings/{booking_id}/confirm": {
        "post": op(
            "My booking, confirmed with its e-ticket code once its payment succeeded",
            {200: success(BOOKING)},
            auth=True,
            errors=(400, 402, 404, 409, 410),
        )
    },
    "/api/v1/payments": {
        "post": op(
            "Pay for my reservation (one payment per booking: again answers the same payment)",
            {200: success(PAYMENT), 201: success(PAYMENT), 202: success(PENDING)},
            auth=True,
            body=PAYMENT_BODY,
            errors=(400, 404, 409, 410),
        )
    },
    "/api/v1/payments/{payment_id}": {
        "get": op("One of my payments", {200: success(PAYMENT)}, auth=True, errors=(400, 404))
    },
    "/api/v1/payments/{payment_id}/refund": {
        "post": op(
            "Ask for a refund (100 % more than 7 days before the show, 50 % from 3 days, else none)",
            {200: success(PAYMENT), 202: success(PENDING)},
            auth=True,
            errors=(400, 404, 409),
        )
    },
    "/api/v1/admin/payments/{payment_id}/refund/approve": {
        "post": op(
            "Approve a requested refund (an organizer or admin of the event's tenant)",
            {200: success(PAYMENT), 202: success(PENDING)},
            auth=True,
            errors=(400, 403, 404, 409),
        )
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Booking Rush",
        "version": "1",
        "description": "Flash-sale ticket booking. Every answer uses the envelope "
        "{success, data, meta?} or {success: false, error: {code, message, details}}.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    },
    "paths": PATHS,
}


async def openapi(request: web.Request) -> web.Response:
    return ok(DOCUMENT)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi, name="openapi")
