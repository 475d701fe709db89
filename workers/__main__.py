"""Run one worker process: the command consumer, the sweeper, the persistence consumer, the
waiting-room admitter and the archiver (it keeps the sale Redis bounded).

Usage: python -m workers   (roles from BR_WORKER_ROLES, default all five)
SIGTERM/SIGINT: stop fetching, finish the batch in hand, commit, close, within a time bound.
A role that fails starts again (workers/supervision.py); the process exits 1 only when one keeps
failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import uvloop

from booking_rush.services.clients import idempotent_producer, pg_pool, sale_redis
from booking_rush.telemetry import logs, metrics, tracing
from lua import load_scripts
from waiting_room.room import WaitingRoom
from workers.admitter import Admitter
from workers.archiver import Archiver
from workers.audit_partitions import keep_partitions_ahead
from workers.commands import CommandConsumer
from workers.gauges import SaleGauges
from workers.persistence import PersistenceConsumer
from workers.settings import WorkerSettings
from workers.supervision import supervise
from workers.sweeper import Sweeper
from workers.turn_notices import turn_notices

log = logging.getLogger("workers")


async def serve(settings: WorkerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        redis = await stack.enter_async_context(sale_redis(settings.endpoints.sale_redis_url))
        # linger 0: a worker sends a whole batch's events at once and then waits for the ack.
        producer = await stack.enter_async_context(
            idempotent_producer(settings.endpoints.kafka_bootstrap, linger_ms=0)
        )
        tasks: list[asyncio.Task] = []

        def role(name: str, start) -> None:
            """`start()` makes a fresh run of the role: a failed one starts again (supervise)."""
            run = supervise(name, start, stop, max_failures=settings.role_max_failures)
            tasks.append(asyncio.create_task(run, name=name))

        if {"commands", "admitter", "archiver"} & set(settings.roles):
            scripts = await load_scripts(redis)
        if "commands" in settings.roles:
            role("commands", lambda: CommandConsumer(redis, scripts, producer, settings).run(stop))
        if "sweeper" in settings.roles:
            role("sweeper", lambda: Sweeper(redis, producer, settings).run(stop))
        if "admitter" in settings.roles:
            notices = await stack.enter_async_context(turn_notices(WaitingRoom(redis, scripts), settings))
            role("admitter", lambda: Admitter(WaitingRoom(redis, scripts), settings, notices).run(stop))
        if {"persistence", "archiver"} & set(settings.roles):
            pool = await stack.enter_async_context(pg_pool(settings.endpoints.database_url))
        if "archiver" in settings.roles:
            role("archiver", lambda: Archiver(redis, scripts, pool, settings).run(stop))
        if "persistence" in settings.roles:
            role("persistence", lambda: PersistenceConsumer(pool, producer, settings).run(stop))
            # The audit log's next months get their partitions before any row needs them.
            role("audit-partitions", lambda: keep_partitions_ahead(pool, stop))
        if settings.metrics_port is not None:
            # Live holds, zone seats and (with persistence) PostgreSQL connections, as gauges.
            gauges = SaleGauges(redis, pool if "persistence" in settings.roles else None)
            role("gauges", lambda: gauges.run(stop))
            runner = await metrics.serve_metrics(settings.metrics_host, settings.metrics_port)
            stack.push_async_callback(runner.cleanup)
            print(f"worker {settings.instance_id} metrics on :{metrics.bound_port(runner)}", flush=True)
        log.info("worker %s running roles %s", settings.instance_id, ",".join(settings.roles))
        print(f"worker {settings.instance_id} ready", flush=True)
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        # Each role finishes its batch and commits; bounded so a stuck broker cannot hang us.
        finished, unfinished = await asyncio.wait(tasks, timeout=settings.shutdown_timeout_s + 5)
        for task in unfinished:
            task.cancel()
        for task in finished:
            if not task.cancelled() and task.exception():
                # Only a persistent failure gets here (supervise starts a failed role again).
                log.error(
                    "role %s failed for good; the worker exits", task.get_name(), exc_info=task.exception()
                )
                raise SystemExit(1)
    log.info("worker %s stopped", settings.instance_id)


def main() -> int:
    logs.configure("worker")
    tracer_provider = tracing.configure("worker")
    settings = WorkerSettings.from_env()
    try:
        uvloop.run(serve(settings))
    finally:
        if tracer_provider is not None:
            tracer_provider.shutdown()  # the last spans out
    return 0


if __name__ == "__main__":
    sys.exit(main())
