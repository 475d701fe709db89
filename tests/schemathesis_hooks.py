"""The rules of the OpenAPI document that JSON Schema cannot say, told to schemathesis' generator
(loaded through SCHEMATHESIS_HOOKS by tests/test_openapi.py). Each is written in the document's
descriptions; JSON Schema has no "in the future", "unique by name" or "an existing category":

- a show date is in the future (and within what UTC can hold);
- a show's zone names are unique;
- an event's category names one that exists (or none);
- a birth date is from 1900-01-01 to today;
- a card's expiry (MM/YY) is not past;
- a push subscription's endpoint is an https URL on a public host, its keys a P-256 point and a
  16-byte secret (what a browser's PushManager makes).

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
    return body
