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
    """`rate` tokens per `window_s` (a minute unless said), at most `burst` at once."""

    name: str
    rate: int
    burst: int
    window_s: int = 60


# Spec §8.4 (login and register per account: tenant and e-mail, what a brute force or a spam
# run aims at), and per client address where many people may share one: an address behind
# carrier-grade NAT can be hundreds of phones, and in a flash sale a tenth of them sign in within
# the same minute, so the per-address limits allow that crowd while a single machine scripting
# thousands of attempts a minute still meets them.
DEFAULT_POLICIES = {
    "login": Policy("login", 5, 3),
    "register": Policy("register", 3, 2),
    "reserve": Policy("reserve", 20, 10),
    "general": Policy("general", 100, 20),
    "login_address": Policy("login_address", 60, 30),
    "register_address": Policy("register_address", 30, 10),
    "forgot_address": Policy("forgot_address", 10, 5),
    "reset_address": Policy("reset_address", 10, 5),
    # Reset mails to one account: three an hour, however many addresses ask.
    "reset_mail": Policy("reset_mail", 3, 3, 3600),
    # E-mail verification links sent again: to one account, and from one client address.
    "verify_mail": Policy("verify_mail", 3, 3, 3600),
    "verify_address": Policy("verify_address", 10, 5),
    # Wrong promo codes (gateway/promo_guard.py): five in ten minutes per user, twenty per address.
    "promo_wrong": Policy("promo_wrong", 5, 5, 600),
    "promo_wrong_address": Policy("promo_wrong_address", 20, 20, 600),
}
# Off unless set in BR_RATE_LIMITS: joins of waiting rooms per client address (a bot farm joining
# with many accounts from one address). Off by default, since a crowd behind one NAT, the demo and
# the load test all join from one address.
OPTIONAL_POLICIES = ("join_address",)


def parse_policies(spec: str) -> dict[str, Policy]:
    """DEFAULT_POLICIES with overrides from "name=rate/burst[/window seconds],..." (e.g.
    "reserve=1000/500", "reset_mail=10/10/3600")."""
    policies = dict(DEFAULT_POLICIES)
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, numbers = item.partition("=")
        parts = numbers.split("/")
        known = name in DEFAULT_POLICIES or name in OPTIONAL_POLICIES
        if not known or len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
            names = sorted([*DEFAULT_POLICIES, *OPTIONAL_POLICIES])
            raise ValueError(f"rate limit {item!r}: expected one of {names}=RATE/BURST[/WINDOW_S]")
        rate, burst, window = int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) == 3 else 60
        if rate < 1 or burst < 1 or window < 1:
            raise ValueError(f"rate limit {item!r}: rate, burst and window must be at least 1")
        policies[name] = Policy(name, rate, burst, window)
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
        args: list[float] = [now, WINDOW_MS]
        for policy, _ in batch:
            # The script's window is a minute: a policy of another window gives its rate per minute.
            args += (policy.burst, policy.rate * WINDOW_MS / (policy.window_s * 1000))
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
