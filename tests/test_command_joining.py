"""The command consumer batches adaptively: a batch that finds the batch before it still being
answered (its events waiting for Kafka's ack) waits for it, and what arrives meanwhile joins it,
so a moderate rate pays one script pipeline, one produce and one answer for several fetches."""

from __future__ import annotations

import asyncio

from booking_rush.contract import messages
from booking_rush.services.clients import idempotent_producer, sale_redis
from lua import load_scripts
from ops.bench import bench_reserve_command
from tests.support import unique, wait_until
from workers.commands import CommandConsumer
from workers.settings import WorkerSettings


def _reserve(event, user_id: str) -> dict:
    show_id = next(iter(event.shows))
    sale = {"event_id": event.event_id, "show_id": show_id, "zone_id": event.shows[show_id]["GA"]}
    return bench_reserve_command(sale, user_id, reply_to="nobody-listens")


async def test_commands_arriving_while_a_batch_is_answered_join_the_next_one(
    schema, new_topics, make_event, make_users
):
    topics = await new_topics("join")
    event = await make_event([("GA", 100)], shows=1)
    first, second, third = await make_users(3)
    settings = WorkerSettings(
        endpoints=schema.endpoints(topics.prefix),
        command_group=unique("join-"),
        instance_id=unique("join-worker-"),
        roles=("commands",),
    )
    async with (
        sale_redis(settings.endpoints.sale_redis_url) as redis,
        idempotent_producer(settings.endpoints.kafka_bootstrap, linger_ms=0) as producer,
    ):
        consumer = CommandConsumer(redis, await load_scripts(redis), producer, settings)
        processor = consumer.processor
        applied: list[list[str]] = []  # the users of each batch whose scripts ran, in order
        answered: list[list[str]] = []
        answering, answer_gate = asyncio.Event(), asyncio.Event()
        apply, publish = processor.apply, processor.publish

        async def recording_apply(commands):
            applied.append([c["user_id"] for c in commands])
            return await apply(commands)

        async def held_publish(commands, outputs):  # stage 2 held open until the test says
            answering.set()
            await answer_gate.wait()
            await publish(commands, outputs)
            answered.append([c["user_id"] for c in commands])

        processor.apply, processor.publish = recording_apply, held_publish

        async def send(user_id: str):
            command = _reserve(event, user_id)
            ack = await producer.send(
                topics.reservations, messages.encode([command]), key=command["show_id"].encode()
            )
            return await ack

        stop = asyncio.Event()
        running = asyncio.create_task(consumer.run(stop))
        try:
            await send(first)
            await asyncio.wait_for(answering.wait(), 30)  # the first batch is in stage 2, held

            sent = await send(second)  # fetched alone, while the first is still being answered
            tp = next(tp for tp in consumer.consumer.assignment() if tp.partition == sent.partition)

            async def second_fetched() -> bool:
                return await consumer.consumer.position(tp) > sent.offset

            await wait_until(second_fetched, what="the second command handed to the consumer")
            sent = await send(third)  # fetched by a later fetch

            async def third_fetched() -> bool:
                return (consumer.consumer.highwater(tp) or 0) > sent.offset

            await wait_until(third_fetched, what="the third command fetched")
            answer_gate.set()

            async def all_answered() -> bool:
                return sum(len(batch) for batch in answered) == 3

            await wait_until(all_answered, what="every command answered")
        finally:
            answer_gate.set()
            stop.set()
            await asyncio.wait_for(running, 30)

    assert applied == [[first], [second, third]]
    assert answered == applied
