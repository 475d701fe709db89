"""Each tenant is a storefront with its own buyers (spec §2.3): a buyer belongs to one tenant, and
another tenant's event does not exist for them — the waiting room, reserve and pay answer 404 as
for an event that does not exist. Public reads stay public (an event page can be shared), and the
events list can be one storefront's."""

from __future__ import annotations

import uuid

import pytest_asyncio

from gateway.auth import issue_access_token
from ops.demo_pay import GOOD_CARD
from ops.seed_data import ensure_tenant, ensure_users
from tests.support import (
    book,
    call,
    published_event,
    queue_call,
    reserve,
    tenant_with_event,
    unique,
    wait_until,
)


@pytest_asyncio.fixture(loop_scope="session")
async def other_shop(pg, sale_redis):
    """A second tenant with its own organizer, a published event and a buyer."""
    async with pg.acquire() as conn:
        slug = unique("shop-")
        tenant_id = await ensure_tenant(conn, slug, "Other Shop")
        organizer, buyer = await ensure_users(
            conn, tenant_id, [f"{unique('o')}@x.test", f"{unique('b')}@x.test"]
        )
        await conn.execute("UPDATE users SET role = 'organizer' WHERE id = $1", organizer)
    tenant = {"tenant_id": tenant_id, "organizer_id": organizer, "slug": slug}
    event = await published_event(pg, sale_redis, tenant, [("GA", 20)], shows=1)
    return {**tenant, "event": event, "buyer": buyer}


def _reserve_body(event) -> dict:
    show = next(iter(event.shows))
    return {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["GA"], "quantity": 1}


async def test_another_storefronts_event_is_not_found_for_a_buyer(
    gateway_url, http, other_shop, make_users, token_for, room, jwt_secret, tenant
):
    event = other_shop["event"]
    (ours,) = await make_users(1)  # a buyer of the session's tenant
    token = token_for(ours)
    await room.configure(event.event_id, {"mode": "paused"})
    for verb in ("join", "status", "leave"):
        status, answer = await queue_call(http, gateway_url, token, verb, event.event_id)
        assert (status, answer["error"]["code"]) == (404, "NOT_FOUND"), verb
    status, answer = await call(
        http, "POST", f"{gateway_url}/api/v1/queue/notify", token, {"event_id": event.event_id, "email": True}
    )
    assert status == 404
    await room.configure(event.event_id, {"mode": "off"})
    status, answer = await reserve(http, gateway_url, token, _reserve_body(event))
    assert (status, answer["error"]["code"]) == (404, "NOT_FOUND")

    # Its own buyers book it as ever; the same account claiming another tenant pays for nothing.
    own = issue_access_token(jwt_secret, user_id=other_shop["buyer"], tenant_id=other_shop["tenant_id"])
    status, booked = await book(http, gateway_url, own, _reserve_body(event))
    assert status == 201, booked
    body = {"booking_id": booked["data"]["booking_id"], "method": "card", "details": GOOD_CARD}
    elsewhere = issue_access_token(jwt_secret, user_id=other_shop["buyer"], tenant_id=tenant["tenant_id"])
    status, answer = await call(http, "POST", f"{gateway_url}/api/v1/payments", elsewhere, body)
    assert (status, answer["error"]["code"]) == (404, "NOT_FOUND")


async def test_public_reads_stay_public_and_the_events_list_can_be_one_storefronts(
    gateway_url, http, other_shop, make_event
):
    ours = await make_event([("GA", 5)], shows=1)
    theirs = other_shop["event"].event_id
    status, page = await call(http, "GET", f"{gateway_url}/api/v1/events/{theirs}")
    assert status == 200 and page["data"]["id"] == theirs  # shareable with anyone
    status, listed = await call(
        http, "GET", f"{gateway_url}/api/v1/events", params={"tenant": other_shop["slug"]}
    )
    assert status == 200 and [e["id"] for e in listed["data"]] == [theirs] and listed["meta"]["total"] == 1
    status, everyone = await call(http, "GET", f"{gateway_url}/api/v1/events", params={"per_page": 100})
    assert {theirs, ours.event_id} <= {e["id"] for e in everyone["data"]}
    status, missing = await call(
        http, "GET", f"{gateway_url}/api/v1/events", params={"tenant": unique("nobody-")}
    )
    assert (status, missing["error"]["code"]) == (404, "NOT_FOUND")


async def test_a_cancelled_event_is_seen_by_its_own_tenant_only_and_a_draft_by_nobody(
    gateway_url, http, other_shop, make_users, token_for, jwt_secret, pg, sale_redis
):
    made = await tenant_with_event(pg, sale_redis, "gone-")
    event_id, show_id = made["event"].event_id, next(iter(made["event"].shows))
    await pg.execute("UPDATE events SET status = 'cancelled' WHERE id = $1", event_id)
    theirs = issue_access_token(jwt_secret, user_id=str(uuid.uuid4()), tenant_id=made["tenant_id"])
    (stranger,) = await make_users(1)
    reads = [
        f"/api/v1/events/{event_id}",
        f"/api/v1/events/{event_id}/shows",
        f"/api/v1/events/{event_id}/availability",
        f"/api/v1/shows/{show_id}/zones",
    ]

    async def seen_by(token) -> list[int]:
        return [(await call(http, "GET", f"{gateway_url}{path}", token))[0] for path in reads]

    async def cancelled_listed_for(token) -> bool:
        params = {"status": "cancelled", "per_page": 100}
        _, listed = await call(http, "GET", f"{gateway_url}/api/v1/events", token, params=params)
        return event_id in {e["id"] for e in listed["data"]}

    async def seen_only_by_its_own() -> bool:
        return await seen_by(theirs) == [200] * 4

    await wait_until(seen_only_by_its_own, 10, "the catalog to see the cancellation")
    assert await seen_by(None) == [404] * 4 and await seen_by(token_for(stranger)) == [404] * 4
    assert await cancelled_listed_for(theirs)
    assert not await cancelled_listed_for(None) and not await cancelled_listed_for(token_for(stranger))

    await pg.execute("UPDATE events SET status = 'draft' WHERE id = $1", event_id)

    async def hidden_from_its_own_too() -> bool:
        return await seen_by(theirs) == [404] * 4

    await wait_until(hidden_from_its_own_too, 10, "the catalog to see the draft")
