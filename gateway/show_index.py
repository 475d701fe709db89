"""Each gateway process's index of the catalog: show -> event, its status and tenant, zones,
prices, per-user limit, booking window and minimum age.

Loaded from PostgreSQL at start and reloaded when the database announces a catalog change
(LISTEN catalog_changed), so validating a reservation costs no round trip to anything. The
announcement comes a moment after the change: a request that misses (an unknown show, an event
not yet published here) asks whether the catalog's generation moved since the load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import asyncpg

log = logging.getLogger("gateway.show_index")

CATALOG_QUERY = """
SELECT e.id AS event_id, e.tenant_id, e.status, e.max_tickets_per_user, e.min_age, e.currency,
       s.id AS show_id,
       extract(epoch FROM s.show_date - make_interval(mins => e.booking_window_minutes)) AS closes_at,
       z.id AS zone_id, z.name AS zone_name, (z.price * 100)::bigint AS price_cents
FROM events e JOIN shows s ON s.event_id = e.id JOIN seat_zones z ON z.show_id = s.id
"""
GENERATION_QUERY = "SELECT generation FROM catalog_state"


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
    tenant_id: str = ""  # the storefront selling it: only its own buyers book it
    currency: str = "THB"  # the event's (its tenant's by default): every price of it is in it


class ShowIndex:
    """Read-mostly: `shows` is swapped whole on reload, never mutated in place."""

    def __init__(self, miss_reload_interval_s: float = 1.0) -> None:
        self.shows: dict[str, Show] = {}
        self.events: dict[str, str] = {}  # event id -> status, for events with at least one zone
        self.tenants: dict[str, str] = {}  # event id -> its tenant's id, likewise
        self.generation: int | None = None  # catalog_state.generation this was loaded at
        self._reloading: asyncio.Task | None = None
        self._checking: asyncio.Task | None = None  # a generation read, shared by the misses
        self._dirty = False
        self._loaded_at = 0.0
        self._miss_reload_interval_s = miss_reload_interval_s

    async def load(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            generation = await conn.fetchval(GENERATION_QUERY)  # one snapshot: rows and generation
            rows = await conn.fetch(CATALOG_QUERY)
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
                    tenant_id=str(r["tenant_id"]),
                    currency=r["currency"],
                )
            zone_id = str(r["zone_id"])
            show.zones[zone_id] = Zone(zone_id, r["zone_name"], r["price_cents"])
        self.shows = shows
        self.generation = generation
        self.events = {s.event_id: s.event_status for s in shows.values()}
        self.tenants = {s.event_id: s.tenant_id for s in shows.values()}
        self._loaded_at = time.monotonic()
        log.debug("show index loaded: %d shows", len(shows))

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
                log.exception("show index reload failed; keeping the previous one")
            if not self._dirty:
                return

    def show(self, show_id: str) -> Show | None:
        return self.shows.get(show_id)

    async def show_after_reload(self, show_id: str, pool: asyncpg.Pool) -> Show | None:
        """A miss may be a show published a moment ago, before its change notice arrived:
        reload and look again. The catalog reloads when its generation moved, or once the
        interval passed since the last load; otherwise the miss stands. Misses share one
        generation read and one reload, so unknown ids cannot turn into a reload each."""
        await self._reload_after_miss(pool)
        return self.shows.get(show_id)

    async def on_sale_to(self, event_id: str, tenant_id: str | None, pool: asyncpg.Pool) -> bool:
        """Whether the event is published and sold by this tenant's storefront (a buyer belongs
        to one tenant: another tenant's event does not exist for them)."""
        return (
            await self.event_status(event_id, pool) == "published" and self.tenants.get(event_id) == tenant_id
        )

    async def event_status(self, event_id: str, pool: asyncpg.Pool) -> str | None:
        """The event's status (None: unknown); one not published here is looked up again as
        show_after_reload does."""
        status = self.events.get(event_id)
        if status != "published":
            await self._reload_after_miss(pool)
            status = self.events.get(event_id)
        return status

    async def _reload_after_miss(self, pool: asyncpg.Pool) -> None:
        if self._reloading is None or self._reloading.done():
            interval_passed = time.monotonic() - self._loaded_at >= self._miss_reload_interval_s
            if interval_passed or await self._generation_moved(pool):
                self.request_reload(pool)
        if self._reloading is not None and not self._reloading.done():
            await asyncio.shield(self._reloading)

    async def _generation_moved(self, pool: asyncpg.Pool) -> bool:
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(pool.fetchval(GENERATION_QUERY))
        try:
            return await asyncio.shield(self._checking) != self.generation
        except (OSError, asyncpg.PostgresError):
            return False  # the database is away: the miss stands, as it would without the check
