"""One trace per reservation across processes: the gateway's request span, continued by the
worker that applied the command (spans written to files by the processes themselves)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import WorkerProcess, book, gateway_process, wait_until, worker_env
from workers import tracing


def spans(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_a_reservation_is_one_trace_from_the_gateway_through_the_worker(
    schema, new_topics, jwt_secret, http, make_event, make_users, token_for, tmp_path
):
    topics = await new_topics("trace")
    gateway_file, worker_file = tmp_path / "gateway.jsonl", tmp_path / "worker.jsonl"
    worker = await WorkerProcess(
        worker_env(
            schema,
            topics,
            f"{topics.prefix}w",
            BR_WORKER_ROLES="commands,persistence",
            BR_TRACE_FILE=str(worker_file),
        )
    ).start()
    try:
        async with gateway_process(
            schema,
            topics,
            jwt_secret,
            http,
            BR_GATEWAY_PROCESSES="1",
            BR_TRACE_FILE=str(gateway_file),
            BR_TRACE_SAMPLE_RATIO="1.0",
        ) as base:
            await _reserve_and_check(http, base, worker_file, gateway_file, make_event, make_users, token_for)
    finally:
        await worker.stop()


async def _reserve_and_check(http, base, worker_file, gateway_file, make_event, make_users, token_for):
    """Reserve through the traced gateway; the worker's span continues the request's trace."""
    event = await make_event([("GA", 5)], shows=1)
    show = next(iter(event.shows))
    (user,) = await make_users(1)
    body = {
        "event_id": event.event_id,
        "show_id": show,
        "zone_id": event.shows[show]["GA"],
        "quantity": 1,
    }
    status, _ = await book(http, base, token_for(user), body)
    assert status == 201

    found: dict[str, list[dict]] = {}

    async def both_exported() -> bool:
        found["gateway"] = [s for s in spans(gateway_file) if s["name"] == "POST /api/v1/bookings/reserve"]
        found["worker"] = [s for s in spans(worker_file) if s["name"] == "apply reserve"]
        found["persisted"] = [s for s in spans(worker_file) if s["name"] == "persist booking.created"]
        return all(found.values())

    await wait_until(both_exported, 20, "spans from the gateway and the worker")
    (request,) = found["gateway"]
    (applied,) = [s for s in found["worker"] if s["trace_id"] == request["trace_id"]]
    assert request["service"] == "gateway" and applied["service"] == "worker"
    assert applied["kind"] == "CONSUMER" and applied["parent_id"] is not None
    gateway_spans = {s["span_id"]: s for s in spans(gateway_file) if s["trace_id"] == request["trace_id"]}
    assert applied["parent_id"] in gateway_spans  # continued from inside the gateway's request
    stages = {s["name"] for s in spans(worker_file) if s["parent_id"] == applied["span_id"]}
    assert stages == {"redis lua batch", "kafka produce booking.events", "redis answer"}
    # The booking's row in PostgreSQL, by the persistence consumer, in the same trace.
    assert [s["trace_id"] for s in found["persisted"]] == [request["trace_id"]]
    # Redis calls made while serving the request are spans of the same trace.
    assert len(gateway_spans) > 1


def test_a_request_is_traced_at_the_ratio_or_when_its_caller_traces_it():
    traced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    untraced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    assert not any(tracing.sampled(0.0, {}) for _ in range(100))
    assert all(tracing.sampled(1.0, {}) for _ in range(100))
    assert tracing.sampled(0.0, {"traceparent": traced})
    assert not tracing.sampled(1.0, {"traceparent": untraced})
    share = sum(tracing.sampled(0.1, {}) for _ in range(20_000)) / 20_000
    assert 0.08 < share < 0.12
