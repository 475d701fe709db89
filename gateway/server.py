"""One gateway process: the app on uvloop, listening with SO_REUSEPORT beside its siblings."""

from __future__ import annotations

import logging

import uvloop
from aiohttp import web

from gateway.app import create_app
from gateway.settings import GatewaySettings


def serve(settings: GatewaySettings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
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
