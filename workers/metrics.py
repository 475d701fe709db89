"""Prometheus metrics (spec §9.2, and the waiting room's), under the names the autoscalers and
alert rules read.

Every process records into prometheus_client's default registry. A gateway that runs several
processes sets PROMETHEUS_MULTIPROC_DIR before they start (gateway/__main__.py): each process then
writes its values to files there, and `/metrics` on any of them sums all of them, so a scrape
that lands on any process sees the whole pod. Worker processes are one per pod and serve their
own (`serve_metrics`).

Counters are exposed with the `_total` suffix Prometheus requires: `booking_reservation_failures`
reads as `booking_reservation_failures_total`.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as multiproc
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError

log = logging.getLogger("workers.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# spec §9.2
HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency, to the answer (a stream: to its headers)",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
RESERVATIONS = Counter("booking_reservations_total", "Seats reservations made", ["event_id"])
RESERVATION_FAILURES = Counter(
    "booking_reservation_failures", "Reservations refused, by reason", ["event_id", "reason"]
)
REDIS_DURATION = Histogram(
    "redis_operation_duration_seconds",
    "Redis round trips (a pipeline counts once)",
    ["service", "operation"],
    buckets=LATENCY_BUCKETS,
)
KAFKA_LAG = Gauge(
    "kafka_consumer_lag",
    "Records behind the end of the log, per consumer group and topic",
    ["group", "topic"],
    multiprocess_mode="livesum",
)


def record_lag(consumer, group: str, topic: str, batches: dict) -> None:
    """kafka_consumer_lag: how far the batch just fetched is from the end of each partition
    (nothing fetched: caught up). What the consumers' autoscaler reads."""
    lag = 0
    for tp, records in batches.items():
        highwater = consumer.highwater(tp)
        if highwater is not None and records:
            lag += max(0, highwater - (records[-1].offset + 1))
    KAFKA_LAG.labels(group, topic).set(lag)


ACTIVE_RESERVATIONS = Gauge(
    "active_reservations",
    "Holds keeping seats out of sale and not yet sold (reserved or paying)",
    ["event_id"],
    multiprocess_mode="livemax",
)
DB_CONNECTIONS = Gauge(
    "db_connections_active", "PostgreSQL connections in use", ["service"], multiprocess_mode="livesum"
)


def record_db_connections(service: str, pool) -> None:
    """db_connections_active: an asyncpg pool's connections in use."""
    DB_CONNECTIONS.labels(service).set(pool.get_size() - pool.get_idle_size())


# Seats per zone (the Low Stock alert: available below a tenth of the total)
ZONE_AVAILABLE = Gauge(
    "zone_seats_available",
    "Seats still on sale in a zone",
    ["event_id", "show_id", "zone_id"],
    multiprocess_mode="livemax",
)
ZONE_TOTAL = Gauge(
    "zone_seats_total", "Seats of a zone", ["event_id", "show_id", "zone_id"], multiprocess_mode="livemax"
)

# Payments (the payment workers)
PAYMENT_OUTCOMES = Counter(
    "payment_outcomes", "Payments settled and refunds completed at the provider", ["outcome"]
)

# The waiting room
QUEUE_DEPTH = Gauge(
    "waiting_room_queue_depth",
    "People in line (and in the pre-queue)",
    ["event_id"],
    multiprocess_mode="livemax",
)
ROOM_ACTIVE = Gauge(
    "waiting_room_active", "Admitted people still active", ["event_id"], multiprocess_mode="livemax"
)
ADMITTED = Counter("waiting_room_admitted", "People let in", ["event_id"])
WAIT_SECONDS = Histogram(
    "waiting_room_wait_seconds",
    "Time in line, from taking a place to being let in",
    ["event_id"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
ADMISSION_RATE = Gauge(
    "waiting_room_admission_rate_per_minute",
    "Admissions over the last minute",
    ["event_id"],
    multiprocess_mode="livemax",
)
SSE_CONNECTIONS = Gauge(
    "waiting_room_sse_connections",
    "Open live-position streams (per pod: what the gateways' autoscaler reads)",
    ["event_id"],
    multiprocess_mode="livesum",
)


@contextmanager
def timed(histogram: Histogram, **labels: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(**labels).observe(time.perf_counter() - started)


def exposition() -> bytes:
    """Every metric of this process, or of every process sharing the multiprocess folder."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiproc.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def metrics_handler(request: web.Request) -> web.Response:
    # CONTENT_TYPE_LATEST carries a charset; aiohttp wants it apart.
    return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def serve_metrics(host: str, port: int) -> web.AppRunner:
    """A worker process's own /metrics (port 0: any free one; the caller reads it back)."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    return runner.addresses[0][1]


class DramatiqQueueDepth:
    """dramatiq_queue_depth{queue}: jobs waiting in each queue of the aux Redis (".DQ": retries
    waiting out their delay), read at scrape (KEDA reads the same lists). `redis_client` should
    time out quickly: an aux Redis that does not answer leaves the series out of that scrape,
    and the rest of /metrics (the probes read it) still answers."""

    NAME, LABELS = "dramatiq_queue_depth", ("queue",)

    def __init__(self, redis_client, namespace: str, queues: list[str]) -> None:
        self.redis, self.namespace, self.queues = redis_client, namespace, queues

    def collect(self):
        family = GaugeMetricFamily(self.NAME, "Jobs waiting in a Dramatiq queue", labels=list(self.LABELS))
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.llen(f"{self.namespace}:{queue}")
                depths = pipe.execute()
        except RedisError as exc:
            log.warning("dramatiq_queue_depth left out of this scrape: %s", exc)
            depths = []
        for queue, depth in zip(self.queues, depths, strict=False):
            family.add_metric([queue], depth)
        yield family
