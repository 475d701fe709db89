"""Readiness, checked at most once a second: probes, load balancers and anyone who can reach
/readyz (it is unlimited, as the kubelet's probes must be) then cost the sale Redis, Kafka and
PostgreSQL one round trip each per second, however often they ask."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

FRESH_S = 1.0


class Readiness:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock  # the app's clock (tests move it)
        self._lock = asyncio.Lock()  # askers while a check runs wait for its result
        self._checks: dict[str, str] | None = None
        self._checked_at = 0.0

    async def current(self, run: Callable[[], Awaitable[dict[str, str]]]) -> tuple[dict[str, str], float]:
        """(each service's state, when it was checked): the last check if under a second old,
        else a new one made by `run`."""
        async with self._lock:
            if self._checks is None or self._clock() - self._checked_at >= FRESH_S:
                self._checks = await run()
                self._checked_at = self._clock()
            return self._checks, self._checked_at
