"""Liveness and readiness against the real services."""

from __future__ import annotations

import asyncio
import time

from tests.support import gateway_settings, running_gateway


async def test_healthz_and_readyz(gateway_url, http):
    async with http.get(f"{gateway_url}/healthz") as r:
        assert r.status == 200
        assert (await r.json()) == {"success": True, "data": {"status": "alive"}}
    async with http.get(f"{gateway_url}/readyz") as r:
        body = await r.json()
        assert r.status == 200, body
        assert body["data"]["checks"] == {
            "redis": "ok",
            "kafka": "ok",
            "postgres": "ok",
            "reply_channel": "ok",
        }


async def test_readiness_is_checked_at_most_once_a_second(schema, topics, jwt_secret, http):
    """/readyz is unlimited (the kubelet's probe): a crowd asking it must not turn into a Kafka
    metadata request and a PostgreSQL query each."""
    now = [time.time()]
    settings = gateway_settings(schema, topics, jwt_secret)
    async with running_gateway(settings, clock=lambda: now[0]) as url:

        async def checked_at() -> str:
            async with http.get(f"{url}/readyz") as r:
                assert r.status == 200
                return (await r.json())["data"]["checked_at"]

        first = await checked_at()
        answers = await asyncio.gather(*(checked_at() for _ in range(50)))
        assert set(answers) == {first}  # the one check, told 51 times
        now[0] += 1.0
        assert await checked_at() != first  # a second later: checked again
