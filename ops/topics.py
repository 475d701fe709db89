"""Create Booking Rush's topics on a Kafka cluster (idempotent): what a deployment runs once
before the gateways and workers start (compose.yaml's `topics` service; ops.stack on loopback).

Usage: python -m ops.topics   (BR_KAFKA_BOOTSTRAP, BR_TOPIC_PREFIX, BR_RESERVATIONS_PARTITIONS,
                               BR_EVENTS_PARTITIONS, BR_TOPIC_REPLICATION_FACTOR (1),
                               BR_TOPIC_MIN_INSYNC_REPLICAS (1) from the environment)
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

from booking_rush.contract.topics import Topics
from booking_rush.services.endpoints import Endpoints
from booking_rush.services.env import env_int


async def create_topics(
    bootstrap: str,
    prefix: str,
    *,
    reservations: int,
    events: int,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    say: Callable[[str], None] = print,
) -> None:
    """The reservation, event and dead-letter topics under `prefix`, those missing created with
    `replication_factor` replicas; their settings (append time on the reservation topic,
    `min_insync_replicas`) applied either way. With acks=all, a write is acknowledged only once
    `min_insync_replicas` replicas have it: 3 and 2 lose nothing acknowledged when one broker's
    disk is lost, and keep taking writes while one broker is down."""
    if not 1 <= min_insync_replicas <= replication_factor:
        raise ValueError(f"min.insync.replicas {min_insync_replicas} must be 1..{replication_factor}")
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + 60
    while True:
        try:
            await admin.start()
            break
        except Exception as exc:  # broker still electing itself controller
            if time.monotonic() > deadline:
                raise RuntimeError(f"kafka metadata did not answer: {exc}") from exc
            await asyncio.sleep(0.5)  # retry pacing while the broker starts
    try:
        topics = Topics(prefix)
        commands = topics.reservations
        wanted = {commands: reservations, topics.events: events, topics.dead_letter: 1}
        common = {"min.insync.replicas": str(min_insync_replicas)}
        # The broker stamps each command with its append time: a worker refuses a command that
        # landed after the gateway stopped waiting for it (the client was told 503).
        configs = {name: dict(common) for name in wanted}
        configs[commands]["message.timestamp.type"] = "LogAppendTime"
        existing = set(await admin.list_topics())
        new = [
            NewTopic(name, n, replication_factor, topic_configs=configs[name])
            for name, n in wanted.items()
            if name not in existing
        ]
        if new:
            await admin.create_topics(new)
            say(
                "created topics: "
                + ", ".join(f"{t.name}({t.num_partitions})" for t in new)
                + f", {replication_factor} replicas, min.insync.replicas {min_insync_replicas}"
            )
        there = [name for name in wanted if name in existing]
        if there:
            for topic in await admin.describe_topics(there):
                name = topic["topic"]
                replicas = min((len(p["replicas"]) for p in topic["partitions"]), default=1)
                if replicas < replication_factor:  # creation cannot change it: a reassignment can
                    say(f"WARNING: {name} has {replicas} replicas, {replication_factor} wanted")
                    # More in-sync replicas required than there are would refuse every write.
                    configs[name]["min.insync.replicas"] = str(min(min_insync_replicas, replicas))
            # Not incremental: each topic's whole set of our settings, every time.
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name, configs[name]) for name in there]
            )
    finally:
        await admin.close()


def main() -> int:
    endpoints = Endpoints.from_env()
    asyncio.run(
        create_topics(
            endpoints.kafka_bootstrap,
            endpoints.topic_prefix,
            reservations=env_int("BR_RESERVATIONS_PARTITIONS", 12),
            events=env_int("BR_EVENTS_PARTITIONS", 12),
            replication_factor=env_int("BR_TOPIC_REPLICATION_FACTOR", 1),
            min_insync_replicas=env_int("BR_TOPIC_MIN_INSYNC_REPLICAS", 1),
        )
    )
    print("topics ready", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
