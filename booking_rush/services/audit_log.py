"""Writing audit log entries (spec §8.5) to PostgreSQL's `audit_logs`."""

from __future__ import annotations

import asyncpg
import orjson

from booking_rush.contract.audit import AuditEntry


async def record(conn: asyncpg.Connection | asyncpg.Pool, entries: list[AuditEntry]) -> None:
    """Write `entries` in one statement (one round trip, whatever their number)."""
    if not entries:
        return
    await conn.execute(
        "INSERT INTO audit_logs (tenant_id, actor_id, action, entity_type, entity_id, details, created_at) "
        "SELECT e.tenant_id, e.actor_id, e.action, e.entity_type, e.entity_id, e.details::jsonb, "
        "coalesce(e.at, now()) "
        "FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], "
        "$7::timestamptz[]) AS e(tenant_id, actor_id, action, entity_type, entity_id, details, at)",
        [e.tenant_id for e in entries],
        [e.actor_id for e in entries],
        [e.action for e in entries],
        [e.entity_type for e in entries],
        [e.entity_id for e in entries],
        # default=str: a Decimal or an odd value in details is written as text, never refused.
        [orjson.dumps(e.details, default=str).decode() for e in entries],
        [e.at for e in entries],
    )
