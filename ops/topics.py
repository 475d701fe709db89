"""Create Booking Rush's topics on a Kafka cluster (idempotent): what a deployment runs once
before the gateways and workers start (compose.yaml's `topics` service; ops.stack on loopback).

Usage: python -m ops.topics   (BR_KAFKA_BOOTSTRAP, BR_TOPIC_PREFIX, BR_RESERVATIONS_PARTITIONS,
                               BR_EVENTS_PARTITIONS from the environment)
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
    bootstrap: str, prefix: str, *, reservations: int, events: int, say: Callable[[str], None] = print
) -> None:
    """The reservation, event and dead-letter topics under `prefix`, those missing created; the
    reservation topic's append-time setting applied either way."""
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
        # The broker stamps each command with its append time: a worker refuses a command that
        # landed after the gateway stopped waiting for it (the client was told 503).
        commands_config = {"message.timestamp.type": "LogAppendTime"}
        existing = set(await admin.list_topics())
        new = [
            NewTopic(name, n, 1, topic_configs=commands_config if name == commands else {})
            for name, n in wanted.items()
            if name not in existing
        ]
        if new:
            await admin.create_topics(new)
            say("created topics: " + ", ".join(f"{t.name}({t.num_partitions})" for t in new))
        if commands in existing:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, commands, commands_config)])
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
        )
    )
    print("topics ready", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
