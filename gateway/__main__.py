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

    def forward(signum, _frame):
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: each child drains and exits

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
        multiproc.mark_process_dead(child.pid, metrics_dir)  # its live gauges stop counting
    return max((c.exitcode or 0) for c in children)


if __name__ == "__main__":
    sys.exit(main())
