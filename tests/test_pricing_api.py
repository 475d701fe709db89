"""Prices and promotions through the API (spec §2.2.2): an organizer's rules and codes reach the
sale Redis as commands, a quote decides nothing, a reservation locks what it got, and a code's
uses and the early-bird places are taken with the seats, exactly."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from lua import keys
from tests.support import book, call, gateway_settings, reserve_body, running_gateway, wait_until


def _body(event, quantity=1, code=None, idempotency_key=None):
    body = reserve_body(event, quantity=quantity, key=idempotency_key)
    return {**body, "promo_code": code} if code is not None else body


async def _organizer(token_with_role):
    return await token_with_role("organizer")


async def test_a_code_early_bird_and_bundle_stack_and_the_booking_keeps_what_it_got(
    gateway_url, http, make_event, make_users, token_for, token_with_role, pg
):
    event = await make_event([("GA", 50)], shows=1, max_per_user=10, price="333.33")
    org = await _organizer(token_with_role)
    base = f"{gateway_url}/api/v1/events/{event.event_id}"
    zone = _body(event)["zone_id"]

    status, answer = await call(
        http, "PUT", f"{base}/zones/{zone}/early-bird", org, {"kind": "percent", "percent": 15, "seats": 3}
    )
    assert status == 200, answer
    assert answer["data"]["percent"] == 15 and answer["data"]["seats"] == 3 and answer["data"]["taken"] == 0
    status, answer = await call(
        http, "PUT", f"{base}/bundles", org, {"tiers": [{"min_quantity": 4, "percent": 10}]}
    )
    assert status == 200, answer
    status, answer = await call(
        http, "POST", f"{base}/promo-codes", org, {"code": "summer-sale7", "kind": "percent", "percent": 7}
    )
    assert status == 201, answer
    assert answer["data"]["code"] == "SUMMER-SALE7" and answer["data"]["uses"] == 0

    (buyer,) = await make_users(1)
    token = token_for(buyer)
    # The quote: 3 early-bird seats (333.33 - 15 % = 283.33) and one at the list price; 10 % off
    # the four; 7 % off that. Rounded half up once per discount.
    status, quote = await call(
        http,
        "POST",
        f"{gateway_url}/api/v1/bookings/quote",
        token,
        _body(event, quantity=4, code="Summer-Sale7"),
    )
    assert status == 200, quote
    price = quote["data"]["price"]
    assert price["currency"] == "THB" == quote["data"]["currency"]
    assert price["lines"] == [
        {"kind": "early_bird", "quantity": 3, "unit_price": "283.33", "amount": "849.99"},
        {"kind": "list", "quantity": 1, "unit_price": "333.33", "amount": "333.33"},
    ]
    assert price["subtotal"] == "1333.32"
    assert [(d["kind"], d["amount"]) for d in price["discounts"]] == [
        ("early_bird", "150.00"),
        ("bundle", "118.33"),
        ("promo", "74.55"),
    ]
    assert price["total"] == quote["data"]["total_price"] == "990.44"

    # The quote took nothing: the code has no use, the early bird no place.
    status, codes = await call(http, "GET", f"{base}/promo-codes", org)
    assert codes["data"]["promo_codes"][0]["uses"] == 0

    status, booked = await book(http, gateway_url, token, _body(event, quantity=4, code="summer-sale7"))
    assert status == 201, booked
    assert booked["data"]["price"] == price and booked["data"]["total_price"] == "990.44"

    status, codes = await call(http, "GET", f"{base}/promo-codes", org)
    assert codes["data"]["promo_codes"][0]["uses"] == 1

    # The early bird ends; the booking keeps its price, read back from the hold and, once
    # persisted, from PostgreSQL.
    status, ended = await call(http, "DELETE", f"{base}/zones/{zone}/early-bird", org)
    assert status == 200 and ended["data"]["active"] is False and ended["data"]["taken"] == 3
    status, again = await call(
        http, "GET", f"{gateway_url}/api/v1/bookings/{booked['data']['booking_id']}", token
    )
    assert again["data"]["price"] == price and again["data"]["total_price"] == "990.44"

    async def persisted():
        row = await pg.fetchrow(
            "SELECT total_price, promo_code, early_bird_seats, currency, price_breakdown "
            "FROM bookings WHERE public_id = $1",
            booked["data"]["booking_id"],
        )
        return row

    row = await wait_until(persisted, 30, "the booking in PostgreSQL")
    assert (str(row["total_price"]), row["promo_code"], row["early_bird_seats"], row["currency"]) == (
        "990.44",
        "SUMMER-SALE7",
        3,
        "THB",
    )

    async def rules_recorded():
        n = await pg.fetchval("SELECT count(*) FROM pricing_rules WHERE event_id = $1", event.event_id)
        code = await pg.fetchval("SELECT status FROM promo_codes WHERE event_id = $1", event.event_id)
        return n == 2 and code == "active"

    await wait_until(rules_recorded, 30, "the rules and the code in PostgreSQL")

    status, overview = await call(http, "GET", f"{base}/pricing", org)
    assert status == 200
    assert overview["data"]["bundles"] == [
        {"min_quantity": 4, "percent": 10, "name": "Buy 4 or more: 10% off"}
    ]
    assert overview["data"]["early_birds"][0]["taken"] == 3

    async def reported():
        status, overview = await call(http, "GET", f"{base}/pricing", org)
        return {(r["kind"], r["code"]): r["held"] for r in overview["data"]["report"]} or None

    report = await wait_until(reported, 30, "the report")
    assert report[("promo", "SUMMER-SALE7")] == {"bookings": 1, "given_away": "74.55"}
    assert report[("early_bird", None)] == {"bookings": 1, "given_away": "150.00"}


async def test_five_hundred_buyers_race_for_a_code_with_a_hundred_uses(
    gateway_url, http, make_event, make_users, token_for, token_with_role, sale_redis, pg
):
    event = await make_event([("GA", 1000)], shows=1, max_per_user=4)
    org = await _organizer(token_with_role)
    base = f"{gateway_url}/api/v1/events/{event.event_id}"
    body = {"code": "HUNDRED-ONLY", "kind": "amount", "amount": "10.00", "max_uses": 100, "per_user": 1}
    assert (await call(http, "POST", f"{base}/promo-codes", org, body))[0] == 201
    buyers = await make_users(500)

    async def one(buyer):
        return await book(http, gateway_url, token_for(buyer), _body(event, code="hundred-only"))

    answers = await asyncio.gather(*(one(b) for b in buyers))
    outcomes = Counter(s if s == 201 else a["error"]["code"] for s, a in answers)
    assert outcomes == {201: 100, "PROMO_CODE_USED_UP": 400}
    assert {a["data"]["total_price"] for s, a in answers if s == 201} == {"90.00"}
    assert await sale_redis.hget(keys.promo_uses(event.event_id), "HUNDRED-ONLY") == b"100"
    show = next(iter(event.shows))
    zone = keys.zone(event.event_id, show, event.shows[show]["GA"])
    assert await sale_redis.hget(zone, "available") == b"900"  # a refused code took no seat

    # One use per person: a winner's second try is refused for them, whatever is left.
    winner = next(b for b, (s, _) in zip(buyers, answers, strict=True) if s == 201)
    status, answer = await book(http, gateway_url, token_for(winner), _body(event, code="HUNDRED-ONLY"))
    assert answer["error"]["code"] in ("PROMO_CODE_USED_UP", "PROMO_CODE_LIMIT_REACHED")

    async def persisted():
        n = await pg.fetchval(
            "SELECT count(*) FROM bookings WHERE event_id = $1 AND promo_code = 'HUNDRED-ONLY'",
            event.event_id,
        )
        return n == 100

    await wait_until(persisted, 60, "the hundred bookings in PostgreSQL")


async def test_the_code_is_part_of_the_idempotent_body(
    gateway_url, http, make_event, make_users, token_for, token_with_role
):
    event = await make_event([("GA", 20)], shows=1)
    org = await _organizer(token_with_role)
    status, _ = await call(
        http,
        "POST",
        f"{gateway_url}/api/v1/events/{event.event_id}/promo-codes",
        org,
        {"code": "KEYED-CODE", "kind": "amount", "amount": "1.00"},
    )
    assert status == 201
    (buyer,) = await make_users(1)
    token = token_for(buyer)
    first = await book(http, gateway_url, token, _body(event, code="keyed-code", idempotency_key="one-click"))
    again = await book(http, gateway_url, token, _body(event, code="KEYED-CODE", idempotency_key="one-click"))
    assert first[0] == again[0] == 201 and first[1]["data"]["booking_id"] == again[1]["data"]["booking_id"]
    for other in (
        _body(event, idempotency_key="one-click"),
        _body(event, code="OTHER-CODE", idempotency_key="one-click"),
    ):
        status, answer = await book(http, gateway_url, token, other)
        assert (status, answer["error"]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


async def test_organizers_input_is_checked_and_buyers_may_not_set_prices(
    gateway_url, http, make_event, make_users, token_for, token_with_role
):
    event = await make_event([("GA", 20)], shows=1)
    base = f"{gateway_url}/api/v1/events/{event.event_id}"
    zone = _body(event)["zone_id"]
    org = await _organizer(token_with_role)
    for body, field in (
        ({"code": "SHORT", "kind": "percent", "percent": 10}, "code"),  # guessable
        ({"code": "GOOD-CODE-1", "kind": "percent", "percent": 101}, "percent"),
        ({"code": "GOOD-CODE-1", "kind": "amount", "amount": "0"}, "amount"),
        (
            {
                "code": "GOOD-CODE-1",
                "kind": "percent",
                "percent": 5,
                "starts_at": "2030-01-02T00:00:00Z",
                "ends_at": "2030-01-01T00:00:00Z",
            },
            "ends_at",
        ),
        ({"code": "GOOD-CODE-1", "kind": "percent", "percent": 5, "zone_id": str(uuid.uuid4())}, "zone_id"),
    ):
        status, answer = await call(http, "POST", f"{base}/promo-codes", org, body)
        assert (status, answer["error"]["code"], list(answer["error"]["details"])) == (
            400,
            "VALIDATION_ERROR",
            [field],
        )
    status, answer = await call(
        http, "PUT", f"{base}/zones/{zone}/early-bird", org, {"kind": "price", "price": "100.00", "seats": 5}
    )
    assert status == 400 and "price" in answer["error"]["details"]  # not below the list price
    status, answer = await call(
        http, "PUT", f"{base}/zones/{zone}/early-bird", org, {"kind": "percent", "percent": 5}
    )
    assert status == 400  # ends neither at a time nor after some seats
    status, answer = await call(
        http,
        "PUT",
        f"{base}/bundles",
        org,
        {"tiers": [{"min_quantity": 3, "percent": 5}, {"min_quantity": 3, "percent": 9}]},
    )
    assert status == 400
    assert (
        await call(
            http, "POST", f"{base}/promo-codes", org, {"code": "TWICE-MADE", "kind": "percent", "percent": 5}
        )
    )[0] == 201
    status, answer = await call(
        http, "POST", f"{base}/promo-codes", org, {"code": "twice-made", "kind": "percent", "percent": 9}
    )
    assert (status, answer["error"]["code"]) == (409, "CONFLICT")
    status, answer = await call(http, "PATCH", f"{base}/promo-codes/NO-SUCH-CODE", org, {"status": "paused"})
    assert status == 404
    (buyer,) = await make_users(1)
    status, answer = await call(
        http, "POST", f"{base}/promo-codes", token_for(buyer), {"kind": "percent", "percent": 100}
    )
    assert (status, answer["error"]["code"]) == (403, "FORBIDDEN")
    status, made = await call(http, "POST", f"{base}/promo-codes", org, {"kind": "percent", "percent": 5})
    assert status == 201 and len(made["data"]["code"]) == 12  # none given: one is made


async def test_wrong_codes_are_limited_per_person_and_per_address(
    schema, topics, jwt_secret, workers, http, make_event, make_users, token_for, token_with_role
):
    """Five wrong codes per person, then 429 for anything naming a code (a request without one
    still books); and per address across people (here 8)."""
    settings = gateway_settings(
        schema, topics, jwt_secret, rate_limits="general=6000/1000,promo_wrong_address=8/8/600"
    )
    event = await make_event([("GA", 50)], shows=1, max_per_user=10)
    async with running_gateway(settings) as url:
        org = await _organizer(token_with_role)
        status, _ = await call(
            http,
            "POST",
            f"{url}/api/v1/events/{event.event_id}/promo-codes",
            org,
            {"code": "RIGHT-CODE", "kind": "percent", "percent": 5},
        )
        assert status == 201
        guesser, other, third = (token_for(u) for u in await make_users(3))
        quote = f"{url}/api/v1/bookings/quote"
        answers = []
        for i in range(6):  # the quote and reserve both count
            if i % 2:
                answers.append(
                    (await book(http, url, guesser, _body(event, code=f"GUESS-{i:04d}")))[1]["error"]["code"]
                )
            else:
                answers.append(
                    (await call(http, "POST", quote, guesser, _body(event, code=f"GUESS-{i:04d}")))[1][
                        "error"
                    ]["code"]
                )
        assert answers == ["PROMO_CODE_INVALID"] * 6
        status, answer = await call(http, "POST", quote, guesser, _body(event, code="RIGHT-CODE"))
        assert (status, answer["error"]["code"]) == (429, "RATE_LIMITED")
        status, answer = await book(http, url, guesser, _body(event, code="right-code"))
        assert (status, answer["error"]["code"]) == (429, "RATE_LIMITED")
        assert (await book(http, url, guesser, _body(event)))[0] == 201  # no code: not limited

        # The address: 6 of its 8 spent by the guesser; another person's 3 wrong ones empty it.
        for i in range(3):
            status, answer = await call(http, "POST", quote, other, _body(event, code=f"OTHER-{i:04d}"))
            assert answer["error"]["code"] == "PROMO_CODE_INVALID"
        status, answer = await call(http, "POST", quote, third, _body(event, code="RIGHT-CODE"))
        assert (status, answer["error"]["code"]) == (429, "RATE_LIMITED")
