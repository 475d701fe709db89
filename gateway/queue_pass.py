"""Reserve behind an engaged waiting room: X-Queue-Pass checked, and the pass's own limit.

A valid pass replaces the reserve rate limit with an in-process token bucket per pass: generous
for a person, but one pass cannot flood the topic. The middleware checks the pass before any
other work and skips the reserve limit only for a genuine pass of the caller's; a missing,
malformed or invalid one pays the ordinary limit there, so sending junk in the header buys
nothing. Only a reserve let through counts toward the request rate mode auto engages on: refused
requests cannot engage a room for everyone.
"""

from __future__ import annotations

from aiohttp import web
from redis.exceptions import RedisError

from gateway import appkeys, errors
from gateway.auth import Principal
from gateway.middlewares import PASS_HEADER, take_token
from waiting_room.passes import PassError


async def ordinary_reserve_limit(request: web.Request, principal: Principal) -> None:
    await take_token(request, "reserve", "user:" + principal.user_id)


async def admit_reserve(request: web.Request, principal: Principal, event_id: str, now: float) -> None:
    """Let a reserve through, or raise: the pass when the event's room is engaged, else the
    ordinary limit if the middleware waived it for a valid pass."""
    app = request.app
    token = request.headers.get(PASS_HEADER)
    held = request.get(appkeys.QUEUE_PASS)  # set by the middleware: a valid pass of the caller's
    try:
        engaged = await app[appkeys.ROOMS].engaged(event_id)
    except RedisError as exc:
        raise errors.RedisUnavailable("the sale store is unavailable; nothing was reserved") from exc
    if not engaged:
        if held is not None:
            await ordinary_reserve_limit(request, principal)
    elif not token:
        raise errors.QueuePassRequired()
    else:
        try:
            checked = app[appkeys.QUEUE_PASSES].verify(token, event_id, principal.user_id, now)
        except PassError as exc:
            if held is not None:  # genuine, but for another event: the limit was waived for it
                await ordinary_reserve_limit(request, principal)
            raise errors.QueuePassRefused(exc.code, exc.message) from exc
        if not app[appkeys.PASS_LIMITER].allow(checked.pass_id, now):
            raise errors.RateLimited(headers={"Retry-After": "1"})
    app[appkeys.ROOMS].count_reserve(event_id)  # let through: the request rate mode auto engages on
