"""One payment worker process: Dramatiq actors for payments, refunds and mail.

Usage: python -m workers.payment_worker (which runs `main`; broker: the aux Redis,
BR_AUX_REDIS_URL; queues under the deployment's BR_TOPIC_PREFIX). SIGTERM/SIGINT: finish the
jobs in hand, then stop.
"""

from __future__ import annotations

import logging
import signal
import threading

import dramatiq
import redis
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import AsyncIO, Middleware, default_middleware
from prometheus_client import REGISTRY, start_http_server

from booking_rush.services import job_queue
from booking_rush.services.mail import MailSettings
from booking_rush.telemetry import logs, payment_metrics, tracing
from workers.payments.jobs import PaymentRuntime, PaymentSettings, declare_actors
from workers.settings import WorkerSettings

log = logging.getLogger("workers.payment_worker")


class CloseRuntime(Middleware):
    """Closes the actors' clients on their own event loop before Dramatiq stops it."""

    def __init__(self, runtime: PaymentRuntime) -> None:
        self.runtime = runtime

    def before_worker_shutdown(self, broker, worker) -> None:
        get_event_loop_thread().run_coroutine(self.runtime.close())


def main() -> int:
    logs.configure("payment-worker")
    tracer_provider = tracing.configure("payment-worker")
    settings = WorkerSettings.from_env()
    payment = PaymentSettings.from_env()
    runtime = PaymentRuntime(settings, payment, MailSettings.from_env())
    middleware = [m() for m in default_middleware] + [AsyncIO(), CloseRuntime(runtime)]
    broker = job_queue.broker(
        settings.endpoints.aux_redis_url, settings.endpoints.topic_prefix, middleware=middleware
    )
    declare_actors(broker, runtime)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker = dramatiq.Worker(broker, worker_threads=payment.threads, worker_timeout=200)
    worker.start()
    if settings.metrics_port is not None:
        queues = sorted({*broker.get_declared_queues(), *broker.get_declared_delay_queues()})
        # A client of its own that gives up within a second: a scrape never hangs on the aux Redis.
        depth_client = redis.Redis.from_url(
            settings.endpoints.aux_redis_url, socket_timeout=1, socket_connect_timeout=1
        )
        REGISTRY.register(payment_metrics.DramatiqQueueDepth(depth_client, broker.namespace, queues))
        server, _ = start_http_server(settings.metrics_port, settings.metrics_host)
        print(f"payment worker {settings.instance_id} metrics on :{server.server_port}", flush=True)
    log.info("payment worker %s consuming %s", settings.instance_id, sorted(broker.get_declared_queues()))
    print(f"payment worker {settings.instance_id} ready", flush=True)
    stop.wait()
    worker.stop(timeout=int(settings.shutdown_timeout_s * 1000))
    broker.close()
    if tracer_provider is not None:
        tracer_provider.shutdown()
    log.info("payment worker %s stopped", settings.instance_id)
    return 0
