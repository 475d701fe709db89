"""Waiting-room endpoints: join, standing (a poll is a heartbeat), the live-position stream
(gateway/queue_stream.py), and the pass keys (JWKS).

`queue_ticket` in the answers is a signed, per-user, per-event token for the SSE stream URL
(browsers' EventSource cannot send an Authorization header).
"""

from __future__ import annotations

import contextlib
import time

from aiohttp import web

from booking_rush.contract.messages import now_ms
from booking_rush.services.web_push import PushRefused, Subscription
from gateway import appkeys, errors
from gateway.accounts import profile
from gateway.auth import Principal, current_principal
from gateway.event_store import iso_ms
from gateway.middlewares import client_address, traced_opening
from gateway.params import text_query, uuid_value
from gateway.payloads import read_json_object
from gateway.queue_stream import RETRY_MS, StreamClient, StreamHub
from gateway.queue_ticket import issue_queue_ticket, read_queue_ticket
from gateway.responses import ok
from waiting_room.eta import eta_fields
from waiting_room.notices import LANGUAGES, NoticeRecord
from waiting_room.pow import (
    MAX_CHALLENGE_CHARS,
    MAX_NONCE_CHARS,
    NO_PROOF,
    check_proof,
    issue_challenge,
    well_formed,
)
from waiting_room.room import Standing, WaitingRoom


async def published(request: web.Request, event_id: str) -> None:
    app = request.app
    if await app[appkeys.SHOW_INDEX].event_status(event_id, app[appkeys.PG_POOL]) != "published":
        raise errors.NotFound("no such event on sale")


async def on_sale_to(
    request: web.Request, principal: Principal, event_id: str, *, cancelled_ok=False
) -> None:
    """The event is on sale at the principal's storefront (their tenant's), or 404: a buyer of
    another tenant is told what anyone is told of an event that does not exist. Its own buyers
    are told 409 EVENT_CANCELLED for a cancelled one, but may still read where they stood in its
    closed room (`cancelled_ok`: which says why) and leave it."""
    index, pool = request.app[appkeys.SHOW_INDEX], request.app[appkeys.PG_POOL]
    if await index.on_sale_to(event_id, principal.tenant_id, pool):
        return
    if index.events.get(event_id) == "cancelled" and index.tenants.get(event_id) == principal.tenant_id:
        if cancelled_ok:
            return
        raise errors.EventCancelled()
    raise errors.NotFound("no such event on sale")


def _refresh_after_s(standing: Standing) -> int | None:
    """How soon a polling client should ask again: sooner as its turn nears."""
    if standing.state == "waiting":
        eta = standing.eta()
        return 5 if eta is None else max(2, min(30, eta.seconds // 10))
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
            **eta_fields(standing.state, standing.eta()),
            "admission_rate_per_min": standing.admitted_last_minute,
            "refresh_after_seconds": _refresh_after_s(standing),
            "queue_ticket": issue_queue_ticket(
                settings.jwt_secret, principal.user_id, event_id, settings.queue_ticket_ttl_s, now
            ),
            "pass": queue_pass.token if queue_pass else None,
            "opens_at": iso_ms(standing.opens_at_ms) if standing.opens_at_ms else None,
            "pass_expires_at": iso_ms(queue_pass.expires_at_ms) if queue_pass else None,
            "closed_reason": standing.closed_reason or None,
        }
    )


async def _enter(
    request: web.Request, raw_event_id: object, verb: str, pow_field: object = None
) -> web.Response:
    principal = current_principal(request)
    if verb == "join" and not principal.email_verified:
        raise errors.EmailNotVerified()
    event_id = uuid_value(raw_event_id, "event_id")
    await on_sale_to(request, principal, event_id, cancelled_ok=verb != "join")
    now, secret = now_ms(), request.app[appkeys.SETTINGS].jwt_secret
    proof = check_proof(secret, pow_field, principal.user_id, event_id, now) if pow_field else NO_PROOF
    # A new place counts against the address it came from (the operators' dashboard shows the busiest).
    address = client_address(request) if verb == "join" else ""
    entry = (event_id, principal.user_id, now, verb, proof, address)
    standing = await request.app[appkeys.ROOM_ENTRIES].submit(entry)
    if standing.state == "pow_required":
        challenge = issue_challenge(secret, principal.user_id, event_id, standing.pow_bits, now)
        raise errors.ProofOfWorkRequired(details={"challenge": challenge, "bits": standing.pow_bits})
    return _answer(request, principal, event_id, standing)


