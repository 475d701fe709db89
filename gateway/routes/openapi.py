"""The OpenAPI 3 document of the whole API, served at /api/v1/openapi.json.

Schemas are written inline (no $ref) so a test can validate real responses against them with
nothing but jsonschema; tests/test_openapi.py keeps this document true: every route must be
here, and real answers must match it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from gateway.accounts import EMAIL_PATTERN
from gateway.params import PUBLIC_ID
from gateway.text import NO_NUL, VISIBLE

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
    tenant_id={"anyOf": [UUID, {"type": "null"}]},  # null: a system admin, outside every tenant
    email=TEXT,
    full_name=TEXT,
    role={"enum": ["user", "organizer", "admin", "system_admin"]},
    birth_date={"type": ["string", "null"], "format": "date"},
    email_verified={"type": "boolean"},
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
    currency={"type": "string", "pattern": "^[A-Z]{3}$", "description": "every price of the event is in it"},
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
        currency=TEXT,
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
MONEY = {"type": "string", "pattern": r"^\d+\.\d{2}$"}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}
# lua/_pricing.lua's breakdown as the API shows it (booking_rush/contract/pricing.py): seat lines
# (early-bird places, then the list price), the discounts in the order they apply (early bird,
# bundle, promo code; each rounded half up once, in minor units), the total. Never below zero.
PRICE_BREAKDOWN = obj(
    ["currency", "list_price", "lines", "subtotal", "discounts", "total"],
    currency=CURRENCY,
    list_price=MONEY,
    lines={
        "type": "array",
        "items": obj(
            ["kind", "quantity", "unit_price", "amount"],
            kind={"enum": ["early_bird", "list"]},
            quantity=INT,
            unit_price=MONEY,
            amount=MONEY,
        ),
    },
    subtotal={**MONEY, "description": "every seat at the list price"},
    discounts={
        "type": "array",
        "items": obj(
            ["kind", "name", "amount"],
            kind={"enum": ["early_bird", "bundle", "promo", "voucher"]},
            name=TEXT,
            code=TEXT,
            percent=INT,
            amount=MONEY,
        ),
    },
    total=MONEY,
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
    currency={"type": ["string", "null"]},
    price=PRICE_BREAKDOWN,
    remaining=INT,
)
QUOTE = obj(
    ["event_id", "show_id", "zone_id", "quantity", "available", "currency", "total_price", "price"],
    event_id=UUID,
    show_id=UUID,
    zone_id=UUID,
    quantity=INT,
    available=INT,
    currency=CURRENCY,
    total_price=MONEY,
    price=PRICE_BREAKDOWN,
)
BOOKING = obj(
    ["booking_id", "event_id", "show_id", "zone_id", "quantity", "total_price", "status", "created_at"],
    booking_id={"type": "string", "pattern": f"^{PUBLIC_ID}$"},
    event_id=UUID,
    show_id=UUID,
    zone_id=UUID,
    quantity=INT,
    total_price={"type": "string", "pattern": r"^\d+\.\d{2}$"},
    currency=CURRENCY,
    price=PRICE_BREAKDOWN,
    status={"enum": ["reserved", "paying", "confirmed", "cancelled", "expired", "refunded"]},
    created_at=TIME,
    expires_at=TIME,
    payment_id=NULLABLE_TEXT,
    ticket_code=NULLABLE_TEXT,
    cancel_reason=NULLABLE_TEXT,
)
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
                status={"enum": ["requested", "approved", "refunded", "refused"]},
                percent=INT,
                amount=MONEY,
                reason=NULLABLE_TEXT,
            ),
        ]
    },
    created_at=TIME,
    updated_at=TIME,
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
# Every storefront's categories, by slug: no one id.
ANY_CATEGORY = obj(["id", "name", "slug"], id={"anyOf": [UUID, {"type": "null"}]}, name=TEXT, slug=TEXT)
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


# What the server's HTTP layer answers itself, before any route: a request line over 8 KiB, a
# header holding a control character. Plain text, not the envelope (no handler saw it).
BAD_REQUEST = {
    "description": "invalid input (the envelope); a request HTTP itself refuses: plain text",
    "content": {
        "application/json": {"schema": ERROR},
        "text/plain": {"schema": {"type": "string"}},
    },
}


def query(name: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


# Pages of a list: `page` 1..100000, `per_page` 1..100 (decimal digits only).
PAGING = [
    query("page", {"type": "integer", "minimum": 1, "maximum": 100_000}),
    query("per_page", {"type": "integer", "minimum": 1, "maximum": 100}),
]


def op(
    summary: str,
    responses: dict[int, dict[str, Any]],
    *,
    auth: bool = False,
    body: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (400,),
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One operation: its query parameters, its success answers, the envelope for every error it
    can give. (Path parameters are added to every operation from its path: `with_path_params`.)"""
    out: dict[str, Any] = {"summary": summary, "responses": {}}
    if params:
        out["parameters"] = params
    for status, schema in responses.items():
        out["responses"][str(status)] = {"description": summary, **_content(schema)}
    # Any body can be too large (413), any request can meet the limiter or a failing service, and
    # any can be refused by HTTP itself (400).
    bodily = (413,) if body is not None else ()
    for status in sorted({*errors, *bodily, *((401,) if auth else ()), 400, 429, 500, 503}):
        out["responses"][str(status)] = {"description": "error", **_content(ERROR)}
    out["responses"]["400"] = BAD_REQUEST
    if auth:
        out["security"] = [{"bearer": []}]
    if body is not None:
        out["requestBody"] = {"required": True, **_content(body)}
    return out


