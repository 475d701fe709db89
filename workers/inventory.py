"""Loading a published event's zones from PostgreSQL into the sale Redis.

A counter that already exists is never overwritten (HSETNX): re-loading during a sale must not
resurrect sold seats, and a zone's total, once on sale, changes only through adjust_zone.lua.
Prices and the per-user limit are refreshed, since they are not counters.
"""

from __future__ import annotations

import asyncpg

from lua import keys

ZONES_OF_EVENT = """
SELECT e.id AS event_id, e.max_tickets_per_user, s.id AS show_id, z.id AS zone_id,
       z.total_seats, (z.price * 100)::bigint AS price_cents
FROM events e JOIN shows s ON s.event_id = e.id JOIN seat_zones z ON z.show_id = s.id
WHERE e.id = $1
"""


async def load_event_inventory(redis, conn: asyncpg.Connection, event_id: str) -> int:
    """Copy one event's zones into Redis; return how many zone counters were created."""
    rows = await conn.fetch(ZONES_OF_EVENT, event_id)
    if not rows:
        return 0
    zone_keys = [keys.zone(event_id, str(r["show_id"]), str(r["zone_id"])) for r in rows]
    async with redis.pipeline(transaction=False) as pipe:
        for zone_key, r in zip(zone_keys, rows, strict=True):
            pipe.hsetnx(zone_key, "available", r["total_seats"])
            pipe.hsetnx(zone_key, "total", r["total_seats"])
            pipe.hset(zone_key, "price_cents", r["price_cents"])
        # The admitter sums these for "seats available" and "sold out" without asking PostgreSQL.
        pipe.sadd(keys.zone_index(event_id), *zone_keys)
        pipe.hset(keys.event_meta(event_id), "max_per_user", rows[0]["max_tickets_per_user"])
        pipe.sadd(keys.LIVE_EVENTS, event_id)
        results = await pipe.execute()
    return sum(results[0 : 3 * len(rows) : 3])


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
