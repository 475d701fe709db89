"""The waiting room's model on the real sale Redis: fair order, the operator's rate, the limits on
active users, abandonment, the pre-queue's recorded shuffle, sold out. Time is a number these
tests move (every script takes "now"), so a simulated minute takes milliseconds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lua import keys
from waiting_room.config import ConfigError, RoomConfig
from waiting_room.shuffle import shuffled

T0 = 1_900_000_000_000  # a fixed "now" in ms; the scripts never read Redis' own clock


def _users(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


async def _join_all(room, event: str, users: list[str], now_ms: int) -> list:
    """Concurrent joins, 50 in flight at a time (the test client's connection pool)."""
    out = []
    for i in range(0, len(users), 50):
        out += await asyncio.gather(*(room.enter(event, u, now_ms) for u in users[i : i + 50]))
    return out


async def _room_for(room, make_event, seats: int = 10_000, **settings) -> str:
    event = await make_event([("GA", seats)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "grace_s": 3600, **settings})
    return event.event_id


async def test_concurrent_joins_are_admitted_in_ticket_order_once_each(room, make_event):
    event = await _room_for(room, make_event, rate_per_min=60_000, max_active=10_000)
    users = _users(300)
    standings = await _join_all(room, event, users, T0)
    tickets = {u: s.ticket for u, s in zip(users, standings, strict=True)}
    assert sorted(tickets.values()) == list(range(1, 301))  # one ticket each, no gaps
    assert {s.state for s in standings} == {"waiting"}

    order = []
    for tick in range(1, 30):
        order += (await room.admit(event, T0 + tick * 1000))["admitted"]
    assert len(order) == 300
    assert [u for u, _ in order] == sorted(users, key=tickets.get)  # nobody overtaken
    assert [t for _, t in order] == list(range(1, 301))
    assert len({u for u, _ in order}) == 300  # nobody admitted twice


async def test_admission_times_follow_admission_order_when_two_admitters_clocks_cross(room, make_event):
    """Two admitters: one reads its clock, the other reads a later one and runs first. The later
    call's admission must not look earlier than the one already made (the demo's audit sorts by
    admission time, and once found a later ticket "first")."""
    event = await _room_for(room, make_event, rate_per_min=120, max_active=10_000)  # a bucket of 2
    first, second = _users(2)
    await _join_all(room, event, [first, second], T0)
    assert [u for u, _ in (await room.admit(event, T0 + 2000, max_scan=1))["admitted"]] == [first]
    assert [u for u, _ in (await room.admit(event, T0 + 1500, max_scan=1))["admitted"]] == [second]
    passes = keys.room(event, "passes")
    stamps = [int((await room.redis.hget(passes, u)).split(b":")[1]) for u in (first, second)]
    assert stamps[0] <= stamps[1], stamps


async def test_joining_again_keeps_the_place(room, make_event):
    event = await _room_for(room, make_event)
    first, second = _users(2)
    a = await room.enter(event, first, T0)
    await room.enter(event, second, T0)
    again = await room.enter(event, first, T0 + 5000)
    assert (again.ticket, again.ahead, again.position) == (a.ticket, 0, 1)
    assert (await room.enter(event, second, T0 + 5000, "status")).ahead == 1


@pytest.mark.parametrize("admitters", [1, 2])
async def test_admissions_over_a_minute_match_the_rate(room, make_event, admitters):
    """Ticks every second for a simulated minute; with two admitters each ticks every second,
    half a second apart: the bucket in Redis keeps them from adding up their rates."""
    event = await _room_for(room, make_event, rate_per_min=600, max_active=100_000)
    await _join_all(room, event, _users(1000), T0)
    await room.admit(event, T0)  # starts the bucket
    admitted = 0
    for second in range(1, 61):
        for k in range(admitters):
            admitted += len((await room.admit(event, T0 + second * 1000 + k * 500))["admitted"])
    assert abs(admitted - 600) <= 12, admitted  # within 2 %


async def test_active_users_never_exceed_max_active(room, make_event):
    event = await _room_for(room, make_event, rate_per_min=60_000, max_active=25, pass_ttl_s=60)
    await _join_all(room, event, _users(100), T0)
    counts = []
    for tick in range(1, 10):
        tick_out = await room.admit(event, T0 + tick * 1000)
        counts.append(tick_out["active"])
    assert max(counts) == 25 and sum(1 for c in counts if c > 25) == 0
    # Passes run out after 60 s: their slots go to the next in line.
    later = await room.admit(event, T0 + 62_000)
    assert len(later["admitted"]) == 25 and later["active"] == 25


async def test_active_users_never_exceed_oversubscription_times_seats(room, make_event):
    event = await _room_for(room, make_event, seats=4, rate_per_min=60_000, oversubscription=1.5)
    await _join_all(room, event, _users(20), T0)
    admitted = [len((await room.admit(event, T0 + t * 1000))["admitted"]) for t in range(1, 5)]
    assert sum(admitted) == 6  # 1.5 x 4 seats available


async def test_abandoned_users_are_skipped_without_using_a_slot(room, make_event):
    event = await _room_for(room, make_event, rate_per_min=60_000, max_active=1, grace_s=30)
    gone, present = _users(2)
    await room.enter(event, gone, T0)
    await room.enter(event, present, T0 + 1)
    await room.enter(event, present, T0 + 50_000, "status")  # a poll is a heartbeat
    tick = await room.admit(event, T0 + 60_000)
    assert [u for u, _ in tick["admitted"]] == [present] and tick["abandoned"] == 1
    assert (await room.enter(event, gone, T0 + 61_000, "status")).state == "not_joined"


async def test_the_pre_queue_is_admitted_in_its_recorded_shuffle(room, make_event):
    event = await _room_for(room, make_event, rate_per_min=60_000)
    opening = datetime.fromtimestamp(T0 / 1000, UTC) + timedelta(hours=1)
    config = await room.configure(event, {"opens_at": opening.isoformat()})
    assert config.shuffle_seed > 0
    early = _users(40)
    standings = await _join_all(room, event, early, T0)
    assert {s.state for s in standings} == {"prequeue"}
    late_joiner = _users(1)[0]
    opens_ms = config.opens_at_ms
    assert (await room.admit(event, opens_ms - 1))["state"] == "prequeue"
    await room.enter(event, late_joiner, opens_ms - 1)  # still before: pre-queued too
    early.append(late_joiner)
    for user in early:  # still there at opening (polling); anyone silent for grace_s is skipped
        await room.enter(event, user, opens_ms - 1, "status")
    first = await room.admit(event, opens_ms + 1)
    assert first["shuffled"] == 41
    order = [u for u, _ in first["admitted"]]
    for t in range(2, 10):
        order += [u for u, _ in (await room.admit(event, opens_ms + t * 1000))["admitted"]]
    after_opening = _users(1)[0]
    assert (await room.enter(event, after_opening, opens_ms + 20_000)).ticket == 42  # then FIFO
    assert order == shuffled(early, config.shuffle_seed)
    recorded = [m.decode() for m in await room.redis.lrange(keys.room(event, "shuffle"), 0, -1)]
    assert recorded == order


async def test_sold_out_only_when_nothing_is_available_or_held(room, make_event, sale_redis):
    event = await _room_for(room, make_event, seats=2)
    waiting = _users(1)[0]
    await room.enter(event, waiting, T0)
    (zone_key,) = [k.decode() for k in await sale_redis.smembers(keys.zone_index(event))]
    await sale_redis.hset(zone_key, "available", 0)
    await sale_redis.zadd(keys.expiry_index(event), {"some-hold": T0 + 60_000})  # seats still held
    assert (await room.admit(event, T0 + 1000))["state"] != "sold_out"
    await sale_redis.zrem(keys.expiry_index(event), "some-hold")  # the hold was bought
    assert (await room.admit(event, T0 + 2000))["state"] == "sold_out"
    assert (await room.enter(event, waiting, T0 + 2001, "status")).state == "sold_out"
    assert (await room.enter(event, _users(1)[0], T0 + 2001)).state == "sold_out"
    await sale_redis.hset(zone_key, "available", 1)  # an organizer added a seat
    assert (await room.admit(event, T0 + 3000))["state"] == "admitting"


async def test_a_room_that_is_off_lets_everyone_through(room, make_event):
    event = (await make_event([("GA", 5)], shows=1)).event_id
    assert (await room.enter(event, _users(1)[0], T0)).state == "open"  # never configured: off
    await room.configure(event, {"mode": "paused", "grace_s": 3600})
    user = _users(1)[0]
    assert (await room.enter(event, user, T0)).state == "paused"  # in line, told it is paused
    assert (await room.admit(event, T0 + 5000))["admitted"] == []  # paused admits nobody


@pytest.mark.parametrize(
    "changes",
    [
        {"mode": "sideways"},
        {"rate_per_min": 0},
        {"rate_per_min": "600"},
        {"max_active": True},
        {"oversubscription": 0.5},
        {"opens_at": "tomorrow"},
        {"opens_at": "2030-01-01T10:00:00"},  # no time zone
        {"colour": "blue"},
    ],
)
def test_bad_settings_are_refused(changes):
    with pytest.raises(ConfigError):
        RoomConfig().updated(changes)


async def test_a_sold_out_room_that_is_off_does_not_ask_for_passes(room, make_event, sale_redis):
    event = (await make_event([("GA", 1)], shows=1)).event_id
    await room.configure(event, {"mode": "off"})
    (zone_key,) = [k.decode() for k in await sale_redis.smembers(keys.zone_index(event))]
    await sale_redis.hset(zone_key, "available", 0)
    tick = await room.admit(event, T0)
    assert (tick["state"], tick["engaged"]) == ("sold_out", 0)
    assert (await room.gate_state(event))[0] is False
