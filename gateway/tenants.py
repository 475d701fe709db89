"""Tenants as a system admin makes them: each a storefront with its own buyers, staff, currency
and time zone, its first admin invited by a single-use link that lets them set a password."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from gateway import errors
from gateway.accounts import (
    ACCOUNT_COLUMNS,
    Account,
    link_is_open,
    link_token,
    spend_link,
    validate_email,
    validate_password,
)
from gateway.password_hasher import PasswordHasher

INVITATION_TTL = timedelta(days=7)
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
TENANT_COLUMNS = "id, name, slug, status, currency, time_zone, created_at"


@dataclass(frozen=True)
class NewTenant:
    name: str
    slug: str
    currency: str
    time_zone: str
    admin_email: str


def parse_new_tenant(body: dict[str, Any]) -> NewTenant:
    """A system admin's request for a tenant, checked field by field (400 naming each problem)."""
    problems: dict[str, str] = {}
    name, slug = body.get("name"), body.get("slug")
    currency, time_zone = body.get("currency", "THB"), body.get("time_zone", "Asia/Bangkok")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        problems["name"] = "1..200 characters"
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        problems["slug"] = "1..64 of a-z, 0-9 and '-', starting and ending with a letter or digit"
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        problems["currency"] = "an ISO 4217 code such as THB"
    if not _is_time_zone(time_zone):
        problems["time_zone"] = "an IANA time zone such as Asia/Bangkok"
    try:
        admin_email = validate_email(body.get("admin_email"))
    except errors.ValidationError:
        problems["admin_email"] = "the e-mail address of the tenant's first admin"
    if problems:
        raise errors.ValidationError("invalid tenant", details=problems)
    return NewTenant(name.strip(), slug, currency, time_zone, admin_email)


def _is_time_zone(value: Any) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or ".." in value or value.startswith("/"):
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def tenant_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "slug": row["slug"],
        "status": row["status"],
        "currency": row["currency"],
        "time_zone": row["time_zone"],
        "created_at": row["created_at"].isoformat(),
    }


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_tenant(pool: asyncpg.Pool, new: NewTenant, invited_by: str) -> tuple[dict[str, Any], str]:
    """The tenant, and the invitation token for its first admin (shown once: mailed)."""
    token = secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO tenants (name, slug, currency, time_zone) VALUES ($1, $2, $3, $4) "
            f"ON CONFLICT (slug) DO NOTHING RETURNING {TENANT_COLUMNS}",
            new.name,
            new.slug,
            new.currency,
            new.time_zone,
        )
        if row is None:
            raise errors.Conflict("a tenant with this slug exists", details={"slug": "taken"})
        await conn.execute(
            "INSERT INTO tenant_invitations (tenant_id, email, token_hash, invited_by, expires_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            row["id"],
            new.admin_email,
            _digest(token),
            invited_by,
            datetime.now(UTC) + INVITATION_TTL,
        )
    return tenant_json(row), token


async def tenant_id_by_slug(pool: asyncpg.Pool, slug: str) -> str | None:
    """The id of the tenant whose storefront is `slug` (any status), or None."""
    tenant_id = await pool.fetchval("SELECT id FROM tenants WHERE slug = $1", slug)
    return None if tenant_id is None else str(tenant_id)


async def get_tenant(pool: asyncpg.Pool, tenant_id: str) -> dict[str, Any]:
    row = await pool.fetchrow(f"SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1", tenant_id)
    if row is None:
        raise errors.NotFound("no such tenant")
    return tenant_json(row)


COMPENSATION = "cancellation_compensation_percent"  # tenants.settings: what a cancelled event adds


async def compensation_percent(pool: asyncpg.Pool, tenant_id: str) -> int:
    """The share of what was paid a cancelled event's buyer gets as a voucher (0: none)."""
    value = await pool.fetchval("SELECT settings->>$2 FROM tenants WHERE id = $1", tenant_id, COMPENSATION)
    return int(value or 0)


async def set_compensation_percent(pool: asyncpg.Pool, tenant_id: str, percent: int) -> None:
    await pool.execute(
        "UPDATE tenants SET settings = settings || jsonb_build_object($2::text, $3::int), updated_at = now() "
        "WHERE id = $1",
        tenant_id,
        COMPENSATION,
        percent,
    )


async def set_status(pool: asyncpg.Pool, tenant_id: str, status: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        f"UPDATE tenants SET status = $2, updated_at = now() WHERE id = $1 RETURNING {TENANT_COLUMNS}",
        tenant_id,
        status,
    )
    if row is None:
        raise errors.NotFound("no such tenant")
    return tenant_json(row)


async def list_tenants(pool: asyncpg.Pool, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
    total = await pool.fetchval("SELECT count(*) FROM tenants")
    rows = await pool.fetch(
        f"SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at, id LIMIT $1 OFFSET $2",
        per_page,
        (page - 1) * per_page,
    )
    return [tenant_json(r) for r in rows], total


async def accept_invitation(
    pool: asyncpg.Pool, hasher: PasswordHasher, *, token: Any, password: Any, full_name: Any
) -> Account:
    """The invited admin sets a password: their account is made, the link is spent (404 for one
    unknown, used or expired)."""
    token = link_token(token, "invitation")
    password = validate_password(password)
    full_name = "" if full_name is None else full_name
    if not isinstance(full_name, str) or len(full_name) > 200:
        raise errors.ValidationError("invalid full name", details={"full_name": "up to 200 characters"})
    if not await link_is_open(pool, "tenant_invitations", token):  # before bcrypt's quarter second
        raise errors.NotFound("this link is not valid (used, expired or unknown)")
    hashed = await hasher.hash(password)
    async with pool.acquire() as conn, conn.transaction():
        invitation = await spend_link(conn, "tenant_invitations", token, "tenant_id, email")
        row = await conn.fetchrow(
            "INSERT INTO users (tenant_id, email, password_hash, full_name, role) "
            "VALUES ($1, $2, $3, $4, 'admin') ON CONFLICT (tenant_id, email) DO UPDATE "
            "SET role = 'admin', password_hash = EXCLUDED.password_hash, updated_at = now() "
            f"RETURNING {ACCOUNT_COLUMNS}",
            invitation["tenant_id"],
            invitation["email"],
            hashed,
            full_name.strip(),
        )
    return Account.from_row(row)
