"""Liveness (/healthz: the process answers) and readiness (/readyz: every service reachable)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from booking_rush.telemetry.metrics import metrics_handler, record_db_connections
from gateway import appkeys
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
    app = request.app
    checks = dict(
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
    if all(v == "ok" for v in checks.values()):
        return ok({"status": "ready", "checks": checks})
    return error(503, "SERVICE_UNAVAILABLE", "not ready", details=checks)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics (Prometheus text; every process of this pod when there are several)."""
    pool = request.app.get(appkeys.PG_POOL)
    if pool is not None:
        record_db_connections("gateway", pool)
    return await metrics_handler(request)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    # "ops:": operational, not API (Prometheus text, outside the OpenAPI document).
    app.router.add_get("/metrics", metrics, name="ops:metrics")
