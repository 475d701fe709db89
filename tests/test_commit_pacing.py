"""The command consumer commits answered offsets at most once per commit interval, not once per
batch; a worker killed between an answer and the commit that covers it is replayed by its
restart without a seat sold twice.

Commits are counted where Kafka keeps them: the records the group coordinator writes to
__consumer_offsets, one per partition committed.
"""

from __future__ import annotations

import struct

from aiokafka import AIOKafkaConsumer, TopicPartition

from lua import keys
from tests.support import (
    WorkerProcess,
    book,
    gateway_settings,
    reserve_body,
    running_gateway,
    wait_until,
    worker_env,
)

OFFSETS_TOPIC = "__consumer_offsets"


def _commit_key(raw: bytes) -> tuple[str, str, int] | None:
    """(group, topic, partition) of an offset-commit record's key; None for other records."""
    (version,) = struct.unpack_from(">h", raw, 0)
    if version not in (0, 1):
        return None
    (glen,) = struct.unpack_from(">h", raw, 2)
    group = raw[4 : 4 + glen].decode()
    (tlen,) = struct.unpack_from(">h", raw, 4 + glen)
    topic = raw[6 + glen : 6 + glen + tlen].decode()
    (partition,) = struct.unpack_from(">i", raw, 6 + glen + tlen)
    return group, topic, partition


class CommitLog:
    """The offsets topic from a starting point: how many commits a group made since."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)

    async def __aenter__(self) -> CommitLog:
        await self.consumer.start()
        await self.consumer._client.force_metadata_update()  # noqa: SLF001 - an internal topic
        self.parts = [
            TopicPartition(OFFSETS_TOPIC, p) for p in self.consumer.partitions_for_topic(OFFSETS_TOPIC)
        ]
        self.consumer.assign(self.parts)
        self.start = await self.consumer.end_offsets(self.parts)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()

    async def commits(self, group: str, topic: str) -> int:
        for tp, offset in self.start.items():
            self.consumer.seek(tp, offset)
        end = await self.consumer.end_offsets(self.parts)
        count = 0
        while [tp for tp in self.parts if await self.consumer.position(tp) < end[tp]]:
            for records in (await self.consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    key = _commit_key(r.key) if r.key and r.value else None
                    if (
                        key
                        and key[0] == group
                        and key[1] == topic
                        and r.offset < end[TopicPartition(r.topic, r.partition)]
                    ):
                        count += 1
        return count


async def _committed_all(bootstrap: str, group: str, topic: str) -> bool:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - a topic new to this client
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(parts)
        return all([(await consumer.committed(tp) or 0) == ends[tp] for tp in parts])
    finally:
        await consumer.stop()


async def test_twenty_answered_batches_are_committed_in_a_few_commits_and_a_kill_before_it_replays(
    schema, new_topics, jwt_secret, make_event, make_users, token_for, sale_redis, http
):
    topics = await new_topics("pacing")
    group = f"{topics.prefix}commands"
    env = worker_env(
        schema, topics, f"{topics.prefix}worker", BR_WORKER_ROLES="commands", BR_COMMIT_INTERVAL_SECONDS="2"
    )
    event = await make_event([("GA", 100)], shows=1)
    (show,) = event.shows
    zone = keys.zone(event.event_id, show, event.shows[show]["GA"])
    users = await make_users(30)
    worker = await WorkerProcess(env).start()
    restarted = None
    try:
        async with (
            CommitLog(schema.kafka_bootstrap) as log,
            running_gateway(gateway_settings(schema, topics, jwt_secret)) as url,
        ):
            # One at a time: twenty batches of one command each.
            for user in users[:20]:
                status, answer = await book(http, url, token_for(user), reserve_body(event))
                assert status == 201, answer

            async def committed() -> bool:
                return await _committed_all(schema.kafka_bootstrap, group, topics.reservations)

            await wait_until(committed, 30, "the answered offsets committed")
            assert 1 <= await log.commits(group, topics.reservations) <= 4  # 20 without the pacing

            # Ten more, and the worker killed at once: answered, not yet committed.
            for user in users[20:]:
                status, answer = await book(http, url, token_for(user), reserve_body(event))
                assert status == 201, answer
            worker.proc.kill()
            await worker.wait_exit()
            assert not await committed()
            restarted = await WorkerProcess(env).start()  # the same static member: the same partitions
            await wait_until(committed, 60, "the replayed offsets committed")
    finally:
        for proc in (worker, restarted):
            if proc is not None:
                await proc.stop()

    # The replay changed nothing: thirty seats taken, one for each user.
    assert int(await sale_redis.hget(zone, "available")) == 70
    for user in users:
        assert int(await sale_redis.get(keys.user_count(event.event_id, user))) == 1
