"""Access tokens taken back before they expire: logout ends the session's, disabling or changing
a user's role ends the user's, suspending a tenant ends its users'; every gateway process
learns it from the aux Redis's channel, and one that was not listening reads it all back."""

from __future__ import annotations

import contextlib
import time

import jwt
import pytest_asyncio

from gateway import appkeys
from gateway.auth import issue_access_token
from gateway.revocations import KEY, RETENTION_MS, Revocations
from lua import load_aux_scripts
from tests.support import (
    accounts_gateway_settings,
    call,
    running_gateway_app,
    unique,
    wait_until,
)

PASSWORD = "revocable pass 7"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def two_gateways(schema, new_topics, jwt_secret):
    """Two gateway processes of one deployment (same topics, same aux Redis)."""
    topics = await new_topics("revoke")
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                running_gateway_app(accounts_gateway_settings(schema, topics, jwt_secret))
            )
            for _ in range(2)
        ]


@pytest_asyncio.fixture(loop_scope="session")
async def member(http, two_gateways, new_tenant, pg):
    """A fresh tenant with one signed-in user; its admin's token."""
    (url, _), _ = two_gateways
    slug = await new_tenant("revoke-")
    email = f"{unique('m')}@example.com"
    status, _ = await _post(http, url, "register", {"tenant": slug, "email": email, "password": PASSWORD})
    assert status == 201
    status, session = await _post(http, url, "login", {"tenant": slug, "email": email, "password": PASSWORD})
    assert status == 200
    tenant_id = str(await pg.fetchval("SELECT id FROM tenants WHERE slug = $1", slug))
    admin_id = await pg.fetchval(
        "INSERT INTO users (tenant_id, email, password_hash, role) VALUES ($1, $2, 'x', 'admin') "
        "RETURNING id",
        tenant_id,
        f"{unique('admin')}@example.com",
    )
    return {
        "slug": slug,
        "email": email,
        "tenant_id": tenant_id,
        "session": session["data"],
        "admin": _token(two_gateways, str(admin_id), "admin", tenant_id),
    }


def _token(two_gateways, user_id, role, tenant_id):
    settings = two_gateways[0][1][appkeys.SETTINGS]
    return issue_access_token(settings.jwt_secret, user_id=user_id, role=role, tenant_id=tenant_id)


async def _post(http, url, path, body, token=None):
    return await call(http, "POST", f"{url}/api/v1/auth/{path}", token, body)


async def _me(http, url, token) -> int:
    return (await call(http, "GET", f"{url}/api/v1/auth/me", token))[0]


async def _refused_everywhere(http, two_gateways, token) -> None:
    """Refused at once by the process that took it back, and soon by the other one."""
    (first, _), (second, _) = two_gateways
    status, answer = await call(http, "GET", f"{first}/api/v1/auth/me", token)
    assert (status, answer["error"]["message"]) == (401, "token revoked: sign in again")

    async def refused_by_second() -> bool:
        return await _me(http, second, token) == 401

    await wait_until(refused_by_second, 10, "the other gateway process to refuse the token")


async def test_a_session_id_is_in_the_access_token(member):
    claims = jwt.decode(member["session"]["access_token"], options={"verify_signature": False})
    assert claims["sid"] and isinstance(claims["iat"], float)


async def test_logout_ends_the_sessions_access_tokens_in_every_process(http, two_gateways, member):
    (url, _), (other, _) = two_gateways
    access = member["session"]["access_token"]
    assert await _me(http, url, access) == 200 and await _me(http, other, access) == 200
    # A second session of the same user is not this one: it survives the logout.
    _, second = await _post(
        http, url, "login", {"tenant": member["slug"], "email": member["email"], "password": PASSWORD}
    )
    status, answer = await _post(
        http, url, "logout", {"refresh_token": member["session"]["refresh_token"]}, access
    )
    assert (status, answer["data"]) == (200, {"revoked": True})
    await _refused_everywhere(http, two_gateways, access)
    assert await _me(http, other, second["data"]["access_token"]) == 200


async def test_a_role_change_ends_the_users_tokens_and_a_refresh_carries_the_new_role(
    http, two_gateways, member
):
    (url, _), _ = two_gateways
    session = member["session"]
    user_id = session["user"]["id"]
    status, _ = await call(
        http, "PUT", f"{url}/api/v1/admin/users/{user_id}", member["admin"], {"role": "organizer"}
    )
    assert status == 200
    await _refused_everywhere(http, two_gateways, session["access_token"])
    status, renewed = await _post(http, url, "refresh", {"refresh_token": session["refresh_token"]})
    assert status == 200  # issued after the change: not taken back
    access = renewed["data"]["access_token"]
    assert jwt.decode(access, options={"verify_signature": False})["role"] == "organizer"
    assert await _me(http, url, access) == 200


