"""bench_compare's verdict: the base's band against itself, and where the new arm falls in it."""

from __future__ import annotations

from ops.bench_compare import DEMO_METRICS, summary


def test_the_demo_rush_is_compared_on_throughput_and_p99():
    demo_json = {"throughput_rps": 1500.0, "latency_ms": {"p50": 40.0, "p99": 210.0}, "sold": 2000}
    figures = {m: read(demo_json) for m, read in DEMO_METRICS.items()}
    assert figures == {"rush_rps": 1500.0, "rush_p99_ms": 210.0}


def test_a_new_arm_outside_the_base_band_is_called_out():
    runs = {
        "base": [{"rush_rps": 1000.0, "rush_p99_ms": 200.0}, {"rush_rps": 1100.0, "rush_p99_ms": 220.0}],
        "base again": [{"rush_rps": 1050.0, "rush_p99_ms": 210.0}],
        "new": [{"rush_rps": 1500.0, "rush_p99_ms": 205.0}, {"rush_rps": 1400.0, "rush_p99_ms": 215.0}],
    }
    verdict = summary(runs, ["base", "base again"], "new")["verdict"]
    assert verdict["rush_rps"]["base_band"] == [1000.0, 1100.0]
    assert verdict["rush_rps"]["new_median"] == 1450.0
    assert not verdict["rush_rps"]["within_band"]
    assert verdict["rush_p99_ms"]["within_band"]
    assert verdict["rush_rps"]["new_over_base"] == round(1450.0 / 1050.0, 3)
