"""Categories: listed for everyone, added by admins, used to file and filter events."""

from __future__ import annotations

from tests.support import call, unique


async def test_the_spec_categories_are_there(gateway_url, http):
    status, body = await call(http, "GET", f"{gateway_url}/api/v1/categories")
    assert status == 200
    assert {"concert", "sport", "theater"} <= {c["slug"] for c in body["data"]}


async def test_admins_add_categories_and_events_filter_by_them(gateway_url, http, token_with_role):
    admin = await token_with_role("admin")
    organizer = await token_with_role("organizer")
    slug = unique("jazz-")
    status, created = await call(
        http, "POST", f"{gateway_url}/api/v1/categories", admin, {"name": "Jazz", "slug": slug}
    )
    assert (status, created["data"]["slug"]) == (201, slug)
    status, again = await call(
        http, "POST", f"{gateway_url}/api/v1/categories", admin, {"name": "Jazz", "slug": slug}
    )
    assert (status, again["error"]["code"]) == (409, "CONFLICT")
    status, denied = await call(
        http, "POST", f"{gateway_url}/api/v1/categories", organizer, {"name": "Nope", "slug": unique("nope-")}
    )
    assert (status, denied["error"]["code"]) == (403, "FORBIDDEN")
    for bad in ({"name": "X", "slug": "Has Spaces"}, {"name": "", "slug": "ok"}, {"slug": "ok"}):
        assert (await call(http, "POST", f"{gateway_url}/api/v1/categories", admin, bad))[0] == 400

    body = {
        "title": "Blue Note",
        "category": slug,
        "shows": [
            {"show_date": "2099-01-01T00:00:00+00:00", "zones": [{"name": "A", "price": "1", "seats": 1}]}
        ],
    }
    status, event = await call(http, "POST", f"{gateway_url}/api/v1/events", organizer, body)
    assert (status, event["data"]["category"]) == (201, slug)
    await call(
        http, "PUT", f"{gateway_url}/api/v1/events/{event['data']['id']}", organizer, {"status": "published"}
    )
    status, listing = await call(http, "GET", f"{gateway_url}/api/v1/events?category={slug}")
    assert [e["id"] for e in listing["data"]] == [event["data"]["id"]]
    assert listing["meta"]["total"] == 1
