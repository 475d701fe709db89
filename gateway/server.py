"""One gateway process: the app on uvloop, listening with SO_REUSEPORT beside its siblings."""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys

import uvloop
from aiohttp import web

from booking_rush.telemetry import logs, tracing
from gateway.app import create_app
from gateway.settings import GatewaySettings


def serve(settings: GatewaySettings) -> None:
    # For a process that will not stop (gateway/__main__.py asks before it kills one): SIGUSR1
    # prints every asyncio task's stack, SIGUSR2 every thread's, on stderr.
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    logs.configure("gateway")
    tracer_provider = tracing.configure("gateway", starts_traces=True)
    uvloop.install()
    app = create_app(settings)
    app.on_startup.append(_tasks_dumped_on_sigusr1)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=True,
        backlog=settings.listen_backlog,
        access_log=None,
        print=None,
        shutdown_timeout=10,
        handle_signals=True,
    )
    if tracer_provider is not None:
        tracer_provider.shutdown()  # the last spans out


async def _tasks_dumped_on_sigusr1(app: web.Application) -> None:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump_tasks)
    # Until this line SIGUSR1 still has its default action (the process ends): say when it has not.
    print(f"gateway process {os.getpid()} started; SIGUSR1 prints its tasks", file=sys.stderr, flush=True)


def _dump_tasks() -> None:
    for task in asyncio.all_tasks():
        print(f"--- {task!r}", file=sys.stderr)
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()
