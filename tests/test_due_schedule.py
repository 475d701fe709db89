"""The sweeper and the archiver look at an event's index when something in it can be due, not
every tick: thousands of events on sale with nothing due cost a round trip a tick, not one per
event. Within the horizon nothing made after a look can fall due, so looking then is enough.

The session's workers apply what the sweeper issues; the sweeper and archiver under test run
here, with their clocks moved ahead (as in test_expiry and test_sale_redis_bounds).
"""

from __future__ import annotations

from booking_rush.contract.messages import now_ms
from booking_rush.services.clients import idempotent_producer
from lua import keys
from tests.support import book, call, reserve_body, wait_until
from workers.archiver import ARCHIVE_RECHECK_MS, Archiver
from workers.due_schedule import DueSchedule
from workers.settings import WorkerSettings
from workers.sweeper import Sweeper


def test_an_event_is_looked_at_when_its_earliest_entry_falls_due_or_after_the_horizon():
    schedule = DueSchedule(horizon_ms=30_000)
    assert schedule.wants_events(0)
    schedule.events({"a", "b", "c"}, 1_000)
    assert sorted(schedule.due(1_000)) == ["a", "b", "c"]  # new: looked at at once
    schedule.looked("a", 1_000, 5_000)  # something due at 5 s
    schedule.looked("b", 1_000, 600_000)  # due in ten minutes: the horizon comes first
    schedule.looked("c", 1_000, None)  # nothing in its index
    assert schedule.due(4_999) == []
    assert schedule.due(5_000) == ["a"]
    assert sorted(schedule.due(31_000)) == ["a", "b", "c"]
    assert not schedule.wants_events(30_999)
    assert schedule.wants_events(31_000)
    schedule.events({"b", "d"}, 31_000)  # a and c left the sale, d joined it
    assert sorted(schedule.due(31_000)) == ["b", "d"]


async def test_the_sweeper_looks_again_at_an_event_only_when_a_hold_can_be_due(
    gateway_url, http, make_event, make_users, token_for, sale_redis, schema, topics
):
    event = await make_event([("GA", 10)], shows=1)
    (user,) = await make_users(1)
    status, answer = await book(http, gateway_url, token_for(user), reserve_body(event))
    assert status == 201, answer
    booking_id, index = answer["data"]["booking_id"], keys.expiry_index(event.event_id)

    settings = WorkerSettings(endpoints=schema.endpoints(topics.prefix))
    async with idempotent_producer(schema.kafka_bootstrap) as producer:
        sweeper = Sweeper(sale_redis, producer, settings)
        assert sweeper.horizon_ms == 30_000  # hold times of minutes: the cap
        t0 = now_ms()
        await sweeper.sweep_once(as_of_ms=t0)  # the first look: the hold is due in ten minutes
        # As if a worker with a 5-second hold time had written it after that look.
        await sale_redis.zadd(index, {booking_id: t0 + 5_000}, xx=True)

        await sweeper.sweep_once(as_of_ms=t0 + 10_000)  # before the horizon: not looked at
        assert await sale_redis.zscore(index, booking_id) == t0 + 5_000
        assert await sale_redis.hget(keys.hold(event.event_id, booking_id), "status") == b"reserved"

        # At the horizon: looked at, and an expire command issued (its score is now the
        # reissue time; the script itself goes by the hold's own expiry, ten minutes away).
        await sweeper.sweep_once(as_of_ms=t0 + 30_000)
        assert await sale_redis.zscore(index, booking_id) == t0 + 30_000 + settings.sweep_reissue_ms


async def test_the_archiver_trims_an_ended_hold_at_its_time_without_looking_every_tick(
    gateway_url, http, make_event, make_users, token_for, sale_redis, scripts, pg, schema, topics
):
    event = await make_event([("GA", 10)], shows=1)
    (user,) = await make_users(1)
    token = token_for(user)
    status, answer = await book(http, gateway_url, token, reserve_body(event))
    assert status == 201, answer
    booking_id, ev = answer["data"]["booking_id"], event.event_id
    status, answer = await call(http, "POST", f"{gateway_url}/api/v1/bookings/{booking_id}/cancel", token)
    assert status == 200, answer

    async def persisted() -> bool:
        return (
            await pg.fetchval("SELECT status FROM bookings WHERE public_id = $1", booking_id) == "cancelled"
        )

    await wait_until(persisted, 30, "the cancel persisted")
    settings = WorkerSettings(endpoints=schema.endpoints(topics.prefix))
    window_ms = settings.redelivery_window_s * 1000
    archiver = Archiver(sale_redis, scripts, pg, settings)
    hold = keys.hold(ev, booking_id)
    assert archiver.trim_schedule.horizon_ms == 60_000  # a 5-minute window: the cap

    t0 = now_ms()
    await archiver.trim_once(as_of_ms=t0)  # within the window: nothing trimmed, the next look planned
    assert await sale_redis.hget(hold, "zone_id") is not None
    # As if it had ended a window ago (a worker with another window wrote it after that look).
    await sale_redis.zadd(keys.ended_index(ev), {booking_id: t0 - window_ms - 1}, xx=True)

    await archiver.trim_once(as_of_ms=t0 + 1_000)  # before the horizon: not looked at
    assert await sale_redis.hget(hold, "zone_id") is not None

    await archiver.trim_once(as_of_ms=t0 + 60_000)  # at the horizon: looked at, trimmed
    assert set(await sale_redis.hgetall(hold)) == {b"status", b"version"}


async def test_the_archiver_asks_postgresql_about_an_event_when_it_may_be_over(
    make_event, sale_redis, scripts, pg, schema, topics
):
    event = await make_event([("GA", 10)], shows=1)  # its show is weeks away
    archiver = Archiver(sale_redis, scripts, pg, WorkerSettings(endpoints=schema.endpoints(topics.prefix)))
    t0 = now_ms()
    archived = await archiver.archive_once(as_of_ms=t0)  # reads every live event's last show
    assert event.event_id not in {a.event_id for a in archived}
    # Not asked about again before the recheck (its show could move), whatever the ticks between.
    assert event.event_id not in archiver.over_schedule.due(t0 + 60_000)
    assert event.event_id in archiver.over_schedule.due(t0 + ARCHIVE_RECHECK_MS)
