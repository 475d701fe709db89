"""The per-process catalog cache: show -> event, zones, prices, per-user limit.

Loaded from PostgreSQL at start and reloaded when the database announces a catalog change
(LISTEN catalog_changed), so validating a reservation costs no round trip to anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import asyncpg

log = logging.getLogger("gateway.catalog")

CATALOG_QUERY = """
SELECT e.id AS event_id, e.status, e.max_tickets_per_user, e.min_age, s.id AS show_id,
       extract(epoch FROM s.show_date - make_interval(mins => e.booking_window_minutes)) AS closes_at,
       z.id AS zone_id, z.name AS zone_name, (z.price * 100)::bigint AS price_cents
FROM events e JOIN shows s ON s.event_id = e.id JOIN seat_zones z ON z.show_id = s.id
"""


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    price_cents: int


@dataclass(frozen=True)
class Show:
    id: str
    event_id: str
    event_status: str
    max_per_user: int
    closes_at: float  # epoch seconds: the show's booking window ends here
    min_age: int | None = None
    zones: dict[str, Zone] = field(default_factory=dict)


class Catalog:
    """Read-mostly: `shows` is swapped whole on reload, never mutated in place."""

    def __init__(self, miss_reload_interval_s: float = 1.0) -> None:
        self.shows: dict[str, Show] = {}
        self.events: dict[str, str] = {}  # event id -> status, for events with at least one zone
        self._reloading: asyncio.Task | None = None
        self._dirty = False
        self._loaded_at = 0.0
        self._miss_reload_interval_s = miss_reload_interval_s

    async def load(self, pool: asyncpg.Pool) -> None:
        rows = await pool.fetch(CATALOG_QUERY)
        shows: dict[str, Show] = {}
        for r in rows:
            show_id = str(r["show_id"])
            show = shows.get(show_id)
            if show is None:
                show = shows[show_id] = Show(
                    show_id,
                    str(r["event_id"]),
                    r["status"],
                    r["max_tickets_per_user"],
                    float(r["closes_at"]),
                    r["min_age"],
                )
            zone_id = str(r["zone_id"])
            show.zones[zone_id] = Zone(zone_id, r["zone_name"], r["price_cents"])
        self.shows = shows
        self.events = {s.event_id: s.event_status for s in shows.values()}
        self._loaded_at = time.monotonic()
        log.debug("catalog loaded: %d shows", len(shows))

    def request_reload(self, pool: asyncpg.Pool) -> None:
        """Coalesce a burst of change notifications into at most one reload in flight + one."""
        if self._reloading and not self._reloading.done():
            self._dirty = True
            return
        self._reloading = asyncio.get_running_loop().create_task(self._reload(pool))

    async def _reload(self, pool: asyncpg.Pool) -> None:
        while True:
            self._dirty = False
            try:
                await self.load(pool)
            except (OSError, asyncpg.PostgresError):
                log.exception("catalog reload failed; keeping the previous catalog")
            if not self._dirty:
                return

    def show(self, show_id: str) -> Show | None:
        return self.shows.get(show_id)

    async def show_after_reload(self, show_id: str, pool: asyncpg.Pool) -> Show | None:
        """A miss may be a show published a moment ago, before its change notice arrived:
        reload once and look again. At most one miss-driven reload per interval, shared by
        every request, so unknown ids cannot turn into a query each."""
        await self._reload_after_miss(pool)
        return self.shows.get(show_id)

    async def event_status(self, event_id: str, pool: asyncpg.Pool) -> str | None:
        """The event's status (None: unknown), reloading once on a miss like show_after_reload."""
        status = self.events.get(event_id)
        if status is None:
            await self._reload_after_miss(pool)
            status = self.events.get(event_id)
        return status

    async def _reload_after_miss(self, pool: asyncpg.Pool) -> None:
        if time.monotonic() - self._loaded_at >= self._miss_reload_interval_s:
            self.request_reload(pool)
        if self._reloading is not None and not self._reloading.done():
            await asyncio.shield(self._reloading)
