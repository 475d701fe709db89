"""Token buckets with burst (spec §8.4), driven by a clock the test moves: no sleeping."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.ratelimit import DEFAULT_POLICIES, RateLimiter, parse_policies
from lua import load_aux_scripts
from tests.support import (
    free_port,
    gateway_settings,
    queue_call,
    reserve,
    running_gateway,
    topic_size,
    unique,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_specs_reserve_example(aux):
    """Burst 10 at once; 5 used leaves 5; 30 s later the bucket is full (10, capped) again."""
    clock = Clock()
    limiter = RateLimiter(aux, await load_aux_scripts(aux), DEFAULT_POLICIES, unique("rl-"), clock)
    first = [await limiter.check("reserve", "user:a") for _ in range(5)]
    assert [d.allowed for d in first] == [True] * 5
    assert first[-1].remaining == 5
    rest = [await limiter.check("reserve", "user:a") for _ in range(6)]
    assert [d.allowed for d in rest] == [True] * 5 + [False]
    assert rest[-1].retry_after_ms == 3000  # 20 per minute: one token every 3 s
    assert rest[-1].headers()["Retry-After"] == "3"
    clock.now += 30
    again = [await limiter.check("reserve", "user:a") for _ in range(11)]
    assert [d.allowed for d in again] == [True] * 10 + [False]


async def test_refill_is_gradual_and_subjects_are_independent(aux):
    clock = Clock()
    limiter = RateLimiter(aux, await load_aux_scripts(aux), DEFAULT_POLICIES, unique("rl-"), clock)
    for _ in range(3):
        assert (await limiter.check("login", "ip:1.2.3.4")).allowed
    assert not (await limiter.check("login", "ip:1.2.3.4")).allowed  # burst 3
    assert (await limiter.check("login", "ip:5.6.7.8")).allowed  # someone else
    clock.now += 11  # 5 per minute: 12 s per token, not yet
    assert not (await limiter.check("login", "ip:1.2.3.4")).allowed
    clock.now += 1
    assert (await limiter.check("login", "ip:1.2.3.4")).allowed


async def test_checks_of_one_loop_iteration_share_one_call(aux):
    limiter = RateLimiter(aux, await load_aux_scripts(aux), DEFAULT_POLICIES, unique("rl-"), Clock())
    decisions = await asyncio.gather(*(limiter.check("general", f"user:{i}") for i in range(50)))
    assert all(d.allowed for d in decisions)
    assert limiter.flushes == 1


async def test_an_unreachable_limiter_lets_requests_through(stack_cfg):
    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    live = aioredis.from_url(stack_cfg.aux_redis_url)
    limiter = RateLimiter(dead, await load_aux_scripts(live), DEFAULT_POLICIES, "rl", Clock())
    assert (await limiter.check("reserve", "user:x")).allowed
    await live.aclose()
    await dead.aclose()


def test_policies_from_configuration():
    policies = parse_policies("reserve=1000/500, login=10/5")
    assert (policies["reserve"].rate, policies["reserve"].burst) == (1000, 500)
    assert policies["general"] == DEFAULT_POLICIES["general"]
    for bad in ("reserve=0/1", "nope=1/1", "reserve=ten/1", "reserve=1"):
        with pytest.raises(ValueError):
            parse_policies(bad)


async def test_reserve_over_the_burst_gets_429_and_reaches_no_kafka(
    schema, new_topics, jwt_secret, make_event, make_users, token_for, http
):
    topics = await new_topics("ratelimit")
    event = await make_event([("VIP", 100)], shows=1, max_per_user=100)
    alice, bob = await make_users(2)
    show = next(iter(event.shows))
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["VIP"], "quantity": 1}
    clock = Clock()
    settings = gateway_settings(schema, topics, jwt_secret, reply_timeout_s=0.05)
    async with running_gateway(settings, clock=clock) as url:
        answers = [await reserve(http, url, token_for(alice), body) for _ in range(10)]
        assert {s for s, _ in answers} == {202}  # no worker: accepted and pending
        before = await topic_size(schema.kafka_bootstrap, topics.reservations)
        async with http.post(
            f"{url}/api/v1/bookings/reserve",
            json=body,
            headers={"Authorization": f"Bearer {token_for(alice)}"},
        ) as r:
            assert r.status == 429
            assert (await r.json())["error"]["code"] == "RATE_LIMITED"
            assert r.headers["Retry-After"] == "3"
            assert r.headers["X-RateLimit-Limit"] == "20"
            assert r.headers["X-RateLimit-Remaining"] == "0"
            assert int(r.headers["X-RateLimit-Reset"]) > 0
        assert await topic_size(schema.kafka_bootstrap, topics.reservations) == before
        assert (await reserve(http, url, token_for(bob), body))[0] == 202  # per user
        clock.now += 3
        assert (await reserve(http, url, token_for(alice), body))[0] == 202  # refilled
        async with http.get(f"{url}/healthz") as r:
            assert "X-RateLimit-Limit" not in r.headers  # probes are not limited


async def test_anonymous_callers_are_limited_by_address(schema, new_topics, jwt_secret, http):
    topics = await new_topics("ratelimit-anon")
    async with running_gateway(gateway_settings(schema, topics, jwt_secret), clock=Clock()) as url:
        statuses = []
        for _ in range(21):  # general: burst 20
            async with http.get(f"{url}/api/v1/nowhere") as r:
                statuses.append(r.status)
        assert statuses == [404] * 20 + [429]


async def test_an_operator_can_cap_joins_per_address_and_it_is_off_by_default(
    schema, new_topics, jwt_secret, make_event, make_users, token_for, room, http
):
    """Many accounts joining a room from one address (a bot farm) meet the cap when it is set;
    without it, a crowd sharing an address joins freely."""
    topics = await new_topics("join-cap")
    event = await make_event([("GA", 100)], shows=1)
    await room.configure(event.event_id, {"mode": "always"})
    users = await make_users(5)
    capped = gateway_settings(schema, topics, jwt_secret, rate_limits="join_address=3/3")
    async with running_gateway(capped, clock=Clock()) as url:
        statuses = [(await queue_call(http, url, token_for(u), "join", event.event_id))[0] for u in users]
        assert statuses == [200, 200, 200, 429, 429]
        _, refused = await queue_call(http, url, token_for(users[3]), "join", event.event_id)
        assert refused["error"]["code"] == "RATE_LIMITED"
    async with running_gateway(gateway_settings(schema, topics, jwt_secret), clock=Clock()) as url:
        statuses = [(await queue_call(http, url, token_for(u), "join", event.event_id))[0] for u in users]
        assert statuses == [200] * 5
