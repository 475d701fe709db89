"""When the sale Redis or Kafka is gone, reserve answers 503 with a clear code; readiness says so."""

from __future__ import annotations

import dataclasses
import shutil

import pytest_asyncio

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from booking_rush.services.clients import idempotent_producer
from lua import keys
from ops import stack
from ops.config import StackConfig
from tests.support import (
    Topics,
    free_port,
    gateway_settings,
    reserve,
    reserve_command,
    running_gateway,
    start_redis,
    stop_redis,
    topic_size,
    wait_until,
)


@pytest_asyncio.fixture(loop_scope="session")
async def sale(make_event, make_users, token_for):
    event = await make_event([("VIP", 10)], shows=1)
    (user,) = await make_users(1)
    show = next(iter(event.shows))
    return {
        "token": token_for(user),
        "body": {
            "event_id": event.event_id,
            "show_id": show,
            "zone_id": event.shows[show]["VIP"],
            "quantity": 1,
        },
    }


async def test_sale_redis_down_means_503_and_nothing_queued(
    schema, new_topics, jwt_secret, http, sale, tmp_path
):
    port = free_port()
    start_redis(port, tmp_path)
    topics = await new_topics("noredis")
    settings = gateway_settings(schema, topics, jwt_secret, sale_redis_url=f"redis://127.0.0.1:{port}/0")
    async with running_gateway(settings) as url:
        async with http.get(f"{url}/readyz") as r:
            assert r.status == 200
        stop_redis(port, "nosave")

        async def noticed() -> bool:
            async with http.get(f"{url}/readyz") as r:
                return r.status == 503 and (await r.json())["error"]["details"]["redis"] != "ok"

        await wait_until(noticed, 10, "readiness to report the outage")
        before = await topic_size(schema.kafka_bootstrap, topics.reservations)
        status, answer = await reserve(http, url, sale["token"], sale["body"])
        assert (status, answer["error"]["code"]) == (503, "STORE_UNAVAILABLE")
        assert await topic_size(schema.kafka_bootstrap, topics.reservations) == before


async def test_kafka_down_means_503(schema, jwt_secret, http, sale, tmp_path):
    """A second, throwaway Kafka broker (same jars, own ports and folder), stopped mid-flight."""
    kafka_cfg = dataclasses.replace(
        StackConfig.from_env(),
        state_dir=tmp_path / "state",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
    )
    assert shutil.which("java")
    stack.start_kafka(kafka_cfg)
    topics_prefix = "outage."
    await stack.ensure_topics(kafka_cfg, topics_prefix)
    try:
        settings = gateway_settings(
            schema,
            Topics(topics_prefix),
            jwt_secret,
            kafka_bootstrap=kafka_cfg.kafka_bootstrap,
        )
        async with running_gateway(settings) as url:
            stack.stop_kafka(kafka_cfg, grace_s=0)  # as a crash would
            status, answer = await reserve(http, url, sale["token"], sale["body"])
            assert status == 503
            assert answer["error"]["code"] == "QUEUE_UNAVAILABLE"
            async with http.get(f"{url}/readyz") as r:
                assert r.status == 503
                assert (await r.json())["error"]["details"]["kafka"] != "ok"
    finally:
        stack.stop_kafka(kafka_cfg, grace_s=0)


async def test_a_command_that_reached_kafka_too_late_is_refused(
    schema, topics, workers, sale_redis, make_event, make_users
):
    """The gateway gave up on it (503); if the producer delivers it later, it must not apply."""
    event = await make_event([("VIP", 10)], shows=1)
    (user,) = await make_users(1)
    show = next(iter(event.shows))
    zone = event.shows[show]["VIP"]
    now = now_ms()
    command = reserve_command(
        event.event_id,
        show,
        zone,
        user,
        quantity=2,
        deadline_ms=now + 30_000,
        accept_by_ms=now - 1_000,
        reply_to="late-test",
    )
    request_id = command["request_id"]
    async with idempotent_producer(schema.kafka_bootstrap) as producer:
        # Stamped as if sent in time: only the broker's append time can tell it arrived late.
        await producer.send_and_wait(
            topics.reservations, messages.encode(command), key=show.encode(), timestamp_ms=now - 5_000
        )

    async def answered() -> bool:
        return await sale_redis.exists(keys.request_result(event.event_id, request_id)) == 1

    await wait_until(answered, 30, "the worker's answer")
    reply = messages.decode(await sale_redis.get(keys.request_result(event.event_id, request_id)))
    assert reply["result"] == {"status": "expired"}
    assert int(await sale_redis.hget(keys.zone(event.event_id, show, zone), "available")) == 10
