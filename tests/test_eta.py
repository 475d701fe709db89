"""The wait people in line are told: true from the first second, following what the room really
does (people who left are passed over, a limit that binds, an operator's change of rate), and
said as "paused", "not open yet" or "sold out" when there is no wait to say.

The room scenarios run on the real sale Redis with a clock the test moves (every script takes
"now"), so a simulated minute takes milliseconds."""

from __future__ import annotations

import uuid

from waiting_room.eta import Pace, estimate, eta_fields

T0 = 1_950_000_000_000


def _users(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


# -- the estimator alone ------------------------------------------------------------------------


def test_before_anything_is_measured_the_configured_rate_is_the_estimate():
    eta = estimate(299, Pace(rate_per_min=600))  # 300th in line at 10 a second: 30 s
    assert eta is not None and eta.seconds == 30
    assert eta.low_s < 30 < eta.high_s  # a range: nothing measured yet
    assert (eta.low_s, eta.high_s) == (24, 36)


def test_people_passed_over_make_the_line_move_faster_than_admissions():
    # Measured for a minute: the head passes 15 tickets a second while 10 are let in.
    pace = Pace(rate_per_min=600, head_per_s=15.0, admits_per_s=10.0, measured_s=60)
    assert estimate(299, pace).seconds == 20
    # The same measure after 5 s is not trusted yet: the configured rate it is.
    early = Pace(rate_per_min=600, head_per_s=15.0, admits_per_s=10.0, measured_s=5)
    assert estimate(299, early).seconds == 30


def test_a_limit_that_binds_slows_the_estimate_to_the_admissions_measured():
    limited = Pace(rate_per_min=600, head_per_s=2.0, admits_per_s=2.0, measured_s=60, limited=True)
    eta = estimate(99, limited)
    assert eta.seconds == 50  # 100 at 2 a second, not 10 at 10
    free = Pace(rate_per_min=600, head_per_s=2.0, admits_per_s=2.0, measured_s=60)
    assert eta.high_s - eta.low_s > estimate(99, free).high_s - estimate(99, free).low_s  # less sure


def test_an_operators_change_of_rate_moves_the_estimate_at_once():
    measured_at_20 = dict(head_per_s=20.0, admits_per_s=20.0, measured_s=120)
    assert estimate(1199, Pace(rate_per_min=1200, **measured_at_20)).seconds == 60
    assert estimate(1199, Pace(rate_per_min=600, **measured_at_20)).seconds == 120


def test_no_wait_to_say_is_said_as_such():
    eta = estimate(9, Pace(rate_per_min=600))
    assert eta_fields("waiting", eta) == {
        "eta_seconds": eta.seconds,
        "eta_range_seconds": [eta.low_s, eta.high_s],
        "eta_status": "estimate",
    }
    for state, status in (("paused", "paused"), ("prequeue", "not_open"), ("sold_out", "sold_out")):
        said = eta_fields(state, None)
        assert said == {"eta_seconds": None, "eta_range_seconds": None, "eta_status": status}
    assert eta_fields("admitted", None)["eta_status"] is None


# -- a room on the real sale Redis ---------------------------------------------------------------


async def _room(room, make_event, **settings) -> str:
    event = await make_event([("GA", 100_000)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "max_active": 100_000, **settings})
    return event.event_id


async def test_the_first_join_already_has_a_wait(room, make_event):
    event = await _room(room, make_event, rate_per_min=600)
    standings = [await room.enter(event, user, T0) for user in _users(300)]
    last = standings[-1]
    assert last.state == "waiting" and last.ahead == 299
    assert eta_fields(last.state, last.eta())["eta_range_seconds"] == [24, 36]  # not null


async def test_the_wait_shown_is_the_wait_had_when_people_have_left_the_line(room, make_event):
    """Every other person has left before the room opens; those who stay poll each second. The
    head passes the ones who left without using a slot, so the line moves at twice the rate:
    once the room has measured that, the wait shown to someone far back is the wait they have."""
    event = await _room(room, make_event, rate_per_min=600, grace_s=5)
    users = _users(600)
    for user in users:
        await room.enter(event, user, T0 - 10_000)  # the leavers are not seen again
    staying = users[1::2]
    admitted_at: dict[str, int] = {}
    shown = None
    for second in range(1, 80):
        now = T0 + second * 1000
        for user in staying:
            if user not in admitted_at:
                await room.enter(event, user, now - 1, "status")
        for user, _ in (await room.admit(event, now))["admitted"]:
            admitted_at[user] = now
        if second == 20:
            watched = staying[-1]
            standing = await room.enter(event, watched, now, "status")
            shown, shown_at = standing.eta(), now
    assert shown is not None
    actual_s = (admitted_at[watched] - shown_at) / 1000
    assert shown.low_s <= actual_s <= shown.high_s, (shown, actual_s)
    naive_s = (standing.ahead + 1) / 10  # the rate alone, ignoring who left: far too long
    assert naive_s > 1.5 * actual_s


async def test_a_paused_room_says_paused_and_a_change_of_rate_shows_at_once(room, make_event):
    event = await _room(room, make_event, rate_per_min=1200)
    users = _users(100)
    for user in users:
        await room.enter(event, user, T0)
    await room.admit(event, T0 + 1000)
    before = await room.enter(event, users[-1], T0 + 1500, "status")
    await room.configure(event, {"rate_per_min": 600})
    halved = await room.enter(event, users[-1], T0 + 1600, "status")
    assert halved.eta().seconds == 2 * before.eta().seconds
    await room.configure(event, {"mode": "paused"})
    paused = await room.enter(event, users[-1], T0 + 1700, "status")
    assert paused.state == "paused"
    assert eta_fields(paused.state, paused.eta()) == {
        "eta_seconds": None,
        "eta_range_seconds": None,
        "eta_status": "paused",
    }
