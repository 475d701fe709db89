"""The gateway's listening socket queues BR_GATEWAY_LISTEN_BACKLOG connections (default 4,096,
capped by net.core.somaxconn), not aiohttp's 128: a burst of new connections past that is dropped
by the kernel and comes back seconds later."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import started_gateway


def listen_backlog(port: int) -> list[int]:
    """The backlog of every socket listening on `port` (ss shows it as Send-Q)."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True)
    return [int(line.split()[2]) for line in out.stdout.splitlines() if line.strip()]


SOMAXCONN = int(Path("/proc/sys/net/core/somaxconn").read_text())


async def test_the_gateway_listens_with_the_configured_backlog(schema, topics, jwt_secret, http):
    async with started_gateway(
        schema, topics, jwt_secret, http, BR_GATEWAY_PROCESSES="2", BR_GATEWAY_LISTEN_BACKLOG="1000"
    ) as (base, _):
        assert set(listen_backlog(int(base.rsplit(":", 1)[1]))) == {1000}  # every process's socket
    async with started_gateway(schema, topics, jwt_secret, http, BR_GATEWAY_PROCESSES="1") as (base, _):
        assert listen_backlog(int(base.rsplit(":", 1)[1])) == [min(4096, SOMAXCONN)]
