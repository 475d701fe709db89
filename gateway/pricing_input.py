"""An organizer's pricing input, checked: promo codes, early-bird rules, bundle tiers (the forms
lua/_pricing.lua keeps them in). Money is a decimal string or number of at most two decimals,
kept in minor units; times are ISO 8601 with an offset, kept in epoch ms."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from booking_rush.contract import pricing
from gateway import errors, event_input
from gateway.params import parse_uuid

MAX_BUNDLE_TIERS = 10


def _invalid(field: str, hint: str) -> errors.ValidationError:
    return errors.ValidationError(f"invalid {field}", details={field: hint})


def cents(body: dict, field: str) -> int:
    """A positive amount of money, in minor units."""
    try:
        value = Decimal(str(body.get(field)))
    except InvalidOperation as exc:
        raise _invalid(field, 'an amount, e.g. "100.00"') from exc
    if not value.is_finite() or value <= 0 or value > 10**9 or value.as_tuple().exponent < -2:
        raise _invalid(field, "more than 0, at most 1e9, two decimals at most")
    return int(value * 100)


def epoch_ms(body: dict, field: str) -> int:
    """An optional time (0: none)."""
    raw = body.get(field)
    if raw is None:
        return 0
    try:
        when = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        ms = int(when.timestamp() * 1000) if when is not None and when.tzinfo is not None else 0
    except (ValueError, OverflowError):
        ms = 0
    if ms <= 0:
        raise _invalid(field, "an ISO 8601 time with an offset, from 1970 on, or null")
    return ms


def percent(body: dict, field: str = "percent") -> int:
    return event_input.int_field(body, field, 1, 100, hint="a whole percentage, 1..100")


def promo_code(body: dict) -> dict[str, Any]:
    """A new code's definition (show_id/zone_id still to be checked against the event)."""
    raw_code = body.get("code")
    if raw_code is None:
        code = pricing.new_code()
    else:
        code = pricing.normal_code(raw_code) if isinstance(raw_code, str) else ""
        if not pricing.CODE_PATTERN.fullmatch(code) or len(code) < pricing.MIN_CODE_LENGTH:
            raise _invalid(
                "code", f"{pricing.MIN_CODE_LENGTH}-32 letters, digits or dashes (or none: one is made)"
            )
    kind = body.get("kind")
    if kind not in ("percent", "amount"):
        raise _invalid("kind", "percent or amount")
    value = percent(body) if kind == "percent" else cents(body, "amount")
    starts_at, ends_at = epoch_ms(body, "starts_at"), epoch_ms(body, "ends_at")
    if starts_at and ends_at and ends_at <= starts_at:
        raise _invalid("ends_at", "after starts_at")
    ids = {}
    for field in ("show_id", "zone_id"):
        raw = body.get(field)
        ids[field] = "" if raw is None else parse_uuid(raw)
        if ids[field] is None:
            raise _invalid(field, "a UUID, or null for any")
    return pricing.promo_definition(
        code,
        kind,
        value,
        name=event_input.text_field(body, "name", limit=100),
        starts_at=starts_at,
        ends_at=ends_at,
        show_id=ids["show_id"],
        zone_id=ids["zone_id"],
        max_uses=event_input.int_field(body, "max_uses", 1, 10_000_000, default=None, nullable=True) or 0,
        per_user=event_input.int_field(body, "per_user", 1, 100, default=None, nullable=True) or 0,
        min_quantity=event_input.int_field(body, "min_quantity", 1, 100, default=1),
    )


def promo_status(body: dict) -> str:
    status = body.get("status")
    if status not in ("active", "paused"):
        raise _invalid("status", "active or paused")
    return status


def early_bird(body: dict, list_price_cents: int) -> dict[str, Any]:
    """A zone's early bird: a seat price or a percentage off, until a time and/or the first N seats."""
    kind = body.get("kind")
    if kind not in ("price", "percent"):
        raise _invalid("kind", "price or percent")
    if kind == "price":
        value = cents(body, "price")
        if value >= list_price_cents:
            raise _invalid("price", f"below the zone's list price ({pricing.money(list_price_cents)})")
    else:
        value = percent(body)
    until = epoch_ms(body, "until")
    seats = event_input.int_field(body, "seats", 1, 1_000_000, default=None, nullable=True) or 0
    if not until and not seats:
        raise errors.ValidationError(
            "an early bird ends at a time, after a number of seats, or both",
            details={"until": "a time", "seats": "1..1000000"},
        )
    return {"on": True, "kind": kind, "value": value, "until": until, "seats": seats}


def bundle_tiers(body: dict) -> list[dict[str, Any]]:
    raw = body.get("tiers")
    if not isinstance(raw, list) or len(raw) > MAX_BUNDLE_TIERS:
        raise _invalid("tiers", f"a list of at most {MAX_BUNDLE_TIERS} tiers (empty: no bundles)")
    tiers, seen = [], set()
    for i, tier in enumerate(raw):
        if not isinstance(tier, dict):
            raise _invalid(f"tiers[{i}]", "an object")
        minimum = event_input.int_field(tier, "min_quantity", 2, 100, where=f"tiers[{i}].min_quantity")
        if minimum in seen:
            raise _invalid(f"tiers[{i}].min_quantity", "one tier per quantity")
        seen.add(minimum)
        off = event_input.int_field(tier, "percent", 1, 100, where=f"tiers[{i}].percent")
        name = event_input.text_field(tier, "name", limit=100) or f"Buy {minimum} or more: {off}% off"
        tiers.append({"min_quantity": minimum, "percent": off, "name": name})
    return sorted(tiers, key=lambda t: t["min_quantity"])
