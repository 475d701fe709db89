"""Sending one command to the workers through Kafka and waiting, bounded, for its answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, NamedTuple

from aiohttp import web
from aiokafka.errors import KafkaError

from booking_rush.telemetry import tracing
from gateway import appkeys, errors
from gateway.responses import ok
from gateway.roundtrip.replies import NotAccepted

ACCEPT_SKEW_MARGIN_S = 1.0


def pending_answer(request_id: str) -> web.Response:
    """202: the command is accepted and its answer late; the client polls for it."""
    return ok(
        {"request_id": request_id, "status": "pending", "poll": f"/api/v1/bookings/requests/{request_id}"},
        status=202,
    )


def reply_channel_ready(app: web.Application) -> None:
    """Refuse work (503) while answers could not reach this process."""
    if not app[appkeys.REPLIES].connected.is_set():
        raise errors.RedisUnavailable()


class Sent(NamedTuple):
    """A command handed to the producer: its answer to come, and Kafka's acknowledgement."""

    request_id: str
    answer: asyncio.Future
    ack: asyncio.Future


def send(app: web.Application, key: str, command: dict[str, Any]) -> Sent:
    """Hand `command` (partition key `key`) to the producer, its reply expected."""
    carried = tracing.carrier()
    if carried:  # a traced request: its trace goes on with the command, to the worker
        command["trace"] = carried
    request_id = command["request_id"]
    answer = app[appkeys.REPLIES].expect(request_id)
    return Sent(request_id, answer, app[appkeys.BATCHER].submit(key, command))


def accept_window_s(app: web.Application) -> float:
    # Past accept_by the broker's append time makes a worker refuse a reserve, so after waiting
    # that long (plus a margin for clock skew) "nothing was accepted" is true even if the
    # producer still delivers it later.
    return app[appkeys.SETTINGS].accept_timeout_s + ACCEPT_SKEW_MARGIN_S


async def accepted(app: web.Application, sent: Sent) -> None:
    """Until Kafka acknowledged the command; KafkaUnavailable when it did not in time (for a
    caller that must know the command is in the log before it commits what it decided)."""
    try:
        await asyncio.wait_for(asyncio.shield(sent.ack), accept_window_s(app))
    except (TimeoutError, KafkaError) as exc:
        app[appkeys.REPLIES].forget(sent.request_id)
        raise errors.KafkaUnavailable() from exc


async def answer_of(app: web.Application, sent: Sent) -> dict[str, Any] | None:
    """The worker's reply, or None when it is late (the caller answers 202). Raises
    KafkaUnavailable when Kafka did not take the command in time."""
    settings, replies = app[appkeys.SETTINGS], app[appkeys.REPLIES]
    try:
        return await replies.wait(
            sent.request_id, sent.answer, sent.ack, accept_window_s(app), settings.reply_timeout_s
        )
    except (KafkaError, NotAccepted) as exc:
        replies.forget(sent.request_id)
        raise errors.KafkaUnavailable() from exc


def dispatch(app: web.Application, key: str, command: dict[str, Any]) -> Awaitable[dict[str, Any] | None]:
    """send, then answer_of: the worker's reply to `command`, or None when it is late. (A plain
    function handing back answer_of's coroutine: no second coroutine per request.)"""
    return answer_of(app, send(app, key, command))
