"""Malformed requests get the spec's envelope and codes, and never reach Kafka."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import jwt
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from booking_rush.services.endpoints import Endpoints
from gateway import appkeys
from gateway.middlewares import request_id_and_errors
from gateway.settings import GatewaySettings
from tests.support import (
    accounts_gateway_settings,
    call,
    gateway_settings,
    reserve,
    running_gateway,
    topic_size,
    unique,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def idle_gateway(schema, new_topics, jwt_secret):
    """A gateway whose topics no worker reads: whatever it produced stays countable."""
    topics = await new_topics("bad")
    async with running_gateway(gateway_settings(schema, topics, jwt_secret)) as url:
        yield url, topics


@pytest_asyncio.fixture(loop_scope="session")
async def sale(make_event, make_users, token_for):
    event = await make_event([("VIP", 10)], shows=2)
    other = await make_event([("VIP", 10)], shows=1)
    (user,) = await make_users(1)
    show = list(event.shows)[0]
    good = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["VIP"], "quantity": 1}
    other_show = list(other.shows)[0]
    return {
        "good": good,
        "token": token_for(user),
        "user": user,
        "event": event,
        "other_show": other_show,
        "other_zone": other.shows[other_show]["VIP"],
        "second_show": list(event.shows)[1],
    }


def _without(body, field):
    return {k: v for k, v in body.items() if k != field}


BAD_BODIES = {
    "not json": (b"{nope", "VALIDATION_ERROR", 400),
    "json array": (b"[1, 2]", "VALIDATION_ERROR", 400),
    "empty": (b"", "VALIDATION_ERROR", 400),
}

BAD_FIELDS = [
    ("missing event_id", lambda b, s: _without(b, "event_id")),
    ("missing show_id", lambda b, s: _without(b, "show_id")),
    ("missing zone_id", lambda b, s: _without(b, "zone_id")),
    ("missing quantity", lambda b, s: _without(b, "quantity")),
    ("quantity zero", lambda b, s: {**b, "quantity": 0}),
    ("quantity negative", lambda b, s: {**b, "quantity": -1}),
    ("quantity as a string", lambda b, s: {**b, "quantity": "2"}),
    ("quantity as a boolean", lambda b, s: {**b, "quantity": True}),
    ("quantity as a float", lambda b, s: {**b, "quantity": 1.5}),
    ("event_id not a uuid", lambda b, s: {**b, "event_id": "'; DROP TABLE bookings; --"}),
    ("show_id a number", lambda b, s: {**b, "show_id": 12}),
    ("idempotency key with spaces", lambda b, s: {**b, "idempotency_key": "a b"}),
    ("idempotency key too long", lambda b, s: {**b, "idempotency_key": "k" * 129}),
    ("idempotency key not a string", lambda b, s: {**b, "idempotency_key": 7}),
]

NOT_FOUND = [
    ("unknown show", lambda b, s: {**b, "show_id": "00000000-0000-4000-8000-000000000000"}),
    ("show of another event", lambda b, s: {**b, "show_id": s["other_show"], "zone_id": s["other_zone"]}),
    ("zone of another show", lambda b, s: {**b, "zone_id": s["other_zone"]}),
    ("zone of the event's other show", lambda b, s: {**b, "show_id": s["second_show"]}),
    ("unknown event", lambda b, s: {**b, "event_id": "00000000-0000-4000-8000-000000000000"}),
]


async def _assert_refused(http, url, topics, schema, token, body, code, status, headers=None):
    before = await topic_size(schema.kafka_bootstrap, topics.reservations)
    got_status, answer = await reserve(http, url, token, body, headers)
    assert got_status == status, answer
    assert answer["success"] is False
    assert answer["error"]["code"] == code
    assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    assert await topic_size(schema.kafka_bootstrap, topics.reservations) == before


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_malformed_bodies(case, idle_gateway, http, sale, schema):
    url, topics = idle_gateway
    raw, code, status = BAD_BODIES[case]
    await _assert_refused(
        http, url, topics, schema, sale["token"], raw, code, status, {"Content-Type": "application/json"}
    )


@pytest.mark.parametrize("case", [c for c, _ in BAD_FIELDS])
async def test_invalid_fields(case, idle_gateway, http, sale, schema):
    url, topics = idle_gateway
    body = dict(BAD_FIELDS)[case](sale["good"], sale)
    await _assert_refused(http, url, topics, schema, sale["token"], body, "VALIDATION_ERROR", 400)


async def test_idempotency_key_header_and_body_must_agree(idle_gateway, http, sale, schema):
    url, topics = idle_gateway
    body = {**sale["good"], "idempotency_key": "one"}
    await _assert_refused(
        http, url, topics, schema, sale["token"], body, "VALIDATION_ERROR", 400, {"Idempotency-Key": "two"}
    )


async def test_a_quantity_over_the_events_limit_is_the_limit_not_bad_input(idle_gateway, http, sale, schema):
    """Well formed (the document allows 1..20), but over this event's max_tickets_per_user (4):
    the same refusal as a limit reached over several bookings."""
    url, topics = idle_gateway
    body = {**sale["good"], "quantity": 5}
    await _assert_refused(http, url, topics, schema, sale["token"], body, "MAX_PER_USER_EXCEEDED", 409)


@pytest.mark.parametrize("case", [c for c, _ in NOT_FOUND])
async def test_unknown_catalog_entries(case, idle_gateway, http, sale, schema):
    url, topics = idle_gateway
    body = dict(NOT_FOUND)[case](sale["good"], sale)
    await _assert_refused(http, url, topics, schema, sale["token"], body, "NOT_FOUND", 404)


def _token(secret, user, **override):
    now = int(time.time())
    claims = {
        "sub": user,
        "iat": now,
        "exp": now + 600,
        "iss": "booking-rush",
        "aud": "booking-rush",
        "role": "user",
    }
    claims.update(override)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, "HS256")


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "garbage",
        "wrong secret",
        "expired",
        "wrong audience",
        "wrong issuer",
        "no subject",
        "subject not a uuid",
        "alg none",
    ],
)
async def test_bad_tokens_are_unauthorized(case, idle_gateway, http, sale, schema, jwt_secret):
    url, topics = idle_gateway
    user = sale["user"]
    token = {
        "missing": "",
        "garbage": "not.a.jwt",
        "wrong secret": _token("x" * 64, user),
        "expired": _token(jwt_secret, user, exp=int(time.time()) - 5),
        "wrong audience": _token(jwt_secret, user, aud="someone-else"),
        "wrong issuer": _token(jwt_secret, user, iss="evil"),
        "no subject": _token(jwt_secret, user, sub=None),
        "subject not a uuid": _token(jwt_secret, user, sub="admin"),
        "alg none": jwt.encode(
            {
                "sub": user,
                "exp": int(time.time()) + 600,
                "iat": 0,
                "iss": "booking-rush",
                "aud": "booking-rush",
            },
            None,
            "none",
        ),
    }[case]
    await _assert_refused(http, url, topics, schema, token, sale["good"], "UNAUTHORIZED", 401)


async def test_oversized_body_is_refused(idle_gateway, http, sale, schema):
    url, topics = idle_gateway
    body = {**sale["good"], "padding": "x" * 20_000}
    await _assert_refused(http, url, topics, schema, sale["token"], body, "PAYLOAD_TOO_LARGE", 413)


async def test_unknown_route_and_method_use_the_envelope(idle_gateway, http):
    url, _ = idle_gateway
    async with http.get(f"{url}/api/v1/nowhere") as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "NOT_FOUND"
    async with http.get(f"{url}/api/v1/bookings/reserve") as r:
        assert r.status == 405
        assert (await r.json())["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_request_id_is_echoed_or_minted_and_security_headers_set(idle_gateway, http):
    url, _ = idle_gateway
    async with http.get(f"{url}/healthz", headers={"X-Request-ID": "trace-123"}) as r:
        assert r.headers["X-Request-ID"] == "trace-123"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Content-Security-Policy"] == "default-src 'self'"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    async with http.get(f"{url}/healthz", headers={"X-Request-ID": "bad id\u00e9"}) as r:
        minted = r.headers["X-Request-ID"]
        assert minted != "bad id\u00e9" and len(minted) == 32
    async with http.get(f"{url}/api/v1/nowhere") as r:
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "X-Request-ID" in r.headers


async def test_poll_of_unknown_or_foreign_request(idle_gateway, http, sale):
    url, _ = idle_gateway
    auth = {"Authorization": f"Bearer {sale['token']}"}
    async with http.get(f"{url}/api/v1/bookings/requests/not-an-id", headers=auth) as r:
        assert r.status == 404
    async with http.get(f"{url}/api/v1/bookings/requests/{'a' * 64}") as r:
        assert r.status == 401


# --- inputs that got a 500, a 503 or a wrong answer (issue 14) --------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def accounts_gateway(schema, new_topics, jwt_secret):
    """A gateway with cheap bcrypt and the account limits lifted, whose topics nobody reads."""
    async with running_gateway(
        accounts_gateway_settings(schema, await new_topics("badacct"), jwt_secret)
    ) as url:
        yield url


def _draft_event(show_date: str) -> dict:
    return {
        "title": "Bad input",
        "shows": [{"show_date": show_date, "zones": [{"name": "A", "price": "10", "seats": 5}]}],
    }


@pytest.mark.parametrize("status", [[], {}, 1, True, None, "archived", "PUBLISHED"])
async def test_an_event_status_that_is_not_a_status_is_a_field_error(
    idle_gateway, http, token_with_role, status
):
    url, _ = idle_gateway
    token = await token_with_role()
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    _, created = await call(http, "POST", f"{url}/api/v1/events", token, _draft_event(future))
    answer_status, answer = await call(
        http, "PUT", f"{url}/api/v1/events/{created['data']['id']}", token, {"status": status}
    )
    assert (answer_status, answer["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert "status" in answer["error"]["details"]


async def test_json_nested_deep_holding_nul_is_a_400(accounts_gateway, http):
    body = b'{"a":' * 900 + b'"\\u0000"' + b"}" * 900
    async with http.post(
        f"{accounts_gateway}/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "VALIDATION_ERROR"
    wide_and_deep = b"[" * 60 + b"1" + b"]" * 60
    async with http.post(
        f"{accounts_gateway}/api/v1/auth/login",
        data=b'{"tenant":' + wide_and_deep + b"}",
        headers={"Content-Type": "application/json"},
    ) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, "VALIDATION_ERROR")


# bcrypt takes at most 72 bytes of the password: longer is refused, never truncated or a 500.
LONG_PASSWORDS = {
    "73 ascii bytes": "a1" * 36 + "b",
    "128 ascii bytes": "a1" * 64,
    "25 euro signs (75 bytes)": "\u20ac" * 24 + "a1",
}


@pytest.mark.parametrize("case", list(LONG_PASSWORDS))
async def test_a_password_longer_than_bcrypt_takes(case, accounts_gateway, http, new_tenant):
    password = LONG_PASSWORDS[case]
    slug = await new_tenant()
    email = f"{unique('long')}@example.com"
    status, answer = await call(
        http,
        "POST",
        f"{accounts_gateway}/api/v1/auth/register",
        body={"tenant": slug, "email": email, "password": password},
    )
    assert (status, answer["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert "password" in answer["error"]["details"]
    status, answer = await call(
        http,
        "POST",
        f"{accounts_gateway}/api/v1/auth/login",
        body={"tenant": slug, "email": email, "password": password},
    )
    assert (status, answer["error"]["code"]) == (401, "UNAUTHORIZED")


async def test_a_72_byte_password_is_taken_whole(accounts_gateway, http, new_tenant):
    """The longest password bcrypt takes: every byte of it counts (one byte off is refused)."""
    password = "\u20ac" * 22 + "ab12cd"  # 66 + 6 = 72 bytes
    slug = await new_tenant()
    email = f"{unique('edge')}@example.com"
    body = {"tenant": slug, "email": email, "password": password}
    assert (await call(http, "POST", f"{accounts_gateway}/api/v1/auth/register", body=body))[0] == 201
    assert (await call(http, "POST", f"{accounts_gateway}/api/v1/auth/login", body=body))[0] == 200
    wrong = {**body, "password": password[:-1] + "3"}
    assert (await call(http, "POST", f"{accounts_gateway}/api/v1/auth/login", body=wrong))[0] == 401


@pytest.mark.parametrize(
    "show_date", ["9999-12-31T23:59:59-23:59", "9999-12-31T23:00:00-01:30", "0001-01-01T00:00:00+14:00"]
)
async def test_a_date_postgresql_would_refuse_is_a_field_error_not_an_outage(
    idle_gateway, http, token_with_role, show_date
):
    url, _ = idle_gateway
    status, answer = await call(
        http, "POST", f"{url}/api/v1/events", await token_with_role(), _draft_event(show_date)
    )
    assert (status, answer["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert "shows[0].show_date" in answer["error"]["details"]


async def test_a_value_postgresql_refuses_is_answered_400_not_503():
    """The one place errors become answers maps a DataError (a value PostgreSQL refused: a bad
    date, number or text) to 400, and keeps 503 for the database being away."""

    async def refused(request):
        raise asyncpg.exceptions.DatetimeFieldOverflowError("date/time field value out of range")

    async def away(request):
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    app = web.Application(middlewares=[request_id_and_errors])
    app[appkeys.SETTINGS] = GatewaySettings(jwt_secret="x" * 40, endpoints=Endpoints("", "", "", ""))
    app.router.add_get("/refused", refused)
    app.router.add_get("/away", away)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/refused")
        assert (r.status, (await r.json())["error"]["code"]) == (400, "VALIDATION_ERROR")
        r = await client.get("/away")
        assert r.status == 503


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bookings/requests/" + "a" * 64 + "%0A",
        "/api/v1/bookings/" + "a" * 64 + "%0A",
        "/api/v1/events/00000000-0000-4000-8000-000000000000%0A",
        "/api/v1/queue/status?event_id=00000000-0000-4000-8000-000000000000%0A",
    ],
)
async def test_a_trailing_newline_in_an_id_names_nothing(idle_gateway, http, sale, path):
    url, _ = idle_gateway
    async with http.get(url + path, headers={"Authorization": f"Bearer {sale['token']}"}) as r:
        answer = await r.json()
        assert r.status in (400, 404), answer
        assert "\n" not in json.dumps(answer["error"]["details"] or {})


async def test_a_request_never_answered_is_pending_until_its_deadline_then_not_found(
    idle_gateway, http, sale
):
    url, _ = idle_gateway
    event_id = sale["event"].event_id
    auth = {"Authorization": f"Bearer {sale['token']}"}
    ahead = messages.new_request_id(event_id, answer_by_ms=now_ms() + 60_000)
    async with http.get(f"{url}/api/v1/bookings/requests/{ahead}", headers=auth) as r:
        assert (r.status, (await r.json())["data"]["status"]) == (202, "pending")
    past = messages.new_request_id(event_id, answer_by_ms=now_ms() - 1)
    async with http.get(f"{url}/api/v1/bookings/requests/{past}", headers=auth) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (404, "NOT_FOUND")


async def test_a_method_not_allowed_says_which_are(idle_gateway, http):
    url, _ = idle_gateway
    async with http.delete(f"{url}/api/v1/bookings/reserve") as r:
        assert r.status == 405
        assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"POST"}
    async with http.post(f"{url}/api/v1/events/00000000-0000-4000-8000-000000000000") as r:
        assert r.status == 405
        assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "PUT", "DELETE", "HEAD"}
