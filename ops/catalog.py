"""Writing tenants, users and events into PostgreSQL (used by the seed, the demo and the tests).

Event CRUD endpoints come later; until then this is how a catalog is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

NO_PASSWORD = "!"  # not a valid hash: these accounts cannot log in until they set a password


@dataclass
class ZoneSpec:
    name: str
    price: Decimal
    seats: int


@dataclass
class CreatedEvent:
    event_id: str
    shows: dict[str, dict[str, str]] = field(default_factory=dict)  # show id -> zone name -> id


async def ensure_tenant(conn: asyncpg.Connection, slug: str, name: str) -> str:
    return str(
        await conn.fetchval(
            "INSERT INTO tenants (name, slug) VALUES ($1, $2) "
            "ON CONFLICT (slug) DO UPDATE SET updated_at = now() RETURNING id",
            name,
            slug,
        )
    )


async def ensure_users(
    conn: asyncpg.Connection, tenant_id: str, emails: list[str], role: str = "user"
) -> list[str]:
    rows = await conn.fetch(
        "INSERT INTO users (tenant_id, email, password_hash, role) "
        "SELECT $1, e, $3, $4 FROM unnest($2::text[]) AS e "
        "ON CONFLICT (tenant_id, email) DO UPDATE SET updated_at = now() "
        "RETURNING id, email",
        tenant_id,
        emails,
        NO_PASSWORD,
        role,
    )
    by_email = {r["email"]: str(r["id"]) for r in rows}
    return [by_email[e] for e in emails]


async def create_event(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    organizer_id: str,
    title: str,
    shows: int,
    zones: list[ZoneSpec],
    max_per_user: int = 4,
) -> CreatedEvent:
    """A published event with `shows` shows, each with the same zones."""
    async with conn.transaction():
        event_id = str(
            await conn.fetchval(
                "INSERT INTO events (tenant_id, organizer_id, title, status, max_tickets_per_user) "
                "VALUES ($1, $2, $3, 'published', $4) RETURNING id",
                tenant_id,
                organizer_id,
                title,
                max_per_user,
            )
        )
        created = CreatedEvent(event_id)
        total = sum(z.seats for z in zones)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        for i in range(shows):
            show_id = str(
                await conn.fetchval(
                    "INSERT INTO shows (event_id, show_date, total_seats, available_seats) "
                    "VALUES ($1, $2, $3, $3) RETURNING id",
                    event_id,
                    start + timedelta(days=i),
                    total,
                )
            )
            created.shows[show_id] = {}
            for z in zones:
                created.shows[show_id][z.name] = str(
                    await conn.fetchval(
                        "INSERT INTO seat_zones (show_id, name, price, total_seats, available_seats) "
                        "VALUES ($1, $2, $3, $4, $4) RETURNING id",
                        show_id,
                        z.name,
                        z.price,
                        z.seats,
                    )
                )
    return created
