"""A system admin suspends a tenant: its users' access tokens end at once, and each of its events
is suspended in the sale Redis by a command through Kafka, so a reserve or a payment applied
after it is refused by the script itself (403 TENANT_SUSPENDED: a command that was already on its
way is refused too), and its waiting room closes and says why. Reactivating restores each room's
mode and the sales."""

from __future__ import annotations

import uuid

import pytest_asyncio

from gateway.auth import issue_access_token
from lua import keys
from ops.demo_pay import GOOD_CARD
from ops.seed_data import ensure_tenant, ensure_users
from tests.support import book, call, published_event, queue_call, reserve, unique


@pytest_asyncio.fixture(loop_scope="session")
async def shop(pg, sale_redis, room, jwt_secret):
    """A tenant with a buyer, an event behind a waiting room (mode always) and one without."""
    async with pg.acquire() as conn:
        tenant_id = await ensure_tenant(conn, unique("susp-"), "Suspendable")
        organizer, buyer = await ensure_users(
            conn, tenant_id, [f"{unique('o')}@s.test", f"{unique('b')}@s.test"]
        )
    tenant = {"tenant_id": tenant_id, "organizer_id": organizer}
    queued = await published_event(pg, sale_redis, tenant, [("GA", 10)], shows=1)
    open_sale = await published_event(pg, sale_redis, tenant, [("GA", 10)], shows=1)
    await room.configure(queued.event_id, {"mode": "always", "grace_s": 600})
    return {"tenant_id": tenant_id, "buyer": buyer, "queued": queued, "open": open_sale}


def _body(event) -> dict:
    show = next(iter(event.shows))
    return {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["GA"], "quantity": 1}


async def test_suspending_a_tenant_stops_its_sales_in_the_scripts_and_reactivating_resumes_them(
    gateway_url, http, shop, jwt_secret, sale_redis, pg
):
    def buyer_token() -> str:  # minted now: issued after any revocation so far
        return issue_access_token(jwt_secret, user_id=shop["buyer"], tenant_id=shop["tenant_id"])

    system = issue_access_token(jwt_secret, user_id=str(uuid.uuid4()), role="system_admin")
    before = buyer_token()
    status, held = await book(http, gateway_url, before, _body(shop["open"]))
    assert status == 201, held
    await queue_call(http, gateway_url, before, "join", shop["queued"].event_id)

    url = f"{gateway_url}/api/v1/system/tenants/{shop['tenant_id']}"
    status, suspended = await call(http, "POST", f"{url}/suspend", system)
    assert status == 200, suspended
    assert (suspended["data"]["status"], suspended["data"]["events_applied"]) == ("suspended", 2), suspended
    assert await pg.fetchval("SELECT status FROM tenants WHERE id = $1", shop["tenant_id"]) == "suspended"
    status, _ = await call(http, "GET", f"{gateway_url}/api/v1/auth/me", before)
    assert status == 401  # every token issued before: ended

    # A reserve reaching the script now (as one already in Kafka would) is refused there.
    status, refused = await reserve(http, gateway_url, buyer_token(), _body(shop["open"]))
    assert (status, refused["error"]["code"]) == (403, "TENANT_SUSPENDED")
    pay = {"booking_id": held["data"]["booking_id"], "method": "card", "details": GOOD_CARD}
    status, refused = await call(http, "POST", f"{gateway_url}/api/v1/payments", buyer_token(), pay)
    assert (status, refused["error"]["code"]) == (403, "TENANT_SUSPENDED")
    hold = await sale_redis.hgetall(keys.hold(shop["open"].event_id, held["data"]["booking_id"]))
    assert hold[b"status"] == b"reserved"  # the hold made before stands, to run out as usual
    status, standing = await queue_call(http, gateway_url, buyer_token(), "status", shop["queued"].event_id)
    assert (standing["data"]["state"], standing["data"]["closed_reason"]) == ("closed", "tenant_suspended")

    status, again = await call(http, "POST", f"{url}/suspend", system)
    assert status == 200  # twice changes nothing more
    config = await sale_redis.hgetall(keys.room(shop["queued"].event_id, "config"))
    assert (config[b"mode"], config[b"mode_before_close"]) == (b"closed", b"always")

    status, active = await call(http, "POST", f"{url}/reactivate", system)
    assert status == 200 and (active["data"]["status"], active["data"]["events_applied"]) == ("active", 2)
    config = await sale_redis.hgetall(keys.room(shop["queued"].event_id, "config"))
    assert (
        config[b"mode"] == b"always" and b"closed_reason" not in config and b"mode_before_close" not in config
    )
    assert not await sale_redis.hexists(keys.event_meta(shop["open"].event_id), "suspended")
    status, booked = await book(http, gateway_url, buyer_token(), _body(shop["open"]))
    assert status == 201, booked
    status, standing = await queue_call(http, gateway_url, buyer_token(), "status", shop["queued"].event_id)
    assert standing["data"]["state"] == "waiting" and standing["data"]["closed_reason"] is None


async def test_only_system_admins_suspend_and_an_unknown_tenant_is_not_found(
    gateway_url, http, jwt_secret, shop
):
    url = f"{gateway_url}/api/v1/system/tenants/{shop['tenant_id']}/suspend"
    admin = issue_access_token(jwt_secret, user_id=shop["buyer"], tenant_id=shop["tenant_id"], role="admin")
    status, refused = await call(http, "POST", url, admin)
    assert (status, refused["error"]["code"]) == (403, "FORBIDDEN")
    system = issue_access_token(jwt_secret, user_id=str(uuid.uuid4()), role="system_admin")
    nobody = f"{gateway_url}/api/v1/system/tenants/{uuid.uuid4()}"
    for action in ("suspend", "reactivate"):
        status, missing = await call(http, "POST", f"{nobody}/{action}", system)
        assert (status, missing["error"]["code"]) == (404, "NOT_FOUND")
