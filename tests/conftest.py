"""Fixtures on the real services: the stack is started (idempotently) by the test session.

Each session gets its own topic prefix and consumer groups, so it never meets a running demo.
"""

from __future__ import annotations

import secrets

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from gateway.auth import issue_access_token
from lua import load_scripts
from ops import stack
from ops.chromium import chromium
from ops.demo_pay import Mailbox
from ops.migrate import migrate
from ops.seed_data import CreatedEvent, ensure_tenant, ensure_users
from tests.contract import BREACHES
from tests.support import (
    Topics,
    WorkerProcess,
    free_port,
    gateway_settings,
    published_event,
    running_gateway,
    unique,
    worker_env,
)
from waiting_room.room import WaitingRoom

session_fixture = pytest_asyncio.fixture(scope="session", loop_scope="session")


@pytest.fixture(scope="session", autouse=True)
def openapi_contract_kept():
    """Every answer the session's gateways gave matched the OpenAPI document (tests/contract.py)."""
    yield
    assert not BREACHES.found, "answers the OpenAPI document does not describe:\n" + "\n".join(
        sorted(set(BREACHES.found))
    )


@pytest.fixture(scope="session")
def stack_cfg():
    cfg = stack.up()
    return cfg


@session_fixture
async def schema(stack_cfg):
    await migrate(stack_cfg.database_url)
    return stack_cfg


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    return secrets.token_hex(32)


@session_fixture
async def pg(schema):
    pool = await asyncpg.create_pool(schema.database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@session_fixture
async def sale_redis(stack_cfg):
    client = aioredis.from_url(stack_cfg.sale_redis_url)
    yield client
    await client.aclose()


@session_fixture
async def aux(stack_cfg):
    client = aioredis.from_url(stack_cfg.aux_redis_url)
    yield client
    await client.aclose()


@session_fixture
async def scripts(sale_redis):
    return await load_scripts(sale_redis)


@session_fixture
async def tenant(pg):
    async with pg.acquire() as conn:
        slug = unique("test-")
        tenant_id = await ensure_tenant(conn, slug, "Test Tenant")
        (organizer,) = await ensure_users(conn, tenant_id, ["organizer@test.test"], "organizer")
    return {"tenant_id": tenant_id, "organizer_id": organizer, "slug": slug}


@pytest.fixture
def new_tenant(pg):
    """Makes a fresh tenant and returns its slug (what register and login take)."""

    async def make(prefix: str = "t-") -> str:
        slug = unique(prefix)
        async with pg.acquire() as conn:
            await ensure_tenant(conn, slug, "Test Tenant")
        return slug

    return make


@pytest.fixture
def room(sale_redis, scripts):
    """The waiting room on the sale Redis, as gateways and admitters use it."""
    return WaitingRoom(sale_redis, scripts)


@pytest.fixture
def make_users(pg, tenant):
    async def make(n: int) -> list[str]:
        async with pg.acquire() as conn:
            return await ensure_users(
                conn, tenant["tenant_id"], [f"{unique('u')}@test.test" for _ in range(n)]
            )

    return make


@pytest.fixture
def token_for(jwt_secret, tenant):
    def make(user_id: str, **kw) -> str:
        return issue_access_token(jwt_secret, user_id=user_id, tenant_id=tenant["tenant_id"], **kw)

    return make


@pytest.fixture
def token_with_role(make_users, token_for, pg):
    """A fresh user of the session's tenant with `role` (organizer by default), and a token."""

    async def make(role: str = "organizer") -> str:
        (user,) = await make_users(1)
        await pg.execute("UPDATE users SET role = $2 WHERE id = $1", user, role)
        return token_for(user, role=role)

    return make


@pytest.fixture
def make_event(pg, sale_redis, tenant):
    """A published event with its inventory loaded into the sale Redis."""

    async def make(
        zones: list[tuple[str, int]], shows: int = 2, max_per_user: int = 4, price: str = "100.00"
    ) -> CreatedEvent:
        return await published_event(pg, sale_redis, tenant, zones, shows, max_per_user, price)

    return make


SESSION_PREFIX = unique("t-") + "-"


async def _topics(cfg, name: str, partitions: int) -> Topics:
    topics = Topics(f"{SESSION_PREFIX}{unique(name + '-')}.")
    await stack.ensure_topics(cfg, topics.prefix, partitions=partitions)
    return topics


@session_fixture
async def kafka_topics_cleanup(schema):
    """Every topic this session made goes at its end: partitions hold files open in the broker."""
    yield
    await stack.delete_topics(schema, SESSION_PREFIX)


@session_fixture
async def topics(schema, kafka_topics_cleanup) -> Topics:
    return await _topics(schema, "main", partitions=4)


@pytest.fixture(scope="session")
def new_topics(schema, kafka_topics_cleanup):
    async def make(name: str) -> Topics:
        return await _topics(schema, name, partitions=2)

    return make


@session_fixture
async def workers(schema, topics):
    """Two worker processes sharing the session's consumer groups."""
    procs = [
        await WorkerProcess(worker_env(schema, topics, f"{topics.prefix}w{i}")).start() for i in range(2)
    ]
    yield procs
    for p in procs:
        await p.stop()


@session_fixture
async def gateway_url(schema, topics, jwt_secret, workers):
    # Every anonymous test request comes from 127.0.0.1: one "general" bucket would run dry.
    # The spec's own limits are tested on gateways of their own (test_rate_limit, test_auth).
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits="general=6000/1000")
    async with running_gateway(settings) as url:
        yield url


@session_fixture
async def http():
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
        yield session


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (tests/browser.py), one per test module: each starts signed out."""
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def smtp_sink():
    """(inbox, port) of a local SMTP sink (ops/demo_pay.Mailbox), one per test module."""
    with Mailbox(free_port()) as inbox:
        yield inbox, inbox.controller.port
