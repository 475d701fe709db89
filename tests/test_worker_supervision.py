"""A worker's roles start again after failing, and only a role that keeps failing ends the process
(workers/supervision.py). The roles here are plain coroutines: what is checked is the policy."""

from __future__ import annotations

import asyncio

import pytest

from booking_rush.telemetry import worker_metrics
from workers.supervision import RoleFailed, supervise

QUICK = dict(first_backoff_s=0.001, max_backoff_s=0.002)


def _restarts(name: str) -> float:
    return worker_metrics.ROLE_RESTARTS.labels(name)._value.get()


async def test_a_role_that_fails_starts_again_and_runs_until_stopped():
    stop = asyncio.Event()
    starts = 0
    running = asyncio.Event()

    async def role() -> None:
        nonlocal starts
        starts += 1
        if starts <= 2:
            raise RuntimeError("partition is not assigned")  # what a rebalance threw
        running.set()
        await stop.wait()

    before = _restarts("flaky")
    supervisor = asyncio.create_task(supervise("flaky", role, stop, max_failures=3, **QUICK))
    await asyncio.wait_for(running.wait(), 5)
    stop.set()
    await asyncio.wait_for(supervisor, 5)  # returned: no RoleFailed
    assert starts == 3
    assert _restarts("flaky") - before == 2


async def test_a_role_that_keeps_failing_ends_with_role_failed():
    starts = 0

    async def role() -> None:
        nonlocal starts
        starts += 1
        raise ConnectionError("database gone")

    with pytest.raises(RoleFailed, match="role broken failed 4 times in a row"):
        await asyncio.wait_for(supervise("broken", role, asyncio.Event(), max_failures=4, **QUICK), 5)
    assert starts == 4


async def test_failures_apart_by_a_healthy_run_do_not_add_up():
    stop = asyncio.Event()
    starts = 0

    async def role() -> None:
        nonlocal starts
        starts += 1
        if starts == 6:
            stop.set()
            return
        raise RuntimeError("once in a while")

    # healthy_after_s=0: every run counts as healthy, so five failures never make two in a row.
    await asyncio.wait_for(supervise("rare", role, stop, max_failures=2, healthy_after_s=0, **QUICK), 5)
    assert starts == 6


async def test_a_stop_during_the_backoff_ends_it_at_once():
    stop = asyncio.Event()

    async def role() -> None:
        stop.set()  # the signal arrives while the role fails
        raise RuntimeError("commit refused")

    await asyncio.wait_for(supervise("stopping", role, stop, first_backoff_s=3600), 5)
