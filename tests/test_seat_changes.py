"""Seat-count changes of a published zone go through Kafka and adjust_zone.lua: never oversell."""

from __future__ import annotations

import asyncio
import uuid

from booking_rush.contract import messages
from lua import keys
from tests.support import book, call, wait_until
from workers.persistence import apply_events


async def _change(http, url, token, show, zone, seats):
    return await call(http, "PUT", f"{url}/api/v1/shows/{show}/zones/{zone}", token, {"seats": seats})


async def test_shrink_and_grow_a_zone_on_sale(
    gateway_url, http, make_event, make_users, token_for, token_with_role, sale_redis, pg
):
    event = await make_event([("VIP", 10)], shows=1)
    show = next(iter(event.shows))
    zone = event.shows[show]["VIP"]
    body = {"event_id": event.event_id, "show_id": show, "zone_id": zone, "quantity": 2}
    for buyer in await make_users(2):
        assert (await book(http, gateway_url, token_for(buyer), body))[0] == 201
    token = await token_with_role()
    zone_key = keys.zone(event.event_id, show, zone)

    status, answer = await _change(http, gateway_url, token, show, zone, 3)
    assert (status, answer["error"]["code"]) == (409, "SEATS_BELOW_TAKEN")
    assert answer["error"]["details"] == {"taken": 4, "total_seats": 10}
    assert await sale_redis.hmget(zone_key, "total", "available") == [b"10", b"6"]

    status, answer = await _change(http, gateway_url, token, show, zone, 6)
    assert (status, answer["data"]) == (200, {"total_seats": 6, "available_seats": 2, "taken": 4})
    status, answer = await _change(http, gateway_url, token, show, zone, 20)
    assert answer["data"] == {"total_seats": 20, "available_seats": 16, "taken": 4}
    assert await sale_redis.hmget(zone_key, "total", "available") == [b"20", b"16"]

    async def persisted() -> bool:
        row = await pg.fetchrow("SELECT total_seats, available_seats FROM seat_zones WHERE id = $1", zone)
        return (row["total_seats"], row["available_seats"]) == (20, 16)

    await wait_until(persisted, 30, "the seat changes in PostgreSQL")
    assert await pg.fetchval("SELECT total_seats FROM shows WHERE id = $1", show) == 20


async def test_a_shrink_racing_reservations_never_oversells(
    gateway_url, http, make_event, make_users, token_for, token_with_role, sale_redis
):
    event = await make_event([("GA", 100)], shows=1)
    show = next(iter(event.shows))
    zone = event.shows[show]["GA"]
    body = {"event_id": event.event_id, "show_id": show, "zone_id": zone, "quantity": 2}
    buyers = await make_users(60)  # 120 seats wanted
    token = await token_with_role()
    results = await asyncio.gather(
        *(book(http, gateway_url, token_for(b), body) for b in buyers[:30]),
        _change(http, gateway_url, token, show, zone, 50),
        *(book(http, gateway_url, token_for(b), body) for b in buyers[30:]),
    )
    change = results[30]
    sold = 2 * sum(1 for status, _ in results[:30] + results[31:] if status == 201)
    total, available = (
        int(v) for v in await sale_redis.hmget(keys.zone(event.event_id, show, zone), "total", "available")
    )
    assert available >= 0 and total - available == sold  # every held seat counted exactly once
    assert total == (50 if change[0] == 200 else 100)
    assert change[0] in (200, 409)
    assert sold <= total


async def test_draft_zones_change_in_the_database(gateway_url, http, token_with_role, pg):
    token = await token_with_role()
    body = {
        "title": "Draft",
        "shows": [
            {"show_date": "2099-01-01T00:00:00+00:00", "zones": [{"name": "A", "price": "1", "seats": 5}]}
        ],
    }
    async with http.post(
        f"{gateway_url}/api/v1/events", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        event = (await r.json())["data"]
    show = event["shows"][0]["id"]
    zone = str(await pg.fetchval("SELECT id FROM seat_zones WHERE show_id = $1", show))
    status, answer = await _change(http, gateway_url, token, show, zone, 9)
    assert (status, answer["data"]["total_seats"]) == (200, 9)
    row = await pg.fetchrow("SELECT total_seats, available_seats FROM seat_zones WHERE id = $1", zone)
    assert (row["total_seats"], row["available_seats"]) == (9, 9)
    assert await pg.fetchval("SELECT total_seats FROM shows WHERE id = $1", show) == 9


async def test_seat_changes_are_for_the_events_own_organizers(
    gateway_url, http, make_event, make_users, token_for, token_with_role
):
    event = await make_event([("VIP", 10)], shows=1)
    show = next(iter(event.shows))
    zone = event.shows[show]["VIP"]
    (buyer,) = await make_users(1)
    status, answer = await _change(http, gateway_url, token_for(buyer), show, zone, 5)
    assert (status, answer["error"]["code"]) == (403, "FORBIDDEN")
    token = await token_with_role()
    for seats in (-1, "5", 2_000_000):
        assert (await _change(http, gateway_url, token, show, zone, seats))[0] == 400


async def test_a_redelivered_adjustment_replays_its_first_answer(sale_redis, scripts):
    event, show, zone = (str(uuid.uuid4()) for _ in range(3))
    zone_key = keys.zone(event, show, zone)
    await sale_redis.hset(zone_key, mapping={"available": 7, "total": 10})
    record = keys.idempotency(event, "org", "r:" + messages.new_public_id(event))
    first = await scripts.adjust_zone(keys=[record, zone_key], args=[12, 60])
    again = await scripts.adjust_zone(keys=[record, zone_key], args=[12, 60])
    assert (int(first[1]), int(again[1])) == (0, 1) and first[0] == again[0]
    assert messages.decode(first[0]) == {
        "status": "adjusted",
        "total": 12,
        "available": 9,
        "previous_total": 10,
        "taken": 3,
    }
    assert await sale_redis.hmget(zone_key, "total", "available") == [b"12", b"9"]


async def test_two_changes_of_one_zone_in_one_persisted_batch_both_count(make_event, pg):
    """A batch may hold several seat-count changes of a zone (10 -> 6 -> 20): PostgreSQL ends at
    20, not at whichever one change a single UPDATE ... FROM happened to join."""
    event = await make_event([("VIP", 10)], shows=1)
    show = next(iter(event.shows))
    zone = event.shows[show]["VIP"]
    changes = [(10, 6), (6, 20)]
    batch = [
        {
            "type": messages.ZONE_ADJUSTED,
            "event_id": event.event_id,
            "show_id": show,
            "zone_id": zone,
            "request_id": f"adjust-{uuid.uuid4().hex}",
            "previous_total": before,
            "total": after,
            "available": after,
        }
        for before, after in changes
    ]
    async with pg.acquire() as conn, conn.transaction():
        await apply_events(conn, batch)
    row = await pg.fetchrow("SELECT total_seats, available_seats FROM seat_zones WHERE id = $1", zone)
    assert (row["total_seats"], row["available_seats"]) == (20, 20)
    shown = await pg.fetchrow("SELECT total_seats FROM shows WHERE id = $1", show)
    assert shown["total_seats"] == 20
