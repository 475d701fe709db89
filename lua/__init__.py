"""The sale Redis scripts (one documented .lua file each) and the key names they take."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from redis.commands.core import AsyncScript

SCRIPTS_DIR = Path(__file__).resolve().parent
SCRIPT_NAMES = ("reserve_seats", "expire_hold", "store_results")


def source(name: str) -> str:
    return (SCRIPTS_DIR / f"{name}.lua").read_text()


@dataclass(frozen=True)
class SaleScripts:
    """The scripts registered on one client (redis-py runs them with EVALSHA, reloading on NOSCRIPT)."""

    reserve_seats: AsyncScript
    expire_hold: AsyncScript
    store_results: AsyncScript


async def load_scripts(client) -> SaleScripts:
    """Register every script and load it now, so a syntax error fails start-up, not a request."""
    scripts = {name: client.register_script(source(name)) for name in SCRIPT_NAMES}
    for name in SCRIPT_NAMES:
        await client.script_load(source(name))
    return SaleScripts(**scripts)