def _pow_input(value: object) -> dict:
    """A join's `pow` as the API document has it: {challenge, nonce}, text (whether it proves
    anything is waiting_room/pow.py's to say)."""
    if not well_formed(value):
        raise errors.ValidationError(
            "pow must be {challenge, nonce}: the challenge of a PROOF_OF_WORK_REQUIRED answer and its nonce",
            details={"pow": f"an object: challenge (1..{MAX_CHALLENGE_CHARS}), nonce (1..{MAX_NONCE_CHARS})"},
        )
    return value


async def join(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    pow_field = _pow_input(body["pow"]) if "pow" in body else None
    return await _enter(request, body.get("event_id"), "join", pow_field)


async def status(request: web.Request) -> web.Response:
    return await _enter(request, request.query.get("event_id"), "status")


async def leave(request: web.Request) -> web.Response:
    """Leave the line (or the pre-queue): the place is freed at once; this user's streams end,
    here now and on other gateway processes at their next correction."""
    principal = current_principal(request)
    event_id = uuid_value((await read_json_object(request)).get("event_id"), "event_id")
    await on_sale_to(request, principal, event_id, cancelled_ok=True)
    app = request.app
    left = await app[appkeys.WAITING_ROOM].leave(event_id, principal.user_id)
    app[appkeys.STREAMS].user_left(event_id, principal.user_id)
    return ok({"event_id": event_id, "state": "not_joined", "left": left})


def _notice_channel(body: dict) -> str:
    """ "push" or "email": the `notify` body asks for exactly one."""
    if "email" in body and body["email"] is not True:
        raise errors.ValidationError("email must be true", details={"email": "true"})
    if ("push" in body) == ("email" in body):
        raise errors.ValidationError(
            "say how to be told: push (a PushSubscription) or email: true, one of them",
            details={"push": "a PushSubscription's JSON", "email": "true"},
        )
    lang = body.get("lang", "en")
    if lang not in LANGUAGES:
        raise errors.ValidationError("lang must be en or th", details={"lang": "en or th"})
    return "email" if "email" in body else "push"


def _push_subscription(request: web.Request, value: object) -> Subscription:
    push = request.app[appkeys.SETTINGS].push
    if push.vapid_key is None:
        raise errors.ValidationError(
            "this site does not send push notifications; ask for e-mail instead",
            details={"push": "not offered here (GET /api/v1/queue/notify/key is null)"},
        )
    try:
        return Subscription.parse(value, push.allow_test_endpoints)
    except PushRefused as exc:
        raise errors.ValidationError(f"push: {exc.reason}", details={"push": exc.reason}) from exc


async def notify(request: web.Request) -> web.Response:
    """Be told when it is my turn (a notification subscription counts as presence: at my turn I
    am called with the room's claim window even with the page closed). One per person per
    room: a new one replaces the last."""
    principal = current_principal(request)
    body = await read_json_object(request)
    event_id = uuid_value(body.get("event_id"), "event_id")
    channel = _notice_channel(body)
    await on_sale_to(request, principal, event_id)
    app, page, lang = request.app, f"/waiting-room/{event_id}", body.get("lang", "en")
    if channel == "email":  # a mail is read outside the site: the page's whole address
        email = (await profile(app[appkeys.PG_POOL], principal.user_id)).email
        record = NoticeRecord(page=f"{request.url.origin()}{page}", lang=lang, email=email)
    else:
        record = NoticeRecord(page=page, lang=lang, push=_push_subscription(request, body["push"]))
    if not await app[appkeys.WAITING_ROOM].subscribe(event_id, principal.user_id, record.to_json()):
        raise errors.NotInLine()
    config = await app[appkeys.WAITING_ROOM].config(event_id)
    return ok({"event_id": event_id, "channel": channel, "claim_window_s": config.claim_window_s})


async def stop_notifying(request: web.Request) -> web.Response:
    principal = current_principal(request)
    event_id = uuid_value(request.query.get("event_id"), "event_id")
    await on_sale_to(request, principal, event_id, cancelled_ok=True)
    removed = await request.app[appkeys.WAITING_ROOM].unsubscribe(event_id, principal.user_id)
    return ok({"event_id": event_id, "removed": removed})


async def push_key(request: web.Request) -> web.Response:
    """The key a page subscribes with (applicationServerKey); null: no Web Push here."""
    key = request.app[appkeys.SETTINGS].push.vapid_key
    return ok({"vapid_public_key": key.public_key if key else None})


async def stream(request: web.Request) -> web.StreamResponse:
    # Traced (or kept out of traces) while it opens, not for its life: a stream lives for
    # minutes, and a span or context held by each of tens of thousands costs memory on each.
    with traced_opening(request):
        response, client, event_id, user_id = await open_stream(request)
    hub, room = request.app[appkeys.STREAMS], request.app[appkeys.WAITING_ROOM]
    try:
        try:
            while True:
                await client.news()
                ended = client.ended
                chunk = client.take()
                if chunk:
                    await response.write(chunk)
                client.written(hub)
                if ended:
                    break
        except ConnectionError:
            pass  # the client went away; the stream is closed below
        return response
    finally:
        await leave_stream(hub, room, event_id, user_id, client)


async def open_stream(request: web.Request) -> tuple[web.StreamResponse, StreamClient, str, str]:
    """Check the ticket, place the client, send the headers and the first standing, and mark
    its user as held by this process; (response, client, event id, user id)."""
    app = request.app
    event_id = uuid_value(request.query.get("event_id"), "event_id")
    ticket = text_query(request, "ticket", 4096)
    user_id, ticket_expires_at = read_queue_ticket(app[appkeys.SETTINGS].jwt_secret, ticket or "", event_id)
    await published(request, event_id)  # the ticket came from a join or status at its own storefront
    hub, room = app[appkeys.STREAMS], app[appkeys.WAITING_ROOM]
    client = StreamClient(user_id, None, last_id=request.headers.get("Last-Event-ID", "")[:200])
    hub.held_ticket(client, ticket_expires_at)
    hub.add(event_id, client)  # before the read: a tick arriving meanwhile is not missed
    try:
        now = now_ms()
        hub.place(event_id, client, await room.enter(event_id, user_id, now, "status"))
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: %d\n\n" % RETRY_MS)
        # The headers went out with the first write, and a stream lives for minutes: do not keep
        # their ~1 KiB (security headers included) for every open stream.
        response.headers.clear()
        if not client.ended:
            await room.stream(event_id, user_id, hub.holder, now, "open", hub.lease_until_ms(now))
    except BaseException:
        await leave_stream(hub, room, event_id, user_id, client)
        raise
    return response, client, event_id, user_id


async def leave_stream(hub: StreamHub, room: WaitingRoom, event_id: str, user_id: str, client) -> None:
    client.written(hub)  # gone before writing: its tick's fan-out is not held up
    hub.remove(event_id, client)
    if not client.ended:
        with contextlib.suppress(Exception):  # presence then lapses by the grace period
            await room.stream(event_id, user_id, hub.holder, now_ms(), "close")


async def end_streams(app: web.Application) -> None:
    """on_shutdown: end every stream (their browsers reconnect, to another gateway), so that a
    stopping gateway does not wait out its shutdown timeout on streams that never finish."""
    app[appkeys.STREAMS].close_all()


async def jwks(request: web.Request) -> web.Response:
    """The queue-pass public keys, current and still-accepted old ones (a plain JWKS document)."""
    return web.json_response(request.app[appkeys.QUEUE_PASSES].keys.jwks())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/queue/join", join, name="queue_join")
    app.router.add_get("/api/v1/queue/status", status, name="queue_status")
    app.router.add_post("/api/v1/queue/leave", leave, name="queue_leave")
    app.router.add_get("/api/v1/queue/stream", stream, name="queue_stream")
    app.router.add_post("/api/v1/queue/notify", notify, name="queue_notify")
    app.router.add_delete("/api/v1/queue/notify", stop_notifying, name="queue_notify_stop")
    app.router.add_get("/api/v1/queue/notify/key", push_key, name="queue_push_key")
    app.on_shutdown.append(end_streams)
    app.router.add_get("/.well-known/jwks.json", jwks, name="jwks")
