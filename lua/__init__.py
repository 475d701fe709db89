"""The Redis scripts (one documented .lua file each) and the key names they take.

Sale scripts run on the sale Redis; `rate_limit` runs on the aux Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from redis.commands.core import AsyncScript

SCRIPTS_DIR = Path(__file__).resolve().parent


def source(name: str) -> str:
    return (SCRIPTS_DIR / f"{name}.lua").read_text()


@dataclass(frozen=True)
class SaleScripts:
    """The scripts registered on one client (redis-py runs them with EVALSHA, reloading on NOSCRIPT)."""

    reserve_seats: AsyncScript
    expire_hold: AsyncScript
    store_results: AsyncScript
    adjust_zone: AsyncScript
    queue_join: AsyncScript
    queue_admit: AsyncScript
    queue_revoke: AsyncScript


@dataclass(frozen=True)
class AuxScripts:
    rate_limit: AsyncScript


async def _load(client, kind):
    """Register every script of `kind` and load it now, so a syntax error fails start-up."""
    names = [f.name for f in fields(kind)]
    for name in names:
        await client.script_load(source(name))
    return kind(**{name: client.register_script(source(name)) for name in names})


async def load_scripts(client) -> SaleScripts:
    return await _load(client, SaleScripts)


async def load_aux_scripts(client) -> AuxScripts:
    return await _load(client, AuxScripts)
