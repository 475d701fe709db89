"""Structured logs: one JSON object a line, with the request, the user and the trace, and nothing
secret or personal in clear."""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from booking_rush.telemetry import logs
from tests.support import WorkerProcess, worker_env

ACCESS_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"


def _line(message: str, *args, **extra) -> dict:
    record = logging.LogRecord("gateway.test", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(logs.JsonFormatter("gateway").format(record))


def test_a_line_carries_service_level_request_user_and_trace():
    request_token, user_token = logs.REQUEST_ID.set("req-1"), logs.USER_ID.set("user-9")
    try:
        with TracerProvider().get_tracer("test").start_as_current_span("reserve") as span:
            line = _line("reserve refused: %s", "sold out")
            context = span.get_span_context()
    finally:
        logs.REQUEST_ID.reset(request_token)
        logs.USER_ID.reset(user_token)
    assert line["level"] == "WARNING" and line["service"] == "gateway" and line["logger"] == "gateway.test"
    assert line["message"] == "reserve refused: sold out"
    assert (line["request_id"], line["user_id"]) == ("req-1", "user-9")
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["timestamp"].endswith("+00:00")


def test_outside_a_request_and_a_span_the_ids_are_absent():
    line = _line("tick")
    assert line["request_id"] is None and line["user_id"] is None and "trace_id" not in line


def test_tokens_secrets_and_personal_data_are_masked():
    line = _line(
        "login of %s with Authorization: Bearer %s, pass %s, card %s at %d",
        "alice.smith@example.com",
        ACCESS_TOKEN,
        'password="hunter2"',
        "4242 4242 4242 4242",
        1795867851380,  # a timestamp in ms failing the Luhn check (9 in 10 do): stays readable
        refresh_token="r-secret",
        details={"email": "bob@example.org", "cvc": "123"},
    )
    text = json.dumps(line)
    for secret in (
        "alice.smith",
        "hunter2",
        "eyJhbGciOiJIUzI1NiJ9",
        "4242 4242 4242 4242",
        "r-secret",
        "bob@",
        '123"',
    ):
        assert secret not in text, secret
    assert "a***@example.com" in line["message"] and "****4242" in line["message"]
    assert "1795867851380" in line["message"]
    assert line["refresh_token"] == "[masked]"
    assert line["details"] == {"email": "b***@example.org", "cvc": "[masked]"}


async def test_a_worker_logs_json_lines(schema, new_topics):
    topics = await new_topics("logs")
    worker = await WorkerProcess(
        worker_env(schema, topics, f"{topics.prefix}w", BR_WORKER_ROLES="sweeper")
    ).start()
    await worker.stop()
    lines = [json.loads(text) for text in worker.output if text.startswith("{")]
    started = [line for line in lines if "running roles" in line["message"]]
    assert started and started[0]["service"] == "worker" and started[0]["level"] == "INFO"
