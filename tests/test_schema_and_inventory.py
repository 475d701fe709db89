"""Migrations apply once; inventory loading never resurrects sold seats."""

from __future__ import annotations

import uuid

from lua import keys
from ops.inventory import load_event_inventory, unload_event
from ops.migrate import migrate
from ops.stack import new_cluster_id


async def test_rerunning_migrations_is_a_no_op(schema, pg):
    assert await migrate(schema.database_url) == []
    versions = await pg.fetch("SELECT version FROM schema_migrations")
    assert "001_core_schema" in {r["version"] for r in versions}


async def test_schema_has_the_spec_tables(pg):
    tables = {
        r["tablename"] for r in await pg.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {
        "tenants",
        "users",
        "categories",
        "events",
        "shows",
        "seat_zones",
        "bookings",
        "payments",
        "audit_logs",
    } <= tables
    partitioned = await pg.fetchval(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent "
        "WHERE c.relname = 'audit_logs'"
    )
    assert partitioned >= 72  # monthly partitions
    index = await pg.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = 'bookings_expiry_idx'")
    assert "WHERE" in index and "reserved" in index
    for table in ("tenants", "users", "events", "shows", "seat_zones", "bookings", "payments"):
        cols = {
            r["column_name"]
            for r in await pg.fetch(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1", table
            )
        }
        assert {"id", "created_at", "updated_at"} <= cols, table


async def test_audit_log_rows_land_in_their_month(pg):
    await pg.execute(
        "INSERT INTO audit_logs (action, entity_type, entity_id, created_at) "
        "VALUES ('test', 'event', $1, '2026-03-15')",
        str(uuid.uuid4()),
    )
    part = await pg.fetchval(
        "SELECT tableoid::regclass::text FROM audit_logs WHERE created_at = '2026-03-15'"
    )
    assert part == "audit_logs_2026_03"


async def test_reloading_inventory_never_overwrites_a_live_counter(make_event, pg, sale_redis):
    event = await make_event([("VIP", 10), ("Regular", 20)], shows=1)
    show = next(iter(event.shows))
    vip = keys.zone(event.event_id, show, event.shows[show]["VIP"])
    await sale_redis.hincrby(vip, "available", -7)  # seats sold during the sale
    async with pg.acquire() as conn:
        assert await load_event_inventory(sale_redis, conn, event.event_id) == 0
    assert int(await sale_redis.hget(vip, "available")) == 3
    assert await sale_redis.sismember(keys.LIVE_EVENTS, event.event_id)
    assert int(await sale_redis.hget(keys.event_meta(event.event_id), "max_per_user")) == 4


async def test_unloading_an_event_drops_only_its_keys(make_event, pg, sale_redis):
    gone, kept = await make_event([("VIP", 3)], shows=2), await make_event([("VIP", 3)], shows=1)
    assert await unload_event(sale_redis, gone.event_id, batch=2) == 4  # 2 zones, their index, meta
    assert [k async for k in sale_redis.scan_iter(match=f"{keys.tag(gone.event_id)}:*")] == []
    assert not await sale_redis.sismember(keys.LIVE_EVENTS, gone.event_id)
    show = next(iter(kept.shows))
    assert await sale_redis.exists(keys.zone(kept.event_id, show, kept.shows[show]["VIP"]))


def test_kafka_cluster_ids_never_look_like_options():
    ids = [new_cluster_id() for _ in range(2000)]  # with 1 in 64 starting with '-', 2000 would hit it
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)
