"""ops.bench_queue reads the gateway's tick fan-out from its log: in the JSON lines the gateway
writes by default, and in the plain format of BR_LOG_FORMAT=text."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import pytest

from booking_rush.telemetry.logs import TEXT_FORMAT, JsonFormatter
from gateway import queue_stream
from ops.bench_queue import FANOUT_LINE


@pytest.mark.parametrize("formatter", [JsonFormatter("gateway"), logging.Formatter(TEXT_FORMAT)])
def test_the_benchmark_reads_the_fanout_the_gateway_logs(formatter):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    queue_stream.log.addHandler(handler)
    level = queue_stream.log.level
    queue_stream.log.setLevel(logging.INFO)  # as the gateway's logging set-up has it
    try:
        hub = SimpleNamespace(fanouts_ms=[4.0, 1.5, 9.25], connected=1200)
        queue_stream.StreamHub.log_fanouts(hub)
    finally:
        queue_stream.log.removeHandler(handler)
        queue_stream.log.setLevel(level)
    assert hub.fanouts_ms == []
    assert FANOUT_LINE.findall(out.getvalue().encode()) == [(b"1200", b"3", b"4.0", b"9.2")]
