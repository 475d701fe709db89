"""Path and query values: parsed and bounded here, so no handler hands a raw one to SQL or Redis."""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from gateway import errors

# Booking and payment ids are 64 hex characters (not UUIDs): routes check them in their pattern,
# so any other value matches no route (a 404 in the API's envelope).
PUBLIC_ID = "[0-9a-f]{64}"

# fullmatch, never match with "$": "$" also matches before a trailing newline.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def whole_number(value: object) -> int | None:
    """An integer as JSON Schema means one (1 and 1.0 alike; never true/false), or None."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def parse_uuid(value: object) -> str | None:
    """The canonical form of a UUID given as a string, or None."""
    if not isinstance(value, str):
        return None
    if _CANONICAL_UUID.fullmatch(value):  # the common case, without building a UUID object
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def path_uuid(request: web.Request, name: str) -> str:
    """A path id; anything that is not a UUID names nothing, so it is a 404 (not a 400)."""
    value = parse_uuid(request.match_info[name])
    if value is None:
        raise errors.NotFound(f"no such {name.removesuffix('_id')}")
    return value


def uuid_value(value: object, name: str) -> str:
    """A UUID from a body or query field, or 400."""
    parsed = parse_uuid(value)
    if parsed is None:
        raise errors.ValidationError(f"{name} must be a UUID", details={name: "a UUID"})
    return parsed


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # isascii: str.isdigit() also accepts digits such as '²' that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise errors.ValidationError(
            f"{name} must be an integer in {low}..{high}", details={name: f"{low}..{high}"}
        )
    return int(raw)


def text_query(request: web.Request, name: str, max_length: int = 100) -> str | None:
    """An optional free-text query value: bounded, and without the NUL PostgreSQL cannot store."""
    raw = request.query.get(name) or None
    if raw is not None and (len(raw) > max_length or "\x00" in raw):
        raise errors.ValidationError(
            f"{name} must be at most {max_length} characters of text", details={name: f"1..{max_length}"}
        )
    return raw
