"""Seed a demo tenant, organizer, buyers and a two-show event, and load its seats into Redis.

Usage: python -m ops.seed [--buyers N] [--seats-per-show N]
Prints the ids as JSON. Loading inventory never overwrites a live counter in Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from decimal import Decimal

import asyncpg
import redis.asyncio as aioredis

from gateway.password_hasher import hash_password
from ops.config import StackConfig
from ops.inventory import load_event_inventory
from ops.seed_data import ZoneSpec, create_event, ensure_tenant, ensure_users

DEMO_TENANT = "demo-live"


def demo_zones(seats_per_show: int) -> list[ZoneSpec]:
    vip = seats_per_show // 5
    return [
        ZoneSpec("VIP", Decimal("4500.00"), vip),
        ZoneSpec("Regular", Decimal("1500.00"), seats_per_show - vip),
    ]


DEMO_PASSWORD = "demo-pass-2026"
# Demo accounts only: thousands of them log in during the demo, so their hash is cheap to check.
DEMO_BCRYPT_COST = 4


async def seed_sale(
    cfg: StackConfig,
    *,
    tenant: str,
    tenant_name: str,
    email: str,
    buyers: int,
    password: str,
    title: str,
    shows: int,
    zones: list[ZoneSpec],
    max_per_user: int = 4,
) -> dict:
    """A tenant with an organizer and `buyers` buyers (emails `email.format(i)`, all with
    `password`), and a published event whose seats are loaded into the sale Redis."""
    conn = await asyncpg.connect(cfg.database_url)
    redis = aioredis.from_url(cfg.sale_redis_url)
    try:
        tenant_id = await ensure_tenant(conn, tenant, tenant_name)
        hashed = await hash_password(password, DEMO_BCRYPT_COST)
        domain = email.rpartition("@")[2]
        (organizer_id,) = await ensure_users(conn, tenant_id, [f"organizer@{domain}"], "organizer", hashed)
        await ensure_users(conn, tenant_id, [f"admin@{domain}"], "admin", hashed)  # runs the rooms (roomctl)
        emails = [email.format(i) for i in range(buyers)]
        buyer_ids = await ensure_users(conn, tenant_id, emails, password_hash=hashed)
        event = await create_event(
            conn,
            tenant_id=tenant_id,
            organizer_id=organizer_id,
            title=title,
            shows=shows,
            zones=zones,
            max_per_user=max_per_user,
        )
        created = await load_event_inventory(redis, conn, event.event_id)
        return {
            "tenant_slug": tenant,
            "password": password,
            "buyer_emails": emails,
            "tenant_id": tenant_id,
            "event_id": event.event_id,
            "shows": event.shows,
            "buyers": buyer_ids,
            "zone_counters_created": created,
        }
    finally:
        await conn.close()
        await redis.aclose()


async def seed(
    cfg: StackConfig, buyers: int, seats_per_show: int, title: str, password: str = DEMO_PASSWORD
) -> dict:
    """The demo's sale: tenant demo-live, buyers buyer000000@demo.test..., two shows."""
    return await seed_sale(
        cfg,
        tenant=DEMO_TENANT,
        tenant_name="Demo Live Entertainment",
        email="buyer{:06d}@demo.test",
        buyers=buyers,
        password=password,
        title=title,
        shows=2,
        zones=demo_zones(seats_per_show),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--buyers", type=int, default=100)
    parser.add_argument("--seats-per-show", type=int, default=1000)
    parser.add_argument("--title", default="Flash Sale Live")
    args = parser.parse_args()
    out = asyncio.run(seed(StackConfig.from_env(), args.buyers, args.seats_per_show, args.title))
    out["buyers"] = len(out["buyers"])
    out["buyer_emails"] = out["buyer_emails"][:3] + ["..."]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
