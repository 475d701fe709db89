"""Mode auto: the room engages when the reserve request rate (counted by the gateways) or the
active users plus holds cross their thresholds, and disengages only when nobody is waiting."""

from __future__ import annotations

import asyncio

from lua import keys
from tests.support import book, call, queue_call, reserve, wait_until
from workers.admitter import tick_message


async def tick(room, event_id: str, now_ms: int) -> dict:
    """One admission tick, broadcast to the gateways as the admitter does."""
    result = await room.admit(event_id, now_ms)
    await room.broadcast(tick_message(event_id, now_ms, result))
    return result


async def test_a_burst_of_reserve_requests_engages_the_room(
    gateway_url, http, make_event, make_users, token_for, room, sale_redis
):
    event = await make_event([("GA", 100)], shows=1)
    await room.configure(event.event_id, {"mode": "auto", "auto_rps": 5, "auto_active": 10_000})
    show = next(iter(event.shows))
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["GA"], "quantity": 1}
    users = await make_users(12)
    await asyncio.gather(*(reserve(http, gateway_url, token_for(u), body) for u in users))
    hits_key = keys.room(event.event_id, "hits")

    async def counted() -> dict[int, int]:
        return {int(k): int(v) for k, v in (await sale_redis.hgetall(hits_key)).items()}

    async def flushed() -> bool:
        return sum((await counted()).values()) == len(users)

    await wait_until(flushed, timeout=5, what="the gateway to flush its reserve counts")
    busiest = max((await counted()).items(), key=lambda kv: kv[1])[0]
    assert (await tick(room, event.event_id, (busiest + 1) * 1000 + 100))["engaged"] == 1

    (late,) = await make_users(1)
    status, refused = await reserve(http, gateway_url, token_for(late), body)
    assert (status, refused["error"]["code"]) == (403, "QUEUE_PASS_REQUIRED")


async def test_active_holds_engage_the_room_and_it_disengages_only_when_nobody_waits(
    gateway_url, http, make_event, make_users, token_for, room, token_with_role
):
    event = await make_event([("GA", 100)], shows=1)
    await room.configure(
        event.event_id, {"mode": "auto", "auto_active": 2, "auto_rps": 10_000, "grace_s": 600}
    )
    show = next(iter(event.shows))
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["GA"], "quantity": 1}
    holders = await make_users(2)
    for user in holders:
        status, _ = await book(http, gateway_url, token_for(user), body)
        assert status == 201  # not engaged yet: no pass needed
    now = await _now_ms(room)
    assert (await tick(room, event.event_id, now))["engaged"] == 1  # two live holds reach the threshold

    (waiting,) = await make_users(1)
    _, joined = await queue_call(http, gateway_url, token_for(waiting), "join", event.event_id)
    assert joined["data"]["state"] == "waiting"
    # The operator raises the threshold: no longer busy, but someone waits, so it stays engaged.
    admin = await token_with_role("admin")
    status, _ = await call(
        http,
        "PUT",
        f"{gateway_url}/api/v1/admin/events/{event.event_id}/room",
        admin,
        {"auto_active": 1000, "rate_per_min": 60},
    )
    assert status == 200
    await room.redis.hset(
        keys.room(event.event_id, "bucket"), mapping={"tokens": 0, "at": now}
    )  # no admission yet
    assert (await tick(room, event.event_id, now + 10))["engaged"] == 1
    result = await tick(room, event.event_id, now + 2000)  # the bucket refilled: the waiting user goes in
    assert [u for u, _ in result["admitted"]] == [waiting]
    assert (await tick(room, event.event_id, now + 2010))["engaged"] == 0  # nobody waits: open again
    (walk_in,) = await make_users(1)
    status, _ = await book(http, gateway_url, token_for(walk_in), body)
    assert status == 201


async def _now_ms(room) -> int:
    seconds, micros = await room.redis.time()
    return seconds * 1000 + micros // 1000
