"""Reading the event catalog from PostgreSQL (parameterised SQL only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

PUBLIC_STATUSES = ("published", "cancelled")


def is_visible(status: str, tenant_id: Any, caller_tenant: str | None) -> bool:
    """A published event is anyone's to read (an event page can be shared); a cancelled one only
    its own tenant's people's (they have bookings to follow); a draft nobody's here."""
    if status == "published":
        return True
    return status == "cancelled" and caller_tenant is not None and str(tenant_id) == caller_tenant


EVENT_COLUMNS = """
    e.id, e.tenant_id, e.title, e.description, e.venue, e.status, e.max_tickets_per_user,
    e.booking_window_minutes, e.min_age, e.currency,
    c.slug AS category, e.created_at, e.updated_at,
    (SELECT count(*) FROM shows s WHERE s.event_id = e.id) AS shows_count,
    (SELECT min(s.show_date) FROM shows s WHERE s.event_id = e.id AND s.show_date > now()) AS next_show
"""


def iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as the API writes times: ISO 8601 in UTC with a Z."""
    return iso(datetime.fromtimestamp(ms / 1000, tz=UTC))


def event_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "tenant_id": str(row["tenant_id"]),
        "title": row["title"],
        "description": row["description"],
        "venue": row["venue"],
        "status": row["status"],
        "category": row["category"],
        "max_tickets_per_user": row["max_tickets_per_user"],
        "booking_window_minutes": row["booking_window_minutes"],
        "min_age": row["min_age"],
        "currency": row["currency"],
        "shows_count": row["shows_count"],
        "next_show": iso(row["next_show"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def show_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "event_id": str(row["event_id"]),
        "show_date": iso(row["show_date"]),
        "total_seats": row["total_seats"],
    }


async def list_events(
    pool: asyncpg.Pool,
    *,
    statuses: tuple[str, ...],
    category: str | None,
    page: int,
    per_page: int,
    tenant: str | None = None,
    tenant_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of events in `statuses`, newest first; of one storefront (`tenant`, its slug, or
    `tenant_id`) or all."""
    where = (
        "e.status = ANY($1::text[]) AND ($2::text IS NULL OR c.slug = $2)"
        " AND ($3::text IS NULL OR e.tenant_id = (SELECT id FROM tenants WHERE slug = $3))"
        " AND ($4::uuid IS NULL OR e.tenant_id = $4)"
    )
    filters = (list(statuses), category, tenant, tenant_id)
    total = await pool.fetchval(
        f"SELECT count(*) FROM events e LEFT JOIN categories c ON c.id = e.category_id WHERE {where}",
        *filters,
    )
    rows = await pool.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events e LEFT JOIN categories c ON c.id = e.category_id "
        f"WHERE {where} ORDER BY e.created_at DESC, e.id LIMIT $5 OFFSET $6",
        *filters,
        per_page,
        (page - 1) * per_page,
    )
    return [event_json(r) for r in rows], total


async def get_event(pool: asyncpg.Pool, event_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        f"SELECT {EVENT_COLUMNS} FROM events e LEFT JOIN categories c ON c.id = e.category_id "
        "WHERE e.id = $1",
        event_id,
    )


async def event_detail(pool: asyncpg.Pool, row: asyncpg.Record) -> dict[str, Any]:
    """An event (its row from get_event) as the API shows it, with its shows."""
    event = event_json(row)
    event["shows"] = await shows_of(pool, event["id"])
    return event


async def shows_of(pool: asyncpg.Pool, event_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, event_id, show_date, total_seats FROM shows WHERE event_id = $1 ORDER BY show_date",
        event_id,
    )
    return [show_json(r) for r in rows]


async def show_with_zones(pool: asyncpg.Pool, show_id: str) -> tuple[asyncpg.Record | None, list]:
    show = await pool.fetchrow(
        "SELECT s.id, s.event_id, s.show_date, s.total_seats, e.status, e.tenant_id, e.currency FROM shows s "
        "JOIN events e ON e.id = s.event_id WHERE s.id = $1",
        show_id,
    )
    if show is None:
        return None, []
    zones = await pool.fetch(
        "SELECT show_id, id, name, price, total_seats, available_seats FROM seat_zones WHERE show_id = $1 "
        "ORDER BY price DESC, name",
        show_id,
    )
    return show, zones


