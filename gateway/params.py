"""Path and query values: parsed and bounded here, so no handler hands a raw one to SQL or Redis."""

from __future__ import annotations

import uuid

from aiohttp import web

from gateway import errors


def path_uuid(request: web.Request, name: str) -> str:
    """A path id; anything that is not a UUID names nothing, so it is a 404 (not a 400)."""
    try:
        return str(uuid.UUID(request.match_info[name]))
    except ValueError as exc:
        raise errors.NotFound(f"no such {name.removesuffix('_id')}") from exc


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
