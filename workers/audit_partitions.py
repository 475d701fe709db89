"""The audit log (spec §8.5): keeping its monthly partitions ahead of time.

`audit_logs` is range-partitioned by month with a DEFAULT partition that catches anything no
month covers, so an insert never fails. Rows that land in the default are a problem later,
though: a month's partition cannot be created while the default holds rows of that month. So a
periodic task creates the current and next months' partitions before rows arrive, and when rows
did arrive first it moves them into the new partition in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg

from booking_rush.services.periodic import run_every

log = logging.getLogger("workers.audit_partitions")

# One partition maker at a time, across every worker process (each persistence role runs one).
PARTITION_LOCK_KEY = 0x6272_616C  # "bral"
# DDL waits at most this long for a lock, rather than queueing every audit insert behind it.
PARTITION_LOCK_TIMEOUT = "5s"
COLUMNS = "id, tenant_id, actor_id, action, entity_type, entity_id, details, created_at, updated_at"


def partition_name(month: date) -> str:
    return f"audit_logs_{month:%Y_%m}"


def _month(today: date, ahead: int) -> date:
    index = today.year * 12 + today.month - 1 + ahead
    return date(index // 12, index % 12 + 1, 1)


def _midnight_utc(day: date) -> datetime:
    """Partition bounds are UTC midnights, like the migration's (the server runs in UTC)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@contextlib.asynccontextmanager
async def _connection(conn: asyncpg.Connection | asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as held:
            yield held
    else:
        yield conn


async def _quoted(conn: asyncpg.Connection, template: str, *args: str) -> str:
    """`template` with identifiers (%I) and literals (%L) quoted by the server's format(): DDL
    takes no bind parameters, and nothing is spliced into SQL by hand."""
    return await conn.fetchval("SELECT format($1::text, VARIADIC $2::text[])", template, list(args))


async def _existing_partitions(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'audit_logs'::regclass"
    )
    return {r["relname"] for r in rows}


async def _add_partition(conn: asyncpg.Connection, name: str, month: date) -> int:
    """Create `name` for `month`, move that month's rows out of the default partition into it,
    and attach it; returns how many rows moved. Done as create, fill, attach rather than
    CREATE ... PARTITION OF, which refuses outright when the default holds rows of the month."""
    start, end = _midnight_utc(month), _midnight_utc(_month(month, 1))
    await conn.execute(await _quoted(conn, "CREATE TABLE %I (LIKE audit_logs INCLUDING ALL)", name))
    # Through the parent, this DELETE reaches only the default: no partition covers the month yet.
    move = await _quoted(
        conn,
        "WITH moved AS (DELETE FROM audit_logs WHERE created_at >= $1 AND created_at < $2 "
        "RETURNING %1$s), kept AS (INSERT INTO %2$I (%1$s) SELECT %1$s FROM moved RETURNING 1) "
        "SELECT count(*) FROM kept",
        COLUMNS,
        name,
    )
    moved = await conn.fetchval(move, start, end)
    attach = "ALTER TABLE audit_logs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)"
    await conn.execute(await _quoted(conn, attach, name, start.isoformat(), end.isoformat()))
    return moved


async def ensure_partitions_ahead(
    conn: asyncpg.Connection | asyncpg.Pool, months_ahead: int = 3, today: date | None = None
) -> list[str]:
    """Make sure the month of `today` (UTC today by default) and the `months_ahead` months after
    it each have a partition; returns the names created by this call. One transaction, under an
    advisory lock: concurrent callers wait for each other and the later one finds nothing to do."""
    today = today or datetime.now(UTC).date()
    months = [_month(today, ahead) for ahead in range(months_ahead + 1)]
    created: list[str] = []
    async with _connection(conn) as held, held.transaction():
        await held.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK_KEY)
        await held.execute("SELECT set_config('lock_timeout', $1, true)", PARTITION_LOCK_TIMEOUT)
        existing = await _existing_partitions(held)
        for month in months:
            name = partition_name(month)
            if name in existing:
                continue
            moved = await _add_partition(held, name, month)
            if moved:
                log.info("moved %d audit rows from the default partition into %s", moved, name)
            created.append(name)
    return created


async def keep_partitions_ahead(
    pool: asyncpg.Pool, stop: asyncio.Event, every_s: float = 3600, months_ahead: int = 3
) -> None:
    """`ensure_partitions_ahead` now and every `every_s` until `stop`; a failure is logged and
    the next tick tries again (an hourly tick leaves months of slack before rows would land in
    the default)."""

    async def ensure() -> None:
        created = await ensure_partitions_ahead(pool, months_ahead)
        if created:
            log.info("audit log partitions created: %s", ", ".join(created))

    await run_every(stop, every_s, 60.0, ensure, "audit partition upkeep")
