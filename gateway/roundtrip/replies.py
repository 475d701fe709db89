"""This process's reply channel: workers publish one message per batch; waiting handlers wake.

A handler registers a future under its request id before producing the command; the listener
resolves it when the worker's batch reply names that id. While the subscription is down, the
router says so, and reserve refuses work (503) rather than accept what it cannot answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from booking_rush.contract import messages
from gateway.roundtrip.pubsub import listen

log = logging.getLogger("gateway.replies")


class NotAccepted(Exception):
    """Kafka did not acknowledge the command in time (or refused it)."""


class ReplyRouter:
    def __init__(self, redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.pending: dict[str, asyncio.Future] = {}
        self.connected = asyncio.Event()

    def expect(self, request_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        return future

    def forget(self, request_id: str) -> None:
        self.pending.pop(request_id, None)

    async def wait(
        self, request_id: str, answer: asyncio.Future, ack: asyncio.Future, accept_s: float, reply_s: float
    ) -> dict[str, Any] | None:
        """The worker's reply; None if Kafka acknowledged the command but no reply came within
        `reply_s`; raises NotAccepted if Kafka did not acknowledge it within `accept_s`.

        Two timers and callbacks instead of nested wait_for calls: this runs once per request.
        """
        loop = asyncio.get_running_loop()
        late = False

        def acked(f: asyncio.Future) -> None:
            if answer.done():
                return
            if f.cancelled() or f.exception() is not None:
                answer.set_exception(NotAccepted())
            elif late:
                answer.set_result(None)

        def reply_timer() -> None:
            nonlocal late
            late = True
            if not answer.done() and ack.done() and not ack.cancelled() and ack.exception() is None:
                answer.set_result(None)

        def accept_timer() -> None:
            if not ack.done() and not answer.done():
                answer.set_exception(NotAccepted())

        ack.add_done_callback(acked)
        timers = (loop.call_later(accept_s, accept_timer), loop.call_later(reply_s, reply_timer))
        try:
            return await answer
        finally:
            for t in timers:
                t.cancel()
            self.pending.pop(request_id, None)

    def deliver(self, replies: list[dict[str, Any]]) -> None:
        for reply in replies:
            future = self.pending.pop(reply["request_id"], None)
            if future is not None and not future.done():
                future.set_result(reply)

    async def run(self) -> None:
        await listen(self.redis, self.channel, lambda raw: self.deliver(messages.decode(raw)), self.connected)
