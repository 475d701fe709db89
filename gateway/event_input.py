"""An organizer's event, read from a request body: its fields, shows and zones, each checked,
with the spec's envelope (400 VALIDATION_ERROR, the field named in the details) for any refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway import errors, event_store, text
from gateway.params import whole_number

STATUSES = ("draft", "published", "cancelled")


def status(body: dict, current: str) -> str:
    """The event status the body asks for (`current` when it names none)."""
    value = body.get("status", current)
    if not isinstance(value, str) or value not in STATUSES:
        raise errors.ValidationError("invalid status", details={"status": "one of " + ", ".join(STATUSES)})
    return value


def text_field(body: dict, name: str, *, required: bool = False, limit: int = 2000) -> str:
    """A text field of 1..`limit` characters, not only white space, trimmed ("" when absent or
    null and not required)."""
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or len(value) > limit or not text.visible(value):
        raise errors.ValidationError(f"invalid {name}", details={name: f"1..{limit} characters"})
    return text.trimmed(value)


def int_field(
    body: dict,
    name: str,
    low: int,
    high: int,
    *,
    default: int | None = None,
    nullable: bool = False,
    hint: str | None = None,
    where: str | None = None,
) -> int | None:
    """An integer field in low..high (`default` when absent; None allowed when `nullable`)."""
    raw = body.get(name, default)
    if raw is None and nullable:
        return None
    value = whole_number(raw)
    if value is None or not low <= value <= high:
        raise errors.ValidationError(f"invalid {name}", details={where or name: hint or f"{low}..{high}"})
    return value


def max_per_user(body: dict) -> int:
    """Seats one buyer may hold and buy in the event (spec §2.2.1)."""
    return int_field(body, "max_tickets_per_user", 1, 20, default=4)


def booking_window(body: dict) -> int:
    """How many minutes before each show booking closes."""
    return int_field(body, "booking_window_minutes", 0, 10_080, default=60, hint="0..10080 (a week)")


def min_age(body: dict) -> int | None:
    """The buyers' minimum age (None: none)."""
    return int_field(body, "min_age", 1, 99, nullable=True, hint="1..99 or null")


def zone(raw: Any, where: str) -> event_store.ZoneSpec:
    """A zone: its name, price (two decimals at most) and seats; `where` names it in errors."""
    if not isinstance(raw, dict):
        raise errors.ValidationError("invalid zone", details={where: "an object"})
    name = text_field(raw, "name", required=True, limit=100)
    try:
        price = Decimal(str(raw.get("price")))
    except InvalidOperation as exc:
        raise errors.ValidationError("invalid price", details={f"{where}.price": "a decimal"}) from exc
    if not price.is_finite() or price < 0 or price > 10**9 or price.as_tuple().exponent < -2:
        raise errors.ValidationError("invalid price", details={f"{where}.price": "0..1e9, 2 decimals"})
    seats = int_field(raw, "seats", 1, 1_000_000, where=f"{where}.seats", hint="1..1000000")
    return event_store.ZoneSpec(name, price, seats)


def shows(body: dict) -> list[event_store.ShowSpec]:
    """The event's shows, each with its zones (1..50 of each), every show in the future."""
    raw = body.get("shows")
    if not isinstance(raw, list) or not 1 <= len(raw) <= 50:
        raise errors.ValidationError("invalid shows", details={"shows": "1..50 shows"})
    specs: list[event_store.ShowSpec] = []
    for i, show in enumerate(raw):
        where = f"shows[{i}]"
        if not isinstance(show, dict):
            raise errors.ValidationError("invalid show", details={where: "an object"})
        try:
            when = datetime.fromisoformat(str(show.get("show_date")))
        except ValueError as exc:
            raise errors.ValidationError(
                "invalid show_date", details={f"{where}.show_date": "ISO 8601"}
            ) from exc
        if when.tzinfo is None:
            raise errors.ValidationError(
                "show_date needs a time zone", details={f"{where}.show_date": "ISO 8601 with offset"}
            )
        try:
            when = when.astimezone(UTC)  # stored in UTC: a date that has none (past 9999) fails here
        except (OverflowError, ValueError) as exc:
            raise errors.ValidationError(
                "show_date out of range", details={f"{where}.show_date": "a date up to 9999-12-31 in UTC"}
            ) from exc
        if when <= datetime.now(UTC):
            raise errors.ValidationError(
                "show_date must be in the future", details={f"{where}.show_date": "future"}
            )
        zones = show.get("zones")
        if not isinstance(zones, list) or not 1 <= len(zones) <= 50:
            raise errors.ValidationError("invalid zones", details={f"{where}.zones": "1..50 zones"})
        zone_specs = [zone(z, f"{where}.zones[{j}]") for j, z in enumerate(zones)]
        if len({z.name for z in zone_specs}) != len(zone_specs):
            raise errors.ValidationError("zone names repeat", details={f"{where}.zones": "unique names"})
        specs.append(event_store.ShowSpec(when, zone_specs))
    return specs


def new_event(body: dict) -> dict[str, Any]:
    """A new event's fields, each checked (event_store.insert_event's keyword arguments)."""
    return {
        "title": text_field(body, "title", required=True, limit=200),
        "description": text_field(body, "description"),
        "venue": text_field(body, "venue", limit=200),
        "max_per_user": max_per_user(body),
        "booking_window_minutes": booking_window(body),
        "min_age": min_age(body),
        "shows": shows(body),
    }


EDITABLE = ("title", "description", "venue", "max_tickets_per_user", "booking_window_minutes", "min_age")


def edited(body: dict, row) -> dict[str, Any]:
    """An edit of an event's fields: each one the body gives, checked; the others as `row` has
    them."""
    given = {
        "title": lambda: text_field(body, "title", required=True, limit=200),
        "description": lambda: text_field(body, "description"),
        "venue": lambda: text_field(body, "venue", limit=200),
        "max_tickets_per_user": lambda: max_per_user(body),
        "booking_window_minutes": lambda: booking_window(body),
        "min_age": lambda: min_age(body),
    }
    return {name: given[name]() if name in body else row[name] for name in EDITABLE}


async def category_id(pool, slug: Any, tenant_id: str) -> str | None:
    """The id of the tenant's category named by its slug (None: no category)."""
    if slug is None:
        return None
    if not isinstance(slug, str) or len(slug) > 100:
        raise errors.ValidationError("invalid category", details={"category": "a category's slug"})
    category = await pool.fetchval(
        "SELECT id FROM categories WHERE tenant_id = $1 AND slug = $2", tenant_id, slug
    )
    if category is None:
        raise errors.ValidationError("unknown category", details={"category": "an existing category slug"})
    return str(category)
