"""Thousands of concurrent reservations over HTTP: every seat sold exactly once, nothing lost."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from booking_rush.contract import messages
from lua import keys
from tests.support import book, read_topic, wait_until

ZONES = [("VIP", 60), ("Regular", 140)]  # 200 seats per show, 400 in the event
USERS = 500
REQUESTS_PER_USER = 4  # 2,000 requests for 400 seats; at most 4 seats per user per event


async def test_flash_sale_sells_every_seat_once(
    gateway_url, http, make_event, make_users, token_for, sale_redis, pg, schema, topics
):
    event = await make_event(ZONES, shows=2)
    users = await make_users(USERS)
    tokens = {u: token_for(u) for u in users}
    targets = [(show, zone) for show, zones in event.shows.items() for zone in zones.values()]
    rng = random.Random(7)
    jobs = [(u, *rng.choice(targets), rng.randint(1, 3)) for u in users for _ in range(REQUESTS_PER_USER)]
    rng.shuffle(jobs)

    async def one(user, show, zone, qty):
        body = {"event_id": event.event_id, "show_id": show, "zone_id": zone, "quantity": qty}
        status, answer = await book(http, gateway_url, tokens[user], body)
        return user, qty, status, answer

    results = await asyncio.gather(*(one(*job) for job in jobs))

    # Every client got a definite answer: a booking or a clear refusal.
    statuses = Counter(status for _, _, status, _ in results)
    assert set(statuses) <= {201, 409}, statuses
    refusals = Counter(a["error"]["code"] for _, _, s, a in results if s == 409)
    assert set(refusals) <= {"INSUFFICIENT_STOCK", "MAX_PER_USER_EXCEEDED"}

    booked = [(u, q, a["data"]) for u, q, s, a in results if s == 201]
    total_seats = sum(seats for _, seats in ZONES) * len(event.shows)
    assert sum(q for _, q, _ in booked) == total_seats  # demand far exceeds supply: sold out
    assert len({b["booking_id"] for _, _, b in booked}) == len(booked)

    # Redis agrees: every zone at exactly zero, never negative; per-user counts match.
    for show, zone in targets:
        available = int(await sale_redis.hget(keys.zone(event.event_id, show, zone), "available"))
        assert available == 0
    per_user = Counter()
    for user, qty, _ in booked:
        per_user[user] += qty
    assert max(per_user.values()) <= 4  # the limit held across both shows
    for user in users:
        raw = await sale_redis.get(keys.user_count(event.event_id, user))
        assert int(raw or 0) == per_user[user]

    # Kafka has one booking.created per 201 (re-emits would repeat an id, never add seats).
    created = await read_topic(
        schema.kafka_bootstrap,
        topics.events,
        lambda e: e["event_id"] == event.event_id and e["type"] == messages.BOOKING_CREATED,
    )
    by_id = {e["booking_id"]: e["quantity"] for e in created}
    assert by_id == {b["booking_id"]: q for _, q, b in booked}

    # PostgreSQL catches up with the same bookings and counters.
    async def persisted() -> bool:
        n = await pg.fetchval("SELECT count(*) FROM bookings WHERE event_id = $1", event.event_id)
        return n == len(booked)

    await wait_until(persisted, 60, "bookings persisted")
    seats_left = await pg.fetchval(
        "SELECT sum(z.available_seats) FROM seat_zones z JOIN shows s ON s.id = z.show_id "
        "WHERE s.event_id = $1",
        event.event_id,
    )
    assert seats_left == 0