async def public_zones_of_event(
    pool: asyncpg.Pool, event_id: str, caller_tenant: str | None
) -> list[asyncpg.Record] | None:
    """Every zone of every show of a public event (for `caller_tenant`: is_visible), shows in
    date order, in one query; None when there is no such event for them."""
    rows = await pool.fetch(
        "SELECT e.status, e.tenant_id, e.currency, s.id AS show_id, s.show_date, z.id, z.name, z.price, "
        "z.total_seats, "
        "z.available_seats FROM events e LEFT JOIN shows s ON s.event_id = e.id "
        "LEFT JOIN seat_zones z ON z.show_id = s.id WHERE e.id = $1 "
        "ORDER BY s.show_date, s.id, z.price DESC, z.name",
        event_id,
    )
    if not rows or not is_visible(rows[0]["status"], rows[0]["tenant_id"], caller_tenant):
        return None
    return [r for r in rows if r["id"] is not None]  # shows without zones have nothing to show


@dataclass(frozen=True)
class Inventory:
    """What an event puts on sale (messages.load_inventory_command carries it to a worker)."""

    max_per_user: int
    zones: list[list]  # [show id, zone id, total seats, price in cents]
    version: int  # the catalog generation this was read at (the newest load's prices win)


INVENTORY_QUERY = """
SELECT e.max_tickets_per_user, s.id AS show_id, z.id AS zone_id, z.total_seats,
       (z.price * 100)::bigint AS price_cents
FROM events e JOIN shows s ON s.event_id = e.id JOIN seat_zones z ON z.show_id = s.id
WHERE e.id = $1 ORDER BY s.id, z.id
"""


async def inventory_of(conn: asyncpg.Connection, event_id: str) -> Inventory | None:
    """The event's zones and limit, read in the caller's transaction (after its own catalog
    change, whose generation is then the version); None when it has no zones."""
    rows = await conn.fetch(INVENTORY_QUERY, event_id)
    if not rows:
        return None
    return Inventory(
        max_per_user=rows[0]["max_tickets_per_user"],
        zones=[[str(r["show_id"]), str(r["zone_id"]), r["total_seats"], r["price_cents"]] for r in rows],
        version=await conn.fetchval("SELECT generation FROM catalog_state"),
    )


@dataclass(frozen=True)
class ZoneSpec:
    name: str
    price: Decimal
    seats: int


@dataclass(frozen=True)
class ShowSpec:
    show_date: datetime
    zones: list[ZoneSpec]


async def insert_event(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    organizer_id: str,
    title: str,
    shows: list[ShowSpec],
    status: str = "draft",
    max_per_user: int = 4,
    description: str = "",
    venue: str = "",
    category_id: str | None = None,
    booking_window_minutes: int = 60,
    min_age: int | None = None,
) -> tuple[str, dict[str, dict[str, str]]]:
    """One event with its shows and zones, in one transaction: (event id, show id -> name -> zone id)."""
    layout: dict[str, dict[str, str]] = {}
    async with conn.transaction():
        event_id = str(
            await conn.fetchval(
                "INSERT INTO events (tenant_id, organizer_id, category_id, title, description, venue, "
                "status, max_tickets_per_user, booking_window_minutes, min_age) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                tenant_id,
                organizer_id,
                category_id,
                title,
                description,
                venue,
                status,
                max_per_user,
                booking_window_minutes,
                min_age,
            )
        )
        for show in shows:
            seats = sum(z.seats for z in show.zones)
            show_id = str(
                await conn.fetchval(
                    "INSERT INTO shows (event_id, show_date, total_seats, available_seats) "
                    "VALUES ($1, $2, $3, $3) RETURNING id",
                    event_id,
                    show.show_date,
                    seats,
                )
            )
            rows = await conn.fetch(
                "INSERT INTO seat_zones (show_id, name, price, total_seats, available_seats) "
                "SELECT $1, n, p, s, s FROM unnest($2::text[], $3::numeric[], $4::int[]) AS z(n, p, s) "
                "RETURNING id, name",
                show_id,
                [z.name for z in show.zones],
                [z.price for z in show.zones],
                [z.seats for z in show.zones],
            )
            layout[show_id] = {r["name"]: str(r["id"]) for r in rows}
    return event_id, layout
