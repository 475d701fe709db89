"""A worker whose sale Redis goes away mid-sale rewinds to its last commit and replays when back."""

from __future__ import annotations

import redis.asyncio as aioredis

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from booking_rush.services.clients import idempotent_producer
from lua import keys
from ops.inventory import load_event_inventory
from tests.support import (
    WorkerProcess,
    free_port,
    read_topic,
    reserve_command,
    start_redis,
    stop_redis,
    wait_until,
    worker_env,
)


async def test_sale_redis_restart_under_a_worker(schema, new_topics, make_event, make_users, pg, tmp_path):
    port = free_port()
    start_redis(port, tmp_path, "--appendonly", "yes")
    sale = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
    event = await make_event([("VIP", 20)], shows=1)
    async with pg.acquire() as conn:
        await load_event_inventory(sale, conn, event.event_id)
    show = next(iter(event.shows))
    zone = event.shows[show]["VIP"]
    users = await make_users(10)
    topics = await new_topics("redisdown")
    worker = await WorkerProcess(
        worker_env(
            schema,
            topics,
            f"{topics.prefix}w",
            BR_WORKER_ROLES="commands",
            BR_SALE_REDIS_URL=f"redis://127.0.0.1:{port}/0",
            BR_REDIS_TIMEOUT_SECONDS="2",
        )
    ).start()
    try:
        # Redis goes away (its AOF keeps what it had), then commands arrive.
        stop_redis(port)
        now = now_ms()
        commands = [
            reserve_command(
                event.event_id,
                show,
                zone,
                u,
                quantity=2,
                deadline_ms=now + 120_000,
                accept_by_ms=now + 120_000,
                reply_to="nobody",
            )
            for u in users
        ]
        async with idempotent_producer(schema.kafka_bootstrap) as producer:
            for c in commands:
                await producer.send_and_wait(topics.reservations, messages.encode(c), key=show.encode())

        await worker.wait_for_line("rewinding", 30)  # it failed a batch and went back

        start_redis(port, tmp_path, "--appendonly", "yes")
        await sale.aclose()  # its pooled connection died with the server
        sale = aioredis.from_url(f"redis://127.0.0.1:{port}/0")

        async def all_answered() -> bool:
            found = [
                await sale.exists(keys.request_result(event.event_id, c["request_id"])) for c in commands
            ]
            return all(found)

        await wait_until(all_answered, 60, "every command answered after the restart")
    finally:
        await worker.stop()
    assert int(await sale.hget(keys.zone(event.event_id, show, zone), "available")) == 0
    for user in users:
        assert int(await sale.get(keys.user_count(event.event_id, user))) == 2
    created = await read_topic(
        schema.kafka_bootstrap, topics.events, lambda e: e["type"] == messages.BOOKING_CREATED
    )
    assert sorted(e["booking_id"] for e in created) == sorted(c["booking_id"] for c in commands)
    await sale.aclose()
    stop_redis(port, "nosave")
