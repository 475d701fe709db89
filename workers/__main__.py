"""Run one worker process: the command consumer, the sweeper, the persistence consumer, the
waiting-room admitter and the archiver (it keeps the sale Redis bounded).

Usage: python -m workers   (roles from BR_WORKER_ROLES, default all five)
SIGTERM/SIGINT: stop fetching, finish the batch in hand, commit, close, within a time bound.
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
from workers.sweeper import Sweeper

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
        tasks = []
        if {"commands", "admitter", "archiver"} & set(settings.roles):
            scripts = await load_scripts(redis)
        if "commands" in settings.roles:
            consumer = CommandConsumer(redis, scripts, producer, settings)
            tasks.append(asyncio.create_task(consumer.run(stop), name="commands"))
        if "sweeper" in settings.roles:
            tasks.append(asyncio.create_task(Sweeper(redis, producer, settings).run(stop), name="sweeper"))
        if "admitter" in settings.roles:
            room = WaitingRoom(redis, scripts)
            tasks.append(asyncio.create_task(Admitter(room, settings).run(stop), name="admitter"))
        if {"persistence", "archiver"} & set(settings.roles):
            pool = await stack.enter_async_context(pg_pool(settings.endpoints.database_url))
        if "archiver" in settings.roles:
            archiver = Archiver(redis, scripts, pool, settings)
            tasks.append(asyncio.create_task(archiver.run(stop), name="archiver"))
        if "persistence" in settings.roles:
            persistence = PersistenceConsumer(pool, producer, settings)
            tasks.append(asyncio.create_task(persistence.run(stop), name="persistence"))
            # The audit log's next months get their partitions before any row needs them.
            tasks.append(asyncio.create_task(keep_partitions_ahead(pool, stop), name="audit-partitions"))
        if settings.metrics_port is not None:
            # Live holds, zone seats and (with persistence) PostgreSQL connections, as gauges.
            gauges = SaleGauges(redis, pool if "persistence" in settings.roles else None)
            tasks.append(asyncio.create_task(gauges.run(stop), name="gauges"))
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
                log.error("role %s failed", task.get_name(), exc_info=task.exception())
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