# --- request bodies: what the server checks, field by field -----------------------------------
# Strings never hold NUL (gateway/text.py); a name holds a character other than white space.


def text(max_length: int, min_length: int = 0, *, pattern: str = NO_NUL, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, "pattern": pattern, **extra}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def name(max_length: int, **extra: Any) -> dict[str, Any]:
    return text(max_length, 1, pattern=VISIBLE, **extra)


def integer(low: int, high: int, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high, **extra}


TENANT = text(100, 1, description="the tenant's slug (an unknown one: 404)")
EMAIL = {"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN}
# What bcrypt takes: 8 characters to 72 bytes of UTF-8, with a letter and a digit. Described here
# for printable ASCII (one byte a character); other characters count by their UTF-8 bytes.
NEW_PASSWORD = {
    "type": "string",
    "minLength": 8,
    "maxLength": 72,
    "allOf": [{"pattern": "^[ -~]*[A-Za-z][ -~]*$"}, {"pattern": "^[ -~]*[0-9][ -~]*$"}],
    "description": "8 characters to 72 bytes (UTF-8), with a letter and a digit",
}
CREDENTIALS = obj(["tenant", "email", "password"], tenant=TENANT, email=EMAIL, password=text(128, 1))
SYSTEM_CREDENTIALS = obj(["email", "password"], email=EMAIL, password=text(128, 1))
TENANT_BODY = obj(
    ["name", "slug", "admin_email"],
    name=text(200, 1),
    slug={"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"},
    currency={"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 (default THB)"},
    time_zone=text(64, 1, description="an IANA time zone (default Asia/Bangkok)"),
    admin_email=EMAIL,
)
TENANT_VIEW = obj(
    ["id", "name", "slug", "status", "currency", "time_zone", "created_at"],
    id=UUID,
    name=TEXT,
    slug=TEXT,
    status={"enum": ["active", "suspended"]},
    currency=TEXT,
    time_zone=TEXT,
    created_at=TIME,
    invited=TEXT,
)
TENANT_STATE = {
    **TENANT_VIEW,
    "required": [*TENANT_VIEW["required"], "events_applied", "events_pending"],
    "properties": {**TENANT_VIEW["properties"], "events_applied": INT, "events_pending": INT},
}
REGISTER_BODY = obj(
    ["tenant", "email", "password"],
    tenant=TENANT,
    email=EMAIL,
    password=NEW_PASSWORD,
    full_name=nullable(text(200)),
)
TOKEN = text(200, 20)
PROFILE_BODY = obj(
    [],
    full_name=nullable(text(200)),
    birth_date=nullable({"type": "string", "format": "date", "description": "from 1900-01-01 to today"}),
)
CATEGORY_BODY = obj(
    ["name", "slug"],
    name=name(100),
    slug={"type": "string", "maxLength": 100, "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"},
)
# A price: a whole number, or a decimal string with at most two decimals; 0 to 1,000,000,000.
PRICE = {
    "anyOf": [
        integer(0, 1_000_000_000),
        {"type": "string", "pattern": "^([0-9]{1,9}([.][0-9]{1,2})?|1000000000([.]00?)?)$"},
    ]
}
ZONE_BODY = obj(["name", "price", "seats"], name=name(100), price=PRICE, seats=integer(1, 1_000_000))
SHOW_BODY = obj(
    ["show_date", "zones"],
    show_date={
        "type": "string",
        "format": "date-time",
        "description": "in the future, with a UTC offset, at most 9999-12-31 in UTC",
    },
    zones={"type": "array", "minItems": 1, "maxItems": 50, "items": ZONE_BODY, "description": "names unique"},
)
EVENT_FIELDS = {
    "title": name(200),
    "description": nullable(name(2000)),
    "venue": nullable(name(200)),
    "max_tickets_per_user": integer(1, 20),
    "booking_window_minutes": integer(0, 10_080),
    "min_age": nullable(integer(1, 99)),
}
EVENT_BODY = obj(
    ["title", "shows"],
    **EVENT_FIELDS,
    category=nullable(text(100, description="a category's slug (GET /api/v1/categories)")),
    shows={"type": "array", "minItems": 1, "maxItems": 50, "items": SHOW_BODY},
)
EVENT_EDIT = obj(
    [],
    **EVENT_FIELDS,
    status={"enum": ["draft", "published", "cancelled"], "description": "draft -> published -> cancelled"},
)
RESERVE_BODY = obj(
    ["event_id", "show_id", "zone_id", "quantity"],
    event_id=UUID,
    show_id=UUID,
    zone_id=UUID,
    quantity=integer(1, 20, description="at most the event's max_tickets_per_user"),
    idempotency_key=nullable({"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}),
    promo_code=nullable(
        {
            "type": "string",
            "pattern": "^ *[A-Za-z0-9-]{0,32} *$",
            "description": "case-insensitive; part of the idempotency body (same key, other code: 422)",
        }
    ),
)
QUOTE_BODY = {
    **RESERVE_BODY,
    "properties": {k: v for k, v in RESERVE_BODY["properties"].items() if k != "idempotency_key"},
}
TIME_OR_NULL = nullable(
    {"type": "string", "format": "date-time", "description": "with a UTC offset, from 1970 to 9999 in UTC"}
)
PROMO_CODE_FIELDS = {
    "code": nullable(
        text(32, 8, pattern="^[A-Za-z0-9-]{8,32}$", description="none: a 12-character one is made")
    ),
    "name": nullable(name(100)),
    "starts_at": TIME_OR_NULL,
    "ends_at": {**TIME_OR_NULL, "description": "after starts_at"},
    "show_id": {**nullable(UUID), "description": "one of the event's shows (none: any)"},
    "zone_id": {**nullable(UUID), "description": "one of the event's zones, of that show (none: any)"},
    "max_uses": nullable(integer(1, 10_000_000)),
    "per_user": nullable(integer(1, 100)),
    "min_quantity": integer(1, 100),
}
AMOUNT = {**PRICE, "description": "more than 0"}
PROMO_CODE_BODY = {
    "oneOf": [
        obj(["kind", "percent"], kind={"const": "percent"}, percent=integer(1, 100), **PROMO_CODE_FIELDS),
        obj(["kind", "amount"], kind={"const": "amount"}, amount=AMOUNT, **PROMO_CODE_FIELDS),
    ]
}
PROMO_CODE = obj(
    ["code", "name", "kind", "percent", "amount", "currency", "status", "uses", "min_quantity"],
    code=TEXT,
    name=TEXT,
    kind={"enum": ["percent", "amount"]},
    percent=NULLABLE_INT,
    amount={"type": ["string", "null"]},
    currency=TEXT,
    starts_at=TIME,
    ends_at=TIME,
    show_id={"type": ["string", "null"]},
    zone_id={"type": ["string", "null"]},
    max_uses=NULLABLE_INT,
    per_user=NULLABLE_INT,
    min_quantity=INT,
    status={"enum": ["active", "paused"]},
    uses={**INT, "description": "live: holds and sales (a released booking gives its use back)"},
)
EARLY_BIRD_ENDS = {
    "until": {**TIME_OR_NULL, "description": "the early bird ends then (or after `seats`, whichever first)"},
    "seats": nullable(integer(1, 1_000_000)),
}
EARLY_BIRD_BODY = {
    "oneOf": [
        obj(
            ["kind", "price"],
            kind={"const": "price"},
            price={**AMOUNT, "description": "below the zone's list price"},
            **EARLY_BIRD_ENDS,
        ),
        obj(["kind", "percent"], kind={"const": "percent"}, percent=integer(1, 100), **EARLY_BIRD_ENDS),
    ],
    "description": "`until`, `seats` or both",
}
EARLY_BIRD = obj(
    ["show_id", "zone_id", "active", "kind", "taken"],
    show_id=UUID,
    zone_id=UUID,
    active={"type": "boolean"},
    kind={"type": ["string", "null"]},
    price={"type": ["string", "null"]},
    percent=NULLABLE_INT,
    currency=TEXT,
    until=TIME,
    seats=NULLABLE_INT,
    taken={**INT, "description": "places held or sold at the early-bird price"},
)
BUNDLE_TIER = obj(
    ["min_quantity", "percent"],
    min_quantity=integer(2, 100),
    percent=integer(1, 100),
    name=nullable(name(100)),
)
BUNDLES_BODY = obj(
    ["tiers"],
    tiers={"type": "array", "maxItems": 10, "items": BUNDLE_TIER, "description": "one per min_quantity"},
)
GIVEN = obj(["bookings", "given_away"], bookings=INT, seats=INT, given_away=MONEY)
PRICING = obj(
    ["event_id", "currency", "early_birds", "bundles", "report"],
    event_id=UUID,
    currency=TEXT,
    early_birds={"type": "array", "items": EARLY_BIRD},
    bundles={
        "type": "array",
        "items": obj(["min_quantity", "percent", "name"], min_quantity=INT, percent=INT, name=TEXT),
    },
    report={
        "type": "array",
        "items": obj(
            ["kind", "code", "sold", "held"],
            kind=TEXT,
            code={"type": ["string", "null"]},
            sold=GIVEN,
            held=GIVEN,
        ),
    },
)
TENANT_SETTINGS = obj(
    ["tenant_id", "cancellation_compensation_percent"], tenant_id=UUID, cancellation_compensation_percent=INT
)
PRICING_SET = obj(["what", "rule", "version"], what=TEXT, rule={"type": "object"}, version=INT)
REFRESH_BODY = obj(["refresh_token"], refresh_token=TOKEN)
ID_STRING = {"type": "string", "pattern": f"^{PUBLIC_ID}$"}


def pattern(regex: str) -> dict[str, Any]:
    return {"type": "string", "pattern": regex}


def paid_by(method: str, details: dict[str, Any]) -> dict[str, Any]:
    return obj(
        ["booking_id", "method", "details"], booking_id=ID_STRING, method={"const": method}, details=details
    )


PAYMENT_BODY = {
    "oneOf": [
        paid_by(
            "card",
            obj(
                ["card_number", "expiry", "cvc"],
                card_number={"type": "string", "pattern": "^[0-9]{12,19}$"},
                expiry={
                    "type": "string",
                    "pattern": "^(0[1-9]|1[0-2])/[0-9]{2}$",
                    "description": "MM/YY, not past",
                },
                cvc={"type": "string", "pattern": "^[0-9]{3,4}$"},
            ),
        ),
        paid_by(
            "bank_transfer", obj(["account"], account={"type": "string", "pattern": "^[A-Za-z0-9]{6,34}$"})
        ),
        paid_by(
            "e_wallet",
            obj(["wallet_id"], wallet_id={"type": "string", "pattern": "^[A-Za-z0-9@.+_-]{4,64}$"}),
        ),
    ]
}

STANDING = obj(
    [
        "event_id",
        "state",
        "position",
        "ahead",
        "waiting",
        "eta_seconds",
        "eta_range_seconds",
        "eta_status",
        "queue_ticket",
        "pass",
    ],
    event_id=UUID,
    state={"enum": ["open", "closed", "sold_out", "prequeue", "waiting", "paused", "admitted", "not_joined"]},
    opens_at=TIME,
    position=NULLABLE_INT,
    ahead=NULLABLE_INT,
    waiting=INT,
    eta_seconds=NULLABLE_INT,  # the middle of eta_range_seconds
    eta_range_seconds=nullable({"type": "array", "items": INT, "minItems": 2, "maxItems": 2}),
    # estimate: eta_* say the wait; paused / not_open (opens_at) / sold_out / closed: no wait to
    # say, and why; null: not in line.
    eta_status={"enum": ["estimate", "paused", "not_open", "sold_out", "closed", None]},
    admission_rate_per_min=INT,
    refresh_after_seconds=NULLABLE_INT,
    queue_ticket=TEXT,
    pass_expires_at=TIME,
    closed_reason={"enum": ["tenant_suspended", "event_cancelled", None]},  # why the system closed the room
    **{"pass": NULLABLE_TEXT},  # a Python keyword
)
LEFT_LINE = obj(
    ["event_id", "state", "left"], event_id=UUID, state={"const": "not_joined"}, left={"type": "boolean"}
)


# A browser's PushSubscription.toJSON(): the endpoint and its keys, base64url.
PUSH_SUBSCRIPTION = {
    **obj(
        ["endpoint", "keys"],
        endpoint={"type": "string", "minLength": 1, "maxLength": 1024},
        keys=obj(["p256dh", "auth"], p256dh=text(100, 1), auth=text(40, 1)),
    ),
    "description": "A browser's PushSubscription.toJSON(): endpoint an https URL on a public host; "
    "keys.p256dh a P-256 public key (65 bytes), keys.auth 16 bytes, both base64url",
}
NOTIFY_BODY = {
    **obj(
        ["event_id"],
        event_id=UUID,
        push=PUSH_SUBSCRIPTION,
        email={"const": True},
        lang={"enum": ["en", "th"]},
    ),
    # Told by push or by mail: exactly one of them.
    "oneOf": [{"required": ["push"]}, {"required": ["email"]}],
}
NOTIFYING = obj(
    ["event_id", "channel", "claim_window_s"],
    event_id=UUID,
    channel={"enum": ["push", "email"]},
    claim_window_s=INT,
)
NOT_NOTIFYING = obj(["event_id", "removed"], event_id=UUID, removed={"type": "boolean"})


def queue_op(
    summary: str,
    answer: dict[str, Any],
    body: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (400, 404),
) -> dict[str, Any]:
    """A signed-in POST about one event's waiting room: body {event_id} unless said."""
    return op(
        summary,
        {200: success(answer)},
        auth=True,
        body=body or obj(["event_id"], event_id=UUID),
        errors=errors,
    )


def queue_query_op(summary: str, answer: dict[str, Any]) -> dict[str, Any]:
    """A signed-in GET or DELETE about one event's waiting room: ?event_id=."""
    return op(
        summary,
        {200: success(answer)},
        auth=True,
        errors=(400, 404),
        params=[query("event_id", UUID, required=True)],
    )


# A join's proof of work, when the room asks one: the challenge of a PROOF_OF_WORK_REQUIRED answer
# (its details: {challenge, bits}) and a nonce such that SHA-256("<challenge>:<nonce>") starts
# with `bits` zero bits.
JOIN_BODY = obj(
    ["event_id"],
    event_id=UUID,
    pow=obj(["challenge", "nonce"], challenge=text(256, 1), nonce=text(64, 1)),
)


JWT_SHAPE = "^[A-Za-z0-9_-]+[.][A-Za-z0-9_-]+[.][A-Za-z0-9_-]*$"
STREAM = op(
    "Live position (Server-Sent Events; `ticket` is the join answer's queue_ticket)",
    {},
    errors=(400, 401, 404),
    params=[
        query("event_id", UUID, required=True),
        # A queue ticket is a JWT (three base64url parts); the server takes any text of 4096 at
        # most, and answers 401 for anything that is not a ticket of its own.
        query("ticket", {"type": "string", "maxLength": 4096, "pattern": JWT_SHAPE}, required=True),
    ],
)
STREAM["responses"]["200"] = {
    "description": "text/event-stream: `standing` events (state, position, ahead, waiting, eta_seconds, "
    "eta_range_seconds, eta_status, admission_rate_per_min), `heartbeat` events, `ticket` (a fresh "
    "queue_ticket for the next stream, sent once the one held is half spent), then `admitted` with "
    "the pass; resumable with Last-Event-ID",
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
    pow_bits=INT,
    claim_window_s=INT,
)
ROOM_CHANGES = {
    **obj(
        [],
        mode={"enum": ["off", "auto", "always", "paused", "closed"]},
        rate_per_min={"type": "integer", "minimum": 1, "maximum": 1_000_000},
        max_active={"type": "integer", "minimum": 1, "maximum": 10_000_000},
        pass_ttl_s={"type": "integer", "minimum": 30, "maximum": 3600},
        grace_s={"type": "integer", "minimum": 5, "maximum": 3600},
        oversubscription={"type": "number", "minimum": 1, "maximum": 10},
        opens_at={"anyOf": [{"type": "string", "format": "date-time", "maxLength": 40}, {"type": "null"}]},
        auto_active={"type": "integer", "minimum": 1, "maximum": 10_000_000},
        auto_rps={"type": "integer", "minimum": 1, "maximum": 10_000_000},
        pow_bits={"type": "integer", "minimum": 0, "maximum": 24},
        claim_window_s={"type": "integer", "minimum": 30, "maximum": 3600},
    ),
    "additionalProperties": False,  # a setting the room does not have is refused
}
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
ROOM_PATTERNS = obj(
    ["event_id", "join_addresses", "in_line"],
    event_id=UUID,
    join_addresses=obj(
        ["window_s", "addresses", "busiest"],
        window_s=INT,
        addresses=INT,
        busiest={"type": "array", "items": obj(["address", "joins"], address=TEXT, joins=INT)},
    ),
    in_line=obj(["checked", "new_accounts_last_hour"], checked=INT, new_accounts_last_hour=INT),
)
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
            "Readiness of Redis, Kafka, PostgreSQL and the reply channel, checked at most once a second",
            {
                200: success(
                    obj(
                        ["status", "checks", "checked_at"],
                        status=TEXT,
                        checks={"type": "object"},
                        checked_at={"type": "string", "format": "date-time"},
                    )
                )
            },
            errors=(),
        )
    },
    "/api/v1/openapi.json": {
        "get": op("This document (bare, not in the envelope)", {200: {"type": "object"}}, errors=())
    },
    "/api/v1/auth/register": {
        "post": op(
            "Register: the account is made and a verification link mailed (verification_sent: whether "
            "it went); joining a waiting room and reserving wait for it (403 EMAIL_NOT_VERIFIED)",
            {
                201: success(
                    obj(["user", "verification_sent"], user=USER, verification_sent={"type": "boolean"})
                )
            },
            body=REGISTER_BODY,
            errors=(400, 403, 404, 409),
        )
    },
    "/api/v1/auth/verify-email": {
        "post": op(
            "Use the mailed verification link: the address is verified, and a fresh session says so "
            "(404: the link is used, expired or unknown)",
            {200: success(SESSION)},
            body=obj(["token"], token=TOKEN),
            errors=(400, 403, 404),
        )
    },
    "/api/v1/auth/verify-email/resend": {
        "post": op(
            "Mail the verification link again (three an hour per account)",
            {
                200: success(
                    obj(
                        ["sent", "email_verified"],
                        sent={"type": "boolean"},
                        email_verified={"type": "boolean"},
                    )
                )
            },
            auth=True,
        )
    },
    "/api/v1/auth/login": {
        "post": op("Log in", {200: success(SESSION)}, body=CREDENTIALS, errors=(400, 401, 403, 404))
    },
    "/api/v1/system/auth/login": {
        "post": op(
            "A system admin logs in (no tenant)",
            {200: success(SESSION)},
            body=SYSTEM_CREDENTIALS,
            errors=(400, 401, 403),
        )
    },
    "/api/v1/system/tenants": {
        "get": op(
            "Every tenant, oldest first (system admins)",
            {200: success({"type": "array", "items": TENANT_VIEW}, paged=True)},
            auth=True,
            params=PAGING,
            errors=(400, 403),
        ),
        "post": op(
            "Create a tenant (a storefront) and mail its first admin a single-use invitation (system "
            "admins); 409 for a slug taken",
            {201: success(TENANT_VIEW)},
            auth=True,
            body=TENANT_BODY,
            errors=(400, 403, 409),
        ),
    },
    "/api/v1/system/tenants/{tenant_id}/suspend": {
        "post": op(
            "Suspend a tenant (system admins): sign-in and refresh refused 403 TENANT_SUSPENDED and its "
            "access tokens ended at once; each published event suspended in the sale Redis by a command "
            "(a reserve or payment applied after it: 403 TENANT_SUSPENDED), its waiting room closed with "
            "closed_reason; events_pending: commands not yet applied when the answer went",
            {200: success(TENANT_STATE)},
            auth=True,
            errors=(400, 403, 404),
        )
    },
    "/api/v1/system/tenants/{tenant_id}/reactivate": {
        "post": op(
            "Reactivate a tenant (system admins): its events' sales resume, each waiting room back to the "
            "mode it had, then sign-in opens",
            {200: success(TENANT_STATE)},
            auth=True,
            errors=(400, 403, 404),
        )
    },
    "/api/v1/auth/invitations/accept": {
        "post": op(
            "A tenant's invited admin sets a password: their account and a session (404: the link is "
            "used, expired or unknown)",
            {200: success(SESSION)},
            body=obj(
                ["token", "password"], token=TOKEN, password=NEW_PASSWORD, full_name=nullable(text(200))
            ),
            errors=(400, 404),
        )
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
            body=PROFILE_BODY,
            errors=(400, 404),
        ),
    },
    "/api/v1/auth/forgot-password": {
        "post": op(
            "Mail a reset token",
            {200: success(obj(["sent"], sent={"const": True}))},
            body=obj(["tenant", "email"], tenant=TENANT, email=EMAIL),
            errors=(400, 403, 404),
        )
    },
    "/api/v1/auth/reset-password": {
        "post": op(
            "Set a new password with a reset token",
            {200: success(obj(["reset"], reset={"const": True}))},
            body=obj(["token", "password"], token=TOKEN, password=NEW_PASSWORD),
            errors=(400, 401),
        )
    },
    "/api/v1/categories": {
        "get": op(
            "A storefront's categories (`tenant`: its slug; 404 if none has it), or every storefront's by "
            "slug (id null)",
            {200: success({"type": "array", "items": ANY_CATEGORY})},
            params=[query("tenant", {"type": "string", "minLength": 1, "maxLength": 100})],
            errors=(400, 404),
        ),
        "post": op(
            "Add a category to my tenant (admins; 409: my tenant has that slug)",
            {201: success(CATEGORY)},
            auth=True,
            body=CATEGORY_BODY,
            errors=(400, 403, 409),
        ),
    },
    "/api/v1/events": {
        "get": op(
            "Published (or cancelled) events, of one storefront (`tenant`: its slug; 404 if none has it) "
            "or of all",
            {200: success({"type": "array", "items": EVENT}, paged=True)},
            params=[
                *PAGING,
                query("status", {"enum": ["published", "cancelled"]}),
                query("category", {"type": "string", "minLength": 1, "maxLength": 100}),
                query("tenant", {"type": "string", "minLength": 1, "maxLength": 100}),
            ],
            errors=(400, 404),
        ),
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
            body=EVENT_EDIT,
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
            body=obj(["seats"], seats=integer(0, 1_000_000)),
            errors=(400, 403, 404, 409),
        )
    },
    "/api/v1/admin/users": {
        "get": op(
            "My tenant's users (admins)",
            {200: success({"type": "array", "items": ADMIN_USER}, paged=True)},
            auth=True,
            errors=(400, 403),
            params=PAGING,
        )
    },
    "/api/v1/admin/users/{user_id}": {
        "put": op(
            "Change a user's role or disable them (admins)",
            {200: success(ADMIN_USER)},
            auth=True,
            body=obj(
                [],
                role=nullable({"enum": ["user", "organizer", "admin"]}),
                disabled=nullable({"type": "boolean"}),
            ),
            errors=(400, 403, 404, 409),
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
    "/api/v1/admin/events/{event_id}/room/patterns": {
        "get": op(
            "What suggests bots in the line (admins): the addresses that took most places in line "
            "within the window (it ends window_s after the room's last new place), and how many of the "
            "people in line (the first `checked`) have accounts made within the last hour",
            {200: success(ROOM_PATTERNS)},
            auth=True,
            errors=(400, 403, 404),
        )
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
        "post": queue_op(
            "Join the event's waiting room (again: keeps the place); 403 PROOF_OF_WORK_REQUIRED when "
            "the room asks a new place for proof of work",
            STANDING,
            body=JOIN_BODY,
            errors=(400, 403, 404, 409),
        )
    },
    "/api/v1/queue/status": {
        "get": queue_query_op("Where I stand (a heartbeat); the pass once admitted", STANDING)
    },
    "/api/v1/queue/leave": {
        "post": queue_op(
            "Leave the event's waiting room: the place is freed at once (left: whether I was in line)",
            LEFT_LINE,
        )
    },
    "/api/v1/queue/stream": {"get": STREAM},
    "/api/v1/queue/notify": {
        "post": queue_op(
            "Tell me when it is my turn, by Web Push (push: the browser's PushSubscription) or e-mail "
            "(email: true); while it lives I count as present: at my turn I am called and have the "
            "room's claim window to come back for the pass. One per person per room (replaces the last)",
            NOTIFYING,
            body=NOTIFY_BODY,
            errors=(400, 404, 409),
        ),
        "delete": queue_query_op(
            "Stop telling me (removed: whether there was a subscription)", NOT_NOTIFYING
        ),
    },
    "/api/v1/queue/notify/key": {
        "get": op(
            "The Web Push application server key pages subscribe with (null: no Web Push on this site)",
            {200: success(obj(["vapid_public_key"], vapid_public_key=NULLABLE_TEXT))},
        )
    },
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
    "/api/v1/bookings/quote": {
        "post": op(
            "What a reservation would cost now, with its breakdown (decides nothing; wrong codes "
            "are rate limited per user and per address)",
            {200: success(QUOTE)},
            auth=True,
            body=QUOTE_BODY,
            errors=(400, 403, 404, 409),
        )
    },
    "/api/v1/events/{event_id}/pricing": {
        "get": op(
            "The event's early birds and bundles, and what each rule and code gave away (its organizers)",
            {200: success(PRICING)},
            auth=True,
            errors=(403, 404, 409),
        )
    },
    "/api/v1/events/{event_id}/promo-codes": {
        "get": op(
            "The event's promo codes with their live uses (its organizers)",
            {
                200: success(
                    obj(
                        ["event_id", "promo_codes"],
                        event_id=UUID,
                        promo_codes={"type": "array", "items": PROMO_CODE},
                    )
                )
            },
            auth=True,
            errors=(403, 404, 409),
        ),
        "post": op(
            "A new promo code (through Kafka, in order with the reservations)",
            {201: success(PROMO_CODE), 202: success(PENDING)},
            auth=True,
            body=PROMO_CODE_BODY,
            errors=(400, 403, 404, 409),
        ),
    },
    "/api/v1/events/{event_id}/promo-codes/{code}": {
        "patch": op(
            "Pause or resume a promo code (a paused code is refused as unknown)",
            {200: success(PROMO_CODE), 202: success(PENDING)},
            auth=True,
            body=obj(["status"], status={"enum": ["active", "paused"]}),
            errors=(400, 403, 404, 409),
        )
    },
    "/api/v1/events/{event_id}/zones/{zone_id}/early-bird": {
        "put": op(
            "Set a zone's early bird: a price or a percentage off until a time and/or the first N seats",
            {200: success(EARLY_BIRD), 202: success(PENDING)},
            auth=True,
            body=EARLY_BIRD_BODY,
            errors=(400, 403, 404, 409),
        ),
        "delete": op(
            "End a zone's early bird now (holds keep their price)",
            {200: success(EARLY_BIRD), 202: success(PENDING)},
            auth=True,
            errors=(400, 403, 404, 409),
        ),
    },
    "/api/v1/events/{event_id}/bundles": {
        "put": op(
            "Set the event's bundle tiers: buy N or more, X % off (empty: none)",
            {
                200: success(obj(["event_id", "tiers"], event_id=UUID, tiers={"type": "array"})),
                202: success(PENDING),
            },
            auth=True,
            body=BUNDLES_BODY,
            errors=(400, 403, 404, 409),
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
                200: success({"anyOf": [RESERVED, CANCELLED, ZONE_CHANGE, PAYMENT, PRICING_SET]}),
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
            errors=(400, 402, 403, 404, 409, 410),
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
            "Approve a requested refund (an organizer or admin of the event's tenant); the buyer is mailed",
            {200: success(PAYMENT), 202: success(PENDING)},
            auth=True,
            errors=(400, 403, 404, 409),
        )
    },
    "/api/v1/admin/payments/{payment_id}/refund/refuse": {
        "post": op(
            "Refuse a requested refund with a reason (final); the buyer is mailed the reason",
            {200: success(PAYMENT), 202: success(PENDING)},
            auth=True,
            body=obj(["reason"], reason=name(500)),
            errors=(400, 403, 404, 409),
        )
    },
    "/api/v1/bookings/{booking_id}/voucher": {
        "post": op(
            "Take a compensation voucher of mine off my reservation (while it is not being paid for); "
            "it applies last in the pricing order, never below zero",
            {200: success(BOOKING)},
            auth=True,
            body=obj(["code"], code={"type": "string", "pattern": "^ *[Vv]-[A-Za-z0-9]{12} *$"}),
            errors=(400, 404, 409),
        )
    },
    "/api/v1/admin/tenant": {
        "get": op(
            "My tenant's settings (admins)",
            {200: success(TENANT_SETTINGS)},
            auth=True,
            errors=(403,),
        ),
        "put": op(
            "Change my tenant's settings (admins): the compensation a cancelled event's buyers get, as a "
            "percentage of what they paid, issued as a voucher for the tenant's events",
            {200: success(TENANT_SETTINGS)},
            auth=True,
            body=obj(
                ["cancellation_compensation_percent"], cancellation_compensation_percent=integer(0, 100)
            ),
            errors=(400, 403),
        ),
    },
    "/api/v1/admin/events/{event_id}/cancellation": {
        "get": op(
            "How settling a cancelled event's bookings goes (its organizers and admins)",
            {
                200: success(
                    obj(
                        ["event_id", "status", "bookings", "left", "outcomes", "failures"],
                        event_id=UUID,
                        status={"enum": ["waiting", "nothing_to_settle", "settling", "done"]},
                        bookings={**INT, "description": "listed from the sale Redis when the cancel applied"},
                        left=INT,
                        outcomes={
                            "type": "object",
                            "additionalProperties": INT,
                            "description": "released, refunded, topped_up, ended_before, failed",
                        },
                        failures={
                            "type": "array",
                            "items": obj(["booking_id", "reason"], booking_id=TEXT, reason=TEXT),
                        },
                    )
                )
            },
            auth=True,
            errors=(403, 404),
        )
    },
    "/api/v1/admin/events/{event_id}/refunds": {
        "get": op(
            "The event's refunds, oldest change first, for its organizers and admins (`status=requested`: "
            "the requests waiting for a decision)",
            {
                200: success(
                    {
                        "type": "array",
                        "items": {
                            **PAYMENT,
                            "required": [*PAYMENT["required"], "buyer", "quantity"],
                            "properties": {
                                **PAYMENT["properties"],
                                "buyer": obj(["email", "full_name"], email=TEXT, full_name=TEXT),
                                "quantity": INT,
                            },
                        },
                    },
                    paged=True,
                )
            },
            auth=True,
            errors=(400, 403, 404),
            params=[query("status", {"enum": ["requested", "approved", "refunded", "refused"]}), *PAGING],
        )
    },
}

# Path parameters by name: what the server takes (anything else names nothing: 404).
PATH_PARAMS = {
    "event_id": UUID,
    "show_id": UUID,
    "zone_id": UUID,
    "user_id": UUID,
    "tenant_id": UUID,
    "booking_id": {"type": "string", "pattern": f"^{PUBLIC_ID}$"},
    "payment_id": {"type": "string", "pattern": f"^{PUBLIC_ID}$"},
    "request_id": {"type": "string", "pattern": f"^{PUBLIC_ID}$"},
    "code": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,32}$", "description": "a promo code, any case"},
}


