"""The ETA benchmark's measure: a wait shown against the wait then had."""

from __future__ import annotations

from ops.eta_error import Person, Shown, by_phase, error, record


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


def test_an_answer_is_recorded_as_the_range_shown_or_as_no_wait():
    person = Person()
    estimate = {
        "state": "waiting",
        "eta_seconds": 50,
        "eta_range_seconds": [40, 60],
        "eta_status": "estimate",
    }
    assert not record(person, estimate, now_s=3.0, t0=1000.0, pass_ttl_s=300)
    assert person.shown == [Shown(3.0, 40, 60)]
    assert not record(person, {"state": "waiting", "eta_seconds": None, "eta_status": None}, 4.0, 1000.0, 300)
    assert person.unanswered == 1
    before_ranges = {"state": "waiting", "eta_seconds": 45}  # an older gateway: one figure
    record(person, before_ranges, 5.0, 1000.0, 300)
    assert person.shown[-1] == Shown(5.0, 45, 45)
    admitted = {"state": "admitted", "pass_expires_at": "1970-01-01T00:22:10Z"}  # 1,330 s
    assert record(person, admitted, 30.0, 1000.0, 300)
    assert person.admitted_at_s == 30.0  # 1,330 - 300 - 1,000


def test_a_wait_read_after_ones_turn_had_come_is_judged_against_none():
    late = Shown(at_s=12.0, low_s=20, high_s=30)  # the answer arrived 2 s after the admission
    assert error(late, admitted_at_s=10.0) == 20 / 30
    assert by_phase([Person(shown=[late], admitted_at_s=10.0)], {"all": (0, 1e9)})["all"]["shown"] == 1
