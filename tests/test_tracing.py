"""One trace per reservation across processes: the gateway's request span, continued by the
worker that applied the command (spans written to files by the processes themselves)."""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from booking_rush.telemetry import tracing
from ops.processes import free_port
from tests.support import (
    WorkerProcess,
    book,
    event_stream,
    gateway_process,
    queue_call,
    read_records,
    reserve_body,
    wait_until,
    worker_env,
)


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
            trace_id = await _reserve_and_check(
                http, base, worker_file, gateway_file, make_event, make_users, token_for
            )
        # The booking's event carries the trace in its record's headers (W3C traceparent), not
        # inside the event.
        ((created, headers),) = await read_records(
            schema.kafka_bootstrap, topics.events, lambda e: e.get("type") == "booking.created"
        )
        assert "trace" not in created
        assert headers["traceparent"].decode().split("-")[1] == trace_id
    finally:
        await worker.stop()


async def _reserve_and_check(http, base, worker_file, gateway_file, make_event, make_users, token_for) -> str:
    """Reserve through the traced gateway; the worker's span continues the request's trace,
    whose id it returns."""
    event = await make_event([("GA", 5)], shows=1)
    (user,) = await make_users(1)
    body = reserve_body(event)
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
    return request["trace_id"]


async def test_a_stream_is_traced_while_it_opens_not_for_its_life(
    schema, new_topics, jwt_secret, http, make_event, make_users, token_for, room, tmp_path
):
    """A live-position stream lasts minutes: its span ends once it is open (so it is exported
    while the stream still runs), and nothing traced stays held by each open stream."""
    topics = await new_topics("trace-stream")
    gateway_file = tmp_path / "gateway.jsonl"
    event = await make_event([("GA", 5)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "grace_s": 600})
    (user,) = await make_users(1)
    async with gateway_process(
        schema,
        topics,
        jwt_secret,
        http,
        BR_TRACE_FILE=str(gateway_file),
        BR_TRACE_SAMPLE_RATIO="1.0",
        BR_GATEWAY_METRICS_PORT=str(metrics_port := free_port()),
    ) as base:
        _, joined = await queue_call(http, base, token_for(user), "join", event.event_id)
        async with event_stream(http, base, event.event_id, joined["data"]["queue_ticket"]) as stream:
            _, name, standing = await stream.next_event()
            assert name == "standing" and standing["state"] == "waiting"
            opened: list[dict] = []

            async def opening_exported() -> bool:
                opened[:] = [s for s in spans(gateway_file) if s["name"] == "GET /api/v1/queue/stream"]
                return bool(opened)

            await wait_until(opening_exported, 20, "the stream's span exported while the stream is open")
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as r:  # the stream still open
                exposed = await r.text()
            assert f'waiting_room_sse_connections{{event_id="{event.event_id}"}} 1.0' in exposed
    (span,) = opened
    assert span["kind"] == "SERVER" and span["attributes"]["http.response.status_code"] == 200
    exported = spans(gateway_file)  # all of them: the gateway flushed its spans as it stopped
    # The Redis calls of the opening (the place in line, the presence mark) are its children.
    assert len([s for s in exported if s["parent_id"] == span["span_id"]]) >= 2
    # Nothing outside a traced request starts a trace of its own: not the rate limiter's call
    # before the stream opened, not the presence mark's removal when it closed.
    roots = [(s["kind"], s["name"]) for s in exported if s["parent_id"] is None]
    assert [root for root in roots if root[0] != "SERVER"] == []
    assert ("SERVER", "POST /api/v1/queue/join") in roots


async def test_requests_not_sampled_leave_no_spans_at_all(
    schema, new_topics, jwt_secret, http, make_event, make_users, token_for, room, tmp_path
):
    topics = await new_topics("trace-none")
    gateway_file = tmp_path / "gateway.jsonl"
    event = await make_event([("GA", 5)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "grace_s": 600})
    (user,) = await make_users(1)
    async with gateway_process(
        schema, topics, jwt_secret, http, BR_TRACE_FILE=str(gateway_file), BR_TRACE_SAMPLE_RATIO="0"
    ) as base:
        _, joined = await queue_call(http, base, token_for(user), "join", event.event_id)
        async with event_stream(http, base, event.event_id, joined["data"]["queue_ticket"]) as stream:
            await stream.next_event()
        body = {"event_id": event.event_id, "show_id": next(iter(event.shows)), "zone_id": "x", "quantity": 1}
        await book(http, base, token_for(user), body)  # refused (no pass): traced or not, the same
    assert spans(gateway_file) == []


@contextlib.asynccontextmanager
async def otlp_receiver():
    """A small OTLP/HTTP collector: POST /v1/traces (protobuf); yields (endpoint, spans received
    as dicts of name, trace_id, parent_id, service)."""
    received: list[dict] = []

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        {
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_id": span.parent_span_id.hex() or None,
                            "service": attributes.get("service.name"),
                        }
                    )
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


async def test_spans_go_to_an_otlp_collector_when_one_is_configured(
    schema, new_topics, jwt_secret, http, make_event, make_users, token_for
):
    topics = await new_topics("trace-otlp")
    async with otlp_receiver() as (endpoint, received):
        # OTEL_BSP_SCHEDULE_DELAY: the SDK's export period, 5 s by default.
        otlp = {"BR_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        worker = await WorkerProcess(
            worker_env(schema, topics, f"{topics.prefix}w", BR_WORKER_ROLES="commands", **otlp)
        ).start()
        try:
            async with gateway_process(
                schema, topics, jwt_secret, http, BR_GATEWAY_PROCESSES="1", **otlp
            ) as base:
                event = await make_event([("GA", 5)], shows=1)
                (user,) = await make_users(1)
                body = reserve_body(event)
                assert (await book(http, base, token_for(user), body))[0] == 201

                def one_trace() -> tuple[dict, dict] | None:
                    requests = [s for s in received if s["name"] == "POST /api/v1/bookings/reserve"]
                    applied = [s for s in received if s["name"] == "apply reserve"]
                    pairs = [(r, a) for r in requests for a in applied if a["trace_id"] == r["trace_id"]]
                    return pairs[0] if pairs else None

                async def exported() -> bool:
                    return one_trace() is not None

                await wait_until(exported, 20, "the gateway's and the worker's spans at the collector")
        finally:
            await worker.stop()
    request, applied = one_trace()
    assert (request["service"], applied["service"]) == ("gateway", "worker")
    assert applied["parent_id"] in {s["span_id"] for s in received if s["trace_id"] == request["trace_id"]}


def test_a_request_is_traced_at_the_ratio_or_when_its_caller_traces_it():
    traced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    untraced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    assert not any(tracing.sampled(0.0, {}) for _ in range(100))
    assert all(tracing.sampled(1.0, {}) for _ in range(100))
    assert tracing.sampled(0.0, {"traceparent": traced})
    assert not tracing.sampled(1.0, {"traceparent": untraced})
    share = sum(tracing.sampled(0.1, {}) for _ in range(20_000)) / 20_000
    assert 0.08 < share < 0.12
