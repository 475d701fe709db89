"""Waiting-room endpoints: join, standing (a poll is a heartbeat), the live-position stream
(gateway/queue_stream.py), and the pass keys (JWKS).

`queue_ticket` in the answers is a signed, per-user, per-event token for the SSE stream URL
(browsers' EventSource cannot send an Authorization header).
"""

from __future__ import annotations

import time

from aiohttp import web

from gateway import appkeys
from gateway.auth import Principal, current_principal
from gateway.event_store import iso_ms
from gateway.params import uuid_value
from gateway.payloads import read_json_object
from gateway.queue_stream import end_streams, published, stream
from gateway.queue_ticket import issue_queue_ticket
from gateway.responses import ok
from waiting_room.room import Standing


def _refresh_after_s(standing: Standing) -> int | None:
    """How soon a polling client should ask again: sooner as its turn nears."""
    if standing.state == "waiting":
        eta = standing.eta_s()
        return 5 if eta is None else max(2, min(30, eta // 10))
    return 15 if standing.state in ("prequeue", "paused") else None


def _answer(request: web.Request, principal: Principal, event_id: str, standing: Standing) -> web.Response:
    app = request.app
    settings = app[appkeys.SETTINGS]
    now = time.time()
    queue_pass = None
    if standing.state == "admitted":
        queue_pass = app[appkeys.QUEUE_PASSES].issue(
            event_id, principal.user_id, standing.admitted_at_ms, standing.pass_ttl_ms // 1000
        )
    return ok(
        {
            "event_id": event_id,
            "state": standing.state,
            "position": standing.position,
            "ahead": standing.ahead,
            "waiting": standing.waiting,
            "eta_seconds": standing.eta_s() if standing.state == "waiting" else None,
            "admission_rate_per_min": standing.admitted_last_minute,
            "refresh_after_seconds": _refresh_after_s(standing),
            "queue_ticket": issue_queue_ticket(
                settings.jwt_secret, principal.user_id, event_id, settings.queue_ticket_ttl_s, now
            ),
            "pass": queue_pass.token if queue_pass else None,
            "opens_at": iso_ms(standing.opens_at_ms) if standing.opens_at_ms else None,
            "pass_expires_at": iso_ms(queue_pass.expires_at_ms) if queue_pass else None,
        }
    )


async def _enter(request: web.Request, raw_event_id: object, verb: str) -> web.Response:
    principal = current_principal(request)
    event_id = uuid_value(raw_event_id, "event_id")
    await published(request, event_id)
    now_ms = int(time.time() * 1000)
    standing = await request.app[appkeys.ROOM_ENTRIES].submit((event_id, principal.user_id, now_ms, verb))
    return _answer(request, principal, event_id, standing)


async def join(request: web.Request) -> web.Response:
    return await _enter(request, (await read_json_object(request)).get("event_id"), "join")


async def status(request: web.Request) -> web.Response:
    return await _enter(request, request.query.get("event_id"), "status")


async def jwks(request: web.Request) -> web.Response:
    """The queue-pass public keys, current and still-accepted old ones (a plain JWKS document)."""
    return web.json_response(request.app[appkeys.QUEUE_PASSES].keys.jwks())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/queue/join", join, name="queue_join")
    app.router.add_get("/api/v1/queue/status", status, name="queue_status")
    app.router.add_get("/api/v1/queue/stream", stream, name="queue_stream")
    app.on_shutdown.append(end_streams)
    app.router.add_get("/.well-known/jwks.json", jwks, name="jwks")
