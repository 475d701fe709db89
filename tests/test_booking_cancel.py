"""The owner cancels a reservation: its seats and the user's count return exactly once (again
is the same answer, nothing returned twice), PostgreSQL follows; nobody else can, and a
reservation that already ended cannot be."""

from __future__ import annotations

import uuid

from gateway.auth import issue_access_token
from lua import keys
from tests.support import book, call, wait_until


async def _reserved(gateway_url, http, make_event, make_users, token_for):
    event = await make_event([("GA", 20)], shows=1)
    owner, other = await make_users(2)
    show = next(iter(event.shows))
    zone = event.shows[show]["GA"]
    body = {"event_id": event.event_id, "show_id": show, "zone_id": zone, "quantity": 3}
    status, answer = await book(http, gateway_url, token_for(owner), body)
    assert status == 201, answer
    return event, show, zone, owner, other, answer["data"]["booking_id"]


async def test_cancel_returns_the_seats_once_and_postgresql_follows(
    gateway_url, http, make_event, make_users, token_for, sale_redis, pg
):
    event, show, zone, owner, _, booking_id = await _reserved(
        gateway_url, http, make_event, make_users, token_for
    )
    zone_key = keys.zone(event.event_id, show, zone)
    assert int(await sale_redis.hget(zone_key, "available")) == 17
    url = f"{gateway_url}/api/v1/bookings/{booking_id}/cancel"
    status, first = await call(http, "POST", url, token_for(owner))
    assert status == 200 and first["data"]["status"] == "cancelled", first
    assert first["data"]["remaining"] == 20
    assert int(await sale_redis.hget(zone_key, "available")) == 20
    assert await sale_redis.get(keys.user_count(event.event_id, owner)) is None
    assert await sale_redis.zscore(keys.expiry_index(event.event_id), booking_id) is None

    status, again = await call(http, "POST", url, token_for(owner))
    assert status == 200 and again["data"] == first["data"]  # the same answer, nothing returned twice
    assert int(await sale_redis.hget(zone_key, "available")) == 20

    _, seen = await call(http, "GET", f"{gateway_url}/api/v1/bookings/{booking_id}", token_for(owner))
    assert seen["data"]["status"] == "cancelled"

    async def persisted() -> bool:
        row = await pg.fetchrow(
            "SELECT b.status, z.available_seats FROM bookings b JOIN seat_zones z ON z.id = b.zone_id "
            "WHERE b.public_id = $1",
            booking_id,
        )
        return row is not None and (row["status"], row["available_seats"]) == ("cancelled", 20)

    await wait_until(persisted, timeout=15, what="PostgreSQL to record the cancellation and the seats")


async def test_only_the_owner_cancels_and_only_a_live_reservation(
    gateway_url, http, make_event, make_users, token_for, sale_redis
):
    event, show, zone, owner, other, booking_id = await _reserved(
        gateway_url, http, make_event, make_users, token_for
    )
    url = f"{gateway_url}/api/v1/bookings/{booking_id}/cancel"
    status, answer = await call(http, "POST", url, token_for(other))
    assert (status, answer["error"]["code"]) == (404, "NOT_FOUND")
    await sale_redis.hset(
        keys.hold(event.event_id, booking_id), "status", "expired"
    )  # as the sweeper leaves it
    status, answer = await call(http, "POST", url, token_for(owner))
    assert (status, answer["error"]["code"]) == (409, "INVALID_STATUS_TRANSITION")
    assert int(await sale_redis.hget(keys.zone(event.event_id, show, zone), "available")) == 17
    status, _ = await call(http, "POST", f"{gateway_url}/api/v1/bookings/{'0' * 64}/cancel", token_for(owner))
    assert status == 404


async def test_an_admin_of_the_events_tenant_sees_and_cancels_for_the_owner(
    gateway_url, http, make_event, make_users, token_for, token_with_role, new_tenant, jwt_secret, sale_redis
):
    event, show, zone, owner, _, booking_id = await _reserved(
        gateway_url, http, make_event, make_users, token_for
    )
    one = f"{gateway_url}/api/v1/bookings/{booking_id}"
    foreign_admin = issue_access_token(
        jwt_secret, user_id=str(uuid.uuid4()), tenant_id=await new_tenant(), role="admin"
    )
    for token in (await token_with_role("organizer"), foreign_admin):
        status, _ = await call(http, "GET", one, token)
        assert status == 404
        status, _ = await call(http, "POST", f"{one}/cancel", token)
        assert status == 404
    admin = await token_with_role("admin")
    status, seen = await call(http, "GET", one, admin)
    assert status == 200 and seen["data"]["status"] == "reserved"
    status, cancelled = await call(http, "POST", f"{one}/cancel", admin)
    assert status == 200 and cancelled["data"]["status"] == "cancelled"
    assert await sale_redis.get(keys.user_count(event.event_id, owner)) is None  # the owner's count dropped
