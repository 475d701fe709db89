"""Access tokens taken back before they expire, with no database round trip per request.

A revocation is a "not before" time for a session (a refresh-token family: logout), a user
(disabled, role changed, password reset) or a tenant (suspended): an access token issued at or
before it is refused. They live in the aux Redis in one sorted set (member "kind:id", score the
time in ms), each kept as long as an access token can live, so the set holds only the last
quarter hour's. Every write is published on a channel each gateway process listens to, and each
holds the set in memory; a process reads the whole set when it starts and whenever its
subscription reconnects, since pub/sub drops what is sent while nobody listens (and once a minute besides).

Taking a token back is written after the database change it follows has committed: a token
issued in between is one the database would still have granted.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from gateway import errors
from gateway.auth import ACCESS_TOKEN_TTL_S, Principal

log = logging.getLogger("gateway.revocations")

KEY = "auth:revocations"
CHANNEL = "auth:revocations"
KINDS = ("session", "user", "tenant")
# As long as an access token lives, and a minute for clocks that disagree.
RETENTION_MS = (ACCESS_TOKEN_TTL_S + 60) * 1000


class RevocationUnavailable(errors.ServiceUnavailable):
    code = "STORE_UNAVAILABLE"
    message = "the change is saved, but open sessions could not be ended yet; repeat the request"


class Revocations:
    """This process's copy of the revocations, and the way to add one."""

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._not_before_ms: dict[str, int] = {}  # "kind:id" -> ms
        self._redis: aioredis.Redis | None = None
        self._revoke: AsyncScript | None = None
        self.connected = asyncio.Event()  # subscribed to CHANNEL (gateway/contexts.py)

    def refuses(self, principal: Principal) -> bool:
        """Whether the token `principal` came from was issued at or before a revocation."""
        table = self._not_before_ms
        if not table:
            return False  # the usual case: nothing revoked in the last quarter hour
        issued = principal.issued_at_ms
        for member in (
            f"user:{principal.user_id}",
            principal.session_id and f"session:{principal.session_id}",
            principal.tenant_id and f"tenant:{principal.tenant_id}",
        ):
            if member and issued <= table.get(member, -1):
                return True
        return False

    def attach(self, redis: aioredis.Redis, revoke_access: AsyncScript) -> None:
        """Where revocations are written and read: the aux Redis and its lua/revoke_access.lua."""
        self._redis, self._revoke = redis, revoke_access

    async def revoke(self, kind: str, subject_id: str) -> None:
        """Refuse every access token of that session, user or tenant issued until now, in every
        gateway process. 503 (RevocationUnavailable) when the aux Redis cannot take it."""
        assert kind in KINDS and self._revoke is not None
        member, at_ms = f"{kind}:{subject_id}", int(self._clock() * 1000)
        announcement = orjson.dumps({"member": member, "at_ms": at_ms})
        try:
            await self._revoke(keys=[KEY], args=[member, at_ms, RETENTION_MS, CHANNEL, announcement])
        except (RedisError, OSError) as exc:
            log.error("could not record the revocation of %s", member, exc_info=True)
            raise RevocationUnavailable() from exc
        self.apply(member, at_ms)  # this process at once, not when its own message comes back

    def apply(self, member: str, at_ms: int) -> None:
        if at_ms > self._not_before_ms.get(member, -1):
            self._not_before_ms[member] = at_ms

    def deliver(self, raw: bytes) -> None:
        message = orjson.loads(raw)
        self.apply(message["member"], int(message["at_ms"]))

    async def reload(self) -> None:
        """Everything still in force, read afresh (start-up, and after a lost subscription);
        what has outlived every token is forgotten here too."""
        assert self._redis is not None
        since = int(self._clock() * 1000) - RETENTION_MS
        entries = await self._redis.zrangebyscore(KEY, since, "+inf", withscores=True)
        kept = {m: t for m, t in self._not_before_ms.items() if t >= since}
        for member, at_ms in entries:
            member = member.decode() if isinstance(member, bytes) else member
            kept[member] = max(int(at_ms), kept.get(member, -1))
        self._not_before_ms = kept

    def __len__(self) -> int:
        return len(self._not_before_ms)
