"""Run the gateway as N processes sharing one listening port (SO_REUSEPORT), each on uvloop.

Usage: python -m gateway   (BR_GATEWAY_PROCESSES, default one per core)
Each process has its own reply channel; SIGTERM drains in-flight requests and stops.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import tempfile
import time

from prometheus_client import multiprocess as multiproc

from booking_rush.telemetry.metrics import MULTIPROC_ENV
from gateway.server import serve
from gateway.settings import ConfigError, GatewaySettings


def main() -> int:
    try:
        settings = GatewaySettings.from_env()
    except (ConfigError, ValueError) as exc:
        print(f"gateway: bad configuration: {exc}", file=sys.stderr)
        return 2
    if settings.processes <= 1:
        serve(settings)
        return 0
    # Several processes, one pod: each writes its metrics to files in one folder, and /metrics
    # on any of them sums them all (booking_rush/telemetry/metrics.py). Set before the children
    # import anything.
    metrics_dir = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    ctx = multiprocessing.get_context("spawn")
    children = [
        ctx.Process(target=serve, args=(settings,), name=f"gateway-{i}") for i in range(settings.processes)
    ]
    for child in children:
        child.start()
    print(f"gateway: {len(children)} processes on http://{settings.host}:{settings.port}", flush=True)

    stopping_since: list[float] = []
    killed: list[str] = []

    def forward(signum, _frame):
        stopping_since.append(time.monotonic())
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: each child drains and exits

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        while child.is_alive():
            child.join(1.0)
            deadline_s = settings.stop_deadline_s
            if stopping_since and time.monotonic() - stopping_since[0] > deadline_s and child.is_alive():
                # A child that outlives its own 10 s drain by this much is stuck: the pod's grace
                # period would end it the same way, and the rest of the gateway must not wait.
                print(
                    f"gateway: {child.name} did not stop {deadline_s:.0f} s after SIGTERM; "
                    "its tasks' and threads' stacks follow, then it is killed",
                    file=sys.stderr,
                    flush=True,
                )
                os.kill(child.pid, signal.SIGUSR1)  # its asyncio tasks (gateway/server.py)
                os.kill(child.pid, signal.SIGUSR2)  # its threads (faulthandler)
                child.join(1.0)
                child.kill()
                killed.append(child.name)
        multiproc.mark_process_dead(child.pid, metrics_dir)  # its live gauges stop counting
    return 1 if killed else max((c.exitcode or 0) for c in children)


if __name__ == "__main__":
    sys.exit(main())