async def test_disabling_ends_the_users_tokens_and_refresh(http, two_gateways, member):
    (url, _), _ = two_gateways
    session = member["session"]
    status, _ = await call(
        http, "PUT", f"{url}/api/v1/admin/users/{session['user']['id']}", member["admin"], {"disabled": True}
    )
    assert status == 200
    await _refused_everywhere(http, two_gateways, session["access_token"])
    status, _ = await _post(http, url, "refresh", {"refresh_token": session["refresh_token"]})
    assert status == 401  # the refresh tokens were revoked with it


async def test_a_suspended_tenant_is_refused_and_its_tokens_end(http, two_gateways, member, pg):
    (url, app), _ = two_gateways
    session = member["session"]
    await pg.execute("UPDATE tenants SET status = 'suspended' WHERE id = $1", member["tenant_id"])
    status, answer = await _post(http, url, "refresh", {"refresh_token": session["refresh_token"]})
    assert (status, answer["error"]["code"]) == (403, "TENANT_SUSPENDED")
    login = {"tenant": member["slug"], "email": member["email"], "password": PASSWORD}
    status, answer = await _post(http, url, "login", login)
    assert (status, answer["error"]["code"]) == (403, "TENANT_SUSPENDED")  # not 404: it exists
    # What suspending will do (a later issue): every user's token in every process.
    await app[appkeys.REVOCATIONS].revoke("tenant", member["tenant_id"])
    await _refused_everywhere(http, two_gateways, session["access_token"])
    await _refused_everywhere(http, two_gateways, member["admin"])


async def test_a_process_that_missed_the_message_reads_it_back(http, two_gateways, member, aux):
    """A revocation stored while a process was not listening (here: written straight to the set,
    as if the announcement was lost) is in force there once its subscription is back."""
    (url, _), (other, other_app) = two_gateways
    session = member["session"]
    revocations = other_app[appkeys.REVOCATIONS]
    assert await _me(http, other, session["access_token"]) == 200
    await aux.zadd(KEY, {f"session:{_sid(session)}": _now_ms()})
    assert await _me(http, other, session["access_token"]) == 200  # not told: not known yet

    revocations.connected.clear()
    name = f"revocations-{other_app[appkeys.GATEWAY_ID]}"
    listeners = [c for c in await aux.client_list(_type="pubsub") if c["name"] == name]
    assert len(listeners) == 1
    await aux.client_kill_filter(_id=listeners[0]["id"])

    async def refused() -> bool:
        return await _me(http, other, session["access_token"]) == 401

    await wait_until(refused, 10, "the reconnected process to read the revocation back")


async def test_a_process_starting_reads_what_is_in_force(http, schema, new_topics, jwt_secret, member, aux):
    session = member["session"]
    await aux.zadd(KEY, {f"session:{_sid(session)}": _now_ms()})
    settings = accounts_gateway_settings(schema, await new_topics("revoke-start"), jwt_secret)
    async with running_gateway_app(settings) as (url, _):
        assert await _me(http, url, session["access_token"]) == 401


async def test_a_revocation_is_kept_only_as_long_as_a_token_lives(aux):
    """Each write drops from the set what has outlived every access token, and a re-read keeps
    only what is in force. (The clock is set back, so nothing real is old enough to be dropped.)"""
    now = [time.time() - 3 * RETENTION_MS / 1000]
    revocations = Revocations(clock=lambda: now[0])
    revocations.attach(aux, (await load_aux_scripts(aux)).revoke_access)
    old, recent = f"user:{unique('old')}", f"user:{unique('recent')}"
    await revocations.revoke("user", old.removeprefix("user:"))
    assert await aux.zscore(KEY, old) is not None
    now[0] += RETENTION_MS / 1000 + 1
    await revocations.revoke("user", recent.removeprefix("user:"))
    assert await aux.zscore(KEY, old) is None and await aux.zscore(KEY, recent) is not None
    assert old in revocations._not_before_ms  # known to this process until its next re-read
    await revocations.reload()
    assert old not in revocations._not_before_ms and recent in revocations._not_before_ms


def _sid(session) -> str:
    return jwt.decode(session["access_token"], options={"verify_signature": False})["sid"]


def _now_ms() -> int:
    return int(time.time() * 1000)
