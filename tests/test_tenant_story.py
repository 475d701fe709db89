"""Issue 20's story, end to end on the real services: a system admin made by the CLI creates a
tenant; its invited admin signs in and makes an organizer of a registered account; the organizer
publishes an event that only the tenant's verified buyers can queue for and buy; then the system
admin suspends the tenant and its sale stops."""

from __future__ import annotations

import re

import pytest_asyncio

from booking_rush.contract.messages import now_ms
from booking_rush.services.mail import MailSettings
from ops.demo_tenant import tenant_through_the_api
from tests.support import accounts_gateway_settings, book, call, queue_call, running_gateway, unique
from tests.test_system_admin import PASSWORD, sysadmin_cli

SHOW_DATE = "2099-06-01T19:00:00+07:00"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gw(schema, topics, jwt_secret, smtp_sink, workers):
    """A gateway on the session's topics (its workers apply the commands), mailing to the sink."""
    settings = accounts_gateway_settings(schema, topics, jwt_secret, mail=MailSettings(port=smtp_sink[1]))
    async with running_gateway(settings) as url:
        yield url


def _mailed(inbox, to: str, path: str) -> str:
    """The token of the last link to `path` mailed to `to`."""
    mail = [m for m in inbox.messages if m["To"] == to][-1]
    return re.search(rf"/{path}#token=([A-Za-z0-9_-]+)", mail.get_payload(decode=True).decode()).group(1)


async def _post(http, url: str, body: dict, token: str | None = None) -> dict:
    status, answer = await call(http, "POST", url, token, body)
    assert status in (200, 201), answer
    return answer["data"]


async def test_a_tenant_from_creation_to_a_sale_only_its_verified_buyers_make_and_suspension_stops(
    gw, http, schema, smtp_sink, room, make_users, token_for
):
    inbox, _ = smtp_sink
    operator = f"{unique('ops')}@system.test"
    assert (await sysadmin_cli(schema, "create", "--email", operator))[0] == 0
    system = (await _post(http, f"{gw}/api/v1/system/auth/login", {"email": operator, "password": PASSWORD}))[
        "access_token"
    ]

    slug, boss = unique("arena-"), f"{unique('boss')}@arena.test"
    tenant = await _post(
        http, f"{gw}/api/v1/system/tenants", {"name": "Arena", "slug": slug, "admin_email": boss}, system
    )
    admin = await _post(
        http,
        f"{gw}/api/v1/auth/invitations/accept",
        {"token": _mailed(inbox, boss, "invitation"), "password": "arena boss 2026"},
    )
    assert admin["user"]["role"] == "admin" and admin["user"]["tenant_id"] == tenant["id"]

    async def verified_account(email: str) -> dict:
        await _post(
            http, f"{gw}/api/v1/auth/register", {"tenant": slug, "email": email, "password": PASSWORD}
        )
        return await _post(
            http, f"{gw}/api/v1/auth/verify-email", {"token": _mailed(inbox, email, "verify-email")}
        )

    organizer_email = f"{unique('org')}@arena.test"
    made = await verified_account(organizer_email)
    status, _ = await call(
        http,
        "PUT",
        f"{gw}/api/v1/admin/users/{made['user']['id']}",
        admin["access_token"],
        {"role": "organizer"},
    )
    assert status == 200
    organizer = await _post(
        http, f"{gw}/api/v1/auth/login", {"tenant": slug, "email": organizer_email, "password": PASSWORD}
    )
    assert organizer["user"]["role"] == "organizer"

    draft = {
        "title": "Arena Opening Night",
        "category": "concert",  # the tenant started with the spec's three
        "shows": [{"show_date": SHOW_DATE, "zones": [{"name": "Floor", "price": "1500", "seats": 10}]}],
    }
    event = await _post(http, f"{gw}/api/v1/events", draft, organizer["access_token"])
    event_id = event["id"]
    status, published = await call(
        http, "PUT", f"{gw}/api/v1/events/{event_id}", organizer["access_token"], {"status": "published"}
    )
    assert (status, published["data"]["status"]) == (200, "published")
    status, room_set = await call(
        http, "PUT", f"{gw}/api/v1/admin/events/{event_id}/room", admin["access_token"], {"mode": "always"}
    )
    assert status == 200, room_set

    # A verified buyer of the tenant queues, is let in and buys.
    buyer = await verified_account(f"{unique('fan')}@arena.test")
    token = buyer["access_token"]
    status, joined = await queue_call(http, gw, token, "join", event_id)
    assert (status, joined["data"]["state"]) == (200, "waiting")
    await room.admit(event_id, now_ms())
    _, standing = await queue_call(http, gw, token, "status", event_id)
    assert standing["data"]["state"] == "admitted"
    show = published["data"]["shows"][0]
    zones = (await call(http, "GET", f"{gw}/api/v1/shows/{show['id']}/zones"))[1]["data"]["zones"]
    body = {"event_id": event_id, "show_id": show["id"], "zone_id": zones[0]["id"], "quantity": 2}
    status, bought = await book(http, gw, token, body, {"X-Queue-Pass": standing["data"]["pass"]})
    assert status == 201 and bought["data"]["total_price"] == "3000.00"

    # Nobody else: an unverified buyer of the tenant, a buyer of another tenant.
    unverified = f"{unique('new')}@arena.test"
    await _post(
        http, f"{gw}/api/v1/auth/register", {"tenant": slug, "email": unverified, "password": PASSWORD}
    )
    fresh = await _post(
        http, f"{gw}/api/v1/auth/login", {"tenant": slug, "email": unverified, "password": PASSWORD}
    )
    status, refused = await queue_call(http, gw, fresh["access_token"], "join", event_id)
    assert (status, refused["error"]["code"]) == (403, "EMAIL_NOT_VERIFIED")
    (stranger,) = await make_users(1)
    status, refused = await queue_call(http, gw, token_for(stranger), "join", event_id)
    assert (status, refused["error"]["code"]) == (404, "NOT_FOUND")

    # Suspended: the buyer's session ends, sign-in is refused, the room closes saying why.
    suspended = await _post(http, f"{gw}/api/v1/system/tenants/{tenant['id']}/suspend", {}, system)
    assert suspended["events_applied"] == 1
    status, _ = await queue_call(http, gw, token, "status", event_id)
    assert status == 401
    status, refused = await call(
        http,
        "POST",
        f"{gw}/api/v1/auth/login",
        body={"tenant": slug, "email": organizer_email, "password": PASSWORD},
    )
    assert (status, refused["error"]["code"]) == (403, "TENANT_SUSPENDED")
    config = await room.config(event_id)
    assert config.mode == "closed"


async def test_the_demo_makes_its_tenant_through_the_api(gw, http, schema, smtp_sink):
    """ops.demo's way (ops/demo_tenant.py): created the first time, found the next."""
    inbox, _ = smtp_sink
    slug, boss = unique("demo-"), f"{unique('boss')}@demo.test"
    how = dict(slug=slug, name="Demo", admin_email=boss, password="demo-pass-2026", bcrypt_cost=4)
    assert await tenant_through_the_api(schema, gw, inbox, **how) == "created"
    assert await tenant_through_the_api(schema, gw, inbox, **how) == "existing"
    status, session = await call(
        http,
        "POST",
        f"{gw}/api/v1/auth/login",
        body={"tenant": slug, "email": boss, "password": "demo-pass-2026"},
    )
    assert status == 200 and session["data"]["user"]["role"] == "admin"
