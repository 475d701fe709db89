"""Each gateway process's view of the waiting rooms, kept current by the room broadcast.

Admitters publish one message per event per tick, operators one per change, and revocations
one each (waiting_room/room.py); this process applies them, so deciding whether reserve needs
a pass, and whether a pass was revoked, never costs a Redis round trip per request. An event
seen for the first time is read once; every view is re-read now and then as a safety net for
messages missed while the subscription was reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import orjson
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway import appkeys
from lua import keys
from waiting_room.passes import QueuePasses
from waiting_room.room import WaitingRoom

log = logging.getLogger("gateway.rooms")


@dataclass
class RoomState:
    engaged: bool
    state: str = ""
    read_at: float = 0.0


class RoomView:
    def __init__(self, redis, passes: QueuePasses, refresh_s: float = 5.0) -> None:
        self.redis = redis
        self.passes = passes
        self.rooms: dict[str, RoomState] = {}
        self.refresh_s = refresh_s
        self.connected = asyncio.Event()
        self._revocations_read: set[str] = set()

    async def engaged(self, event_id: str) -> bool:
        room = self.rooms.get(event_id)
        if room is None or time.monotonic() - room.read_at > self.refresh_s:
            try:
                room = await self._read(event_id)
            except RedisError:
                if room is None:
                    raise
                # Redis is away: the last state we know is the best answer (reserve fails anyway).
        return room.engaged

    async def _read(self, event_id: str) -> RoomState:
        mode, engaged, state = await self.redis.hmget(
            keys.room(event_id, "config"), "mode", "engaged", "state"
        )
        room = RoomState(_is_engaged(mode, engaged), (state or b"").decode(), time.monotonic())
        self.rooms[event_id] = room
        if event_id not in self._revocations_read:
            self._revocations_read.add(event_id)
            raw = await self.redis.hgetall(keys.room(event_id, "revoked"))
            self.passes.revoked.update({k.decode(): int(v) for k, v in raw.items()})
        return room

    def apply(self, message: dict) -> None:
        event_id = message.get("event_id")
        kind = message.get("type")
        if kind == "tick":
            self.rooms[event_id] = RoomState(bool(message["engaged"]), message["state"], time.monotonic())
        elif kind == "config":
            self.rooms.pop(event_id, None)  # read again on next use: one read per change
        elif kind == "revoke":
            self.passes.revoked[message["pass_id"]] = int(message["expires_at_ms"])

    async def run(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keys.ROOM_CHANNEL)
                self.connected.set()
                self.rooms.clear()  # anything missed while disconnected is read afresh
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self.apply(orjson.loads(message["data"]))
            except (RedisConnectionError, RedisTimeoutError, OSError):
                if self.connected.is_set():
                    log.warning("room broadcast lost; reconnecting")
                self.connected.clear()
                await asyncio.sleep(0.5)  # reconnect pacing, not synchronisation
            finally:
                await pubsub.aclose()


def _is_engaged(mode: bytes | None, engaged: bytes | None) -> bool:
    if mode is None or mode == b"off":
        return False
    return mode != b"auto" or engaged == b"1"


async def room_view_ctx(app: web.Application):
    view = RoomView(app[appkeys.SALE_REDIS], app[appkeys.QUEUE_PASSES])
    app[appkeys.ROOMS] = view
    app[appkeys.WAITING_ROOM] = WaitingRoom(app[appkeys.SALE_REDIS], app[appkeys.SCRIPTS])
    task = asyncio.create_task(view.run(), name="room-broadcast")
    await asyncio.wait_for(view.connected.wait(), 10)
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
