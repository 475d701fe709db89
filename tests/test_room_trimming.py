"""The waiting room stays bounded in the sale Redis (noeviction): each admission tick removes
what nobody can ask about any more, and the room behaves as before for the users it forgets.
Time is a number these tests move (every script takes "now")."""

from __future__ import annotations

import uuid

from lua import keys

T0 = 1_900_000_000_000  # a fixed "now" in ms; the scripts never read Redis' own clock
PASS_TTL_MS = 60_000
KEEP_MS = 60_000  # lua/queue_admit.lua keeps an admission this long past its active-until
HOLD_MS = 600_000


def _users(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


async def _room_for(room, make_event, **settings) -> str:
    event = await make_event([("GA", 100)], shows=1)
    settings = {"mode": "always", "rate_per_min": 60_000, "grace_s": 3600, "pass_ttl_s": 60, **settings}
    await room.configure(event.event_id, settings)
    return event.event_id


async def _entries(redis, event: str, user: str) -> dict[str, bool]:
    """Which of the room's per-user keys still hold something of `user`."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zscore(keys.room(event, "admitted"), user)
        pipe.hexists(keys.room(event, "passes"), user)
        pipe.zscore(keys.room(event, "presence"), user)
        pipe.hexists(keys.room(event, "joined"), user)
        admitted, passes, presence, joined = await pipe.execute()
    return {
        "admitted": admitted is not None,
        "passes": bool(passes),
        "presence": presence is not None,
        "joined": bool(joined),
    }


async def _admit_one_then_lapse(room, make_event) -> tuple[str, str]:
    """A user admitted at T0 + 1 s whose pass ran out unused, forgotten by the tick KEEP_MS
    later."""
    event = await _room_for(room, make_event)
    (user,) = _users(1)
    await room.enter(event, user, T0)
    assert [u for u, _ in (await room.admit(event, T0 + 1000))["admitted"]] == [user]
    await room.admit(event, T0 + 1000 + PASS_TTL_MS + KEEP_MS)
    assert not any((await _entries(room.redis, event, user)).values())
    return event, user


async def test_an_abandoned_user_leaves_no_join_time(room, make_event):
    event = await _room_for(room, make_event, grace_s=30)
    gone, present = _users(2)
    await room.enter(event, gone, T0)
    await room.enter(event, present, T0 + 1)
    await room.enter(event, present, T0 + 50_000, "status")  # a poll is a heartbeat
    tick = await room.admit(event, T0 + 60_000)
    assert tick["abandoned"] == 1 and [u for u, _ in tick["admitted"]] == [present]
    assert not any((await _entries(room.redis, event, gone)).values())
    # The admitted user's join time is the admitter's to read (the wait-time histogram).
    assert (await _entries(room.redis, event, present))["joined"] is True


async def test_an_admission_is_dropped_a_minute_after_it_runs_out_unless_a_hold_keeps_it(room, make_event):
    event = await _room_for(room, make_event)
    lapsed, holder = _users(2)
    for user in (lapsed, holder):
        await room.enter(event, user, T0)
    admitted_at = T0 + 1000
    assert len((await room.admit(event, admitted_at))["admitted"]) == 2
    for user in (lapsed, holder):  # presence is asked only of users in line
        assert await _entries(room.redis, event, user) == {
            "admitted": True,
            "passes": True,
            "presence": False,
            "joined": True,  # (no admitter here to read it)
        }
    # The holder reserves: reserve_seats.lua's own write, the admission's active-until raised to
    # the hold's expiry.
    hold_expires = admitted_at + 30_000 + HOLD_MS
    await room.redis.zadd(keys.room(event, "admitted"), {holder: hold_expires}, xx=True, gt=True)

    runs_out = admitted_at + PASS_TTL_MS
    kept = await room.admit(event, runs_out + KEEP_MS - 1)
    assert kept["trimmed"] == 0 and kept["active"] == 1
    assert (await _entries(room.redis, event, lapsed))["passes"] is True

    dropped = await room.admit(event, runs_out + KEEP_MS)
    assert dropped["trimmed"] == 1 and dropped["active"] == 1
    assert not any((await _entries(room.redis, event, lapsed)).values())
    holding = await _entries(room.redis, event, holder)
    assert holding["admitted"] and holding["passes"]
    assert (await room.enter(event, holder, runs_out + KEEP_MS, "status")).state == "admitted"

    assert (await room.admit(event, hold_expires + KEEP_MS - 1))["trimmed"] == 0
    assert (await room.admit(event, hold_expires + KEEP_MS))["trimmed"] == 1
    assert not any((await _entries(room.redis, event, holder)).values())
    assert (await room.stats(event, hold_expires + KEEP_MS))["admitted"] == 2  # passes issued, ever


async def test_a_forgotten_admission_joins_again_at_the_back(room, make_event):
    event, user = await _admit_one_then_lapse(room, make_event)
    now = T0 + 1000 + PASS_TTL_MS + KEEP_MS + 1000
    assert (await room.enter(event, user, now, "status")).state == "not_joined"
    first = _users(1)[0]
    ahead = await room.enter(event, first, now)
    again = await room.enter(event, user, now + 1)
    assert (again.state, again.ahead, again.ticket) == ("waiting", 1, ahead.ticket + 1)
    assert (await _entries(room.redis, event, user))["presence"] is True  # back in line
    admitted = (await room.admit(event, now + 2000))["admitted"]
    assert [u for u, _ in admitted] == [first, user]


async def test_a_revocation_is_dropped_once_its_pass_has_expired(room, make_event):
    event = await _room_for(room, make_event)
    (user,) = _users(1)
    await room.enter(event, user, T0)
    await room.admit(event, T0 + 1000)
    pass_id = await room.revoke_user(event, user, T0 + 2000)
    expires = (T0 + 1000 + PASS_TTL_MS) // 1000 * 1000
    assert (await room.gate_state(event))[1] == {pass_id: expires}
    await room.admit(event, expires - 1)
    assert (await room.gate_state(event))[1] == {pass_id: expires}  # still refused until then
    await room.admit(event, expires)
    assert (await room.gate_state(event))[1] == {}
