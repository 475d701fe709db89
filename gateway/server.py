"""One gateway process: the app on uvloop, listening with SO_REUSEPORT beside its siblings."""

from __future__ import annotations

import uvloop
from aiohttp import web

from booking_rush.telemetry import logs, tracing
from gateway.app import create_app
from gateway.settings import GatewaySettings


def serve(settings: GatewaySettings) -> None:
    logs.configure("gateway")
    tracer_provider = tracing.configure("gateway", starts_traces=True)
    uvloop.install()
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        reuse_port=True,
        access_log=None,
        print=None,
        shutdown_timeout=10,
        handle_signals=True,
    )
    if tracer_provider is not None:
        tracer_provider.shutdown()  # the last spans out
