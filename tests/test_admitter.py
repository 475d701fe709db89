"""A real admitter process (python -m workers, role admitter) lets a waiting user in: the status
poll turns into a pass, and the broadcast tells a gateway process the room is engaged."""

from __future__ import annotations

import time

import orjson
import pytest_asyncio

from booking_rush.contract.messages import now_ms
from gateway.room_view import RoomView
from lua import keys
from tests.support import WorkerProcess, queue_call, wait_until, worker_env
from waiting_room.passes import PassKeys, QueuePasses
from workers.admitter import QUIET_RECHECK_MS, TICKS_PER_MESSAGE, Admitter
from workers.settings import WorkerSettings


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


async def test_one_tick_of_many_rooms_is_one_broadcast_message_per_batch_of_rooms(
    make_event, room, sale_redis, schema, topics
):
    events = [await make_event([("GA", 10)], shows=1) for _ in range(3)]
    for event in events:
        await room.configure(event.event_id, {"mode": "always"})
    pubsub = sale_redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(keys.ROOM_CHANNEL)
    try:
        live = await sale_redis.scard(keys.LIVE_ROOMS)
        ticks = await Admitter(room, WorkerSettings(endpoints=schema.endpoints(topics.prefix))).tick(now_ms())
        assert {e.event_id for e in events} <= set(ticks)
        messages, deadline = [], time.monotonic() + 10
        while len(messages) < -(-live // TICKS_PER_MESSAGE):
            assert time.monotonic() < deadline, f"{len(messages)} broadcasts of a tick of {live} rooms"
            message = await pubsub.get_message(timeout=1)  # None also for the subscription's own
            if message is not None and (broadcast := orjson.loads(message["data"]))["type"] == "ticks":
                messages.append(broadcast)
    finally:
        await pubsub.aclose()
    ticked = [t["event_id"] for m in messages for t in m["ticks"]]
    assert len(ticked) == len(set(ticked)) == len(ticks)  # every room once, in ceil(n / 500) messages

    # A gateway process applies each room's tick from the batch.
    view = RoomView(room, QueuePasses(PassKeys.generate()))
    for m in messages:
        view.apply(m)
    assert all(view.engaged_rooms[e.event_id] for e in events)


async def test_a_quiet_room_is_ticked_every_few_seconds_and_at_once_when_someone_joins(
    make_event, make_users, room, schema, topics
):
    event = await make_event([("GA", 10)], shows=1)
    (user,) = await make_users(1)
    await room.configure(event.event_id, {"mode": "always", "rate_per_min": 600, "grace_s": 600})
    admitter = Admitter(room, WorkerSettings(endpoints=schema.endpoints(topics.prefix)))
    t0 = now_ms()
    assert event.event_id in await admitter.tick(t0)  # a configured room is woken: ticked
    assert event.event_id not in await admitter.tick(t0 + 1_000)  # quiet: nobody in line

    await room.enter(event.event_id, user, t0 + 1_500, "join")  # wakes it
    tick = (await admitter.tick(t0 + 2_000))[event.event_id]
    assert [u for u, _ in tick["admitted"]] == [user]

    # Nobody left in line: found quiet again at the next tick, then looked at only after
    # QUIET_RECHECK_MS (or when woken).
    assert event.event_id in await admitter.tick(t0 + 3_000)
    assert event.event_id not in await admitter.tick(t0 + 4_000)
    assert event.event_id in await admitter.tick(t0 + 3_000 + QUIET_RECHECK_MS)
