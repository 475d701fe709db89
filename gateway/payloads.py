"""Request bodies: every JSON body must be one object; anything else is a 400, never a 500."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway import errors


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.ValidationError("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise errors.ValidationError("request body must be a JSON object")
    # PostgreSQL text cannot hold NUL. JSON can only spell it \u0000, so the walk runs only then.
    if b"\\u0000" in raw and _holds_nul(body):
        raise errors.ValidationError("text may not contain NUL (\\u0000) characters")
    return body


async def read_json_object(request: web.Request) -> dict[str, Any]:
    return json_object(await request.read())
