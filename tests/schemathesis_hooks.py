"""The rules of the OpenAPI document that JSON Schema cannot say, told to schemathesis' generator
(loaded through SCHEMATHESIS_HOOKS by tests/test_openapi.py). Each is written in the document's
descriptions; JSON Schema has no "in the future", "unique by name" or "an existing category":

- a show date is in the future (and within what UTC can hold);
- a show's zone names are unique;
- an event's category names one that exists (or none);
- a birth date is from 1900-01-01 to today;
- a card's expiry (MM/YY) is not past;
- a push subscription's endpoint is an https URL on a public host, its keys a P-256 point and a
  16-byte secret (what a browser's PushManager makes);
- pricing: an amount off is more than 0, an early-bird price below the zone's list price (the
  fuzzed events' zones cost 100.00), a code's end after its start, an early bird ending at a time
  or after some seats, bundle tiers one per quantity, a code's show and zone the event's own (the
  generator knows none: left out).

A generated value that breaks one is replaced by one that keeps it (deterministically: the same
value in, the same value out, so shrinking and replays still work). Negative cases pass through
unless they have the shape these rules speak of.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import schemathesis


def _spread(value: object, span: int) -> int:
    """A stable number in 0..span-1 drawn from `value`."""
    return int(hashlib.sha256(repr(value).encode()).hexdigest()[:8], 16) % span


def _is(ctx, method: str, path: str) -> bool:
    operation = ctx.operation
    return operation is not None and operation.method.upper() == method and operation.path == path


def _future_date(value: object) -> str:
    ahead = timedelta(days=1 + _spread(value, 3650), seconds=_spread((value, "s"), 86_400))
    return (datetime.now(UTC) + ahead).replace(microsecond=0).isoformat()


def _event_body(body: dict) -> dict:
    shows = body.get("shows")
    for show in shows if isinstance(shows, list) else []:
        if not isinstance(show, dict):
            continue
        show["show_date"] = _future_date(show.get("show_date"))
        seen: set = set()
        for i, zone in enumerate(show.get("zones") if isinstance(show.get("zones"), list) else []):
            if isinstance(zone, dict) and isinstance(zone.get("name"), str):
                if zone["name"] in seen:
                    zone["name"] = f"{zone['name'][:90]} #{i}"
                seen.add(zone["name"])
    if "category" in body:
        body["category"] = [None, "concert", "sport", "theater"][_spread(body["category"], 4)]
    return body


def _profile_body(body: dict) -> dict:
    if isinstance(body.get("birth_date"), str):
        first = date(1900, 1, 1)
        span = (datetime.now(UTC).date() - first).days
        body["birth_date"] = (first + timedelta(days=_spread(body["birth_date"], span))).isoformat()
    return body


def _payment_body(body: dict) -> dict:
    details = body.get("details")
    if body.get("method") == "card" and isinstance(details, dict) and isinstance(details.get("expiry"), str):
        later = datetime.now(UTC).date() + timedelta(days=31 * (1 + _spread(details["expiry"], 60)))
        details["expiry"] = f"{later.month:02d}/{later.year % 100:02d}"
    return body


# A browser's subscription keys (any real pair will do: they are only checked for shape here).
PUSH_KEYS = {
    "p256dh": "BCmc_x3O93jSq8g75KpmRkBjjrP6qdy2QNkRvSdD-3qOv_3Dh9-IHOTJjUXwvT5xxKlSMxDdQ7O3aYbQWdz8ScQ",
    "auth": "8eDyX_uCN0XRhSbY5hs7Hg",
}


def _notify_body(body: dict) -> dict:
    push = body.get("push")
    if (
        isinstance(push, dict)
        and isinstance(push.get("endpoint"), str)
        and isinstance(push.get("keys"), dict)
    ):
        push["endpoint"] = f"https://push.example.com/send/{_spread(push['endpoint'], 10**9)}"
        push["keys"] = dict(PUSH_KEYS)
    return body


def _pricing_body(body: dict) -> dict:
    if "amount" in body and body.get("kind") == "amount":
        body["amount"] = f"{1 + _spread(body['amount'], 99)}.00"
    if "price" in body and body.get("kind") == "price":
        body["price"] = f"{1 + _spread(body['price'], 98)}.00"
    if body.get("kind") in ("price", "percent") and "code" not in body and not body.get("until"):
        body["seats"] = body.get("seats") or 1 + _spread(body.get("seats"), 100)
    for field in ("starts_at", "ends_at", "until"):
        if isinstance(body.get(field), str):
            body[field] = _future_date(body[field])
    if isinstance(body.get("starts_at"), str) and isinstance(body.get("ends_at"), str):
        body["starts_at"], body["ends_at"] = sorted((body["starts_at"], body["ends_at"]))
        if body["starts_at"] == body["ends_at"]:
            body["starts_at"] = None
    if body.get("kind") in ("percent", "amount"):  # a promo code: a show and zone of the event, or none
        body["show_id"] = body["zone_id"] = None
    tiers = body.get("tiers")
    if isinstance(tiers, list):
        seen: set = set()
        for tier in tiers:
            quantity = tier.get("min_quantity") if isinstance(tier, dict) else None
            # JSON Schema's integers include 3.0 (the server takes it as 3): compared as numbers.
            if (
                isinstance(quantity, int | float)
                and not isinstance(quantity, bool)
                and quantity == int(quantity)
            ):
                quantity = int(quantity)
                while quantity in seen:
                    quantity = 2 + (quantity - 1) % 99
                tier["min_quantity"] = quantity
                seen.add(quantity)
    return body


@schemathesis.hook
def map_body(ctx, body):
    if not isinstance(body, dict):
        return body
    if _is(ctx, "POST", "/api/v1/events"):
        return _event_body(body)
    if _is(ctx, "PUT", "/api/v1/auth/me"):
        return _profile_body(body)
    if _is(ctx, "POST", "/api/v1/payments"):
        return _payment_body(body)
    if _is(ctx, "POST", "/api/v1/queue/notify"):
        return _notify_body(body)
    operation = ctx.operation
    if operation is not None and operation.path.startswith("/api/v1/events/{event_id}/"):
        return _pricing_body(body)
    return body
