"""The pricing scripts on the real sale Redis (lua/_pricing.lua through lua/quote_price.lua,
lua/reserve_seats.lua and lua/set_pricing.lua): the stacking order and its rounding, case by case
from a table; the early-bird boundary; a code's limits; and every way a booking ends giving back
what its price took, exactly once."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from booking_rush.contract import messages, pricing
from booking_rush.contract.messages import now_ms
from lua import keys
from tests.test_lua_scripts import HOLD_MS, Sale

DAY_MS = 86_400_000


class PricedSale(Sale):
    """One event, one zone, its rules set through lua/set_pricing.lua."""

    async def set(self, what: str, change: dict) -> dict:
        record = keys.idempotency(self.event, "organizer", f"r:{uuid.uuid4().hex}")
        zone = keys.zone(self.event, self.show, self.zone) if what == "early_bird" else None
        out = await self.scripts.set_pricing(
            keys=keys.pricing_keys(self.event, record, zone),
            args=[what, orjson.dumps({"show_id": self.show, "zone_id": self.zone, **change}), now_ms(), 3600],
        )
        result = orjson.loads(out[0])
        assert result["status"] == "pricing_set", result
        return result

    async def code(self, code: str, kind: str, value: int, **limits) -> None:
        await self.set("promo", pricing.promo_definition(code, kind, value, **limits))

    async def quote(self, quantity: int, code: str = "", user: str = "u", at: int | None = None) -> dict:
        out = await self.scripts.quote_price(
            keys=keys.quote_keys(self.event, self.show, self.zone),
            args=[quantity, at or now_ms(), self.show, self.zone, code, user, "THB"],
        )
        return orjson.loads(out[0])

    async def buy(self, user: str, quantity: int, code: str = "") -> dict:
        return (await self.reserve(user, quantity, code=code))[0]

    async def taken(self) -> tuple[int, int]:
        """(early-bird places taken, seats available)."""
        eb, available = await self.redis.hmget(
            keys.zone(self.event, self.show, self.zone), "eb_taken", "available"
        )
        return int(eb or 0), int(available)

    async def uses(self, code: str, user: str | None = None) -> int:
        raw = await self.redis.hget(keys.promo_uses(self.event), f"{code}|{user}" if user else code)
        return int(raw or 0)

    def payment_keys(self, booking: str, payment: str, user: str) -> list[str]:
        return keys.payment_keys(self.event, booking, payment, user, self.show, self.zone)

    async def cancel(self, booking: str, user: str) -> dict:
        out = await self.scripts.cancel_hold(
            keys=keys.hold_keys(self.event, booking, user, self.show, self.zone),
            args=[booking, now_ms(), user, self.show, self.zone],
        )
        return orjson.loads(out[0])

    async def begin(self, booking: str, user: str) -> str:
        payment = messages.payment_id_of(booking)
        out = await self.scripts.begin_payment(
            keys=[
                keys.hold(self.event, booking),
                keys.payment(self.event, payment),
                keys.expiry_index(self.event),
                keys.event_meta(self.event),
            ],
            args=[booking, payment, user, "card", "card ****4242", now_ms(), HOLD_MS],
        )
        assert orjson.loads(out[0])["status"] == "paying"
        return payment

    async def settle(self, booking: str, payment: str, user: str, outcome: str) -> dict:
        out = await self.scripts.settle_payment(
            keys=self.payment_keys(booking, payment, user),
            args=[
                booking,
                payment,
                outcome,
                now_ms(),
                "ref",
                "declined" if outcome == "failed" else "",
                "BR-X",
            ],
        )
        return orjson.loads(out[0])

    async def refund(self, booking: str, payment: str, user: str, step: str) -> dict:
        out = await self.scripts.refund_payment(
            keys=self.payment_keys(booking, payment, user),
            args=[booking, payment, step, now_ms(), user, 100, 0, "refund-ref"],
        )
        return orjson.loads(out[0])


@pytest.fixture
async def priced(sale_redis, scripts):
    return await PricedSale(sale_redis, scripts, seats=200, price_cents=33333, max_per_user=10).seed()


def _discounts(pricing: dict) -> list[tuple[str, int]]:
    found = pricing["discounts"]
    return [(d["kind"], d["amount_cents"]) for d in (found if isinstance(found, list) else [])]


# (case, rules, quantity, code, early-bird places taken before) ->
#   (early-bird seats, [(discount, amount)], total) — list price 333.33 everywhere.
STACKING = [
    ("list price only", {}, 3, "", 0, (0, [], 99999)),
    (
        "early-bird price, fixed",
        {"early_bird": {"on": True, "kind": "price", "value": 25000, "until": 0, "seats": 10}},
        2,
        "",
        0,
        (2, [("early_bird", 16666)], 50000),
    ),
    (
        # 333.33 x 15 % = 49.9995 -> 50.00 off each: 283.33
        "early-bird percentage, rounded half up per seat",
        {"early_bird": {"on": True, "kind": "percent", "value": 15, "until": 0, "seats": 10}},
        1,
        "",
        0,
        (1, [("early_bird", 5000)], 28333),
    ),
    (
        "straddling the early bird's last places: 2 at its price, 2 at the list price",
        {"early_bird": {"on": True, "kind": "price", "value": 20000, "until": 0, "seats": 100}},
        4,
        "",
        98,
        (2, [("early_bird", 26666)], 106666),
    ),
    (
        "an early bird past its time is the list price",
        {"early_bird": {"on": True, "kind": "price", "value": 20000, "until": 1, "seats": 0}},
        2,
        "",
        0,
        (0, [], 66666),
    ),
    (
        # 4 x 333.33 = 1333.32; 10 % = 133.332 -> 133.33
        "a bundle, rounded half up once",
        {"bundles": [{"min_quantity": 4, "percent": 10, "name": "Four"}]},
        4,
        "",
        0,
        (0, [("bundle", 13333)], 119999),
    ),
    (
        "the largest bundle tier the quantity reaches",
        {
            "bundles": [
                {"min_quantity": 2, "percent": 5, "name": "Two"},
                {"min_quantity": 5, "percent": 20, "name": "Five"},
            ]
        },
        6,
        "",
        0,
        (0, [("bundle", 40000)], 159998),
    ),
    (
        # 333.33 x 7 % = 23.3331 -> 23.33
        "a percentage code",
        {"promo": ("SEVEN-OFF", "percent", 7)},
        1,
        "SEVEN-OFF",
        0,
        (0, [("promo", 2333)], 31000),
    ),
    (
        "an amount code larger than the price: never below zero",
        {"promo": ("ALL-FREE-1", "amount", 10_000_000)},
        2,
        "ALL-FREE-1",
        0,
        (0, [("promo", 66666)], 0),
    ),
    (
        # early bird 3 x 283.33 + 333.33 = 1183.32; bundle 10 % = 118.332 -> 118.33 (1064.99);
        # code 7 % = 74.5493 -> 74.55: 990.44
        "all three, in their one order: early bird, bundle, code",
        {
            "early_bird": {"on": True, "kind": "percent", "value": 15, "until": 0, "seats": 3},
            "bundles": [{"min_quantity": 4, "percent": 10, "name": "Four"}],
            "promo": ("STACKED-7", "percent", 7),
        },
        4,
        "STACKED-7",
        0,
        (3, [("early_bird", 15000), ("bundle", 11833), ("promo", 7455)], 99044),
    ),
]


@pytest.mark.parametrize(
    ("case", "rules", "quantity", "code", "taken", "expected"), STACKING, ids=[c[0] for c in STACKING]
)
async def test_stacking_and_rounding(priced, case, rules, quantity, code, taken, expected):
    if "early_bird" in rules:
        await priced.set("early_bird", rules["early_bird"])
        await priced.redis.hset(keys.zone(priced.event, priced.show, priced.zone), "eb_taken", taken)
    if "bundles" in rules:
        await priced.set("bundles", {"tiers": rules["bundles"]})
    if "promo" in rules:
        await priced.code(*rules["promo"])
    quote = await priced.quote(quantity, code)
    assert quote["status"] == "quote", quote
    pricing = quote["pricing"]
    assert (pricing["early_bird_seats"], _discounts(pricing), pricing["total_cents"]) == expected
    assert pricing["gross_cents"] == quantity * 33333
    assert sum(line["amount_cents"] for line in pricing["lines"]) == pricing["gross_cents"] - sum(
        a for k, a in _discounts(pricing) if k == "early_bird"
    )
    booked = await priced.buy(str(uuid.uuid4()), quantity, code)  # the reservation prices the same
    assert booked["pricing"] == pricing and booked["total_cents"] == expected[2]


async def test_a_code_refused_for_each_reason_takes_nothing(priced):
    later = now_ms() + DAY_MS
    await priced.code("NOT-YET-ON", "percent", 10, starts_at=later)
    await priced.code("OTHER-ZONE", "percent", 10, zone_id=str(uuid.uuid4()))
    await priced.code("BUY-THREE+", "percent", 10, min_quantity=3)
    await priced.code("ONLY-ONCE1", "percent", 10, max_uses=1)
    await priced.code("TWICE-EACH", "percent", 10, per_user=2)
    await priced.code("PAUSED-ONE", "percent", 10)
    await priced.set("promo_status", {"code": "PAUSED-ONE", "status": "paused"})
    buyer = str(uuid.uuid4())
    assert (await priced.buy(buyer, 1, "ONLY-ONCE1"))["status"] == "reserved"
    for _ in range(2):
        assert (await priced.buy(buyer, 1, "TWICE-EACH"))["status"] == "reserved"
    before = await priced.taken()
    refused = {
        code: await priced.buy(buyer if code == "TWICE-EACH" else str(uuid.uuid4()), 1, code)
        for code in (
            "NO-SUCH-CODE",
            "PAUSED-ONE",
            "NOT-YET-ON",
            "OTHER-ZONE",
            "BUY-THREE+",
            "ONLY-ONCE1",
            "TWICE-EACH",
        )
    }
    assert {code: r["status"] for code, r in refused.items()} == {
        "NO-SUCH-CODE": "promo_invalid",
        "PAUSED-ONE": "promo_invalid",
        "NOT-YET-ON": "promo_expired",
        "OTHER-ZONE": "promo_not_applicable",
        "BUY-THREE+": "promo_not_applicable",
        "ONLY-ONCE1": "promo_used_up",
        "TWICE-EACH": "promo_user_limit",
    }
    assert refused["BUY-THREE+"]["reason"] == "min_quantity" and refused["OTHER-ZONE"]["reason"] == "zone"
    assert await priced.taken() == before  # no seat, no place
    assert (await priced.uses("ONLY-ONCE1"), await priced.uses("TWICE-EACH", buyer)) == (1, 2)


async def test_the_last_early_bird_place_goes_to_exactly_one_buyer(priced):
    await priced.set("early_bird", {"on": True, "kind": "price", "value": 10000, "until": 0, "seats": 10})
    buyers = [str(uuid.uuid4()) for _ in range(60)]
    results = await asyncio.gather(*(priced.buy(b, 1) for b in buyers))
    early = [r for r in results if r["pricing"]["early_bird_seats"] == 1]
    assert len(early) == 10 and all(r["total_cents"] == 10000 for r in early)
    assert all(r["total_cents"] == 33333 for r in results if r not in early)
    assert await priced.taken() == (10, 140)


async def test_every_end_of_a_booking_gives_back_its_places_and_its_code_once(priced):
    await priced.set("early_bird", {"on": True, "kind": "price", "value": 10000, "until": 0, "seats": 100})
    await priced.code("GIVE-BACK1", "percent", 10, max_uses=10, per_user=5)
    user = str(uuid.uuid4())

    async def booked() -> dict:
        result = await priced.buy(user, 2, "GIVE-BACK1")
        assert result["status"] == "reserved" and result["pricing"]["early_bird_seats"] == 2
        return result

    async def counted() -> tuple:
        eb, _ = await priced.taken()
        return eb, await priced.uses("GIVE-BACK1"), await priced.uses("GIVE-BACK1", user)

    # Cancelled (twice: the second changes nothing).
    b = await booked()
    assert await counted() == (2, 1, 1)
    for _ in range(2):
        assert (await priced.cancel(b["booking_id"], user))["status"] == "cancelled"
    assert await counted() == (0, 0, 0)

    # Expired (asked twice).
    b = await booked()
    for _ in range(2):
        await priced.expire(b["booking_id"], user, b["expires_at"] + 1)
    assert await counted() == (0, 0, 0)

    # Payment failed (told twice).
    b = await booked()
    payment = await priced.begin(b["booking_id"], user)
    for _ in range(2):
        assert (await priced.settle(b["booking_id"], payment, user, "failed"))["status"] == "payment_failed"
    assert await counted() == (0, 0, 0)

    # Confirmed keeps them; refunded gives them back (completed twice).
    b = await booked()
    payment = await priced.begin(b["booking_id"], user)
    assert (await priced.settle(b["booking_id"], payment, user, "success"))["status"] == "confirmed"
    assert await counted() == (2, 1, 1)
    assert (await priced.refund(b["booking_id"], payment, user, "request"))["status"] == "refund_requested"
    assert (await priced.refund(b["booking_id"], payment, user, "approve"))["status"] == "refund_approved"
    for _ in range(2):
        assert (await priced.refund(b["booking_id"], payment, user, "complete"))["status"] == "refunded"
    assert await counted() == (0, 0, 0)
    assert (await priced.taken())[1] == 200  # every seat back too
