"""Admins manage their own tenant's users: list, change role, disable (which ends sessions)."""

from __future__ import annotations

import pytest_asyncio

from gateway.auth import issue_access_token
from tests.support import accounts_gateway_settings, call, running_gateway, unique

PASSWORD = "admin test 42"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gw(schema, new_topics, jwt_secret):
    topics = await new_topics("admin")
    settings = accounts_gateway_settings(schema, topics, jwt_secret)
    async with running_gateway(settings) as url:
        yield url


async def _account(http, gw, pg, tenant, role="user"):
    email = f"{unique('u')}@example.com"
    status, reg = await call(
        http,
        "POST",
        f"{gw}/api/v1/auth/register",
        body={"tenant": tenant, "email": email, "password": PASSWORD},
    )
    assert status == 201
    await pg.execute("UPDATE users SET role = $2 WHERE id = $1", reg["data"]["user"]["id"], role)
    status, session = await call(
        http, "POST", f"{gw}/api/v1/auth/login", body={"tenant": tenant, "email": email, "password": PASSWORD}
    )
    return session["data"]


async def test_admin_lists_and_changes_roles(gw, http, pg, new_tenant):
    tenant = await new_tenant()
    admin = await _account(http, gw, pg, tenant, "admin")
    user = await _account(http, gw, pg, tenant)
    status, listing = await call(http, "GET", f"{gw}/api/v1/admin/users?per_page=10", admin["access_token"])
    assert status == 200 and listing["meta"]["total"] == 2
    assert {u["email"] for u in listing["data"]} == {admin["user"]["email"], user["user"]["email"]}
    url = f"{gw}/api/v1/admin/users/{user['user']['id']}"
    status, changed = await call(http, "PUT", url, admin["access_token"], {"role": "organizer"})
    assert (status, changed["data"]["role"]) == (200, "organizer")
    status, bad = await call(http, "PUT", url, admin["access_token"], {"role": "superuser"})
    assert (status, bad["error"]["code"]) == (400, "VALIDATION_ERROR")


async def test_disabling_ends_sessions_and_logins(gw, http, pg, new_tenant):
    tenant = await new_tenant()
    admin = await _account(http, gw, pg, tenant, "admin")
    user = await _account(http, gw, pg, tenant)
    url = f"{gw}/api/v1/admin/users/{user['user']['id']}"
    status, changed = await call(http, "PUT", url, admin["access_token"], {"disabled": True})
    assert (status, changed["data"]["disabled"]) == (200, True)
    status, _ = await call(
        http, "POST", f"{gw}/api/v1/auth/refresh", body={"refresh_token": user["refresh_token"]}
    )
    assert status == 401
    status, answer = await call(
        http,
        "POST",
        f"{gw}/api/v1/auth/login",
        body={"tenant": tenant, "email": user["user"]["email"], "password": PASSWORD},
    )
    assert (status, answer["error"]["code"]) == (403, "FORBIDDEN")
    assert (await call(http, "PUT", url, admin["access_token"], {"disabled": False}))[0] == 200
    status, _ = await call(
        http,
        "POST",
        f"{gw}/api/v1/auth/login",
        body={"tenant": tenant, "email": user["user"]["email"], "password": PASSWORD},
    )
    assert status == 200


async def test_only_admins_and_only_their_tenant(gw, http, pg, new_tenant):
    tenant, other = await new_tenant(), await new_tenant()
    admin = await _account(http, gw, pg, tenant, "admin")
    organizer = await _account(http, gw, pg, tenant, "organizer")
    stranger = await _account(http, gw, pg, other)
    status, answer = await call(http, "GET", f"{gw}/api/v1/admin/users", organizer["access_token"])
    assert (status, answer["error"]["code"]) == (403, "FORBIDDEN")
    url = f"{gw}/api/v1/admin/users/{stranger['user']['id']}"
    status, answer = await call(http, "PUT", url, admin["access_token"], {"disabled": True})
    assert (status, answer["error"]["code"]) == (404, "NOT_FOUND")
    status, listing = await call(http, "GET", f"{gw}/api/v1/admin/users", admin["access_token"])
    assert stranger["user"]["email"] not in {u["email"] for u in listing["data"]}
    me = f"{gw}/api/v1/admin/users/{admin['user']['id']}"
    # Well formed, but in conflict with who asks (an admin cannot lock themselves out): 409.
    assert (await call(http, "PUT", me, admin["access_token"], {"disabled": True}))[0] == 409
    forged = issue_access_token("x" * 64, user_id=admin["user"]["id"], role="admin")
    assert (await call(http, "GET", f"{gw}/api/v1/admin/users", forged))[0] == 401
