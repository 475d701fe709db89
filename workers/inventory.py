"""Putting a published event's seats on sale: the load_inventory command (its zones, prices and
per-user limit, read by the gateway that published it) applied by lua/load_inventory.lua.

A counter that already exists is never overwritten: re-loading during a sale must not resurrect
sold seats, and a zone's total, once on sale, changes only through adjust_zone.lua. Prices and
the per-user limit are refreshed by the newest load (its version, the catalog generation).
"""

from __future__ import annotations

from typing import Any

from booking_rush.contract import messages
from lua import keys, source


def load_call(command: dict[str, Any], idempotency_ttl_s: int) -> tuple[list[str], list]:
    """KEYS and ARGV of lua/load_inventory.lua for a load_inventory command (ttl 0: no record)."""
    ev = command["event_id"]
    record = keys.idempotency(ev, command["user_id"], messages.idempotency_scope(None, command["request_id"]))
    zones = command["zones"]
    script_keys = keys.inventory_keys(ev, record, [(show, zone) for show, zone, _, _ in zones])
    version = command["version"]
    args = ["" if version is None else version, command["max_per_user"], idempotency_ttl_s]
    for _, _, total, price_cents in zones:
        args += [total, price_cents]
    return script_keys, args


async def load_now(redis, command: dict[str, Any]) -> dict[str, Any]:
    """Apply a load directly, without a worker or an idempotency record (the seed, benchmarks,
    tests: give it no version, so it neither waits behind nor holds back a command's load);
    the script's result."""
    script = redis.register_script(source("load_inventory"))  # EVALSHA, loaded on NOSCRIPT
    script_keys, args = load_call(command, 0)
    raw, _ = await script(keys=script_keys, args=args)
    await redis.sadd(keys.LIVE_EVENTS, command["event_id"])
    return messages.decode(raw)
