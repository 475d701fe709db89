"""Holds expire through the sweeper and return their seats exactly once, even with two sweepers."""

from __future__ import annotations

import asyncio

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from booking_rush.services.clients import idempotent_producer
from lua import keys
from tests.support import book, read_topic, wait_until
from workers.settings import WorkerSettings
from workers.sweeper import Sweeper


async def test_two_sweepers_at_once_release_each_hold_once(
    gateway_url, http, make_event, make_users, token_for, sale_redis, pg, schema, topics
):
    event = await make_event([("VIP", 10)], shows=2)
    users = await make_users(3)
    shows = list(event.shows)
    booked = {}
    for user, show, qty in zip(users, [shows[0], shows[1], shows[0]], [2, 1, 3], strict=True):
        body = {
            "event_id": event.event_id,
            "show_id": show,
            "zone_id": event.shows[show]["VIP"],
            "quantity": qty,
        }
        status, answer = await book(http, gateway_url, token_for(user), body)
        assert status == 201
        booked[answer["data"]["booking_id"]] = (user, show, qty)

    zone_keys = [keys.zone(event.event_id, s, event.shows[s]["VIP"]) for s in shows]
    assert [int(await sale_redis.hget(z, "available")) for z in zone_keys] == [5, 9]

    settings = WorkerSettings(endpoints=schema.endpoints(topics.prefix))
    # Not due yet by the real clock: a sweep now issues nothing.
    async with idempotent_producer(schema.kafka_bootstrap) as producer:
        sweepers = [Sweeper(sale_redis, producer, settings) for _ in range(2)]
        assert await sweepers[0].sweep_once(event_ids=[event.event_id]) == 0
        later = now_ms() + settings.hold_ms + 1000
        issued = await asyncio.gather(
            *(s.sweep_once(as_of_ms=later, event_ids=[event.event_id]) for s in sweepers)
        )
        assert sum(issued) >= 3

        async def all_expired() -> bool:
            statuses = [await sale_redis.hget(keys.hold(event.event_id, b), "status") for b in booked]
            return statuses == [b"expired"] * 3

        await wait_until(all_expired, 30, "holds expired")

    assert [int(await sale_redis.hget(z, "available")) for z in zone_keys] == [10, 10]
    for user in users:
        assert await sale_redis.get(keys.user_count(event.event_id, user)) is None
    assert await sale_redis.zcard(keys.expiry_index(event.event_id)) == 0

    expired = await read_topic(
        schema.kafka_bootstrap,
        topics.events,
        lambda e: e["event_id"] == event.event_id and e["type"] == messages.BOOKING_EXPIRED,
    )
    assert {e["booking_id"] for e in expired} == set(booked)
    assert {e["booking_id"]: e["quantity"] for e in expired} == {b: qty for b, (_, _, qty) in booked.items()}

    async def persisted() -> bool:
        rows = await pg.fetch("SELECT status FROM bookings WHERE event_id = $1", event.event_id)
        return [r["status"] for r in rows] == ["expired"] * 3

    await wait_until(persisted, 30, "expiry persisted")
    seats = await pg.fetchval(
        "SELECT sum(z.available_seats) FROM seat_zones z JOIN shows s ON s.id = z.show_id "
        "WHERE s.event_id = $1",
        event.event_id,
    )
    assert seats == 20

    # The user can book again: the per-user count really went down.
    (user, show, _) = next(iter(booked.values()))
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["VIP"], "quantity": 4}
    status, _ = await book(http, gateway_url, token_for(user), body)
    assert status == 201
