"""The gateway's app factory: the only way to build the gateway, for `python -m gateway` and tests."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from aiohttp import web

from booking_rush.services.mail import Mailer
from booking_rush.telemetry import tracing
from gateway import appkeys, routes
from gateway.auth import TokenVerifier
from gateway.contexts import (
    aux_redis_ctx,
    jobs_ctx,
    metrics_ctx,
    password_hasher_ctx,
    pg_ctx,
    producer_ctx,
    replies_ctx,
    revocations_ctx,
    room_view_ctx,
    sale_redis_ctx,
    streams_ctx,
)
from gateway.middlewares import add_security_headers, rate_limit, request_id_and_errors, trace_request
from gateway.pass_limiter import PassLimiter
from gateway.revocations import Revocations
from gateway.settings import GatewaySettings, new_gateway_id
from gateway.show_index import ShowIndex
from waiting_room.passes import PassKeys, QueuePasses


async def freeze_startup_objects(app: web.Application) -> None:
    """Move everything allocated at start-up out of the cyclic GC's sight, so the full
    collections that run under load do not walk it again and again."""
    gc.collect()
    gc.freeze()


def create_app(
    settings: GatewaySettings, gateway_id: str | None = None, clock: Callable[[], float] = time.time
) -> web.Application:
    """`clock` is what the rate limiter reads; tests pass one they can move."""
    middlewares = [request_id_and_errors, rate_limit]
    if tracing.enabled():  # no span machinery on the hot path unless spans go somewhere
        middlewares.insert(0, trace_request)
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    if tracing.enabled():
        app[appkeys.TRACE_RATIO] = tracing.sample_ratio()
    app[appkeys.CLOCK] = clock
    app[appkeys.SETTINGS] = settings
    app[appkeys.GATEWAY_ID] = gateway_id or new_gateway_id()
    app[appkeys.SHOW_INDEX] = ShowIndex()
    app[appkeys.MAILER] = Mailer(settings.mail)
    revocations = app[appkeys.REVOCATIONS] = Revocations()
    app[appkeys.TOKENS] = TokenVerifier(
        settings.jwt_secret,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.token_cache_size,
        revocations.refuses,
    )
    app[appkeys.QUEUE_PASSES] = QueuePasses(settings.queue_pass_keys or PassKeys.generate())
    app[appkeys.PASS_LIMITER] = PassLimiter(settings.pass_rate_per_s, settings.pass_burst)
    app.cleanup_ctx.extend(
        [
            sale_redis_ctx,
            aux_redis_ctx,
            revocations_ctx,
            jobs_ctx,
            producer_ctx,
            pg_ctx,
            password_hasher_ctx,
            replies_ctx,
            room_view_ctx,
            streams_ctx,
            metrics_ctx,
        ]
    )
    app.on_response_prepare.append(add_security_headers)
    app.on_startup.append(freeze_startup_objects)
    routes.add_all(app)
    return app
