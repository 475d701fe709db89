"""One Redis pub/sub subscription kept alive for the life of a gateway process.

The reply channel (roundtrip/replies.py) and the room broadcast (gateway/room_view.py) use it:
`connected` is set while subscribed; `on_connect` runs on every (re)subscription, so a listener
can re-read what it may have missed while the connection was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("gateway.pubsub")


async def listen(
    redis,
    channel: str,
    deliver: Callable[[bytes], None],
    connected: asyncio.Event,
    on_connect: Callable[[], None] = lambda: None,
) -> None:
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            on_connect()
            connected.set()
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None:
                    deliver(message["data"])
        except (RedisConnectionError, RedisTimeoutError, OSError):
            if asyncio.current_task().cancelling():
                # Being stopped: a client that turned the cancellation into a connection error
                # must not make this loop subscribe again and outlive the process's shutdown.
                raise asyncio.CancelledError() from None
            if connected.is_set():
                log.warning("subscription to %s lost; reconnecting", channel)
            connected.clear()
            await asyncio.sleep(0.5)  # reconnect pacing, not synchronisation
        finally:
            await pubsub.aclose()


@contextlib.asynccontextmanager
async def listening(name: str, listener, connected: asyncio.Event) -> AsyncIterator[None]:
    """Run `listener` (a `listen(...)` coroutine) in the background; enter once subscribed, so
    nothing published after start-up can be missed."""
    task = asyncio.create_task(listener, name=name)
    try:
        await asyncio.wait_for(connected.wait(), 10)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
