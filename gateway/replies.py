"""This process's reply channel: workers publish one message per batch; waiting handlers wake.

A handler registers a future under its request id before producing the command; the listener
resolves it when the worker's batch reply names that id. While the subscription is down, the
router says so, and reserve refuses work (503) rather than accept what it cannot answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from workers import messages

log = logging.getLogger("gateway.replies")


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

    def deliver(self, replies: list[dict[str, Any]]) -> None:
        for reply in replies:
            future = self.pending.pop(reply["request_id"], None)
            if future is not None and not future.done():
                future.set_result(reply)

    async def run(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.connected.set()
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self.deliver(messages.decode(message["data"]))
            except (RedisConnectionError, RedisTimeoutError, OSError):
                if self.connected.is_set():
                    log.warning("reply channel %s lost; reconnecting", self.channel)
                self.connected.clear()
                await asyncio.sleep(0.5)  # reconnect pacing, not synchronisation
            finally:
                await pubsub.aclose()
