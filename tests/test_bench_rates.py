"""The fixed-rate benchmark's own arithmetic: what it sends, whose CPU it counts, what passes."""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys

import pytest

from ops.bench_rates import Buyers, parse_arm, passes, tree_cpu, write_targets


def test_every_target_is_its_own_request_and_users_take_turns(tmp_path):
    path = tmp_path / "targets.jsonl"
    write_targets(path, "http://gw/api/v1/bookings/reserve", '{"quantity": 1}', Buyers(["a", "b", "c"]), 7)
    targets = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(targets) == 7
    assert len({t["header"]["Idempotency-Key"][0] for t in targets}) == 7
    assert [t["header"]["Authorization"][0] for t in targets] == [f"Bearer {u}" for u in "abcabca"]
    assert {base64.b64decode(t["body"]) for t in targets} == {b'{"quantity": 1}'}
    assert {t["method"] for t in targets} == {"POST"}


def test_a_process_tree_counts_its_children():
    """Half a CPU-second spent by a child the parent has reaped is the parent tree's."""
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\n"
    parent_code = (
        f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spin!r}]); "
        "print('reaped', flush=True); sys.stdin.read()"  # alive until the test closes its stdin
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout.readline().strip() == "reaped"
        assert tree_cpu(parent.pid) >= 0.5
    finally:
        parent.stdin.close()
        parent.wait()


def test_a_step_passes_on_latency_successes_and_the_rate_achieved():
    good = {"rate": 1000, "requests": 10_000, "created": 10_000, "achieved_rps": 998.0, "p99_ms": 20.0}
    assert passes(good)
    assert not passes({**good, "p99_ms": 50.0})
    assert not passes({**good, "created": 9_800})
    assert not passes({**good, "achieved_rps": 900.0})


def test_an_arm_names_the_settings_it_runs_with():
    name, settings = parse_arm("librdkafka:BR_GATEWAY_KAFKA_CLIENT=librdkafka,BR_X=a=b")
    assert name == "librdkafka"
    assert settings == {"BR_GATEWAY_KAFKA_CLIENT": "librdkafka", "BR_X": "a=b"}
    for bad in ("librdkafka", "librdkafka:", ":A=1", "x:A", "x:=1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_arm(bad)
