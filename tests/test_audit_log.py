"""The audit log (spec §8.5): logins, failed logins and admin actions leave a row naming actor and
tenant; a failed audit insert never fails the action; monthly partitions are made ahead, and rows
that reached the default partition first move into theirs."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import jwt
import orjson
import pytest_asyncio

from booking_rush.contract.audit import AuditEntry
from booking_rush.services.audit_log import record
from gateway import audit_trail
from tests.support import accounts_gateway_settings, call, running_gateway, unique
from workers.audit_partitions import ensure_partitions_ahead, keep_partitions_ahead

PASSWORD = "audit trail 42"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gw(schema, new_topics, jwt_secret):
    topics = await new_topics("audit")
    # No worker reads these topics: nothing here needs one.
    async with running_gateway(accounts_gateway_settings(schema, topics, jwt_secret)) as url:
        yield url


async def _audit_rows(pg, action: str, entity_id: str) -> list[dict]:
    rows = await pg.fetch(
        "SELECT tenant_id, actor_id, details FROM audit_logs WHERE action = $1 AND entity_id = $2",
        action,
        entity_id,
    )
    return [
        {
            "tenant_id": str(r["tenant_id"]) if r["tenant_id"] else None,
            "actor_id": str(r["actor_id"]) if r["actor_id"] else None,
            "details": orjson.loads(r["details"]),
        }
        for r in rows
    ]


def _user_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["sub"]


async def _registered(http, gw, new_tenant) -> tuple[str, str, str]:
    """(tenant slug, email, user id) of a fresh account."""
    tenant, email = await new_tenant("audit-"), f"{unique('a')}@example.com"
    status, body = await call(
        http,
        "POST",
        f"{gw}/api/v1/auth/register",
        body={"tenant": tenant, "email": email, "password": PASSWORD},
    )
    assert status == 201, body
    return tenant, email, body["data"]["user"]["id"]


async def test_a_login_is_recorded_with_the_user_as_actor(gw, http, pg, new_tenant):
    tenant, email, user_id = await _registered(http, gw, new_tenant)
    status, session = await call(
        http, "POST", f"{gw}/api/v1/auth/login", body={"tenant": tenant, "email": email, "password": PASSWORD}
    )
    assert status == 200, session
    (row,) = await _audit_rows(pg, "user.login", user_id)
    tenant_id = session["data"]["user"]["tenant_id"]
    assert (row["actor_id"], row["tenant_id"]) == (user_id, tenant_id)
    assert PASSWORD not in orjson.dumps(row["details"]).decode()

    status, _ = await call(
        http,
        "POST",
        f"{gw}/api/v1/auth/logout",
        session["data"]["access_token"],
        {"refresh_token": session["data"]["refresh_token"]},
    )
    assert status == 200
    (row,) = await _audit_rows(pg, "user.logout", user_id)
    assert (row["actor_id"], row["tenant_id"], row["details"]["session_revoked"]) == (
        user_id,
        tenant_id,
        True,
    )


async def test_a_failed_login_is_recorded_with_the_email_and_no_password(gw, http, pg, new_tenant):
    tenant, email, user_id = await _registered(http, gw, new_tenant)
    wrong = "not the password 7"
    status, _ = await call(
        http, "POST", f"{gw}/api/v1/auth/login", body={"tenant": tenant, "email": email, "password": wrong}
    )
    assert status == 401
    (row,) = await _audit_rows(pg, "user.login_failed", email)
    tenant_id = await pg.fetchval("SELECT tenant_id FROM users WHERE id = $1", user_id)
    assert row["tenant_id"] == str(tenant_id) and row["actor_id"] is None
    assert (row["details"]["email"], row["details"]["tenant"]) == (email, tenant)
    text = orjson.dumps(row["details"]).decode()
    assert wrong not in text and PASSWORD not in text


async def test_event_actions_are_recorded_with_actor_and_tenant(gw, http, pg, token_with_role, tenant):
    token = await token_with_role("organizer")
    when = datetime(2099, 1, 1, 20, tzinfo=UTC).isoformat()
    body = {
        "title": "Audited",
        "shows": [{"show_date": when, "zones": [{"name": "GA", "price": 10, "seats": 5}]}],
    }
    status, created = await call(http, "POST", f"{gw}/api/v1/events", token, body)
    assert status == 201, created
    event_id = created["data"]["id"]
    status, _ = await call(http, "PUT", f"{gw}/api/v1/events/{event_id}", token, {"title": "Audited II"})
    assert status == 200

    (made,) = await _audit_rows(pg, "event.created", event_id)
    (edit,) = await _audit_rows(pg, "event.updated", event_id)
    for row in (made, edit):
        assert (row["actor_id"], row["tenant_id"]) == (_user_of(token), tenant["tenant_id"])
    assert made["details"]["title"] == "Audited"
    assert edit["details"]["fields"] == ["title"] and edit["details"]["status_to"] == "draft"


async def test_a_room_change_is_recorded(gw, http, pg, make_event, token_with_role, tenant):
    event = await make_event([("GA", 10)], shows=1)
    token = await token_with_role("admin")
    url = f"{gw}/api/v1/admin/events/{event.event_id}/room"
    status, answer = await call(http, "PUT", url, token, {"mode": "always", "rate_per_min": 600})
    assert status == 200, answer
    (row,) = await _audit_rows(pg, "room.configured", event.event_id)
    assert (row["actor_id"], row["tenant_id"]) == (_user_of(token), tenant["tenant_id"])
    assert row["details"]["fields"] == ["mode", "rate_per_min"]
    assert row["details"]["config"]["rate_per_min"] == 600


async def test_an_admin_user_change_is_recorded(gw, http, pg, make_users, token_with_role, tenant):
    token = await token_with_role("admin")
    (user,) = await make_users(1)
    url = f"{gw}/api/v1/admin/users/{user}"
    status, answer = await call(http, "PUT", url, token, {"role": "organizer", "disabled": True})
    assert status == 200, answer
    (row,) = await _audit_rows(pg, "admin.user_updated", user)
    assert (row["actor_id"], row["tenant_id"]) == (_user_of(token), tenant["tenant_id"])
    assert (row["details"]["role"], row["details"]["disabled"]) == ("organizer", True)


async def test_a_failed_audit_insert_does_not_fail_the_action(gw, http, pg, token_with_role, monkeypatch):
    async def broken(conn, entries):
        raise OSError("audit store unreachable")

    monkeypatch.setattr(audit_trail, "record", broken)  # the gateway runs in this process
    token = await token_with_role("admin")
    slug = unique("audit-cat-")
    status, created = await call(
        http, "POST", f"{gw}/api/v1/categories", token, {"name": "Audit", "slug": slug}
    )
    assert status == 201, created
    assert await _audit_rows(pg, "category.created", created["data"]["id"]) == []


async def test_record_writes_a_batch_in_one_statement(pg):
    entity = unique("batch-")
    at = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
    await record(
        pg,
        [
            AuditEntry("test.first", "thing", entity, details={"n": 1}),
            AuditEntry("test.second", "thing", entity, details={"n": 2}, at=at),
        ],
    )
    rows = await pg.fetch(
        "SELECT action, details, created_at, tableoid::regclass::text AS part FROM audit_logs "
        "WHERE entity_id = $1 ORDER BY action",
        entity,
    )
    assert [(r["action"], orjson.loads(r["details"])["n"]) for r in rows] == [
        ("test.first", 1),
        ("test.second", 2),
    ]
    assert (rows[1]["created_at"], rows[1]["part"]) == (at, "audit_logs_2026_02")


def _names(year: int, months: range) -> list[str]:
    return [f"audit_logs_{year}_{m:02d}" for m in months]


@pytest_asyncio.fixture(loop_scope="session")
async def partitions_dropped(pg):
    """Drops the partitions a test names, before (an earlier run may have died half-way) and
    after it, so reruns start from the same place."""
    names: list[str] = []

    async def drop() -> None:
        for name in names:
            # An identifier cannot be a bind parameter; these names are the test's own constants.
            await pg.execute(f'DROP TABLE IF EXISTS "{name}"')

    async def track(*new: str) -> None:
        names.extend(new)
        await drop()

    yield track
    await drop()


async def _partition_of(pg, name: str) -> str | None:
    return await pg.fetchval(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'audit_logs'::regclass AND c.relname = $1",
        name,
    )


async def test_partitions_are_made_ahead_once(pg, partitions_dropped):
    names = _names(2031, range(3, 7))
    await partitions_dropped(*names)
    assert await ensure_partitions_ahead(pg, today=date(2031, 3, 10)) == names
    assert await ensure_partitions_ahead(pg, today=date(2031, 3, 10)) == []
    assert await ensure_partitions_ahead(pg, months_ahead=2, today=date(2031, 4, 30)) == []
    bound = await _partition_of(pg, "audit_logs_2031_06")
    assert bound == "FOR VALUES FROM ('2031-06-01 00:00:00+00') TO ('2031-07-01 00:00:00+00')"
    # New rows of those months go to their partition, with the same indexes as the others.
    entity = unique("ahead-")
    await record(
        pg, [AuditEntry("test.ahead", "thing", entity, at=datetime(2031, 5, 31, 23, 59, tzinfo=UTC))]
    )
    part = await pg.fetchval("SELECT tableoid::regclass::text FROM audit_logs WHERE entity_id = $1", entity)
    assert part == "audit_logs_2031_05"
    indexes = await pg.fetchval("SELECT count(*) FROM pg_indexes WHERE tablename = 'audit_logs_2031_05'")
    assert indexes == await pg.fetchval(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'audit_logs_2026_05'"
    )


async def test_rows_already_in_the_default_partition_move_into_the_new_one(pg, partitions_dropped):
    names = _names(2032, range(1, 5))
    await partitions_dropped(*names)
    entity = unique("early-")
    await record(pg, [AuditEntry("test.early", "thing", entity, at=datetime(2032, 1, 15, tzinfo=UTC))])
    where = "SELECT tableoid::regclass::text FROM audit_logs WHERE entity_id = $1"
    assert await pg.fetchval(where, entity) == "audit_logs_default"

    assert await ensure_partitions_ahead(pg, today=date(2032, 1, 5)) == names
    assert await pg.fetchval(where, entity) == "audit_logs_2032_01"
    assert await pg.fetchval("SELECT count(*) FROM audit_logs WHERE entity_id = $1", entity) == 1
    assert await pg.fetchval("SELECT count(*) FROM audit_logs_default WHERE entity_id = $1", entity) == 0


async def test_concurrent_callers_make_each_partition_once(pg, partitions_dropped):
    names = _names(2033, range(5, 9))
    await partitions_dropped(*names)
    results = await asyncio.gather(*(ensure_partitions_ahead(pg, today=date(2033, 5, 1)) for _ in range(3)))
    assert sorted(n for made in results for n in made) == names


async def test_the_upkeep_loop_runs_and_stops(pg):
    stop = asyncio.Event()
    loop = asyncio.create_task(keep_partitions_ahead(pg, stop, every_s=0.05))
    finished, _ = await asyncio.wait({loop}, timeout=0.3)  # a few rounds at 0.05 s
    assert not finished  # this month and the next three exist already: nothing to do, no error
    stop.set()
    await asyncio.wait_for(loop, 5)
    this_month = datetime.now(UTC).date()
    assert await _partition_of(pg, f"audit_logs_{this_month:%Y_%m}") is not None
