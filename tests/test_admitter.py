"""A real admitter process (python -m workers, role admitter) lets a waiting user in: the status
poll turns into a pass, and the broadcast tells a gateway process the room is engaged."""

from __future__ import annotations

import pytest_asyncio

from tests.support import WorkerProcess, queue_call, wait_until, worker_env


@pytest_asyncio.fixture(loop_scope="session")
async def admitter(schema, topics):
    env = worker_env(
        schema, topics, f"{topics.prefix}admitter", BR_WORKER_ROLES="admitter", BR_ADMIT_TICK_SECONDS="0.2"
    )
    proc = await WorkerProcess(env).start()
    yield proc
    await proc.stop()


async def test_an_admitter_process_admits_a_waiting_user(
    gateway_url, http, make_event, make_users, token_for, room, admitter
):
    event = await make_event([("GA", 10)], shows=1)
    (user,) = await make_users(1)
    token = token_for(user)
    await room.configure(event.event_id, {"mode": "paused", "grace_s": 600})
    status, joined = await queue_call(http, gateway_url, token, "join", event.event_id)
    assert joined["data"]["state"] == "paused", joined  # in line; nobody let in yet
    await room.configure(event.event_id, {"mode": "always", "rate_per_min": 600})

    async def admitted() -> bool:
        _, standing = await queue_call(http, gateway_url, token, "status", event.event_id)
        return standing["data"]["state"] == "admitted" and bool(standing["data"]["pass"])

    await wait_until(admitted, timeout=15, what="the admitter to admit the user")
    stats = await room.stats(event.event_id, 0)
    assert stats["admitted"] == 1 and stats["waiting"] == 0