def with_path_params(paths: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every operation declares the parameters of its path (required, as OpenAPI has it)."""
    for path, operations in paths.items():
        names = re.findall(r"{(\w+)}", path)
        for operation in operations.values():
            declared = [{"name": n, "in": "path", "required": True, "schema": PATH_PARAMS[n]} for n in names]
            if declared:
                operation["parameters"] = declared + operation.get("parameters", [])
    return paths


def _operation_ref(method: str, path: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


EVENT_ID = "$response.body#/data/id"
FIRST_SHOW = "$response.body#/data/shows/0/show_id"
FIRST_ZONE = "$response.body#/data/shows/0/zones/0/id"
BOOKING_ID = "$response.body#/data/booking_id"
PAYMENT_ID = "$response.body#/data/payment_id"
# What an answer leads to (OpenAPI links: tools follow them from one call to the next, so an
# event made is then read, edited, published and booked, a booking paid for and refunded).
# (source method, path, status) -> link name -> (target method, path, parameters, request body).
LINKS: dict[tuple[str, str, int], dict[str, tuple[str, str, dict[str, str], dict[str, Any] | None]]] = {
    ("post", "/api/v1/events", 201): {
        "GetEvent": ("get", "/api/v1/events/{event_id}", {"event_id": EVENT_ID}, None),
        "EditEvent": ("put", "/api/v1/events/{event_id}", {"event_id": EVENT_ID}, None),
        "PublishEvent": ("put", "/api/v1/events/{event_id}", {"event_id": EVENT_ID}, {"status": "published"}),
        "DeleteEvent": ("delete", "/api/v1/events/{event_id}", {"event_id": EVENT_ID}, None),
        "EventShows": ("get", "/api/v1/events/{event_id}/shows", {"event_id": EVENT_ID}, None),
        "Availability": ("get", "/api/v1/events/{event_id}/availability", {"event_id": EVENT_ID}, None),
        "Room": ("get", "/api/v1/admin/events/{event_id}/room", {"event_id": EVENT_ID}, None),
        "ChangeRoom": ("put", "/api/v1/admin/events/{event_id}/room", {"event_id": EVENT_ID}, None),
    },
    ("put", "/api/v1/events/{event_id}", 200): {
        "Availability": ("get", "/api/v1/events/{event_id}/availability", {"event_id": EVENT_ID}, None),
        "JoinQueue": ("post", "/api/v1/queue/join", {}, {"event_id": EVENT_ID}),
    },
    ("get", "/api/v1/events/{event_id}/availability", 200): {
        "ShowZones": ("get", "/api/v1/shows/{show_id}/zones", {"show_id": FIRST_SHOW}, None),
        "ChangeSeats": (
            "put",
            "/api/v1/shows/{show_id}/zones/{zone_id}",
            {"show_id": FIRST_SHOW, "zone_id": FIRST_ZONE},
            None,
        ),
        "Reserve": (
            "post",
            "/api/v1/bookings/reserve",
            {},
            {"event_id": "$response.body#/data/event_id", "show_id": FIRST_SHOW, "zone_id": FIRST_ZONE},
        ),
    },
    ("post", "/api/v1/bookings/reserve", 201): {
        "GetBooking": ("get", "/api/v1/bookings/{booking_id}", {"booking_id": BOOKING_ID}, None),
        "Cancel": ("post", "/api/v1/bookings/{booking_id}/cancel", {"booking_id": BOOKING_ID}, None),
        "Confirm": ("post", "/api/v1/bookings/{booking_id}/confirm", {"booking_id": BOOKING_ID}, None),
        "Pay": ("post", "/api/v1/payments", {}, {"booking_id": BOOKING_ID}),
    },
    ("post", "/api/v1/payments", 201): {
        "GetPayment": ("get", "/api/v1/payments/{payment_id}", {"payment_id": PAYMENT_ID}, None),
        "Refund": ("post", "/api/v1/payments/{payment_id}/refund", {"payment_id": PAYMENT_ID}, None),
    },
}


def with_links(paths: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for (method, path, status), links in LINKS.items():
        response = paths[path][method]["responses"][str(status)]
        response["links"] = {}
        for name, (target_method, target_path, parameters, body) in links.items():
            assert target_method in paths[target_path], (target_method, target_path)
            link: dict[str, Any] = {"operationRef": _operation_ref(target_method, target_path)}
            if parameters:
                link["parameters"] = parameters
            if body is not None:
                link["requestBody"] = body
            response["links"][name] = link
    return paths


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Booking Rush",
        "version": "1",
        "description": "Flash-sale ticket booking. Every answer uses the envelope "
        "{success, data, meta?} or {success: false, error: {code, message, details}}. "
        "No string in a request, key or value, may hold NUL (\\u0000): such a body is a 400. "
        "A rule JSON Schema cannot say (a date in the future, names unique in a list) is in the "
        "field's description.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    },
    "paths": with_links(with_path_params(PATHS)),
}
DOCUMENT_JSON = orjson.dumps(DOCUMENT)


async def openapi(request: web.Request) -> web.Response:
    """The bare document (not in the envelope, which is for API answers): what Swagger UI,
    openapi-generator and schemathesis load."""
    return web.Response(body=DOCUMENT_JSON, content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi, name="openapi")
