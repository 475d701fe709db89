"""Client factories for worker processes: each opens, checks, and closes one service client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

log = logging.getLogger("workers.clients")


@contextlib.asynccontextmanager
async def sale_redis(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(url, decode_responses=False, health_check_interval=30)
    try:
        await client.ping()
        yield client
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def idempotent_producer(bootstrap: str, **options) -> AsyncIterator[AIOKafkaProducer]:
    """acks=all and idempotence: a retried send never duplicates, an ack means replicated."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=options.pop("linger_ms", 2),
        **options,
    )
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
