"""Create a system admin (spec §1: outside every tenant; creates tenants and invites their first
admins). The first one can only come from here.

Usage: BR_SYSADMIN_PASSWORD=... python -m ops.sysadmin create --email ops@example.com
       (without BR_SYSADMIN_PASSWORD the password is asked for, twice, without echo)
Then sign in with POST /api/v1/system/auth/login {email, password}.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

import asyncpg

from gateway import errors
from gateway.accounts import create_system_admin, validate_email, validate_password
from gateway.password_hasher import hash_password
from ops.config import StackConfig


def _password() -> str:
    given = os.environ.get("BR_SYSADMIN_PASSWORD")
    if given:
        return given
    first = getpass.getpass("password for the new system admin: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("the passwords differ; nothing created")
    return first


async def create(database_url: str, email: str, password: str, bcrypt_cost: int) -> str | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await create_system_admin(conn, email, await hash_password(password, bcrypt_cost))
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("create", help="create a system admin")
    made.add_argument("--email", required=True)
    args = parser.parse_args(argv)
    try:
        email = validate_email(args.email)
        password = validate_password(_password())
    except errors.ValidationError as exc:
        print(f"refused: {exc.message} ({exc.details})", file=sys.stderr)
        return 2
    database_url = os.environ.get("BR_DATABASE_URL") or StackConfig.from_env().database_url
    user_id = asyncio.run(create(database_url, email, password, int(os.environ.get("BR_BCRYPT_COST", "12"))))
    if user_id is None:
        print(f"{email} is a system admin already; nothing changed", file=sys.stderr)
        return 1
    print(f"system admin {email} created ({user_id}); sign in at POST /api/v1/system/auth/login")
    return 0


if __name__ == "__main__":
    sys.exit(main())
