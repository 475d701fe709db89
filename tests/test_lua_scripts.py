"""The scripts themselves, called directly on the sale Redis: every branch of their contract."""

from __future__ import annotations

import uuid

import orjson
import pytest
import redis.asyncio as aioredis

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from lua import execute_scripted, keys, load_scripts, queue_script, source
from tests.support import free_port, start_redis, stop_redis

HOLD_MS = 600_000


class Sale:
    """One event with one zone, seeded directly in Redis."""

    def __init__(self, redis, scripts, seats=10, price_cents=2500, max_per_user=4):
        self.redis, self.scripts = redis, scripts
        self.event = str(uuid.uuid4())
        self.show, self.zone = str(uuid.uuid4()), str(uuid.uuid4())
        self.seats, self.price_cents, self.max_per_user = seats, price_cents, max_per_user

    async def seed(self):
        await self.redis.hset(
            keys.zone(self.event, self.show, self.zone),
            mapping={"available": self.seats, "total": self.seats, "price_cents": self.price_cents},
        )
        await self.redis.hset(keys.event_meta(self.event), "max_per_user", self.max_per_user)
        return self

    def reserve_keys(self, user, scope, booking):
        return keys.reserve_keys(self.event, user, scope, self.show, self.zone, booking)

    async def reserve(self, user, qty, *, scope=None, body="h1", deadline=None, now=None, code=""):
        booking = messages.new_public_id(self.event)
        request = messages.new_public_id(self.event)
        now = now or now_ms()
        scope = scope or f"r:{request}"
        out = await self.scripts.reserve_seats(
            keys=self.reserve_keys(user, scope, booking),
            args=[
                body,
                now,
                deadline or now + 30_000,
                qty,
                booking,
                user,
                self.show,
                self.zone,
                HOLD_MS,
                3600,
                request,
                4,
                scope,
                60,
                code,  # a promo code ('' : none; tests/test_pricing_rules.py)
                "THB",
            ],
        )
        return orjson.loads(out[0]), int(out[1])

    async def expire(self, booking, user, as_of):
        out = await self.scripts.expire_hold(
            keys=keys.hold_keys(self.event, booking, user, self.show, self.zone),
            args=[booking, as_of, user, self.show, self.zone],
        )
        return int(out[0]), orjson.loads(out[1])

    async def available(self):
        return int(await self.redis.hget(keys.zone(self.event, self.show, self.zone), "available"))


@pytest.fixture
async def sale(sale_redis, scripts):
    return await Sale(sale_redis, scripts).seed()


async def test_reserve_holds_seats_and_indexes_expiry(sale, sale_redis):
    user = str(uuid.uuid4())
    result, replayed = await sale.reserve(user, 3)
    assert (result["status"], replayed) == ("reserved", 0)
    assert result["remaining"] == 7 and result["total_cents"] == 7500
    assert result["expires_at"] - result["created_at"] == HOLD_MS
    assert await sale.available() == 7
    assert int(await sale_redis.get(keys.user_count(sale.event, user))) == 3
    hold = await sale_redis.hgetall(keys.hold(sale.event, result["booking_id"]))
    assert hold[b"status"] == b"reserved" and hold[b"quantity"] == b"3"
    score = await sale_redis.zscore(keys.expiry_index(sale.event), result["booking_id"])
    assert int(score) == result["expires_at"]
    assert await sale_redis.ttl(keys.hold(sale.event, result["booking_id"])) == -1  # no TTL


async def test_replay_answers_the_first_result_and_changes_nothing(sale):
    user = str(uuid.uuid4())
    first, _ = await sale.reserve(user, 2, scope="k:pay-1")
    again, replayed = await sale.reserve(user, 2, scope="k:pay-1")
    assert replayed == 1 and again == first
    assert await sale.available() == 8
    reused, _ = await sale.reserve(user, 1, scope="k:pay-1", body="other-hash")
    assert reused == {"status": "idempotency_key_reused"}
    assert await sale.available() == 8


async def test_limits_and_stock(sale):
    user = str(uuid.uuid4())
    assert (await sale.reserve(user, 3))[0]["status"] == "reserved"
    over, _ = await sale.reserve(user, 2)
    assert over == {"status": "max_per_user_exceeded", "held": 3, "max_per_user": 4}
    others = [str(uuid.uuid4()) for _ in range(2)]
    assert (await sale.reserve(others[0], 4))[0]["remaining"] == 3
    short, _ = await sale.reserve(others[1], 4)
    assert short == {"status": "insufficient_stock", "remaining": 3}
    assert await sale.available() == 3


