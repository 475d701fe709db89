"""bcrypt in a bounded pool of its own: a crowd of sign-ins hears 503 at once instead of queuing
without end, and an unknown account costs the same hash as a real one."""

from __future__ import annotations

import asyncio

import bcrypt
import pytest_asyncio

from gateway import appkeys
from gateway.password_hasher import HashingBusy, PasswordHasher
from tests.support import accounts_gateway_settings, call, running_gateway_app, unique

PASSWORD = "hasher pass 2026"


async def test_past_its_slots_the_hasher_refuses_at_once():
    hasher = PasswordHasher(cost=10, threads=1, max_wait_s=0)
    try:
        outcomes = await asyncio.gather(*(hasher.hash(PASSWORD) for _ in range(3)), return_exceptions=True)
        hashes = [o for o in outcomes if isinstance(o, str)]
        busy = [o for o in outcomes if isinstance(o, HashingBusy)]
        assert len(hashes) == 1 and len(busy) == 2  # one running, none may wait: two refused
        assert busy[0].headers == {"Retry-After": "1"}
        assert all(bcrypt.checkpw(PASSWORD.encode(), h.encode()) for h in hashes)
        assert await hasher.hash(PASSWORD)  # the slots are given back
    finally:
        hasher.close()


async def test_an_unknown_account_is_checked_against_a_hash_of_the_same_cost():
    hasher = PasswordHasher(cost=9, threads=1, max_wait_s=0)
    try:
        real = await hasher.hash(PASSWORD)
        assert await hasher.check(PASSWORD, real)
        assert not await hasher.check("another pass 1", real)
        assert hasher.dummy_cost() is None
        assert not await hasher.check(PASSWORD, None)
        assert hasher.dummy_cost() == 9 == int(real.split("$")[2])
        assert not await hasher.check("x" * 73, real)  # longer than bcrypt reads: never a match
    finally:
        hasher.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def one_hash_gateway(schema, new_topics, jwt_secret):
    """A gateway that hashes one password at a time with none waiting, at the spec's cost (a
    quarter second: long enough for a second sign-in to arrive while the first is hashed)."""
    settings = accounts_gateway_settings(
        schema, await new_topics("hasher"), jwt_secret, bcrypt_cost=12, hash_threads=1, hash_max_wait_s=0
    )
    async with running_gateway_app(settings) as (url, app):
        yield url, app[appkeys.PASSWORD_HASHER]


async def test_a_busy_hasher_answers_503_with_retry_after(one_hash_gateway, http, new_tenant):
    url, hasher = one_hash_gateway
    slug = await new_tenant()
    body = {"tenant": slug, "email": f"{unique('h')}@example.com", "password": PASSWORD}
    holding = asyncio.create_task(hasher.hash(PASSWORD))  # takes the only slot before the request
    async with http.post(f"{url}/api/v1/auth/login", json=body) as answer:
        assert (answer.status, (await answer.json())["error"]["code"]) == (503, "SERVICE_UNAVAILABLE")
        assert answer.headers["Retry-After"] == "1"
    await holding
    status, answer = await call(http, "POST", f"{url}/api/v1/auth/login", body=body)
    assert (status, answer["error"]["code"]) == (401, "UNAUTHORIZED")  # once free, a plain refusal


async def test_how_many_may_wait_follows_how_long_a_hash_takes():
    """Two seconds of waiting is ~16 sign-ins at cost 12 and thousands at cost 4: a crowd of
    demo or test logins at cost 4 is served, a crowd at cost 12 is told to come back."""
    slow, fast = PasswordHasher(cost=12, threads=2), PasswordHasher(cost=4, threads=2)
    try:
        assert 4 <= slow.may_wait <= 64
        assert fast.may_wait >= 1000
        for _ in range(8):
            await fast.hash(PASSWORD)  # timed: the estimate follows what this machine does
        assert fast.hash_s < 0.05
    finally:
        slow.close()
        fast.close()
