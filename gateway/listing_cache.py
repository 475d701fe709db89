"""Event list and detail cached in the aux Redis (spec §4.3: 5-minute TTL, invalidated on change).

Entries are keyed by the catalog generation that PostgreSQL bumps in the same transaction as
every catalog change, so invalidation is exact: a change makes new keys, old ones age out.
Reading the generation is one indexed single-row query instead of the list's count and page
queries. If the aux Redis is unreachable the data is simply loaded from PostgreSQL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
from redis.exceptions import RedisError

log = logging.getLogger("gateway.listing_cache")

TTL_S = 300


class ListingCache:
    def __init__(self, redis, pool: asyncpg.Pool, ttl_s: int = TTL_S) -> None:
        self.redis = redis
        self.pool = pool
        self.ttl_s = ttl_s

    async def get_or_load(self, name: str, params: Any, load: Callable[[], Awaitable[Any]]) -> Any:
        """`params` (JSON-able) identify the query; hashed, so no client text shapes a key."""
        generation = await self.pool.fetchval("SELECT generation FROM catalog_state")
        digest = hashlib.sha256(orjson.dumps(params)).hexdigest()[:32]
        key = f"cache:{name}:{generation}:{digest}"
        try:
            raw = await self.redis.get(key)
        except (RedisError, OSError) as exc:
            log.warning("listing cache unavailable (%s); loading from PostgreSQL", exc)
            return await load()
        if raw is not None:
            return orjson.loads(raw)
        value = await load()
        try:
            await self.redis.set(key, orjson.dumps(value), ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            log.warning("listing cache unavailable (%s); not stored", exc)
        return value
