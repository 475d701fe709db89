"""An event's seats loaded into, or dropped from, the sale Redis directly, for the seed, the
benchmarks and the tests. (A deployment publishes through the API: a command that a worker
applies, workers/inventory.py; this applies the same command here, without its record.)"""

from __future__ import annotations

import asyncpg

from booking_rush.contract import messages
from gateway import event_store
from lua import keys
from workers.inventory import load_now


async def load_event_inventory(redis, conn: asyncpg.Connection, event_id: str) -> int:
    """Put one event's zones on sale (never overwriting a live counter); return how many zone
    counters were created."""
    inventory = await event_store.inventory_of(conn, event_id)
    if inventory is None:
        return 0
    command = messages.load_inventory_command(
        request_id=messages.new_request_id(event_id),
        event_id=event_id,
        user_id="tools",
        version=None,  # a tool's load: prices and the limit written as PostgreSQL has them
        max_per_user=inventory.max_per_user,
        zones=inventory.zones,
        reply_to="",
    )
    return (await load_now(redis, command))["created"]


async def unload_event(redis, event_id: str, batch: int = 1000) -> int:
    """Drop every sale key of an event (one that is over, or a benchmark's); return how many.

    Never for an event on sale: its holds and counters are the live truth.
    """
    removed = 0
    found: list = []
    async for key in redis.scan_iter(match=f"{keys.tag(event_id)}:*", count=batch):
        found.append(key)
        if len(found) >= batch:
            removed += await redis.unlink(*found)
            found.clear()
    if found:
        removed += await redis.unlink(*found)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.srem(keys.LIVE_EVENTS, event_id)
        pipe.srem(keys.LIVE_ROOMS, event_id)
        await pipe.execute()
    return removed
