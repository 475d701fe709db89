"""Request bodies: every JSON body must be one object; anything else is a 400, never a 500."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway import errors


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.ValidationError("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise errors.ValidationError("request body must be a JSON object")
    return body


async def read_json_object(request: web.Request) -> dict[str, Any]:
    return json_object(await request.read())
