"""The spec's response envelope (§6.2): {success, data, meta} or {success: false, error}."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def ok(data: Any, status: int = 200, meta: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if meta is not None:
        body["meta"] = meta
    return web.json_response(body, status=status, dumps=_dumps)


def error(status: int, code: str, message: str, details: Any = None) -> web.Response:
    return web.json_response(
        {"success": False, "error": {"code": code, "message": message, "details": details}},
        status=status,
        dumps=_dumps,
    )
