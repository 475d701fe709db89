"""Roles that fail start again. A worker process runs several roles; one of them failing (a
rebalance mid-commit, a broker or database gone for a while, a bug hit once) must not take the
others down with it, and with Kubernetes' autoscaler adding workers exactly when lag grows, a
role that exits on a rebalance would turn every scale-up into a restart and another rebalance.

A failed role is logged and started afresh (a new consumer, a new group membership) after a
backoff that doubles from one second to thirty; a role that has run for a minute since its last
failure is healthy again. Only a role that fails `max_failures` times in a row, with no healthy
minute in between, ends the process: a persistent failure, reported as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from booking_rush.telemetry import worker_metrics

log = logging.getLogger("workers.supervision")


class RoleFailed(RuntimeError):
    """A role failed too often in a row to go on: the process should exit and say so."""


async def supervise(
    name: str,
    start: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    max_failures: int = 5,
    healthy_after_s: float = 60.0,
    first_backoff_s: float = 1.0,
    max_backoff_s: float = 30.0,
) -> None:
    """Run `start()` (a fresh run of the role each call) until `stop` is set, starting it again
    after each failure; raise RoleFailed after `max_failures` failures in a row."""
    loop = asyncio.get_running_loop()
    failures, backoff = 0, first_backoff_s
    while not stop.is_set():
        started = loop.time()
        try:
            await start()
            return  # a role returns once `stop` is set
        except Exception as exc:
            if stop.is_set():
                log.warning("role %s failed while stopping: %r", name, exc)
                return
            if loop.time() - started >= healthy_after_s:
                failures, backoff = 0, first_backoff_s
            failures += 1
            if failures >= max_failures:
                log.error("role %s failed %d times in a row; giving up", name, failures, exc_info=exc)
                raise RoleFailed(f"role {name} failed {failures} times in a row") from exc
            worker_metrics.ROLE_RESTARTS.labels(name).inc()
            log.warning(
                "role %s failed (%d in a row); starting it again in %.0f s",
                name,
                failures,
                backoff,
                exc_info=exc,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)  # the backoff, cut short by a stop
        backoff = min(backoff * 2, max_backoff_s)
