"""Background jobs on Dramatiq (broker: the aux Redis): payments, refunds and mail.

The processes that only hand jobs over (gateways, the command consumer, the sweeper) use a
`JobQueue`: it enqueues by actor name, without importing the actors (workers/payment_jobs.py
declares them for the payment worker). Dramatiq's Redis client is blocking, so each enqueue
runs in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from workers import tracing

PAYMENTS_QUEUE = "payments"
MAIL_QUEUE = "mail"

PROCESS_PAYMENT = "process_payment"  # (event_id, payment_id, details): charge, then settle
CHECK_PAYMENT = "check_payment"  # (event_id, payment_id): a paying hold's deadline passed
PROCESS_REFUND = "process_refund"  # (event_id, payment_id): an approved refund, to the provider
NOTIFY = "notify"  # (kind, event_id, booking_id): one mail, sent once

QUEUE_OF = {PROCESS_PAYMENT: PAYMENTS_QUEUE, CHECK_PAYMENT: PAYMENTS_QUEUE, PROCESS_REFUND: PAYMENTS_QUEUE}


def namespace(topic_prefix: str) -> str:
    """Each deployment (and each test, by its topic prefix) has its own queues."""
    return f"{topic_prefix}dramatiq"


def broker(aux_redis_url: str, topic_prefix: str, middleware: list | None = None) -> RedisBroker:
    return RedisBroker(url=aux_redis_url, namespace=namespace(topic_prefix), middleware=middleware)


class JobQueue:
    """Hands jobs to the payment workers."""

    def __init__(self, aux_redis_url: str, topic_prefix: str) -> None:
        self.broker = broker(aux_redis_url, topic_prefix, middleware=[])

    async def send(self, actor_name: str, *args: Any) -> None:
        # The sender's trace goes on in the job (workers/payment_jobs.py continues it).
        carried = tracing.carrier()
        message = dramatiq.Message(
            queue_name=QUEUE_OF.get(actor_name, MAIL_QUEUE),
            actor_name=actor_name,
            args=args,
            kwargs={"trace": carried} if carried else {},
            options={},
        )
        await asyncio.to_thread(self.broker.enqueue, message)

    def close(self) -> None:
        self.broker.close()
