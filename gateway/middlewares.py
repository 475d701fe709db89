"""Cross-cutting HTTP concerns: request ids, the one place errors become responses, headers."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator

import asyncpg
from aiohttp import web
from aiokafka.errors import KafkaError
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from redis.exceptions import RedisError

from booking_rush.telemetry import gateway_metrics, logs, tracing
from gateway import appkeys, errors
from gateway.auth import current_principal
from gateway.queue_ticket import read_queue_ticket
from gateway.responses import error
from waiting_room.passes import PassError

log = logging.getLogger("gateway.http")

REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-XSS-Protection": "1; mode=block",
    "Content-Security-Policy": "default-src 'self'",
}

# The API docs page (Swagger UI) draws its icons from data: URLs in its stylesheet: that page's
# policy allows images from data: too, and nothing else more. Every other page keeps the above.
API_DOCS_PAGE = "page:api-docs.html"
API_DOCS_CSP = "default-src 'self'; img-src 'self' data:"

# aiohttp's own HTTP errors (no route, wrong method, body too large) in the spec's envelope.
_HTTP_CODES = {
    400: errors.ValidationError,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
}


# Requests that live for minutes (the live-position stream): their handler traces only their
# opening (traced_opening), so no span or context stays held by each open stream.
LONG_LIVED_ROUTES = frozenset({"queue_stream"})


def route_of(request: web.Request) -> str:
    """The route template a request matched ("unmatched" for none): metrics and span label."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@contextlib.contextmanager
def request_trace(request: web.Request, ratio: float) -> Iterator[Span | None]:
    """A server span for the sampled share of requests (continuing a caller's `traceparent`);
    the others run with the instrumentations switched off (None)."""
    if not tracing.sampled(ratio, request.headers):
        with suppress_instrumentation():
            yield None
        return
    route = route_of(request)
    with tracing.TRACER.start_as_current_span(
        f"{request.method} {route}",
        context=tracing.context_of(request.headers),
        kind=SpanKind.SERVER,
        record_exception=False,  # what escapes is an answer (traced_opening) or marked below
        set_status_on_exception=False,
    ) as span:
        span.set_attribute("http.route", route)
        try:
            yield span
        except errors.ApiError as exc:  # a refusal answered by request_id_and_errors
            span.set_attribute("http.response.status_code", exc.status)
            if exc.status >= 500:
                span.set_status(Status(StatusCode.ERROR, exc.code))
            raise
        except BaseException as exc:  # answered 500, or the client went away
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


@contextlib.contextmanager
def traced_opening(request: web.Request) -> Iterator[Span | None]:
    """What request_trace is to other requests, for the opening of a long-lived one."""
    if appkeys.TRACE_RATIO not in request.app:  # tracing is off
        yield None
        return
    with request_trace(request, request.app[appkeys.TRACE_RATIO]) as span:
        yield span
        if span is not None:
            span.set_attribute("http.response.status_code", 200)


@web.middleware
async def trace_request(request: web.Request, handler) -> web.StreamResponse:
    """request_trace around each request (a long-lived one traces its own opening). Only when
    tracing is on: create_app adds this middleware then, and the ratio."""
    if request.match_info.route.name in LONG_LIVED_ROUTES:
        return await handler(request)
    with request_trace(request, request.app[appkeys.TRACE_RATIO]) as span:
        response = await handler(request)
        if span is not None:
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return response


