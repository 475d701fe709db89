"""Open-loop load on a clock, shared by the benchmarks and the tests that play a sale: requests
started at a fixed rate whatever the answers, changes made at fixed times into it, and the p99
of what came back. The sleeps pace a clock schedule; nothing here waits for something to happen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def offered_at_rate(
    rate: float, count: int, started: float, send: Callable[[int], Awaitable[None]]
) -> None:
    """`send(i)` started at `started + i / rate` (monotonic clock), never waiting for an answer
    before the next; returns once every one has ended."""
    sends = []
    for i in range(count):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        sends.append(asyncio.create_task(send(i)))
    await asyncio.gather(*sends)


async def on_schedule(
    schedule: tuple[tuple[float, str], ...], started: float, act: Callable[[str, str], Awaitable[None]]
) -> list[tuple[float, str]]:
    """Each `(seconds after started, "verb name")` of `schedule` done at its time, as
    `act(verb, name)`; returns when each began (seconds after started, what)."""
    changes = []
    for at, what in schedule:
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        verb, name = what.split()
        changes.append((time.monotonic() - started, what))
        await act(verb, name)
    return changes


def p99(values: list[float]) -> float:
    """The 99th percentile of `values` (0 when there are none)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
