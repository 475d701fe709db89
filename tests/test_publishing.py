"""Publishing is a command like every other change of sale state: the gateway sends the event's
zones, prices and limit through Kafka, a worker puts them on sale with lua/load_inventory.lua
and records `inventory.loaded` on booking.events; the organizer's answer waits for it."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

from booking_rush.contract import messages
from lua import keys
from ops.inventory import unload_event
from ops.rebuild import rebuild
from tests.support import (
    WorkerProcess,
    book,
    call,
    gateway_settings,
    read_topic,
    running_gateway,
    topic_size,
    wait_until,
    worker_env,
)
from workers.inventory import load_call
from workers.settings import WorkerSettings


def _draft(seats: int = 5, price: str = "100.00") -> dict:
    when = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    return {
        "title": "Published by command",
        "max_tickets_per_user": 4,
        "shows": [{"show_date": when, "zones": [{"name": "VIP", "price": price, "seats": seats}]}],
    }


async def _create(http, base: str, token: str, pg) -> tuple[str, str, str]:
    """A draft event of one show and one zone, through the API: (event, show, zone) ids."""
    status, created = await call(http, "POST", f"{base}/api/v1/events", token, _draft())
    assert status == 201, created
    event = created["data"]
    show = event["shows"][0]["id"]
    async with http.get(f"{base}/api/v1/shows/{show}/zones") as r:  # a draft's zones: not public
        assert r.status == 404
    return event["id"], show, str(await pg.fetchval("SELECT id FROM seat_zones WHERE show_id = $1", show))


async def _loaded_events(schema, topic: str, event_id: str) -> list[dict]:
    return await read_topic(
        schema.kafka_bootstrap,
        topic,
        lambda e: e["type"] == messages.INVENTORY_LOADED and e["event_id"] == event_id,
    )


async def test_publish_then_reserve_at_once_on_another_gateway(
    schema, topics, jwt_secret, gateway_url, http, pg, token_with_role, make_users, token_for, sale_redis
):
    organizer = await token_with_role()
    # A second gateway, its catalog loaded before the event exists: it hears of the event only
    # by its change notice, or by the catalog generation a miss reads.
    async with running_gateway(gateway_settings(schema, topics, jwt_secret)) as other:
        event_id, show, zone = await _create(http, gateway_url, organizer, pg)
        status, published = await call(
            http, "PUT", f"{gateway_url}/api/v1/events/{event_id}", organizer, {"status": "published"}
        )
        assert (status, published["data"]["status"]) == (200, "published")
        (buyer,) = await make_users(1)
        body = {"event_id": event_id, "show_id": show, "zone_id": zone, "quantity": 2}
        status, answer = await book(http, other, token_for(buyer), body)
        assert status == 201, answer
    assert int(await sale_redis.hget(keys.zone(event_id, show, zone), "available")) == 3
    assert await sale_redis.sismember(keys.LIVE_EVENTS, event_id)
    (loaded,) = await _loaded_events(schema, topics.events, event_id)
    assert loaded["zones"] == [[show, zone, 5, 10000]]
    assert (loaded["created"], loaded["prices_applied"], loaded["max_per_user"]) == (1, True, 4)


async def test_publishing_twice_never_resurrects_sold_seats(
    schema, topics, gateway_url, http, pg, token_with_role, make_users, token_for, sale_redis
):
    organizer = await token_with_role()
    event_id, show, zone = await _create(http, gateway_url, organizer, pg)
    url = f"{gateway_url}/api/v1/events/{event_id}"
    assert (await call(http, "PUT", url, organizer, {"status": "published"}))[0] == 200
    (buyer,) = await make_users(1)
    body = {"event_id": event_id, "show_id": show, "zone_id": zone, "quantity": 4}
    assert (await book(http, gateway_url, token_for(buyer), body))[0] == 201

    status, again = await call(
        http, "PUT", url, organizer, {"status": "published", "max_tickets_per_user": 2}
    )
    assert (status, again["data"]["status"]) == (200, "published")
    zone_key = keys.zone(event_id, show, zone)
    assert int(await sale_redis.hget(zone_key, "available")) == 1  # not 5 again
    assert int(await sale_redis.hget(keys.event_meta(event_id), "max_per_user")) == 2
    first, second = await _loaded_events(schema, topics.events, event_id)
    assert (first["created"], second["created"]) == (1, 0)
    assert second["version"] > first["version"] and second["max_per_user"] == 2


async def test_an_older_load_arriving_late_keeps_the_newer_prices(sale_redis, scripts, make_event):
    """Correctness from Lua alone: two edits applied out of order leave the later one's price
    and limit; counters are created once either way."""
    event = await make_event([("VIP", 5)], shows=1)
    show, zone = next(iter(event.shows)), next(iter(next(iter(event.shows.values())).values()))

    async def load(version: int, price_cents: int, max_per_user: int) -> dict:
        command = messages.load_inventory_command(
            request_id=messages.new_public_id(event.event_id),
            event_id=event.event_id,
            user_id="organizer",
            version=version,
            max_per_user=max_per_user,
            zones=[[show, zone, 5, price_cents]],
            reply_to="",
        )
        script_keys, args = load_call(command, 60)
        raw, replayed = await scripts.load_inventory(keys=script_keys, args=args)
        assert replayed == 0
        return messages.decode(raw)

    assert (await load(10**12, 50_000, 3))["status"] == "loaded"
    assert await load(10**12 - 1, 100, 1) == {"status": "stale", "created": 0, "zones": 1}
    zone_key = keys.zone(event.event_id, show, zone)
    assert int(await sale_redis.hget(zone_key, "price_cents")) == 50_000
    assert int(await sale_redis.hget(keys.event_meta(event.event_id), "max_per_user")) == 3


async def test_a_worker_killed_between_the_load_and_its_event(
    schema, new_topics, jwt_secret, http, pg, token_with_role, make_users, token_for, sale_redis
):
    topics = await new_topics("publish-crash")
    instance = f"{topics.prefix}worker"
    crashing = await WorkerProcess(
        worker_env(schema, topics, instance, BR_WORKER_ROLES="commands", BR_FAULT_CRASH_AFTER_LUA="1")
    ).start()
    organizer = await token_with_role()
    settings = gateway_settings(schema, topics, jwt_secret, reply_timeout_s=1.0)
    async with running_gateway(settings) as url:
        event_id, show, zone = await _create(http, url, organizer, pg)
        # The worker loads the seats and dies before producing the event or answering: the
        # organizer hears "published" once the reply is late; the command stays in the log.
        status, published = await call(
            http, "PUT", f"{url}/api/v1/events/{event_id}", organizer, {"status": "published"}
        )
        assert (status, published["data"]["status"]) == (200, "published")
        assert await crashing.wait_exit(60) == -signal.SIGKILL
        zone_key = keys.zone(event_id, show, zone)
        assert int(await sale_redis.hget(zone_key, "available")) == 5  # the script ran
        assert await topic_size(schema.kafka_bootstrap, topics.events) == 0  # no event yet

        # The same static member takes its partitions back, and the command comes again: its
        # record answers as the first run did, and the event is produced.
        restarted = await WorkerProcess(
            worker_env(schema, topics, instance, BR_WORKER_ROLES="commands")
        ).start()
        try:

            async def recorded() -> bool:
                return len(await _loaded_events(schema, topics.events, event_id)) > 0

            await wait_until(recorded, 30, "the inventory.loaded event of the redelivered load")
            (buyer,) = await make_users(1)
            body = {"event_id": event_id, "show_id": show, "zone_id": zone, "quantity": 1}
            status, answer = await book(http, url, token_for(buyer), body)
            assert status == 201, answer
        finally:
            await restarted.stop()
    (loaded,) = await _loaded_events(schema, topics.events, event_id)
    assert (loaded["created"], loaded["prices_applied"]) == (1, True)  # the first run's result
    assert int(await sale_redis.hget(zone_key, "available")) == 4
    assert await sale_redis.sismember(keys.LIVE_EVENTS, event_id)


async def test_the_newest_load_is_persisted_and_a_rebuild_restores_it(
    schema, topics, gateway_url, http, pg, token_with_role, sale_redis
):
    """PostgreSQL keeps the newest load's version (from inventory.loaded), so a sale Redis
    rebuilt after losing its data still refuses an older load's prices."""
    organizer = await token_with_role()
    event_id, show, zone = await _create(http, gateway_url, organizer, pg)
    url = f"{gateway_url}/api/v1/events/{event_id}"
    assert (await call(http, "PUT", url, organizer, {"status": "published"}))[0] == 200
    assert (await call(http, "PUT", url, organizer, {"max_tickets_per_user": 3}))[0] == 200
    meta = keys.event_meta(event_id)
    version = int(await sale_redis.hget(meta, "inventory_version"))
    _, second = await _loaded_events(schema, topics.events, event_id)
    assert second["version"] == version

    async def persisted() -> bool:
        return (
            await pg.fetchval("SELECT version FROM inventory_loads WHERE event_id = $1", event_id) == version
        )

    await wait_until(persisted, 30, "the newest load's version in PostgreSQL")
    assert await unload_event(sale_redis, event_id) > 0
    settings = WorkerSettings(
        endpoints=schema.endpoints(topics.prefix), persistence_group=f"{topics.prefix}persistence"
    )
    summary = await rebuild(sale_redis, pg, settings, [event_id])
    assert summary.ok, summary.summary()
    assert await sale_redis.hgetall(meta) == {
        b"max_per_user": b"3",
        b"inventory_version": str(version).encode(),
    }
    assert int(await sale_redis.hget(keys.zone(event_id, show, zone), "available")) == 5
