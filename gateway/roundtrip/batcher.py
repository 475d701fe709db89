"""Commands produced to Kafka in batches: one record per show per event-loop iteration.

Every request that arrives in the same loop iteration for the same show shares one Kafka record
(a JSON list of commands), so the per-message costs of the producer, the broker and the
worker's decoding are paid per batch, not per request; no latency is added, since the batch
is flushed as soon as the loop has run the handlers that were ready.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer

from booking_rush.contract import messages

log = logging.getLogger("gateway.batcher")


class CommandBatcher:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._pending: dict[str, tuple[list[dict[str, Any]], asyncio.Future]] = {}
        self._flush_scheduled = False
        self._flushes: set[asyncio.Task] = set()

    def submit(self, key: str, command: dict[str, Any]) -> asyncio.Future:
        """Queue `command` under partition key `key`; the future resolves when Kafka acks it."""
        group = self._pending.get(key)
        if group is None:
            group = self._pending[key] = ([], asyncio.get_running_loop().create_future())
        group[0].append(command)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return group[1]

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for key, (commands, acked) in pending.items():
            task = asyncio.create_task(self._send(key, commands, acked))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _send(self, key: str, commands: list[dict[str, Any]], acked: asyncio.Future) -> None:
        try:
            ack = await self.producer.send(self.topic, messages.encode(commands), key=key.encode())
        except Exception as exc:  # any failure to enqueue: every request of the batch hears it
            if not acked.done():
                acked.set_exception(exc)
            return

        def copy(f: asyncio.Future) -> None:
            if acked.done():
                return
            if f.cancelled():
                acked.cancel()
            elif f.exception() is not None:
                acked.set_exception(f.exception())
            else:
                acked.set_result(None)

        ack.add_done_callback(copy)
