"""Public catalog endpoints: paginated events, detail with shows, zones with live availability."""

from __future__ import annotations

import uuid

import pytest

from tests.support import book, call


async def _get(http, url):
    return await call(http, "GET", url)


async def test_zones_show_live_availability(gateway_url, http, make_event, make_users, token_for):
    event = await make_event([("VIP", 10), ("Regular", 30)], shows=2, price="250.00")
    show = next(iter(event.shows))
    (user,) = await make_users(1)
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["VIP"], "quantity": 3}
    assert (await book(http, gateway_url, token_for(user), body))[0] == 201

    status, zones = await _get(http, f"{gateway_url}/api/v1/shows/{show}/zones")
    assert status == 200
    by_name = {z["name"]: z for z in zones["data"]["zones"]}
    assert by_name["VIP"]["available_seats"] == 7  # read from the sale Redis, not PostgreSQL
    assert by_name["Regular"]["available_seats"] == 30
    assert by_name["VIP"]["price"] == "250.00" and by_name["VIP"]["total_seats"] == 10

    status, whole = await _get(http, f"{gateway_url}/api/v1/events/{event.event_id}/availability")
    assert status == 200 and whole["data"]["event_id"] == event.event_id
    assert [s["show_id"] for s in whole["data"]["shows"]] == list(event.shows)  # by date
    assert whole["data"]["shows"][0]["zones"] == zones["data"]["zones"]
    assert {z["available_seats"] for z in whole["data"]["shows"][1]["zones"]} == {10, 30}


async def test_event_detail_and_shows(gateway_url, http, make_event):
    event = await make_event([("VIP", 10)], shows=3)
    status, detail = await _get(http, f"{gateway_url}/api/v1/events/{event.event_id}")
    assert status == 200
    assert detail["data"]["id"] == event.event_id and detail["data"]["status"] == "published"
    assert [s["id"] for s in detail["data"]["shows"]] == list(event.shows)  # by date
    assert detail["data"]["shows_count"] == 3 and detail["data"]["next_show"]
    status, shows = await _get(http, f"{gateway_url}/api/v1/events/{event.event_id}/shows")
    assert [s["id"] for s in shows["data"]] == list(event.shows)


async def test_list_is_paginated(gateway_url, http, make_event):
    for _ in range(3):
        await make_event([("VIP", 1)], shows=1)
    status, first = await _get(http, f"{gateway_url}/api/v1/events?per_page=2&page=1")
    assert status == 200
    assert first["meta"]["per_page"] == 2 and first["meta"]["page"] == 1
    assert first["meta"]["total"] >= 3 and len(first["data"]) == 2
    status, second = await _get(http, f"{gateway_url}/api/v1/events?per_page=2&page=2")
    assert {e["id"] for e in first["data"]}.isdisjoint({e["id"] for e in second["data"]})
    assert all(e["status"] == "published" for e in first["data"] + second["data"])


async def test_drafts_are_not_public(gateway_url, http, make_event, pg):
    event = await make_event([("VIP", 1)], shows=1)
    await pg.execute("UPDATE events SET status = 'draft' WHERE id = $1", event.event_id)
    assert (await _get(http, f"{gateway_url}/api/v1/events/{event.event_id}"))[0] == 404
    show = next(iter(event.shows))
    assert (await _get(http, f"{gateway_url}/api/v1/shows/{show}/zones"))[0] == 404
    assert (await _get(http, f"{gateway_url}/api/v1/events/{event.event_id}/availability"))[0] == 404


@pytest.mark.parametrize("query", ["page=0", "page=x", "per_page=101", "per_page=-1", "status=draft"])
async def test_bad_queries_are_validation_errors(gateway_url, http, query):
    status, body = await _get(http, f"{gateway_url}/api/v1/events?{query}")
    assert (status, body["error"]["code"]) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "path",
    [
        "events/not-a-uuid",
        f"events/{uuid.uuid4()}",
        f"events/{uuid.uuid4()}/shows",
        f"events/{uuid.uuid4()}/availability",
        "events/x/availability",
        "shows/nope/zones",
        f"shows/{uuid.uuid4()}/zones",
    ],
)
async def test_unknown_ids_are_not_found(gateway_url, http, path):
    status, body = await _get(http, f"{gateway_url}/api/v1/{path}")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