@web.middleware
async def request_id_and_errors(request: web.Request, handler) -> web.StreamResponse:
    """Accept or mint X-Request-ID, echo it, and render every error in the spec's envelope."""
    rid = request.headers.get(REQUEST_ID_HEADER, "")
    if not _CLIENT_REQUEST_ID.fullmatch(rid):
        rid = os.urandom(16).hex()  # uuid4().hex's shape, without building a UUID object
    request[appkeys.REQUEST_ID] = rid
    request[appkeys.CLIENT_ADDRESS] = request.app[appkeys.SETTINGS].trusted_proxies.client(
        request.remote, request.headers
    )
    logs.REQUEST_ID.set(rid)  # every line logged while serving it carries the request id
    started = time.perf_counter()
    try:
        response = await handler(request)
    except errors.ApiError as exc:
        response = error(exc.status, exc.code, exc.message, exc.details)
        if exc.headers:
            response.headers.update(exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = _HTTP_CODES.get(exc.status, errors.ApiError)
        response = error(exc.status, kind.code, kind.message if kind is not errors.ApiError else exc.reason)
        if "Allow" in exc.headers:  # a 405 says which methods the resource takes (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
    except asyncpg.DataError as exc:
        # A value PostgreSQL refused (an out-of-range date or number, invalid text): the input's
        # fault, which validation should have caught first, never an outage.
        log.warning(
            "%s %s (request %s): a value the database refused: %r", request.method, request.path, rid, exc
        )
        response = error(400, "VALIDATION_ERROR", "a value in the request is out of range or invalid")
    except (RedisError, KafkaError, asyncpg.PostgresError, OSError) as exc:
        # A service we depend on failed where no handler expected it: unavailable, not a bug.
        log.warning("%s %s (request %s): backing service error %r", request.method, request.path, rid, exc)
        response = error(503, "SERVICE_UNAVAILABLE", "a backing service is unavailable; retry shortly")
    except Exception:
        log.exception("unhandled error on %s %s (request %s)", request.method, request.path, rid)
        response = error(500, "INTERNAL_ERROR", "internal server error")
    response.headers[REQUEST_ID_HEADER] = rid
    _count(request, response, started)
    return response


def _count(request: web.Request, response: web.StreamResponse, started: float) -> None:
    """http_requests_total and, for plain answers (not streams, which last minutes), the
    latency histogram; labelled by route template, so ids do not explode the series."""
    route = route_of(request)
    gateway_metrics.HTTP_REQUESTS.labels("gateway", request.method, route, str(response.status)).inc()
    if isinstance(response, web.Response):
        gateway_metrics.HTTP_DURATION.labels("gateway", request.method, route).observe(
            time.perf_counter() - started
        )


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, streamed ones included, carries spec §8.6 headers."""
    response.headers.update(SECURITY_HEADERS)
    if request.match_info.route.name == API_DOCS_PAGE:
        response.headers["Content-Security-Policy"] = API_DOCS_CSP


# Route name -> policy; every other /api route is "general"; these are not limited at all.
ROUTE_POLICIES = {"reserve": "reserve"}
# The account routes count against the client's address whoever the bearer is (a valid token
# must not give an attacker with N accounts N budgets); login and register also count against
# the account they name (routes/auth.py), and reset mails against theirs.
ADDRESS_POLICIES = {
    "login": "login_address",
    "system_login": "login_address",
    "accept_invitation": "reset_address",
    "verify_email": "verify_address",
    "resend_verification": "verify_address",
    "register": "register_address",
    "forgot_password": "forgot_address",
    "reset_password": "reset_address",
}
UNLIMITED_ROUTES = {"healthz", "readyz"}  # the kubelet's probes


PASS_HEADER = "X-Queue-Pass"


def client_address(request: web.Request) -> str:
    """The client's address: the socket peer, or what trusted proxies say it is (client_address.py)."""
    return request.get(appkeys.CLIENT_ADDRESS) or request.remote or "unknown"


def _subject(request: web.Request, route_name: str | None) -> str:
    """Who a request counts against: the bearer's user; for the live-position stream, the user
    its queue ticket names (many people in line may share one address); else the address."""
    if route_name in ADDRESS_POLICIES:
        return "ip:" + client_address(request)
    try:
        return "user:" + current_principal(request).user_id
    except errors.Unauthorized:
        pass
    if route_name == "queue_stream":
        try:
            secret, query = request.app[appkeys.SETTINGS].jwt_secret, request.query
            return "user:" + read_queue_ticket(secret, query.get("ticket", ""), query.get("event_id", ""))[0]
        except errors.ApiError:
            pass  # the handler refuses the ticket; the attempt counts against the address
    return "ip:" + client_address(request)


def _holds_a_pass(request: web.Request) -> bool:
    """Whether the request carries a genuine, current, unrevoked pass of the bearer's (kept on
    the request for the handler, which checks its event once it has read the body)."""
    token = request.headers.get(PASS_HEADER)
    if not token:
        return False
    try:
        principal = current_principal(request)
        checked = request.app[appkeys.QUEUE_PASSES].held_by(token, principal.user_id, time.time())
    except (errors.Unauthorized, PassError):
        return False
    request[appkeys.QUEUE_PASS] = checked
    return True


async def take_token(request: web.Request, policy: str, subject: str) -> None:
    """One token of `policy` for `subject`, or 429; the decision's X-RateLimit-* headers go on
    the answer (added by `rate_limit` below)."""
    decision = await request.app[appkeys.LIMITER].check(policy, subject)
    if not decision.allowed:
        raise errors.RateLimited(headers=decision.headers())
    request[appkeys.RATE_DECISION] = decision


@web.middleware
async def rate_limit(request: web.Request, handler) -> web.StreamResponse:
    """Spec §8.4 per user when the bearer token is valid, per client address otherwise."""
    name = request.match_info.route.name
    if name in UNLIMITED_ROUTES or not request.path.startswith("/api/"):
        return await handler(request)
    # A reserve with a valid pass is limited by gateway/queue_pass.py instead (the pass's own
    # limit); a missing, malformed or invalid one pays this limit, like no pass at all.
    if not (name == "reserve" and _holds_a_pass(request)):
        subject = _subject(request, name)
        policy = ADDRESS_POLICIES.get(name) or ROUTE_POLICIES.get(name, "general")
        await take_token(request, policy, subject)
    if name == "queue_join" and "join_address" in request.app[appkeys.LIMITER].policies:
        # The operator's cap on joins per address, besides the joiner's own limit (off unless set).
        await take_token(request, "join_address", "ip:" + client_address(request))
    response = await handler(request)
    decision = request.get(appkeys.RATE_DECISION)
    if decision is not None:
        response.headers.update(decision.headers())
    return response
