"""The ETA benchmark's measure: a wait shown against the wait then had."""

from __future__ import annotations

from ops.eta_error import Person, Shown, by_phase, error


def test_a_range_that_holds_the_wait_is_not_wrong_and_one_that_misses_counts_its_nearer_end():
    assert error(Shown(at_s=10, low_s=80, high_s=120), admitted_at_s=110) == 0.0  # waited 100 s
    assert error(Shown(at_s=10, low_s=40, high_s=60), admitted_at_s=110) == 0.4  # 40 s short of 100
    assert error(Shown(at_s=10, low_s=150, high_s=200), admitted_at_s=110) == 0.5  # 50 s over


def test_short_waits_are_judged_against_thirty_seconds():
    assert error(Shown(at_s=0, low_s=10, high_s=12), admitted_at_s=4) == 6 / 30


def test_phases_count_the_waits_shown_in_them_and_leave_out_people_who_left():
    stayed = Person(shown=[Shown(5, 90, 110), Shown(70, 20, 30)], admitted_at_s=105)
    left = Person(shown=[Shown(5, 1, 2)], left=True)
    phases = by_phase([stayed, left], {"opening": (0, 60), "steady": (60, 120), "later": (120, 1e9)})
    assert phases["opening"] == {"shown": 1, "median": 0.0, "p90": 0.0}
    assert phases["steady"] == {"shown": 1, "median": round(5 / 35, 3), "p90": round(5 / 35, 3)}
    assert phases["later"] == {"shown": 0, "median": None, "p90": None}
