"""Request bodies: every JSON body must be one object; anything else is a 400, never a 500."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway import errors

# No body the API describes nests deeper than a few levels; a deeper one is refused before any
# handler walks it (and a walk of it never recurses: see _walk).
MAX_DEPTH = 16


def _walk(body: Any) -> tuple[int, bool]:
    """(how deep `body` nests, whether any key or text in it holds a NUL), without recursion:
    a body nested a thousand deep is a list of a thousand frames, not a thousand calls. Stops
    early once either answer is known to refuse the body."""
    deepest, nul = 0, False
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            nul = nul or "\x00" in value
            continue
        if isinstance(value, dict):
            items: list = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            items = value
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH or nul:
            break
        stack.extend((item, depth + 1) for item in items)
    return deepest, nul


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.ValidationError("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise errors.ValidationError("request body must be a JSON object")
    # Only a body with enough brackets to nest too deep, or with a NUL (JSON can only spell it
    # \u0000), is walked: the common body costs two byte counts and a search.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH or b"\\u0000" in raw:
        depth, nul = _walk(body)
        if depth > MAX_DEPTH:
            raise errors.ValidationError(f"request body nests deeper than {MAX_DEPTH} levels")
        # PostgreSQL text cannot hold NUL.
        if nul:
            raise errors.ValidationError("text may not contain NUL (\\u0000) characters")
    return body


async def read_json_object(request: web.Request) -> dict[str, Any]:
    return json_object(await request.read())
