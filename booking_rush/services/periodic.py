"""The loop of the roles that work on a clock (sweeper, admitter)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("services.periodic")


async def run_every(
    stop: asyncio.Event, interval_s: float, timeout_s: float, step: Callable[[], Awaitable[None]], what: str
) -> None:
    """`step()` every `interval_s` until `stop` is set, each bounded by `timeout_s`; a failed
    step is logged and the next tick tries again."""
    while not stop.is_set():
        try:
            async with asyncio.timeout(timeout_s):
                await step()
        except Exception:
            log.exception("%s failed; will retry next tick", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
