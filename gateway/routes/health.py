"""Liveness (/healthz: the process answers) and readiness (/readyz: every service reachable).

/metrics is not served here, on the API's port, but on an internal one of its own
(gateway/contexts.py: metrics_ctx): per-zone sales, payment outcomes and queue depths are for
Prometheus, not for whoever can reach the ingress."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway import appkeys
from gateway.event_store import iso_ms
from gateway.readiness import Readiness
from gateway.responses import error, ok


async def healthz(request: web.Request) -> web.Response:
    return ok({"status": "alive"})


async def _check(coro) -> str:
    try:
        await asyncio.wait_for(coro, 2.0)
        return "ok"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"unavailable: {type(exc).__name__}"


async def readyz(request: web.Request) -> web.Response:
    """Every service reachable, as checked within the last second (gateway/readiness.py)."""
    app = request.app
    checks, checked_at = await app[appkeys.READINESS].current(lambda: _check_all(app))
    if all(v == "ok" for v in checks.values()):
        return ok({"status": "ready", "checks": checks, "checked_at": iso_ms(int(checked_at * 1000))})
    return error(503, "SERVICE_UNAVAILABLE", "not ready", details=checks)


async def _check_all(app: web.Application) -> dict[str, str]:
    return dict(
        zip(
            ("redis", "kafka", "postgres", "reply_channel"),
            await asyncio.gather(
                _check(app[appkeys.SALE_REDIS].ping()),
                # A fresh metadata round trip: cached metadata would still look fine with Kafka down.
                _check(app[appkeys.PRODUCER].client.fetch_all_metadata()),
                _check(app[appkeys.PG_POOL].fetchval("SELECT 1")),
                _check(app[appkeys.REPLIES].connected.wait()),
            ),
            strict=True,
        )
    )


def add_routes(app: web.Application) -> None:
    app[appkeys.READINESS] = Readiness(app[appkeys.CLOCK])
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
