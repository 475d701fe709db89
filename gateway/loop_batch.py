"""Calls made during one event-loop iteration, answered together: one round trip for all of them
instead of one each (the rate limiter's checks; the waiting room's joins and polls)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class LoopBatch(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]]) -> None:
        self._run = run  # answers a batch of items, in order, in one go
        self._pending: list[tuple[T, asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()
        self.runs = 0  # batches run so far (tests check that one iteration made one)

    def submit(self, item: T) -> asyncio.Future:
        """The answer to `item`, once this iteration's batch has been run."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._start)
        self._pending.append((item, future))
        return future

    def _start(self) -> None:
        task = asyncio.create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self.runs += 1
        try:
            results = await self._run([item for item, _ in batch])
        except Exception as exc:  # every caller gets the failure, as if it had called alone
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
