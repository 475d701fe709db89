"""Wrong promo codes, rate limited per user and per client address, so a code cannot be found
by trying (the quote route and reserve both answer whether a code exists).

A wrong attempt (a code the event does not have, or a paused one) takes a token from the user's
and the address's `promo_wrong*` buckets (gateway/ratelimit.py; BR_RATE_LIMITS tunes them). One
that finds a bucket empty blocks that subject for as long as the bucket needs to refill a token:
while blocked, any request naming a code is answered 429 before it is looked at (one MGET on the
aux Redis; requests without a code never pay it). If the aux Redis is unreachable the guard lets
requests through, like the rate limiter.
"""

from __future__ import annotations

import logging

from aiohttp import web
from redis.exceptions import RedisError

from gateway import appkeys, errors
from gateway.middlewares import client_address

log = logging.getLogger("gateway.promo_guard")

USER_POLICY, ADDRESS_POLICY = "promo_wrong", "promo_wrong_address"


def _subjects(request: web.Request, user_id: str) -> list[tuple[str, str]]:
    return [(USER_POLICY, f"u:{user_id}"), (ADDRESS_POLICY, f"ip:{client_address(request)}")]


def _block_key(request: web.Request, policy: str, subject: str) -> str:
    return f"{request.app[appkeys.LIMITER].namespace}:promo_block:{policy}:{subject}"


async def check_allowed(request: web.Request, user_id: str) -> None:
    """429 while this user or this address is blocked for trying wrong codes."""
    redis = request.app[appkeys.AUX_REDIS]
    blocks = [_block_key(request, p, s) for p, s in _subjects(request, user_id)]
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for key in blocks:
                pipe.pttl(key)
            ttls = await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("promo guard unavailable (%s): letting a code through", exc)
        return
    blocked_ms = max(ttls)
    if blocked_ms > 0:
        raise errors.RateLimited(
            "too many wrong promo codes; try again later",
            headers={"Retry-After": str(max(1, -(-blocked_ms // 1000)))},
        )


async def count_wrong(request: web.Request, user_id: str) -> None:
    """One wrong attempt: a subject whose bucket was empty is blocked until it refills."""
    limiter, redis = request.app[appkeys.LIMITER], request.app[appkeys.AUX_REDIS]
    for policy, subject in _subjects(request, user_id):
        decision = await limiter.check(policy, subject)
        if not decision.allowed:
            try:
                await redis.set(
                    _block_key(request, policy, subject), 1, px=max(decision.retry_after_ms, 1000)
                )
            except (RedisError, OSError) as exc:
                log.warning("promo guard unavailable (%s): not blocking %s", exc, subject)
