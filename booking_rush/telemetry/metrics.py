"""Prometheus metrics (spec §9.2): the ones every process records (Redis round trips, consumer
lag, database connections), and how a process exposes its own. Each process's own metrics are
beside this module (gateway_metrics, worker_metrics, payment_metrics), under the names the
autoscalers and alert rules read.

Every process records into prometheus_client's default registry. A gateway that runs several
processes sets PROMETHEUS_MULTIPROC_DIR before they start (gateway/__main__.py): each process then
writes its values to files there, and `/metrics` on any of them sums all of them, so a scrape
that lands on any process sees the whole pod. Worker processes are one per pod and serve their
own (`serve_metrics`).

Counters are exposed with the `_total` suffix Prometheus requires: `booking_reservation_failures`
reads as `booking_reservation_failures_total`.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as multiproc

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

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


DB_CONNECTIONS = Gauge(
    "db_connections_active", "PostgreSQL connections in use", ["service"], multiprocess_mode="livesum"
)


def record_db_connections(service: str, pool) -> None:
    """db_connections_active: an asyncpg pool's connections in use."""
    DB_CONNECTIONS.labels(service).set(pool.get_size() - pool.get_idle_size())


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


async def serve_metrics(
    host: str, port: int, handler=metrics_handler, reuse_port: bool = False
) -> web.AppRunner:
    """/metrics on a listener of its own, apart from any API (port 0: any free one; the caller
    reads it back). `reuse_port`: the processes of one pod share the port, any one answers."""
    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    return runner.addresses[0][1]
