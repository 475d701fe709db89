"""Accounts: registration, password login, refresh-token rotation with reuse detection, logout.

Passwords are hashed by the gateway's PasswordHasher (bcrypt in a bounded pool of its own,
see password_hasher.py), always outside a database connection: a hash takes ~0.25 s at cost 12
and a connection held that long is one the bookings wait for. Refresh tokens are random, stored
as their sha256 only, and rotate: each use issues a new one in the same family and marks the old
one used; presenting a used token again means it was stolen or replayed, so the whole family is
revoked.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from gateway import errors, text
from gateway.password_hasher import MAX_PASSWORD_BYTES, PasswordHasher

REFRESH_TOKEN_TTL = timedelta(days=7)
# The checks and the OpenAPI document read the same pattern (a JSON Schema pattern is ECMA-262).
EMAIL_PATTERN = (
    f"^[^@\\u0000{text.SPACE}]{{1,64}}@[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
    "(?:\\.[A-Za-z0-9-]{1,63})+$"
)
_EMAIL = re.compile(EMAIL_PATTERN)


ACCOUNT_COLUMNS = "id, tenant_id, email, full_name, role, birth_date, email_verified_at"


@dataclass(frozen=True)
class Account:
    id: str
    tenant_id: str | None  # None: a system admin, outside every tenant
    email: str
    full_name: str
    role: str
    birth_date: date | None = None
    email_verified: bool = True  # a self-registered buyer: False until the mailed link is used

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Account:
        return cls(
            str(row["id"]),
            None if row["tenant_id"] is None else str(row["tenant_id"]),
            row["email"],
            row["full_name"],
            row["role"],
            row["birth_date"],
            row["email_verified_at"] is not None,
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "email": self.email,
            "full_name": self.full_name,
            "role": self.role,
            "birth_date": self.birth_date.isoformat() if self.birth_date else None,
            "email_verified": self.email_verified,
        }


def validate_email(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(text.trimmed(value)):
        raise errors.ValidationError("invalid email", details={"email": "a valid email address"})
    return text.trimmed(value).lower()


# bcrypt reads at most MAX_PASSWORD_BYTES of a password: a longer one is refused outright, never
# silently cut to a prefix that would also unlock the account.
def validate_password(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not 8 <= len(value)
        or len(value.encode()) > MAX_PASSWORD_BYTES
        or not re.search(r"[A-Za-z]", value)
        or not re.search(r"\d", value)
    ):
        raise errors.ValidationError(
            "weak or over-long password",
            details={"password": "8 characters to 72 bytes (UTF-8), with letters and digits"},
        )
    return value


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def tenant_id_of(conn: asyncpg.Connection, slug: Any) -> str:
    if not isinstance(slug, str) or not slug or len(slug) > 100:
        raise errors.ValidationError("tenant is required", details={"tenant": "the tenant's slug"})
    tenant = await conn.fetchrow("SELECT id, status FROM tenants WHERE slug = $1", slug)
    if tenant is None:
        raise errors.NotFound("tenant not found")
    if tenant["status"] != "active":
        raise errors.TenantSuspended()
    return str(tenant["id"])


async def register(
    pool: asyncpg.Pool, hasher: PasswordHasher, *, tenant: Any, email: Any, password: Any, full_name: Any
) -> Account:
    email = validate_email(email)
    password = validate_password(password)
    if full_name is None:
        full_name = ""
    if not isinstance(full_name, str) or len(full_name) > 200:
        raise errors.ValidationError("invalid full name", details={"full_name": "up to 200 characters"})
    async with pool.acquire() as conn:
        tenant_id = await tenant_id_of(conn, tenant)
    hashed = await hasher.hash(password)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "INSERT INTO users (tenant_id, email, password_hash, full_name, role, email_verified_at) "
            "VALUES ($1, $2, $3, $4, 'user', NULL) ON CONFLICT (tenant_id, email) DO NOTHING "
            f"RETURNING {ACCOUNT_COLUMNS}",
            tenant_id,
            email,
            hashed,
            full_name.strip(),
        )
    if row is None:
        raise errors.EmailTaken()
    return Account.from_row(row)


async def login(
    pool: asyncpg.Pool, hasher: PasswordHasher, *, tenant: Any, email: Any, password: Any
) -> Account:
    if not isinstance(password, str) or not password or len(password) > 128:
        raise errors.ValidationError("password is required", details={"password": "required"})
    email = validate_email(email)
    async with pool.acquire() as conn:
        tenant_id = await tenant_id_of(conn, tenant)
        row = await conn.fetchrow(
            f"SELECT {ACCOUNT_COLUMNS}, password_hash, disabled_at FROM users "
            "WHERE tenant_id = $1 AND email = $2",
            tenant_id,
            email,
        )
    return await _password_checked(hasher, row, password)


async def system_login(pool: asyncpg.Pool, hasher: PasswordHasher, *, email: Any, password: Any) -> Account:
    """A system admin signs in: no tenant, the same password checks (and the same answer for a
    wrong address as for a wrong password)."""
    if not isinstance(password, str) or not password or len(password) > 128:
        raise errors.ValidationError("password is required", details={"password": "required"})
    email = validate_email(email)
    row = await pool.fetchrow(
        f"SELECT {ACCOUNT_COLUMNS}, password_hash, disabled_at FROM users "
        "WHERE tenant_id IS NULL AND role = 'system_admin' AND email = $1",
        email,
    )
    return await _password_checked(hasher, row, password)


async def _password_checked(hasher: PasswordHasher, row: asyncpg.Record | None, password: str) -> Account:
    """The account whose row (with password_hash, disabled_at) this password opens; an unknown
    account costs a hash all the same, and is answered as a wrong password."""
    if not await hasher.check(password, row["password_hash"] if row else None):
        raise errors.Unauthorized("invalid email or password")
    if row["disabled_at"] is not None:
        raise errors.Forbidden("this account is disabled")
    return Account.from_row(row)


async def create_system_admin(conn: asyncpg.Connection, email: str, password_hash: str) -> str | None:
    """A new system admin's id; None if that address is one already."""
    user_id = await conn.fetchval(
        "INSERT INTO users (tenant_id, email, password_hash, role) VALUES (NULL, $1, $2, 'system_admin') "
        "ON CONFLICT DO NOTHING RETURNING id",
        email,
        password_hash,
    )
    return None if user_id is None else str(user_id)


