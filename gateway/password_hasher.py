"""bcrypt off the event loop, in a thread pool of its own with a bounded queue.

A hash costs ~0.25 s of CPU at cost 12: run in the default executor it would queue behind (and
hold up) SMTP and Dramatiq enqueues, and an unbounded queue of sign-ins would keep a gateway
busy long after the crowd left. Here at most `threads` hashes run, and as many more wait as the
threads get through in `max_wait_s` (from the measured time of a hash: ~16 at cost 12, thousands
at the cost 4 of demos and tests); past that the caller hears 503 with Retry-After, at once.

An unknown e-mail at login is checked against a dummy hash of the same cost as real accounts',
so how long a refusal takes says nothing about whether the account exists.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from gateway import errors

MAX_PASSWORD_BYTES = 72  # what bcrypt reads (bcrypt 5 refuses more)
# A hash's time per unit of work (2**cost): ~0.23 s at cost 12 on this project's machines. Only
# the first guess: every hash made is timed, and the estimate follows.
SECONDS_PER_ROUND = 56e-6


async def hash_password(password: str, cost: int) -> str:
    """One hash in the default executor: for seeding and tests, which have no gateway's hasher."""
    return (await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(cost))).decode()


class HashingBusy(errors.ServiceUnavailable):
    message = "too many sign-ins at once; retry shortly"


class PasswordHasher:
    def __init__(self, cost: int, threads: int = 2, max_wait_s: float = 2.0) -> None:
        self.cost = cost
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bcrypt")
        self._threads = threads
        self._max_wait_s = max_wait_s
        self.hash_s = SECONDS_PER_ROUND * 2**cost  # how long one hash takes (moving average)
        self._in_use = 0
        self._dummy: bytes | None = None
        self.hashed = 0  # new hashes made (tests read it: a refusal must not cost one)

    @property
    def may_wait(self) -> int:
        """How many may wait for a thread: those the threads get through within max_wait_s."""
        return int(self._threads * self._max_wait_s / self.hash_s)

    async def _run(self, fn, *args):
        if self._in_use >= self._threads + self.may_wait:
            raise HashingBusy(headers={"Retry-After": "1"})
        self._in_use += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._timed, fn, *args)
        finally:
            self._in_use -= 1

    def _timed(self, fn, *args):
        started = time.perf_counter()
        result = fn(*args)
        # Two threads racing here lose one sample at worst (a float is stored whole).
        self.hash_s += (time.perf_counter() - started - self.hash_s) / 8
        return result

    async def hash(self, password: str) -> str:
        self.hashed += 1
        return (await self._run(bcrypt.hashpw, password.encode(), bcrypt.gensalt(self.cost))).decode()

    async def check(self, password: str, hashed: str | None) -> bool:
        """Whether `password` is the one `hashed` was made from; with no hash (an unknown
        account), the same work against a dummy of the same cost, and False."""
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            return False  # no account has one: registration and reset refuse them
        if hashed and hashed.startswith("$2"):
            return await self._run(bcrypt.checkpw, password.encode(), hashed.encode())
        await self._run(bcrypt.checkpw, password.encode(), await self._dummy_hash())
        return False

    async def _dummy_hash(self) -> bytes:
        if self._dummy is None:  # made once, on the first unknown account, at the configured cost
            self._dummy = await self._run(bcrypt.hashpw, secrets.token_bytes(16), bcrypt.gensalt(self.cost))
        return self._dummy

    def dummy_cost(self) -> int | None:
        return int(self._dummy.split(b"$")[2]) if self._dummy else None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
