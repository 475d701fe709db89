"""Client factories for worker processes: each opens, checks, and closes one service client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.partitioner import DefaultPartitioner

log = logging.getLogger("services.clients")


@contextlib.asynccontextmanager
async def sale_redis(url: str) -> AsyncIterator[aioredis.Redis]:
    """No per-read socket timeout: callers bound whole pipelines (WorkerSettings.redis_timeout_s)."""
    client = aioredis.from_url(
        url,
        decode_responses=False,
        health_check_interval=30,
        socket_timeout=None,
        socket_connect_timeout=5,
    )
    try:
        await client.ping()
        yield client
    finally:
        await client.aclose()


class CachedKeyPartitioner:
    """Kafka's murmur2 key partitioning, remembered per key.

    aiokafka hashes in pure Python on every send; our keys are show ids, a small set, so the
    gateway and workers hash each one once.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self._default = DefaultPartitioner()
        self._cache: dict[tuple[bytes, int], int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return self._default(key, all_partitions, available)
        slot = (key, len(all_partitions))
        partition = self._cache.get(slot)
        if partition is None:
            if len(self._cache) >= self._max_keys:
                self._cache.clear()
            partition = self._cache[slot] = self._default(key, all_partitions, available)
        return partition


def new_idempotent_producer(bootstrap: str, **options) -> AIOKafkaProducer:
    """acks=all and idempotence: a retried send never duplicates, an ack means replicated."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=options.pop("linger_ms", 2),
        # A hot show is one partition, and an idempotent producer has one batch in flight per
        # partition: 16 KiB batches (the default) made senders wait for room under load.
        max_batch_size=options.pop("max_batch_size", 512 * 1024),
        partitioner=CachedKeyPartitioner(),
        **options,
    )


@contextlib.asynccontextmanager
async def idempotent_producer(bootstrap: str, **options) -> AsyncIterator[AIOKafkaProducer]:
    producer = new_idempotent_producer(bootstrap, **options)
    await producer.start()
    try:
        yield producer
    finally:
        await stop_producer(producer)


async def stop_producer(producer: AIOKafkaProducer, timeout_s: float = 10.0) -> None:
    """Flush and stop, but never hang on a broker that is gone."""
    try:
        await asyncio.wait_for(producer.stop(), timeout_s)
    except TimeoutError:
        log.warning("kafka producer did not flush within %.0fs; unsent messages dropped", timeout_s)


@contextlib.asynccontextmanager
async def pg_pool(dsn: str, **options) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=options.pop("max_size", 4), **options)
    try:
        yield pool
    finally:
        await pool.close()


ASSIGNORS = {
    "range": RangePartitionAssignor,
    "roundrobin": RoundRobinPartitionAssignor,
    "sticky": StickyPartitionAssignor,
}


def group_consumer(topic: str | None, group: str, member: str, settings, **options) -> AIOKafkaConsumer:
    """A group member that commits only by hand: static (`member` survives restarts: a restart
    within the session timeout moves no partition, but a member that stops never leaves, so its
    partitions wait out the session timeout) unless settings say dynamic; with the settings'
    assignor. With `topic` None the caller subscribes itself (to pass a rebalance listener).
    `options` go to the consumer (fetch sizes and waits)."""
    static = settings.static_membership
    return AIOKafkaConsumer(
        *([topic] if topic else []),
        bootstrap_servers=settings.endpoints.kafka_bootstrap,
        group_id=group,
        group_instance_id=f"{settings.instance_id}-{member}" if static else None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        max_poll_records=settings.batch_size,
        partition_assignment_strategy=(ASSIGNORS[settings.assignor],),
        **options,
    )