@dataclass(frozen=True)
class Grant:
    """A refresh token as issued (shown to the client once, stored as its digest) and the
    session it belongs to: its family, which access tokens name as `sid`."""

    refresh_token: str
    session_id: str


async def new_refresh_token(conn: asyncpg.Connection, user_id: str, family_id: str | None = None) -> Grant:
    """A refresh token of a new session, or of `family_id`'s when rotating."""
    token = secrets.token_urlsafe(32)
    family = await conn.fetchval(
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) "
        "VALUES ($1, coalesce($2, gen_random_uuid()), $3, $4) RETURNING family_id",
        user_id,
        family_id,
        _digest(token),
        datetime.now(UTC) + REFRESH_TOKEN_TTL,
    )
    return Grant(token, str(family))


async def rotate(pool: asyncpg.Pool, token: Any) -> tuple[Account, Grant]:
    """Use a refresh token once: the account and a new refresh token of the same family."""
    if not isinstance(token, str) or not 20 <= len(token) <= 200:
        raise errors.ValidationError("refresh_token is required", details={"refresh_token": "required"})
    refusal: errors.ApiError | None = None
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT r.id AS token_id, r.family_id, r.expires_at, r.used_at, r.revoked_at, "
            "u.id, u.tenant_id, u.email, u.full_name, u.role, u.birth_date, u.email_verified_at, "
            "u.disabled_at, "
            "t.status AS tenant_status FROM refresh_tokens r JOIN users u ON u.id = r.user_id "
            "LEFT JOIN tenants t ON t.id = u.tenant_id WHERE r.token_hash = $1 FOR UPDATE OF r",
            _digest(token),
        )
        if row is None or row["revoked_at"] is not None:
            refusal = errors.Unauthorized("invalid refresh token")
        elif row["used_at"] is not None:
            # Committed before the refusal is raised: a stolen token ends the whole session.
            await revoke_family(conn, row["family_id"])
            refusal = errors.Unauthorized("refresh token reused: this session is revoked; log in again")
        elif row["expires_at"] <= datetime.now(UTC):
            refusal = errors.Unauthorized("refresh token expired")
        elif row["disabled_at"] is not None:
            refusal = errors.Forbidden("this account is disabled")
        elif row["tenant_id"] is not None and row["tenant_status"] != "active":  # system admins: none
            refusal = errors.TenantSuspended()
        else:
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = now(), updated_at = now() WHERE id = $1", row["token_id"]
            )
            fresh = await new_refresh_token(conn, str(row["id"]), str(row["family_id"]))
    if refusal is not None:
        raise refusal
    return Account.from_row(row), fresh


