"""Apply the numbered SQL files in migrations/ in order, each in its own transaction.

Usage: python -m ops.migrate   (re-running is a no-op; applied versions live in schema_migrations)
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg

from ops.config import REPO_ROOT, StackConfig

MIGRATIONS_DIR = REPO_ROOT / "migrations"
# Two runners starting at once (tests, demo) must not both apply the same file.
ADVISORY_LOCK_ID = 0x6272_6D69  # "brmi"


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.sql") if p.name[:3].isdigit())


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in migration_files(directory):
            version = path.stem
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
            print(f"[migrate] applied {version}", flush=True)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)
        await conn.close()
    return applied_now


def main() -> int:
    dsn = os.environ.get("BR_DATABASE_URL") or StackConfig.from_env().database_url
    applied = asyncio.run(migrate(dsn))
    print(f"[migrate] {len(applied)} applied, schema up to date", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
