"""Writing tenants, users and ready-made events into PostgreSQL (the seed, demo, bench, tests).

Organizers create events through the API (gateway/routes/events.py); both use the same store
(gateway/event_store.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gateway.event_store import ShowSpec, ZoneSpec, insert_event

__all__ = ["CreatedEvent", "ZoneSpec", "create_event", "ensure_tenant", "ensure_users"]

NO_PASSWORD = "!"  # not a valid hash: these accounts cannot log in until they set a password


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
    conn: asyncpg.Connection,
    tenant_id: str,
    emails: list[str],
    role: str = "user",
    password_hash: str | None = None,
) -> list[str]:
    """Users by email (created if missing). With `password_hash`, every one of them can log in
    with that password; without it, new accounts cannot log in and existing ones keep theirs."""
    rows = await conn.fetch(
        "INSERT INTO users (tenant_id, email, password_hash, role) "
        "SELECT $1, e, coalesce($3, $5), $4 FROM unnest($2::text[]) AS e "
        "ON CONFLICT (tenant_id, email) DO UPDATE "
        "SET password_hash = coalesce($3, users.password_hash), updated_at = now() "
        "RETURNING id, email",
        tenant_id,
        emails,
        password_hash,
        role,
        NO_PASSWORD,
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
    **details: Any,
) -> CreatedEvent:
    """A published event with `shows` shows a day apart from 30 days on, each with the same zones;
    `details` go to insert_event (venue, category_id, rules)."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    event_id, layout = await insert_event(
        conn,
        tenant_id=tenant_id,
        organizer_id=organizer_id,
        title=title,
        status="published",
        max_per_user=max_per_user,
        shows=[ShowSpec(start + timedelta(days=i), zones) for i in range(shows)],
        **details,
    )
    return CreatedEvent(event_id, layout)
