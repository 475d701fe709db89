"""Handing jobs (booking_rush/contract/jobs.py) to the payment workers through Dramatiq's
broker on the aux Redis.

The processes that only hand jobs over (gateways, the command consumer, the sweeper) use a
`JobQueue`: it enqueues by actor name, without importing the actors. Dramatiq's Redis client is
blocking, so each enqueue runs in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from booking_rush.contract import jobs
from booking_rush.telemetry import tracing


def broker(aux_redis_url: str, topic_prefix: str, middleware: list | None = None) -> RedisBroker:
    return RedisBroker(url=aux_redis_url, namespace=jobs.namespace(topic_prefix), middleware=middleware)


class JobQueue:
    """Hands jobs to the payment workers."""

    def __init__(self, aux_redis_url: str, topic_prefix: str) -> None:
        self.broker = broker(aux_redis_url, topic_prefix, middleware=[])

    async def send(self, actor_name: str, *args: Any) -> None:
        await self.send_later(actor_name, 0, *args)

    async def send_later(self, actor_name: str, delay_ms: int, *args: Any) -> None:
        """The job, to run no sooner than `delay_ms` from now (0: at once)."""
        # The sender's trace goes on in the job (workers/payments/jobs.py continues it).
        carried = tracing.carrier()
        message = dramatiq.Message(
            queue_name=jobs.QUEUE_OF.get(actor_name, jobs.MAIL_QUEUE),
            actor_name=actor_name,
            args=args,
            kwargs={"trace": carried} if carried else {},
            options={},
        )
        await asyncio.to_thread(self.broker.enqueue, message, delay=delay_ms or None)

    def close(self) -> None:
        self.broker.close()
