"""Tracing (OpenTelemetry): one trace per reservation across processes (spec §9.3).

The gateway's request span travels in each command (W3C `traceparent`, in the command's "trace"
field, since a gateway batches many commands into one Kafka record); the worker continues it
with a span per command, and child spans for the Lua batch, the event produce and the answer.
Each booking event is a record of its own, so its trace rides in the record's headers
(`traceparent`, as Kafka tools expect) to the persistence consumer's span.
Redis and PostgreSQL calls are spans too (the OpenTelemetry instrumentations), once tracing is on.

Nothing is set up, and nothing exported, unless an exporter is configured: BR_OTLP_ENDPOINT
(OTLP over HTTP, e.g. http://collector:4318) and/or BR_TRACE_FILE (one JSON span a line: tests,
and a person without a collector). BR_TRACE_SAMPLE_RATIO (default 1.0; the spec: 1.0 in dev,
0.1 in production) is the share of gateway requests traced; everything downstream follows.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
from collections.abc import Sequence

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import SpanKind

TRACER = trace.get_tracer("booking-rush")
# W3C trace context and baggage: what the propagators write into a carrier.
CONTEXT_HEADERS = ("traceparent", "tracestate", "baggage")


class ServerRootsOnly(Sampler):
    """A trace starts only at a server span, which the gateway creates once it has decided to
    trace the request (`sampled`); a Redis or PostgreSQL call outside any traced request (a
    stream's later calls, the rate limiter before one) never becomes a trace of its own."""

    def should_sample(
        self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None
    ):
        if kind == SpanKind.SERVER:
            return ALWAYS_ON.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "ServerRootsOnly"


class JsonLinesExporter(SpanExporter):
    """Finished spans appended to a file, one JSON object a line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [
            json.dumps(
                {
                    "name": s.name,
                    "trace_id": format(s.context.trace_id, "032x"),
                    "span_id": format(s.context.span_id, "016x"),
                    "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
                    "service": s.resource.attributes.get("service.name"),
                    "kind": s.kind.name,
                    "start_ns": s.start_time,
                    "end_ns": s.end_time,
                    "attributes": dict(s.attributes or {}),
                }
            )
            for s in spans
        ]
        with self._lock, open(self.path, "a") as out:
            out.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS


def sample_ratio() -> float:
    return float(os.environ.get("BR_TRACE_SAMPLE_RATIO") or 1.0)


def configure(service: str, starts_traces: bool = False) -> TracerProvider | None:
    """Install the process's tracer provider if an exporter is configured; the caller shuts it
    down at exit (which flushes the last spans). Only the gateway starts traces (it decides per
    request, see `sampled`); workers only continue them, so their own background Redis calls
    never become traces of their own."""
    endpoint, path = os.environ.get("BR_OTLP_ENDPOINT"), os.environ.get("BR_TRACE_FILE")
    if not endpoint and not path:
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(ServerRootsOnly() if starts_traces else ALWAYS_OFF),
    )
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    if path:
        provider.add_span_processor(BatchSpanProcessor(JsonLinesExporter(path), schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    _instrument_clients()
    return provider


def _instrument_clients() -> None:
    """Redis and PostgreSQL calls as spans (only when tracing is on: the wrappers cost time)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument()
    AsyncPGInstrumentor().instrument()


def enabled() -> bool:
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def sampled(ratio: float, headers) -> bool:
    """Whether a request is traced: always when its caller's trace is (a `traceparent` saying
    so), else at `ratio`. Decided before any span exists, so the requests not traced pay for
    nothing: no span, and the Redis and PostgreSQL instrumentation switched off for them."""
    parent = headers.get("traceparent", "")
    if parent:
        return parent.endswith("-01")
    return random.random() < ratio


def carrier() -> dict[str, str] | None:
    """The current trace context, to travel inside a message (None when not tracing)."""
    if not enabled():
        return None
    out: dict[str, str] = {}
    propagate.inject(out)
    return out or None


def context_of(carried: dict[str, str] | None):
    return propagate.extract(carried or {})


def kafka_headers(carried: dict[str, str] | None) -> list[tuple[str, bytes]] | None:
    """A carried context as Kafka record headers (`traceparent`, `tracestate`), for a record
    that holds one message; None when there is none."""
    return [(name, value.encode()) for name, value in carried.items()] if carried else None


def from_kafka_headers(headers) -> dict[str, str]:
    """The trace context a record's headers carry ({} when none); a malformed header is ignored
    (the record is still the persistence consumer's to write)."""
    carried = {}
    for name, value in headers or ():
        if name in CONTEXT_HEADERS and isinstance(value, bytes):
            with contextlib.suppress(UnicodeDecodeError):
                carried[name] = value.decode()
    return carried