async def revoke_family(conn: asyncpg.Connection, family_id) -> bool:
    """End a session's refresh tokens; whether any was still open."""
    result = await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now(), updated_at = now() "
        "WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
    )
    return result != "UPDATE 0"


async def logout(pool: asyncpg.Pool, user_id: str, token: Any) -> tuple[str | None, bool]:
    """Revoke the session (token family) that `token` belongs to, if it is this user's: (the
    session's id, or None when the token is not this user's; whether it was still open)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 200:
        raise errors.ValidationError("refresh_token is required", details={"refresh_token": "required"})
    async with pool.acquire() as conn:
        family = await conn.fetchval(
            "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2",
            _digest(token),
            user_id,
        )
        if family is None:
            return None, False
        return str(family), await revoke_family(conn, family)


async def profile(pool: asyncpg.Pool, user_id: str) -> Account:
    row = await pool.fetchrow(f"SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = $1", user_id)
    if row is None:
        raise errors.NotFound("user not found")
    return Account.from_row(row)


async def update_profile(pool: asyncpg.Pool, user_id: str, changes: dict[str, Any]) -> Account:
    """`full_name` and/or `birth_date` (YYYY-MM-DD); a field left out stays as it is."""
    full_name, birth = changes.get("full_name"), changes.get("birth_date")
    if full_name is not None and (not isinstance(full_name, str) or len(full_name) > 200):
        raise errors.ValidationError("invalid full name", details={"full_name": "up to 200 characters"})
    if birth is not None:
        try:
            birth = date.fromisoformat(birth) if isinstance(birth, str) else None
        except ValueError:
            birth = None
        if birth is None or not date(1900, 1, 1) <= birth <= datetime.now(UTC).date():
            raise errors.ValidationError(
                "invalid birth date", details={"birth_date": "YYYY-MM-DD, in the past"}
            )
    row = await pool.fetchrow(
        "UPDATE users SET full_name = coalesce($2, full_name), birth_date = coalesce($3, birth_date), "
        f"updated_at = now() WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}",
        user_id,
        full_name.strip() if full_name is not None else None,
        birth,
    )
    if row is None:
        raise errors.NotFound("user not found")
    return Account.from_row(row)


RESET_TOKEN_TTL = timedelta(minutes=30)


VERIFICATION_TTL = timedelta(hours=24)


async def start_email_verification(pool: asyncpg.Pool, user_id: str) -> str | None:
    """A single-use verification token for the account's address; None if it is verified."""
    token = secrets.token_urlsafe(32)
    made = await pool.fetchval(
        "INSERT INTO email_verifications (user_id, token_hash, expires_at) "
        "SELECT id, $2, $3 FROM users WHERE id = $1 AND email_verified_at IS NULL RETURNING id",
        user_id,
        _digest(token),
        datetime.now(UTC) + VERIFICATION_TTL,
    )
    return None if made is None else token


