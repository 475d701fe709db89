"""Liveness and readiness against the real services."""

from __future__ import annotations


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
