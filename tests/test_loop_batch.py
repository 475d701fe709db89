"""Calls made in one event-loop iteration are answered by one run, in order; a failed run fails
every caller of that batch, and the next iteration starts afresh."""

from __future__ import annotations

import asyncio

import pytest

from gateway.loop_batch import LoopBatch


async def test_one_iterations_calls_share_one_run_and_get_their_own_answers():
    runs: list[list[int]] = []

    async def square_all(items: list[int]) -> list[int]:
        runs.append(items)
        return [i * i for i in items]

    batch = LoopBatch(square_all)
    assert await asyncio.gather(*(batch.submit(i) for i in range(5))) == [0, 1, 4, 9, 16]
    assert await batch.submit(7) == 49
    assert runs == [[0, 1, 2, 3, 4], [7]]


async def test_a_failed_run_fails_each_caller_of_its_batch_only():
    async def flaky(items: list[str]) -> list[str]:
        if "boom" in items:
            raise ConnectionError("store down")
        return items

    batch = LoopBatch(flaky)
    results = await asyncio.gather(batch.submit("a"), batch.submit("boom"), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await batch.submit("b") == "b"
    with pytest.raises(ConnectionError):
        await batch.submit("boom")
