"""The OpenAPI document as a contract every test checks: each gateway a test starts runs this
middleware outermost, so every answer any test provokes is validated against the document.

A breach is recorded (the session fails at its end, naming each one) and the answer becomes
500 `OPENAPI_CONTRACT_BROKEN`, so the test that provoked it usually fails on the spot too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jsonschema
import orjson
from aiohttp import web

from gateway.responses import error
from gateway.routes.openapi import DOCUMENT, ERROR


@dataclass
class Breaches:
    found: list[str] = field(default_factory=list)


BREACHES = Breaches()


def breach_of(method: str, route: str | None, status: int, body: bytes) -> str | None:
    """What is wrong with this answer, or None when the document describes it."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"{method} {route} -> {status}: not JSON"
    if route is None:  # no route matched (404/405 from the router): the error envelope still holds
        schema = ERROR
    else:
        operation = DOCUMENT["paths"].get(route, {}).get(method.lower())
        if operation is None:
            return f"{method} {route}: not in the document"
        described = operation["responses"].get(str(status))
        if described is None:
            return f"{method} {route} -> {status}: status not documented"
        schema = described["content"]["application/json"]["schema"]
    try:
        jsonschema.validate(payload, schema)
    except jsonschema.ValidationError as exc:
        return f"{method} {route} -> {status}: {exc.message} at {list(exc.absolute_path)}"
    return None


@web.middleware
async def openapi_contract(request: web.Request, handler) -> web.StreamResponse:
    response = await handler(request)
    route = request.match_info.route
    if (route.name or "").startswith(("page:", "ops:")) or not isinstance(response, web.Response):
        return response  # browser pages, operational endpoints and streams are not API answers
    resource = route.resource
    canonical = (
        resource.canonical if resource is not None and request.match_info.http_exception is None else None
    )
    if request.method == "HEAD":
        return response
    problem = breach_of(request.method, canonical, response.status, response.body or b"")
    if problem is None:
        return response
    BREACHES.found.append(problem)
    broken = error(500, "OPENAPI_CONTRACT_BROKEN", problem)
    broken.headers.update({k: v for k, v in response.headers.items() if k.startswith("X-")})
    return broken