def link_token(token: Any, what: str) -> str:
    """A mailed link's token as sent (its shape only: whether it is one is `spend_link`'s)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 200:
        raise errors.ValidationError("token is required", details={"token": f"the {what} link's token"})
    return token


# Tables of single-use links, each with token_hash, expires_at and used_at.
SINGLE_USE_LINKS = ("email_verifications", "tenant_invitations", "password_resets")
OPEN_LINK = "token_hash = $1 AND used_at IS NULL AND expires_at > now()"


async def link_is_open(pool: asyncpg.Pool, table: str, token: str) -> bool:
    """Whether a single-use link may still be used: asked before a new password is hashed, so a
    guessed token costs a database read, not a quarter-second of bcrypt (the link is spent
    afterwards, by an update that only an open link passes: two racing uses, one wins)."""
    assert table in SINGLE_USE_LINKS  # a name in the query: only ever one of ours
    return await pool.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {OPEN_LINK})", _digest(token))


async def spend_link(conn: asyncpg.Connection, table: str, token: str, returning: str) -> asyncpg.Record:
    """Use a single-use link once: its row's `returning` columns. An unknown, used or expired link
    is one answer (404), so links cannot be told apart by probing."""
    assert table in SINGLE_USE_LINKS  # a name in the query: only ever one of ours
    row = await conn.fetchrow(
        f"UPDATE {table} SET used_at = now() WHERE {OPEN_LINK} RETURNING {returning}", _digest(token)
    )
    if row is None:
        raise errors.NotFound("this link is not valid (used, expired or unknown)")
    return row


async def finish_email_verification(pool: asyncpg.Pool, token: Any) -> Account:
    """The link is used: the account's address is verified (its other links are spent too)."""
    token = link_token(token, "verification")
    async with pool.acquire() as conn, conn.transaction():
        user_id = (await spend_link(conn, "email_verifications", token, "user_id"))["user_id"]
        await conn.execute(
            "UPDATE email_verifications SET used_at = now() WHERE user_id = $1 AND used_at IS NULL", user_id
        )
        row = await conn.fetchrow(
            "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() "
            f"WHERE id = $1 AND disabled_at IS NULL RETURNING {ACCOUNT_COLUMNS}",
            user_id,
        )
    if row is None:
        raise errors.Forbidden("this account is disabled")
    return Account.from_row(row)


async def start_password_reset(pool: asyncpg.Pool, *, tenant: Any, email: Any) -> tuple[Account, str] | None:
    """(account, reset token) when such an active account exists; None otherwise (the caller
    answers the same either way, so the endpoint does not reveal who has an account)."""
    email = validate_email(email)
    async with pool.acquire() as conn:
        tenant_id = await tenant_id_of(conn, tenant)
        row = await conn.fetchrow(
            f"SELECT {ACCOUNT_COLUMNS} FROM users "
            "WHERE tenant_id = $1 AND email = $2 AND disabled_at IS NULL",
            tenant_id,
            email,
        )
        if row is None:
            return None
        token = secrets.token_urlsafe(32)
        await conn.execute(
            "INSERT INTO password_resets (user_id, token_hash, expires_at) VALUES ($1, $2, $3)",
            row["id"],
            _digest(token),
            datetime.now(UTC) + RESET_TOKEN_TTL,
        )
    return Account.from_row(row), token


async def finish_password_reset(
    pool: asyncpg.Pool, hasher: PasswordHasher, *, token: Any, password: Any
) -> Account:
    """Set the new password once; every session of the account ends, and so does every other
    reset link it was sent. Returns the account.

    The token is looked up before the new password is hashed, so a guessed token costs a
    database read, not a quarter-second of bcrypt; the hash runs with no connection held, and
    the update claims the token only if it is still open (two racing uses: one wins)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 200:
        raise errors.ValidationError("invalid or expired reset token", details={"token": "required"})
    password = validate_password(password)
    if not await link_is_open(pool, "password_resets", token):
        raise _reset_refused()
    hashed = await hasher.hash(password)
    async with pool.acquire() as conn, conn.transaction():
        user_id = await conn.fetchval(
            f"UPDATE password_resets SET used_at = now(), updated_at = now() WHERE {OPEN_LINK} "
            "RETURNING user_id",
            _digest(token),
        )
        if user_id is None:
            raise _reset_refused()  # used by a racing request since the lookup
        row = await conn.fetchrow(
            "UPDATE users SET password_hash = $2, updated_at = now() "
            f"WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}",
            user_id,
            hashed,
        )
        await conn.execute(
            "UPDATE password_resets SET used_at = now(), updated_at = now() "
            "WHERE user_id = $1 AND used_at IS NULL",
            user_id,
        )
        await conn.execute(
            "UPDATE refresh_tokens SET revoked_at = now(), updated_at = now() "
            "WHERE user_id = $1 AND revoked_at IS NULL",
            user_id,
        )
    return Account.from_row(row)


def _reset_refused() -> errors.ApiError:
    # Well formed, but no reset it names is open: a credential refused, not bad input.
    return errors.Unauthorized("invalid, used or expired reset token")
