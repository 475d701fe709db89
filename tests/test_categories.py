"""Categories: listed for everyone, added by admins, used to file and filter events."""

from __future__ import annotations

import uuid

from gateway.auth import issue_access_token
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


async def test_categories_are_each_tenants_own(
    gateway_url, http, token_with_role, new_tenant, pg, jwt_secret, tenant
):
    """A tenant starts with the spec's three; an admin adds to their own tenant only; another
    tenant may use the same slug; an organizer files events under their own tenant's only."""
    other_slug = await new_tenant("cats-")
    other_id = str(await pg.fetchval("SELECT id FROM tenants WHERE slug = $1", other_slug))
    status, theirs = await call(
        http, "GET", f"{gateway_url}/api/v1/categories", params={"tenant": other_slug}
    )
    assert status == 200 and sorted(c["slug"] for c in theirs["data"]) == ["concert", "sport", "theater"]

    slug = unique("folk-")
    ours_admin = await token_with_role("admin")
    assert (
        await call(
            http, "POST", f"{gateway_url}/api/v1/categories", ours_admin, {"name": "Folk", "slug": slug}
        )
    )[0] == 201
    (other_admin,) = [
        issue_access_token(jwt_secret, user_id=str(uuid.uuid4()), tenant_id=other_id, role="admin")
    ]
    status, same = await call(
        http, "POST", f"{gateway_url}/api/v1/categories", other_admin, {"name": "Folk too", "slug": slug}
    )
    assert status == 201 and same["data"]["slug"] == slug  # their own, no conflict with ours
    _, ours = await call(http, "GET", f"{gateway_url}/api/v1/categories", params={"tenant": tenant["slug"]})
    _, theirs = await call(http, "GET", f"{gateway_url}/api/v1/categories", params={"tenant": other_slug})
    assert {c["name"] for c in ours["data"] if c["slug"] == slug} == {"Folk"}
    assert {c["name"] for c in theirs["data"] if c["slug"] == slug} == {"Folk too"}

    only_theirs = unique("polka-")
    await call(
        http, "POST", f"{gateway_url}/api/v1/categories", other_admin, {"name": "Polka", "slug": only_theirs}
    )
    body = {
        "title": "Not ours to file",
        "category": only_theirs,
        "shows": [
            {"show_date": "2099-01-01T00:00:00+00:00", "zones": [{"name": "A", "price": "1", "seats": 1}]}
        ],
    }
    status, refused = await call(
        http, "POST", f"{gateway_url}/api/v1/events", await token_with_role("organizer"), body
    )
    assert (status, refused["error"]["code"]) == (400, "VALIDATION_ERROR") and "category" in refused["error"][
        "details"
    ]

    status, everyone = await call(http, "GET", f"{gateway_url}/api/v1/categories")
    by_slug = [c for c in everyone["data"] if c["slug"] == slug]
    assert status == 200 and len(by_slug) == 1 and by_slug[0]["id"] is None  # one entry per slug
    status, missing = await call(
        http, "GET", f"{gateway_url}/api/v1/categories", params={"tenant": unique("none-")}
    )
    assert (status, missing["error"]["code"]) == (404, "NOT_FOUND")
