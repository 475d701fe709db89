"""The OpenAPI document stays true: every route is in it, and real answers match its schemas."""

from __future__ import annotations

import jsonschema
import pytest

from booking_rush.services.endpoints import Endpoints
from gateway.app import create_app
from gateway.routes.openapi import DOCUMENT
from gateway.settings import GatewaySettings
from tests.support import call, final_answer


def _check(method: str, path: str, status: int, body: dict) -> None:
    operation = DOCUMENT["paths"][path][method]
    assert str(status) in operation["responses"], f"{method.upper()} {path} -> {status} undocumented"
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.validate(body, schema)


def test_every_route_is_described():
    # Built, not started: routes exist from construction; no service is contacted.
    app = create_app(
        GatewaySettings(
            jwt_secret="x" * 40,
            endpoints=Endpoints("redis://unused", "redis://unused", "postgresql://unused", "unused"),
        )
    )
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        # browser pages and operational endpoints (/metrics): not API
        if r.method != "HEAD" and not (r.name or "").startswith(("page:", "ops:"))
    }
    described = {(m, p) for p, ops in DOCUMENT["paths"].items() for m in ops}
    assert routes == described, (routes - described, described - routes)


async def test_the_app_serves_its_document(gateway_url, http):
    status, body = await call(http, "GET", f"{gateway_url}/api/v1/openapi.json")
    assert status == 200 and body["data"]["openapi"].startswith("3.")
    assert body["data"]["paths"].keys() == DOCUMENT["paths"].keys()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/v1/events", "/api/v1/categories"])
async def test_public_answers_match(gateway_url, http, path):
    status, body = await call(http, "GET", f"{gateway_url}{path}")
    _check("get", path, status, body)


async def test_booking_answers_match(gateway_url, http, make_event, make_users, token_for):
    event = await make_event([("VIP", 2)], shows=1)
    show = next(iter(event.shows))
    zone = event.shows[show]["VIP"]
    (user,) = await make_users(1)
    body = {"event_id": event.event_id, "show_id": show, "zone_id": zone, "quantity": 2}
    status, answer = await call(http, "POST", f"{gateway_url}/api/v1/bookings/reserve", token_for(user), body)
    _check("post", "/api/v1/bookings/reserve", status, answer)
    status, answer = await final_answer(http, gateway_url, token_for(user), status, answer)
    _check("post", "/api/v1/bookings/reserve", status, answer)
    status, answer = await call(http, "POST", f"{gateway_url}/api/v1/bookings/reserve", token_for(user), body)
    answer = (await final_answer(http, gateway_url, token_for(user), status, answer))[1]
    _check("post", "/api/v1/bookings/reserve", 409, answer)  # sold out
    for bad in ({}, {**body, "quantity": 0}):
        status, answer = await call(
            http, "POST", f"{gateway_url}/api/v1/bookings/reserve", token_for(user), bad
        )
        _check("post", "/api/v1/bookings/reserve", status, answer)
    status, answer = await call(http, "POST", f"{gateway_url}/api/v1/bookings/reserve", None, body)
    _check("post", "/api/v1/bookings/reserve", status, answer)

    status, answer = await call(http, "GET", f"{gateway_url}/api/v1/events/{event.event_id}")
    _check("get", "/api/v1/events/{event_id}", status, answer)
    status, answer = await call(http, "GET", f"{gateway_url}/api/v1/events/{event.event_id}/shows")
    _check("get", "/api/v1/events/{event_id}/shows", status, answer)
    status, answer = await call(http, "GET", f"{gateway_url}/api/v1/shows/{show}/zones")
    _check("get", "/api/v1/shows/{show_id}/zones", status, answer)
    status, answer = await call(http, "GET", f"{gateway_url}/api/v1/events/{event.event_id}/availability")
    _check("get", "/api/v1/events/{event_id}/availability", status, answer)