async def test_rejection_is_remembered_for_a_redelivery(sale):
    user = str(uuid.uuid4())
    other = str(uuid.uuid4())
    assert (await sale.reserve(other, 4))[0]["status"] == "reserved"
    assert (await sale.reserve(str(uuid.uuid4()), 4))[0]["status"] == "reserved"
    refused, _ = await sale.reserve(user, 4, scope="k:x")
    assert refused["status"] == "insufficient_stock"
    await sale.redis.hset(keys.zone(sale.event, sale.show, sale.zone), "available", 10)
    again, replayed = await sale.reserve(user, 4, scope="k:x")
    assert (again, replayed) == (refused, 1)  # the client was told 409; a replay must agree


async def test_past_deadline_is_not_applied_nor_remembered(sale):
    user = str(uuid.uuid4())
    now = now_ms()
    late, _ = await sale.reserve(user, 1, scope="k:late", deadline=now - 1, now=now)
    assert late == {"status": "expired"}
    assert await sale.available() == 10
    fresh, replayed = await sale.reserve(user, 1, scope="k:late")
    assert (fresh["status"], replayed) == ("reserved", 0)


async def test_unknown_zone(sale):
    sale.zone = str(uuid.uuid4())
    result, _ = await sale.reserve(str(uuid.uuid4()), 1)
    assert result == {"status": "unknown_zone"}


async def test_expire_returns_seats_once(sale, sale_redis):
    user = str(uuid.uuid4())
    held, _ = await sale.reserve(user, 2)
    booking = held["booking_id"]
    assert (await sale.expire(booking, user, held["expires_at"] - 1))[0] == -1  # not due
    code, first = await sale.expire(booking, user, held["expires_at"])
    assert code == 1 and first["quantity"] == 2 and first["remaining"] == 10
    code, again = await sale.expire(booking, user, held["expires_at"] + 5)
    assert (code, again) == (2, first)  # already expired: same result, nothing changed
    assert await sale.available() == 10
    assert await sale_redis.get(keys.user_count(sale.event, user)) is None
    assert await sale_redis.zcard(keys.expiry_index(sale.event)) == 0


async def test_expire_refuses_keys_that_do_not_match_the_hold(sale):
    user = str(uuid.uuid4())
    held, _ = await sale.reserve(user, 1)
    code, _ = await sale.expire(held["booking_id"], str(uuid.uuid4()), held["expires_at"])
    assert code == -2
    assert await sale.available() == 9


async def test_expire_of_missing_hold_cleans_the_index(sale, sale_redis):
    ghost = messages.new_public_id(sale.event)
    await sale_redis.zadd(keys.expiry_index(sale.event), {ghost: 1})
    assert (await sale.expire(ghost, "", now_ms()))[0] == 0
    assert await sale_redis.zcard(keys.expiry_index(sale.event)) == 0


def test_every_script_documents_its_keys_and_arguments():
    for name in ("reserve_seats", "expire_hold"):
        header = source(name).split("]]", 1)[0]
        assert "KEYS[1]" in header and "ARGV[1]" in header and "Returns" in header


async def test_a_pipeline_of_scripts_survives_a_redis_that_lost_its_script_cache(tmp_path):
    """What a restarted Redis looks like to a worker: NOSCRIPT; the scripts are loaded again."""
    port = free_port()
    start_redis(port, tmp_path)
    redis = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        scripts = await load_scripts(redis)
        await redis.script_flush()
        sale = Sale(redis, scripts)
        await sale.seed()
        user, booking, request = str(uuid.uuid4()), messages.new_public_id(sale.event), str(uuid.uuid4())
        now = now_ms()
        args = ["h", now, now + 30_000, 2, booking, user, sale.show, sale.zone, HOLD_MS, 60, request, 4]
        reserve_keys = sale.reserve_keys(user, f"r:{request}", booking)
        (out,) = await execute_scripted(
            redis, lambda pipe: queue_script(pipe, scripts.reserve_seats, reserve_keys, args), scripts
        )
        assert orjson.loads(out[0])["status"] == "reserved"
        assert await sale.available() == 8
    finally:
        await redis.aclose()
        stop_redis(port, "nosave")
