"""The gateway's own metrics (spec §9.2, and the live-position streams the gateways' autoscaler
reads)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from booking_rush.telemetry.metrics import LATENCY_BUCKETS

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency, to the answer (a stream: to its headers)",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
SSE_CONNECTIONS = Gauge(
    "waiting_room_sse_connections",
    "Open live-position streams (per pod: what the gateways' autoscaler reads)",
    ["event_id"],
    multiprocess_mode="livesum",
)
