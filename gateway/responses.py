"""The spec's response envelope (§6.2): {success, data, meta} or {success: false, error}."""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

from booking_rush.contract import pricing


def _json(body: dict[str, Any], status: int) -> web.Response:
    # Bytes straight from orjson: json_response would encode a str once more.
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def ok(data: Any, status: int = 200, meta: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if meta is not None:
        body["meta"] = meta
    return _json(body, status)


def error(status: int, code: str, message: str, details: Any = None) -> web.Response:
    body = {"success": False, "error": {"code": code, "message": message, "details": details}}
    try:
        return _json(body, status)
    except TypeError:  # details echoing what orjson cannot write (an integer past 64 bits)
        return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


# A price as the API writes it, "123.45": one writer for the API, the pages' breakdowns and the mails.
price_text = pricing.money
