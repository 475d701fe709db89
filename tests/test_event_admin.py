"""Organizers manage their own tenant's events: create, publish (seats go on sale), cancel, delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.auth import issue_access_token
from lua import keys
from ops.seed_data import ensure_tenant, ensure_users
from tests.support import book, call, unique


def _event_body(**overrides):
    when = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    body = {
        "title": "Night Show",
        "venue": "Arena",
        "max_tickets_per_user": 3,
        "shows": [
            {
                "show_date": when,
                "zones": [
                    {"name": "VIP", "price": "1500.50", "seats": 5},
                    {"name": "Floor", "price": 800, "seats": 20},
                ],
            }
        ],
    }
    body.update(overrides)
    return body


async def test_create_publish_and_sell(gateway_url, http, token_with_role, make_users, token_for, sale_redis):
    token = await token_with_role()
    status, created = await call(http, "POST", f"{gateway_url}/api/v1/events", token, _event_body())
    assert status == 201, created
    event = created["data"]
    assert event["status"] == "draft" and event["max_tickets_per_user"] == 3
    assert len(event["shows"]) == 1 and event["shows"][0]["total_seats"] == 25
    event_url = f"{gateway_url}/api/v1/events/{event['id']}"
    async with http.get(event_url) as r:
        assert r.status == 404  # a draft is not public

    status, published = await call(http, "PUT", event_url, token, {"status": "published"})
    assert (status, published["data"]["status"]) == (200, "published")
    show = event["shows"][0]["id"]
    async with http.get(f"{gateway_url}/api/v1/shows/{show}/zones") as r:
        zones = {z["name"]: z for z in (await r.json())["data"]["zones"]}
    assert zones["VIP"]["price"] == "1500.50" and zones["VIP"]["available_seats"] == 5
    vip = keys.zone(event["id"], show, zones["VIP"]["id"])
    assert int(await sale_redis.hget(vip, "available")) == 5

    (buyer,) = await make_users(1)
    body = {"event_id": event["id"], "show_id": show, "zone_id": zones["VIP"]["id"], "quantity": 2}
    s, a = await book(http, gateway_url, token_for(buyer), body)
    assert s == 201 and a["data"]["total_price"] == "3001.00"

    # Editing a published event refreshes the limit in Redis but never the live counter.
    status, _ = await call(
        http, "PUT", event_url, token, {"title": "Night Show II", "max_tickets_per_user": 2}
    )
    assert status == 200
    assert int(await sale_redis.hget(vip, "available")) == 3
    assert int(await sale_redis.hget(keys.event_meta(event["id"]), "max_per_user")) == 2


async def test_status_rules(gateway_url, http, token_with_role):
    token = await token_with_role()
    _, created = await call(http, "POST", f"{gateway_url}/api/v1/events", token, _event_body())
    url = f"{gateway_url}/api/v1/events/{created['data']['id']}"
    assert (await call(http, "PUT", url, token, {"status": "published"}))[0] == 200
    status, body = await call(http, "PUT", url, token, {"status": "draft"})
    assert (status, body["error"]["code"]) == (409, "INVALID_STATUS_TRANSITION")
    assert (await call(http, "DELETE", url, token))[0] == 409  # cancel, don't delete
    assert (await call(http, "PUT", url, token, {"status": "cancelled"}))[0] == 200
    assert (await call(http, "PUT", url, token, {"status": "published"}))[0] == 409


async def test_a_draft_can_be_deleted(gateway_url, http, token_with_role, pg):
    token = await token_with_role()
    _, created = await call(http, "POST", f"{gateway_url}/api/v1/events", token, _event_body())
    event_id = created["data"]["id"]
    status, body = await call(http, "DELETE", f"{gateway_url}/api/v1/events/{event_id}", token)
    assert (status, body["data"]["deleted"]) == (200, event_id)
    assert await pg.fetchval("SELECT count(*) FROM shows WHERE event_id = $1", event_id) == 0


async def test_buyers_cannot_manage_events(gateway_url, http, token_with_role):
    buyer = await token_with_role(role="user")
    status, body = await call(http, "POST", f"{gateway_url}/api/v1/events", buyer, _event_body())
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    assert (await call(http, "POST", f"{gateway_url}/api/v1/events", None, _event_body()))[0] == 401


async def test_another_tenants_organizer_sees_nothing(gateway_url, http, token_with_role, pg, jwt_secret):
    token = await token_with_role()
    _, created = await call(http, "POST", f"{gateway_url}/api/v1/events", token, _event_body())
    url = f"{gateway_url}/api/v1/events/{created['data']['id']}"
    async with pg.acquire() as conn:
        other_tenant = await ensure_tenant(conn, unique("rival-"), "Rival")
        (rival,) = await ensure_users(conn, other_tenant, [f"{unique('o')}@rival.test"], "organizer")
    rival_token = issue_access_token(jwt_secret, user_id=rival, role="organizer", tenant_id=other_tenant)
    for method, body in (("PUT", {"status": "published"}), ("PUT", {"title": "Mine now"}), ("DELETE", None)):
        status, answer = await call(http, method, url, rival_token, body)
        assert (status, answer["error"]["code"]) == (404, "NOT_FOUND")
    title = await pg.fetchval("SELECT title FROM events WHERE id = $1", created["data"]["id"])
    assert title == "Night Show"


BAD = {
    "no title": {"title": None},
    "empty title": {"title": "  "},
    "no shows": {"shows": []},
    "limit out of range": {"max_tickets_per_user": 50},
    "past show": {
        "shows": [
            {"show_date": "2020-01-01T00:00:00+00:00", "zones": [{"name": "A", "price": "1", "seats": 1}]}
        ]
    },
    "date without zone": {
        "shows": [{"show_date": "2099-01-01T00:00:00", "zones": [{"name": "A", "price": "1", "seats": 1}]}]
    },
    "not a date": {"shows": [{"show_date": "soon", "zones": [{"name": "A", "price": "1", "seats": 1}]}]},
    "repeated zone": {
        "shows": [
            {
                "show_date": "2099-01-01T00:00:00+00:00",
                "zones": [{"name": "A", "price": "1", "seats": 1}, {"name": "A", "price": "2", "seats": 1}],
            }
        ]
    },
    "three decimals": {
        "shows": [
            {"show_date": "2099-01-01T00:00:00+00:00", "zones": [{"name": "A", "price": "1.005", "seats": 1}]}
        ]
    },
    "negative price": {
        "shows": [
            {"show_date": "2099-01-01T00:00:00+00:00", "zones": [{"name": "A", "price": -1, "seats": 1}]}
        ]
    },
    "no seats": {
        "shows": [
            {"show_date": "2099-01-01T00:00:00+00:00", "zones": [{"name": "A", "price": "1", "seats": 0}]}
        ]
    },
    "unknown category": {"category": "no-such-category"},
}


@pytest.mark.parametrize("case", list(BAD))
async def test_bad_events_are_refused(gateway_url, http, token_with_role, case):
    token = await token_with_role()
    body = {k: v for k, v in _event_body(**BAD[case]).items() if v is not None}
    status, answer = await call(http, "POST", f"{gateway_url}/api/v1/events", token, body)
    assert (status, answer["error"]["code"]) == (400, "VALIDATION_ERROR"), answer
