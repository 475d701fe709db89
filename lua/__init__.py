"""The Redis scripts (one documented .lua file each) and the key names they take.

Sale scripts run on the sale Redis; `rate_limit` and `revoke_access` run on the aux Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

SCRIPTS_DIR = Path(__file__).resolve().parent


INCLUDE = "--#include "


def source(name: str) -> str:
    """A script's text, with each `--#include <file>` line replaced by that file (Redis has no
    way for one script to call another, so shared helpers are spliced in)."""
    lines = (SCRIPTS_DIR / f"{name}.lua").read_text().splitlines(keepends=True)
    return "".join(
        source(line[len(INCLUDE) :].strip()) if line.startswith(INCLUDE) else line for line in lines
    )


@dataclass(frozen=True)
class SaleScripts:
    """The scripts registered on one client (redis-py runs them with EVALSHA, reloading on NOSCRIPT)."""

    reserve_seats: AsyncScript
    expire_hold: AsyncScript
    cancel_hold: AsyncScript
    trim_hold: AsyncScript
    begin_payment: AsyncScript
    settle_payment: AsyncScript
    refund_payment: AsyncScript
    store_results: AsyncScript
    adjust_zone: AsyncScript
    load_inventory: AsyncScript
    queue_join: AsyncScript
    queue_admit: AsyncScript
    queue_revoke: AsyncScript
    queue_stream: AsyncScript
    queue_leave: AsyncScript
    queue_notify: AsyncScript
    sale_state: AsyncScript
    set_pricing: AsyncScript
    voucher: AsyncScript
    apply_voucher: AsyncScript
    quote_price: AsyncScript


@dataclass(frozen=True)
class AuxScripts:
    rate_limit: AsyncScript
    revoke_access: AsyncScript


async def _load(client, kind):
    """Register every script of `kind` and load it now, so a syntax error fails start-up."""
    scripts = {f.name: client.register_script(source(f.name)) for f in fields(kind)}
    for script in scripts.values():
        await client.script_load(script.script)
    return kind(**scripts)


def queue_script(pipe, script: AsyncScript, keys: list, args: list) -> None:
    """Queue a loaded script on a pipeline as a plain EVALSHA. (redis-py's own way, the script
    called with client=pipe, first sends a blocking SCRIPT EXISTS on every execute: one more
    round trip per batch.) Run the pipeline with `execute_scripted`."""
    pipe.evalsha(script.sha, len(keys), *keys, *args)


async def execute_scripted(redis, fill, scripts) -> list:
    """A non-transactional pipeline filled by `fill(pipe)` (with `queue_script`), executed. A
    Redis that lost its script cache (restarted) answers NOSCRIPT: load `scripts` again and run
    the pipeline once more; every script is idempotent, so those that did run change nothing."""
    try:
        return await _execute(redis, fill)
    except NoScriptError:
        for f in fields(scripts):
            await redis.script_load(getattr(scripts, f.name).script)
        return await _execute(redis, fill)


async def _execute(redis, fill) -> list:
    async with redis.pipeline(transaction=False) as pipe:
        fill(pipe)
        return await pipe.execute()


async def load_scripts(client) -> SaleScripts:
    return await _load(client, SaleScripts)


async def load_aux_scripts(client) -> AuxScripts:
    return await _load(client, AuxScripts)
