"""Sending one command to the workers through Kafka and waiting, bounded, for its answer."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiokafka.errors import KafkaError

from gateway import appkeys, errors
from gateway.replies import NotAccepted
from gateway.responses import ok
from workers import tracing

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


async def dispatch(app: web.Application, key: str, command: dict[str, Any]) -> dict[str, Any] | None:
    """The worker's reply to `command` (partition key `key`), or None when it is late (the
    caller answers 202). Raises KafkaUnavailable when Kafka did not take it in time."""
    settings, replies = app[appkeys.SETTINGS], app[appkeys.REPLIES]
    request_id = command["request_id"]
    carried = tracing.carrier()
    if carried:  # a traced request: its trace goes on with the command, to the worker
        command["trace"] = carried
    answer = replies.expect(request_id)
    try:
        ack = app[appkeys.BATCHER].submit(key, command)
        # Past accept_by the broker's append time makes a worker refuse a reserve, so after
        # waiting that long (plus a margin for clock skew) "nothing was accepted" is true even
        # if the producer still delivers it later.
        return await replies.wait(
            request_id,
            answer,
            ack,
            settings.accept_timeout_s + ACCEPT_SKEW_MARGIN_S,
            settings.reply_timeout_s,
        )
    except (KafkaError, NotAccepted) as exc:
        replies.forget(request_id)
        raise errors.KafkaUnavailable() from exc
