"""`python -m gateway` with several processes: SIGTERM goes to every child, and a child that does
not stop within BR_GATEWAY_STOP_DEADLINE_SECONDS is asked for its stacks and killed, so the
gateway as a whole always exits (a stuck child must not hold a rollout, or a test run, for
ever) and says why it exited 1."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

from tests.support import started_gateway, wait_until


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_child_that_will_not_stop_is_killed_after_the_deadline(schema, topics, jwt_secret, http):
    async with started_gateway(
        schema,
        topics,
        jwt_secret,
        http,
        BR_GATEWAY_PROCESSES="2",
        BR_GATEWAY_STOP_DEADLINE_SECONDS="2",
    ) as (base, proc):
        log = schema.state_dir / "logs" / f"test-gateway-{base.rsplit(':', 1)[1]}.err"
        gateways = [p for p in children_of(proc.pid) if b"spawn_main" in _cmdline(p)]
        assert len(gateways) == 2
        stuck, healthy = gateways

        async def started() -> bool:  # before that, SIGUSR1's default action would end it
            return f"gateway process {healthy} started" in log.read_text()

        await wait_until(started, 30, "the child's start-up done")
        os.kill(healthy, signal.SIGUSR1)  # a running child prints its asyncio tasks' stacks

        async def tasks_printed() -> bool:
            return "--- <Task" in log.read_text()

        await wait_until(tasks_printed, 10, "the child's tasks on its stderr")
        os.kill(stuck, signal.SIGSTOP)  # frozen: it cannot act on the SIGTERM it is sent
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 1
    assert not alive(healthy) and not alive(stuck)
    assert "did not stop 2 s after SIGTERM" in log.read_text()


def _cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()
