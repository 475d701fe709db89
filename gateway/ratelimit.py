"""Token-bucket rate limiting with burst (spec §8.4), one Lua script on the aux Redis.

Checks are not awaited one Redis round trip each: every check made in one event-loop iteration
goes to Redis in one script call. If the aux Redis is unreachable the limiter lets requests through
(and says so in the log): rate limiting protects the site, it must not take it down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from gateway.loop_batch import LoopBatch
from lua import AuxScripts

log = logging.getLogger("gateway.ratelimit")

WINDOW_MS = 60_000


@dataclass(frozen=True)
class Policy:
    """`rate` tokens per minute, at most `burst` at once."""

    name: str
    rate: int
    burst: int


# Spec §8.4.
DEFAULT_POLICIES = {
    "login": Policy("login", 5, 3),
    "register": Policy("register", 3, 2),
    "reserve": Policy("reserve", 20, 10),
    "general": Policy("general", 100, 20),
}


def parse_policies(spec: str) -> dict[str, Policy]:
    """DEFAULT_POLICIES with overrides from "name=rate/burst,..." (e.g. "reserve=1000/500")."""
    policies = dict(DEFAULT_POLICIES)
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, numbers = item.partition("=")
        rate, _, burst = numbers.partition("/")
        if name not in DEFAULT_POLICIES or not rate.isdigit() or not burst.isdigit():
            raise ValueError(f"rate limit {item!r}: expected one of {sorted(DEFAULT_POLICIES)}=RATE/BURST")
        if int(rate) < 1 or int(burst) < 1:
            raise ValueError(f"rate limit {item!r}: rate and burst must be at least 1")
        policies[name] = Policy(name, int(rate), int(burst))
    return policies


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_ms: int
    reset_ms: int

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(-(-self.reset_ms // 1000)),  # seconds until full, rounded up
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, -(-self.retry_after_ms // 1000)))
        return headers


class RateLimiter:
    def __init__(
        self,
        redis,
        scripts: AuxScripts,
        policies: dict[str, Policy],
        namespace: str = "rl",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.policies = policies
        self.namespace = namespace
        self.clock = clock  # injectable: tests move time instead of sleeping
        # Every check of one event-loop iteration goes to Redis in one script call.
        self._checks: LoopBatch[tuple[Policy, str], Decision] = LoopBatch(self._decide)

    @property
    def flushes(self) -> int:
        """Round trips to Redis so far."""
        return self._checks.runs

    def check(self, policy_name: str, subject: str) -> asyncio.Future:
        """Take a token for `subject` under `policy_name`; resolves to a Decision."""
        return self._checks.submit((self.policies[policy_name], subject))

    async def _decide(self, batch: list[tuple[Policy, str]]) -> list[Decision]:
        now = int(self.clock() * 1000)
        args: list[int] = [now, WINDOW_MS]
        for policy, _ in batch:
            args += (policy.burst, policy.rate)
        try:
            flat = await self.scripts.rate_limit(
                keys=[f"{self.namespace}:{policy.name}:{subject}" for policy, subject in batch], args=args
            )
        except (RedisError, OSError) as exc:
            log.warning("rate limiter unavailable (%s): letting %d requests through", exc, len(batch))
            return [Decision(True, policy.rate, policy.burst, 0, 0) for policy, _ in batch]
        decisions = []
        for (policy, _), i in zip(batch, range(0, len(flat), 4), strict=True):
            allowed, remaining, retry_after, reset = (int(v) for v in flat[i : i + 4])
            decisions.append(Decision(bool(allowed), policy.rate, remaining, retry_after, reset))
        return decisions
