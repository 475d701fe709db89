"""A user sees their bookings the moment the 201 arrives (read from the sale Redis), and still
sees them from PostgreSQL once Redis no longer holds them; nobody else sees them at all."""

from __future__ import annotations

from lua import keys
from tests.support import book, call, wait_until


async def _booked(gateway_url, http, make_event, make_users, token_for, quantity=2):
    event = await make_event([("GA", 20)], shows=1)
    owner, other = await make_users(2)
    show = next(iter(event.shows))
    body = {
        "event_id": event.event_id,
        "show_id": show,
        "zone_id": event.shows[show]["GA"],
        "quantity": quantity,
    }
    status, answer = await book(http, gateway_url, token_for(owner), body)
    assert status == 201, answer
    return event, owner, other, answer["data"]


async def test_a_booking_is_visible_to_its_owner_at_once(
    gateway_url, http, make_event, make_users, token_for
):
    event, owner, _, reserved = await _booked(gateway_url, http, make_event, make_users, token_for)
    booking_id = reserved["booking_id"]
    status, one = await call(http, "GET", f"{gateway_url}/api/v1/bookings/{booking_id}", token_for(owner))
    assert status == 200, one
    assert one["data"] == {
        "booking_id": booking_id,
        "event_id": event.event_id,
        "show_id": reserved["show_id"],
        "zone_id": reserved["zone_id"],
        "quantity": 2,
        "total_price": reserved["total_price"],
        "currency": "THB",
        "price": reserved["price"],  # what the reservation locked, the same on every read
        "status": "reserved",
        "created_at": one["data"]["created_at"],
        "expires_at": reserved["expires_at"],
        "payment_id": None,
        "ticket_code": None,
        "cancel_reason": None,
    }
    status, mine = await call(http, "GET", f"{gateway_url}/api/v1/bookings", token_for(owner))
    assert status == 200 and [b["booking_id"] for b in mine["data"]] == [booking_id]


async def test_nobody_else_sees_a_booking(gateway_url, http, make_event, make_users, token_for):
    _, _, other, reserved = await _booked(gateway_url, http, make_event, make_users, token_for)
    status, answer = await call(
        http, "GET", f"{gateway_url}/api/v1/bookings/{reserved['booking_id']}", token_for(other)
    )
    assert (status, answer["error"]["code"]) == (404, "NOT_FOUND")
    _, theirs = await call(http, "GET", f"{gateway_url}/api/v1/bookings", token_for(other))
    assert theirs["data"] == []
    for bad in ("not-a-booking", "0" * 64, reserved["booking_id"][:-1] + "x"):
        status, _ = await call(http, "GET", f"{gateway_url}/api/v1/bookings/{bad}", token_for(other))
        assert status == 404, bad


async def test_postgresql_answers_once_redis_no_longer_holds_the_booking(
    gateway_url, http, make_event, make_users, token_for, pg, sale_redis
):
    event, owner, _, reserved = await _booked(
        gateway_url, http, make_event, make_users, token_for, quantity=1
    )
    booking_id = reserved["booking_id"]

    async def persisted() -> bool:
        return await pg.fetchval("SELECT count(*) FROM bookings WHERE public_id = $1", booking_id) == 1

    await wait_until(persisted, timeout=15, what="the persistence consumer to write the booking")
    await sale_redis.delete(keys.hold(event.event_id, booking_id))  # as after a lost sale Redis
    status, one = await call(http, "GET", f"{gateway_url}/api/v1/bookings/{booking_id}", token_for(owner))
    assert status == 200 and one["data"]["status"] == "reserved" and one["data"]["quantity"] == 1
    _, mine = await call(http, "GET", f"{gateway_url}/api/v1/bookings", token_for(owner))
    assert [b["booking_id"] for b in mine["data"]] == [booking_id]


async def test_pending_lists_only_reservations_still_holding_seats(
    gateway_url, http, make_event, make_users, token_for, sale_redis
):
    event, owner, other, reserved = await _booked(gateway_url, http, make_event, make_users, token_for)
    url = f"{gateway_url}/api/v1/bookings/pending"
    _, pending = await call(http, "GET", url, token_for(owner))
    assert [b["booking_id"] for b in pending["data"]] == [reserved["booking_id"]]
    _, theirs = await call(http, "GET", url, token_for(other))
    assert theirs["data"] == []
    # The hold runs out (as the sweeper's expire would leave it): nothing to resume any more.
    await sale_redis.hset(keys.hold(event.event_id, reserved["booking_id"]), "status", "expired")
    _, pending = await call(http, "GET", url, token_for(owner))
    assert pending["data"] == []
