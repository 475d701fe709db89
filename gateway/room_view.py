"""Each gateway process's view of the waiting rooms, kept current by the room broadcast.

Admitters publish every room's tick each tick (many rooms to a message), operators one message
per change, and revocations one each (waiting_room/room.py); this process applies them, so
deciding whether reserve needs a pass, and whether a pass was revoked, never costs a Redis round
trip per request. An event seen for the first time is read once; after a lost subscription
everything is read afresh.

It also counts reserve requests per room and adds them to the room's per-second count once a
second, the request rate that mode auto engages on.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import orjson

from gateway.roundtrip.pubsub import listen
from lua import keys
from waiting_room.passes import QueuePasses
from waiting_room.room import WaitingRoom


class RoomView:
    def __init__(self, room: WaitingRoom, passes: QueuePasses) -> None:
        self.room = room
        self.passes = passes
        self.engaged_rooms: dict[str, bool] = {}  # event id -> engaged; absent: not read yet
        self.connected = asyncio.Event()
        self.tick_listeners: list[Callable[[dict], None]] = []  # the live-position streams
        self.reserves: Counter[str] = Counter()  # event id -> reserve requests since the last flush

    def count_reserve(self, event_id: str) -> None:
        self.reserves[event_id] += 1

    async def flush_reserve_counts(self) -> None:
        """Add this process's reserve requests to each room's per-second count, which mode auto
        reads (lua/queue_admit.lua): one round trip per second, however many rooms."""
        if not self.reserves:
            return
        counts, self.reserves = self.reserves, Counter()
        second = str(int(time.time()))
        async with self.room.redis.pipeline(transaction=False) as pipe:
            for event_id, n in counts.items():
                hits = keys.room(event_id, "hits")
                pipe.hincrby(hits, second, n)
                pipe.expire(hits, 60)  # a room nobody ticks does not keep its counts
            await pipe.execute()

    async def engaged(self, event_id: str) -> bool:
        engaged = self.engaged_rooms.get(event_id)
        if engaged is None:
            engaged, revoked = await self.room.gate_state(event_id)
            self.passes.revoked.update(revoked)
            self.engaged_rooms[event_id] = engaged
        return engaged

    def apply(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "ticks":  # the admitter's tick of many rooms in one message
            for tick in message["ticks"]:
                self.apply(tick)
        elif kind == "tick":
            self.engaged_rooms[message["event_id"]] = bool(message["engaged"])
            self.passes.forget_expired_revocations(message["at_ms"])
            for listener in self.tick_listeners:
                listener(message)
        elif kind == "config":
            self.engaged_rooms.pop(message["event_id"], None)  # read again on next use
        elif kind == "revoke":
            self.passes.revoked[message["pass_id"]] = int(message["expires_at_ms"])

    def forget_all(self) -> None:
        """On (re)subscription: what was missed while disconnected is read afresh."""
        self.engaged_rooms.clear()

    async def run(self) -> None:
        await listen(
            self.room.redis,
            keys.ROOM_CHANNEL,
            lambda raw: self.apply(orjson.loads(raw)),
            self.connected,
            self.forget_all,
        )
