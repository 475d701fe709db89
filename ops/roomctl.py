"""roomctl: an operator's shell control of an event's waiting room, through the admin API.

Usage:
  python -m ops.roomctl show   EVENT_ID [--json]
  python -m ops.roomctl set    EVENT_ID mode=always rate_per_min=1200 opens_at=2026-12-01T10:00:00Z ...
  python -m ops.roomctl revoke EVENT_ID USER_ID
  python -m ops.roomctl watch  EVENT_ID [--every 2]

The gateway is --url (default $BR_GATEWAY_URL or http://127.0.0.1:8080). The caller is an admin:
an access token in $BR_ACCESS_TOKEN, or --email/--tenant with the password in $BR_PASSWORD (asked
for on the terminal when unset). Settings: mode (off, auto, always, paused, closed), rate_per_min,
max_active, pass_ttl_s, grace_s, oversubscription, opens_at (ISO time or null), auto_active,
auto_rps. Exit status 0 on success, 1 when the gateway refuses (its error is printed), 2 on usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from typing import Any

import aiohttp

SETTINGS = (
    "mode",
    "rate_per_min",
    "max_active",
    "pass_ttl_s",
    "grace_s",
    "oversubscription",
    "opens_at",
    "auto_active",
    "auto_rps",
)


class Refused(Exception):
    """The gateway answered with an error envelope."""


def parse_changes(pairs: list[str]) -> dict[str, Any]:
    """`key=value` words -> the JSON body of a PUT: integers and numbers as such, `null` as None."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name not in SETTINGS:
            raise ValueError(f"{pair!r}: expected one of {', '.join(SETTINGS)} as name=value")
        if raw == "null":
            changes[name] = None
        elif name in ("mode", "opens_at"):
            changes[name] = raw
        else:
            try:
                changes[name] = int(raw) if name != "oversubscription" else float(raw)
            except ValueError:
                raise ValueError(f"{name}: {raw!r} is not a number") from None
    return changes


def render(room: dict) -> str:
    config, stats = room["config"], room["stats"]
    lines = [f"room of event {room['event_id']}"]
    lines += [f"  {name:<24}{config.get(name)}" for name in (*SETTINGS, "shuffle_seed")]
    lines.append("  live")
    lines += [f"  {name:<24}{value}" for name, value in stats.items()]
    return "\n".join(lines)


class Gateway:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session, self.url, self.token = session, url.rstrip("/"), token

    @classmethod
    async def log_in(cls, session, url: str, tenant: str, email: str, password: str) -> Gateway:
        body = {"tenant": tenant, "email": email, "password": password}
        data = await cls(session, url, "").call("POST", "/api/v1/auth/login", body)
        return cls(session, url, data["access_token"])

    async def call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(method, self.url + path, json=body, headers=headers) as response:
            answer = await response.json(content_type=None)
        if not answer.get("success"):
            error = answer.get("error", {})
            details = f" {json.dumps(error['details'])}" if error.get("details") else ""
            raise Refused(f"{response.status} {error.get('code')}: {error.get('message')}{details}")
        return answer["data"]

    def room(self, event_id: str) -> str:
        return f"/api/v1/admin/events/{event_id}/room"


async def run(args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession() as session:
        token = os.environ.get("BR_ACCESS_TOKEN", "")
        if args.email:
            password = os.environ.get("BR_PASSWORD") or getpass.getpass(f"password for {args.email}: ")
            gateway = await Gateway.log_in(session, args.url, args.tenant, args.email, password)
        elif token:
            gateway = Gateway(session, args.url, token)
        else:
            print("roomctl: set BR_ACCESS_TOKEN or pass --email and --tenant", file=sys.stderr)
            return 2
        path = gateway.room(args.event_id)
        if args.command == "show":
            room = await gateway.call("GET", path)
            print(json.dumps(room, indent=2) if args.json else render(room))
        elif args.command == "set":
            room = await gateway.call("PUT", path, parse_changes(args.changes))
            print(json.dumps(room, indent=2) if args.json else render(room))
        elif args.command == "revoke":
            revoked = await gateway.call("POST", f"{path}/revocations", {"user_id": args.user_id})
            print(f"revoked pass {revoked['pass_id']} of user {revoked['user_id']}")
        else:  # watch
            while True:
                stats = (await gateway.call("GET", path))["stats"]
                print(" ".join(f"{k}={v}" for k, v in stats.items()), flush=True)
                await asyncio.sleep(args.every)  # a refresh interval for a person, not synchronisation
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="roomctl", description="Control an event's waiting room.")
    parser.add_argument("--url", default=os.environ.get("BR_GATEWAY_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--email", help="log in as this admin (password from $BR_PASSWORD or asked)")
    parser.add_argument("--tenant", default=os.environ.get("BR_TENANT", "demo"))
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("show", "set", "revoke", "watch"):
        command = commands.add_parser(name)
        command.add_argument("event_id")
        if name in ("show", "set"):
            command.add_argument("--json", action="store_true", help="print the API's JSON")
    commands.choices["set"].add_argument("changes", nargs="+", metavar="name=value")
    commands.choices["revoke"].add_argument("user_id")
    commands.choices["watch"].add_argument("--every", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.command == "set":
        try:
            parse_changes(args.changes)
        except ValueError as exc:
            parser.error(str(exc))
    try:
        return asyncio.run(run(args))
    except Refused as exc:
        print(f"roomctl: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
