"""Idempotency keys: retries (also concurrent) give one booking; another body is refused."""

from __future__ import annotations

import asyncio

from lua import keys
from tests.support import book


def _body(event, show_index=0, zone="Regular", qty=2, key=None):
    show = list(event.shows)[show_index]
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show][zone], "quantity": qty}
    if key:
        body["idempotency_key"] = key
    return body


async def test_retries_with_one_key_make_one_booking(
    gateway_url, http, make_event, make_users, token_for, sale_redis
):
    event = await make_event([("Regular", 50)])
    (user,) = await make_users(1)
    token = token_for(user)
    body = _body(event, key="checkout-1")

    first = await book(http, gateway_url, token, body)
    again = await book(http, gateway_url, token, body)
    # 8 more at once: 10 in all, the reserve burst (spec §8.4) of one user.
    concurrent = await asyncio.gather(*(book(http, gateway_url, token, body) for _ in range(8)))

    ids = {a["data"]["booking_id"] for s, a in [first, again, *concurrent] if s == 201}
    assert [s for s, _ in [first, again, *concurrent]] == [201] * 10
    assert len(ids) == 1
    assert int(await sale_redis.get(keys.user_count(event.event_id, user))) == 2
    show = list(event.shows)[0]
    zone = keys.zone(event.event_id, show, event.shows[show]["Regular"])
    assert int(await sale_redis.hget(zone, "available")) == 48


async def test_concurrent_first_use_of_a_key_makes_one_booking(
    gateway_url, http, make_event, make_users, token_for, sale_redis
):
    event = await make_event([("Regular", 50)])
    (user,) = await make_users(1)
    token = token_for(user)
    body = _body(event, qty=1, key="double-click")
    answers = await asyncio.gather(*(book(http, gateway_url, token, body) for _ in range(10)))
    assert {s for s, _ in answers} == {201}
    assert len({a["data"]["booking_id"] for _, a in answers}) == 1
    assert int(await sale_redis.get(keys.user_count(event.event_id, user))) == 1


async def test_header_key_works_like_body_key(gateway_url, http, make_event, make_users, token_for):
    event = await make_event([("Regular", 50)])
    (user,) = await make_users(1)
    token = token_for(user)
    body = _body(event, qty=1)
    s1, a1 = await book(http, gateway_url, token, body, {"Idempotency-Key": "hdr-1"})
    s2, a2 = await book(http, gateway_url, token, {**body, "idempotency_key": "hdr-1"})
    assert (s1, s2) == (201, 201)
    assert a1["data"]["booking_id"] == a2["data"]["booking_id"]


async def test_same_key_with_another_body_is_refused(
    gateway_url, http, make_event, make_users, token_for, sale_redis
):
    event = await make_event([("Regular", 50)])
    (user,) = await make_users(1)
    token = token_for(user)
    s1, _ = await book(http, gateway_url, token, _body(event, qty=1, key="k-1"))
    s2, a2 = await book(http, gateway_url, token, _body(event, qty=2, key="k-1"))
    assert s1 == 201
    assert (s2, a2["error"]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert int(await sale_redis.get(keys.user_count(event.event_id, user))) == 1


async def test_another_users_identical_key_is_independent(
    gateway_url, http, make_event, make_users, token_for
):
    event = await make_event([("Regular", 50)])
    alice, bob = await make_users(2)
    body = _body(event, qty=1, key="shared-key")
    sa, aa = await book(http, gateway_url, token_for(alice), body)
    sb, ab = await book(http, gateway_url, token_for(bob), body)
    assert (sa, sb) == (201, 201)
    assert aa["data"]["booking_id"] != ab["data"]["booking_id"]


async def test_requests_without_a_key_are_separate_bookings(
    gateway_url, http, make_event, make_users, token_for
):
    event = await make_event([("Regular", 50)])
    (user,) = await make_users(1)
    token = token_for(user)
    body = _body(event, qty=1)
    answers = [await book(http, gateway_url, token, body) for _ in range(2)]
    assert [s for s, _ in answers] == [201, 201]
    assert answers[0][1]["data"]["booking_id"] != answers[1][1]["data"]["booking_id"]
