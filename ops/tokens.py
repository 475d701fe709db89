"""Mint an access token for a seeded user without logging in (scripts and load tools; browsers and
clients use /api/v1/auth/login).

Usage: BR_JWT_SECRET=... python -m ops.tokens --email buyer000000@demo.test [--ttl 900]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import asyncpg

from gateway.auth import issue_access_token
from gateway.secret_strength import secret_problem
from ops.config import StackConfig


async def lookup(dsn: str, email: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow("SELECT id, role, tenant_id, email FROM users WHERE email = $1", email)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--email", required=True)
    parser.add_argument("--ttl", type=int, default=900)
    args = parser.parse_args()
    secret = os.environ.get("BR_JWT_SECRET", "")
    problem = secret_problem(secret)
    if problem is not None:  # the gateway would not start with it either
        print(f"set BR_JWT_SECRET to the gateway's secret (this one is {problem})", file=sys.stderr)
        return 2
    dsn = os.environ.get("BR_DATABASE_URL") or StackConfig.from_env().database_url
    user = asyncio.run(lookup(dsn, args.email))
    if user is None:
        print(f"no user {args.email}", file=sys.stderr)
        return 1
    print(
        issue_access_token(
            secret,
            user_id=str(user["id"]),
            role=user["role"],
            tenant_id=str(user["tenant_id"]),
            email=user["email"],
            ttl_s=args.ttl,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
