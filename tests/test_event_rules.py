"""Per-event rules enforced on reserve: the booking window before a show, and a minimum age."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.support import book


async def _published_event(http, url, token, *, starts_in: timedelta, **rules):
    body = {
        "title": "Rules",
        "shows": [
            {
                "show_date": (datetime.now(UTC) + starts_in).isoformat(),
                "zones": [{"name": "GA", "price": "10", "seats": 50}],
            }
        ],
        **rules,
    }
    async with http.post(
        f"{url}/api/v1/events", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        event = (await r.json())["data"]
        assert r.status == 201, event
    async with http.put(
        f"{url}/api/v1/events/{event['id']}",
        json={"status": "published"},
        headers={"Authorization": f"Bearer {token}"},
    ) as r:
        assert r.status == 200
    show = event["shows"][0]["id"]
    async with http.get(f"{url}/api/v1/shows/{show}/zones") as r:
        zone = (await r.json())["data"]["zones"][0]["id"]
    return {"event_id": event["id"], "show_id": show, "zone_id": zone, "quantity": 1}


async def test_booking_closes_before_the_show(gateway_url, http, token_with_role, make_users, token_for):
    token = await token_with_role()
    closed = await _published_event(
        http, gateway_url, token, starts_in=timedelta(minutes=30), booking_window_minutes=60
    )
    open_ = await _published_event(
        http, gateway_url, token, starts_in=timedelta(minutes=30), booking_window_minutes=0
    )
    (buyer,) = await make_users(1)
    status, answer = await book(http, gateway_url, token_for(buyer), closed)
    assert (status, answer["error"]["code"]) == (409, "BOOKING_CLOSED")
    assert (await book(http, gateway_url, token_for(buyer), open_))[0] == 201


async def test_minimum_age(gateway_url, http, token_with_role, make_users, token_for):
    body = await _published_event(
        http, gateway_url, await token_with_role(), starts_in=timedelta(days=3), min_age=18
    )
    unknown, minor, adult = await make_users(3)
    today = datetime.now(UTC).date()
    seventeen = date(today.year - 17, today.month, min(today.day, 28))
    status, answer = await book(http, gateway_url, token_for(unknown), body)
    assert (status, answer["error"]["code"]) == (403, "AGE_RESTRICTED")
    status, answer = await book(http, gateway_url, token_for(minor, birth_date=seventeen), body)
    assert (status, answer["error"]["details"]) == (403, {"min_age": 18})
    assert (await book(http, gateway_url, token_for(adult, birth_date=date(1990, 5, 1)), body))[0] == 201


@pytest.mark.parametrize(
    "rules",
    [
        {"booking_window_minutes": -1},
        {"booking_window_minutes": 99999},
        {"min_age": 0},
        {"min_age": 120},
        {"min_age": "18"},
    ],
)
async def test_bad_rules_are_refused(gateway_url, http, token_with_role, rules):
    token = await token_with_role()
    body = {
        "title": "Bad",
        "shows": [
            {"show_date": "2099-01-01T00:00:00+00:00", "zones": [{"name": "GA", "price": "1", "seats": 1}]}
        ],
        **rules,
    }
    async with http.post(
        f"{gateway_url}/api/v1/events", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, "VALIDATION_ERROR")
