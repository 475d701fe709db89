"""A worker SIGKILLed after its Lua batch, before producing or committing: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import signal

from booking_rush.contract import messages
from lua import keys
from tests.support import (
    WorkerProcess,
    book,
    gateway_settings,
    read_topic,
    running_gateway,
    topic_size,
    worker_env,
)


async def test_crash_after_lua_then_restart(
    schema, new_topics, jwt_secret, make_event, make_users, token_for, sale_redis, http
):
    topics = await new_topics("crash")
    instance = f"{topics.prefix}worker"
    crashing = await WorkerProcess(
        worker_env(
            schema,
            topics,
            instance,
            BR_WORKER_ROLES="commands",
            BR_FAULT_CRASH_AFTER_LUA="1",
        )
    ).start()
    event = await make_event([("VIP", 30)], shows=2)
    users = await make_users(40)
    tokens = {u: token_for(u) for u in users}
    targets = [(s, z) for s, zones in event.shows.items() for z in zones.values()]
    # Each show: 10 users want 1 seat and 10 want 2, exactly its 30 seats.
    jobs = [(u, *targets[i % 2], 1 + (i // 2) % 2) for i, u in enumerate(users)]

    settings = gateway_settings(schema, topics, jwt_secret, reply_timeout_s=1.0)
    async with running_gateway(settings) as url:

        async def one(user, show, zone, qty):
            body = {
                "event_id": event.event_id,
                "show_id": show,
                "zone_id": zone,
                "quantity": qty,
                "idempotency_key": f"crash-{user}",
            }
            return user, qty, *(await book(http, url, tokens[user], body))

        clients = [asyncio.create_task(one(*job)) for job in jobs]
        assert await crashing.wait_exit(60) == -signal.SIGKILL

        # The fault hit where intended: seats were taken in Redis, no event was produced.
        taken = 0
        for show, zone in targets:
            taken += 30 - int(await sale_redis.hget(keys.zone(event.event_id, show, zone), "available"))
        assert taken > 0
        assert await topic_size(schema.kafka_bootstrap, topics.events) == 0

        # Same static member id: it takes its partitions straight back and redelivers.
        restarted = await WorkerProcess(
            worker_env(schema, topics, instance, BR_WORKER_ROLES="commands")
        ).start()
        try:
            results = await asyncio.wait_for(asyncio.gather(*clients), 90)
        finally:
            await restarted.stop()

    assert {status for *_, status, _ in results} == {201}  # 60 seats for 60 wanted
    booked = {a["data"]["booking_id"]: qty for _, qty, _, a in results}
    assert len(booked) == len(users)
    for show, zone in targets:
        assert int(await sale_redis.hget(keys.zone(event.event_id, show, zone), "available")) == 0
    for user, qty, _, _ in results:
        assert int(await sale_redis.get(keys.user_count(event.event_id, user))) == qty

    created = await read_topic(
        schema.kafka_bootstrap, topics.events, lambda e: e["type"] == messages.BOOKING_CREATED
    )
    assert {e["booking_id"]: e["quantity"] for e in created} == booked
