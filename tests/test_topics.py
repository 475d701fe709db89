"""`python -m ops.topics` (and ops.stack, which shares it): the topics with their settings, made
again without harm, and never set to need more in-sync replicas than a topic has."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from booking_rush.contract.topics import Topics
from ops import stack
from ops.topics import create_topics
from tests.support import unique


async def _configs(bootstrap: str, names: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    out = {}
    for answer in answers:
        for _, _, _, name, entries in answer.resources:
            out[name] = {e[0]: e[1] for e in entries}
    return out


async def test_topics_are_made_once_with_their_settings_and_capped_to_their_replicas(schema):
    prefix = f"{unique('topics-')}."
    topics = Topics(prefix)
    names = [topics.reservations, topics.events, topics.dead_letter]
    said: list[str] = []
    try:
        await create_topics(schema.kafka_bootstrap, prefix, reservations=2, events=2, say=said.append)
        assert said and said[0].startswith("created topics:") and "1 replicas" in said[0]
        configs = await _configs(schema.kafka_bootstrap, names)
        assert {n: configs[n]["min.insync.replicas"] for n in names} == dict.fromkeys(names, "1")
        assert configs[topics.reservations]["message.timestamp.type"] == "LogAppendTime"

        # Asked again for 3 replicas and 2 in sync, on a one-broker cluster: nothing created, a
        # warning per topic, and min.insync.replicas kept at what the topic can meet.
        said.clear()
        await create_topics(
            schema.kafka_bootstrap,
            prefix,
            reservations=2,
            events=2,
            replication_factor=3,
            min_insync_replicas=2,
            say=said.append,
        )
        assert said == [f"WARNING: {n} has 1 replicas, 3 wanted" for n in names]
        configs = await _configs(schema.kafka_bootstrap, names)
        assert {n: configs[n]["min.insync.replicas"] for n in names} == dict.fromkeys(names, "1")
        assert configs[topics.reservations]["message.timestamp.type"] == "LogAppendTime"
    finally:
        await stack.delete_topics(schema, prefix)


async def test_more_in_sync_replicas_than_replicas_is_refused(schema):
    with pytest.raises(ValueError, match="min.insync.replicas 3 must be 1..2"):
        await create_topics(
            schema.kafka_bootstrap,
            "never.",
            reservations=1,
            events=1,
            replication_factor=2,
            min_insync_replicas=3,
        )
