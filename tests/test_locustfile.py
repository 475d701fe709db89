"""The load test (ops/locustfile.py through ops/loadtest.py) runs a short flash sale for real.

A sale of its own: command/sweeper/persistence workers, a payment worker with the fake provider,
a gateway, buyers seeded with a password (ops/seed.py's seed_sale) and an event behind a waiting
room that is always engaged. Tests run no admitter: this test ticks the room itself while the
crowd (10 locust users, 15 s, a subprocess: locust's gevent never enters this process) signs in,
queues (half on the live stream, half polling), reserves with passes, pays, is declined,
cancels or walks away. Every request must succeed or be an expected refusal, and the funnel must
reach paid bookings that PostgreSQL holds as confirmed.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from booking_rush.contract.messages import now_ms
from booking_rush.services.periodic import run_every
from ops import loadtest, seed
from ops.config import REPO_ROOT
from ops.seed_data import ZoneSpec
from tests.support import WorkerProcess, gateway_settings, running_gateway, unique, wait_until, worker_env
from workers.admitter import tick_message

PASSWORD = "load test pass 2026"
BUYERS = 80
SEATS = (("Front", 60), ("Back", 240))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sale(schema, new_topics, jwt_secret, smtp_sink):
    _, smtp_port = smtp_sink
    topics = await new_topics("load")
    env = {"BR_SMTP_PORT": str(smtp_port), "BR_FAKEPAY_LATENCY_MS": "20"}
    workers = await WorkerProcess(worker_env(schema, topics, f"{topics.prefix}w", **env)).start()
    payer = await WorkerProcess(
        worker_env(schema, topics, f"{topics.prefix}p", **env), module="workers.payment_worker"
    ).start()
    seeded = await seed.seed_sale(
        schema,
        tenant=unique("load-"),
        tenant_name="Load Test Live",
        email=unique("buyer") + "-{:04d}@load.test",  # the locust users' LOAD_EMAIL
        buyers=BUYERS,
        password=PASSWORD,
        title=unique("Load Test "),
        shows=1,
        zones=[ZoneSpec(name, Decimal("40.00"), seats) for name, seats in SEATS],
    )
    # Every buyer signs in from 127.0.0.1: lift the per-address login and anonymous limits.
    settings = gateway_settings(
        schema,
        topics,
        jwt_secret,
        rate_limits="login=100000/10000,login_address=100000/10000,general=6000/1000",
    )
    try:
        async with running_gateway(settings) as url:
            yield url, seeded
    finally:
        await payer.stop()
        await workers.stop()


async def _admitting(room, event_id: str, stop: asyncio.Event) -> None:
    """What the admitter role does, for this event only, on the admitter's own clock (a tick
    every 0.3 s): the admission script, then its broadcast."""

    async def tick() -> None:
        at = now_ms()
        await room.broadcast(tick_message(event_id, at, await room.admit(event_id, at)))

    await run_every(stop, 0.3, 10.0, tick, "test admission tick")


async def test_a_short_flash_sale_reaches_paid_bookings_without_unexpected_failures(sale, room, pg, tmp_path):
    url, seeded = sale
    event_id = seeded["event_id"]
    email = seeded["buyer_emails"][0].replace("0000@", "{:04d}@")
    await room.configure(event_id, {"mode": "always", "rate_per_min": 6000})
    args = [
        "--host", url, "--users", "10", "--spawn-rate", "10", "--run-time", "15s",
        "--event", event_id, "--tenant", seeded["tenant_slug"],
        "--email", email, "--password", PASSWORD, "--buyers", str(BUYERS),
        "--think-min", "0.1", "--think-max", "0.3",
        "--pay-share", "0.7", "--decline-share", "0.25", "--cancel-share", "0.5", "--sse-share", "0.5",
        "--out", str(tmp_path),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOAD_")}
    stop = asyncio.Event()
    admitter = asyncio.create_task(_admitting(room, event_id, stop))
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ops.loadtest", *args,
            cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        stop.set()
        await admitter
    text = out.decode(errors="replace")
    print(text)  # the runner's progress and summary, shown with -s or on a failure
    log = (tmp_path / "locust.log").read_text(errors="replace") if (tmp_path / "locust.log").exists() else ""
    why = f"{text}\n--- locust.log (tail) ---\n{log[-4000:]}"
    summary = json.loads(text.strip().splitlines()[-1])

    assert proc.returncode == 0, why
    assert summary["failures"] == 0 and summary["exceptions"] == 0, why
    assert summary["event"]["id"] == event_id, why
    funnel = summary["funnel"]
    assert funnel["signed in"] >= 10 and funnel["admitted"] >= funnel["reserved"] >= 1, why
    assert funnel["paid"] >= 1 and funnel["declined"] >= 1 and funnel["abandoned"] >= 1, why
    assert funnel["followed the stream"] >= 1 and funnel["polled"] >= 1, why
    for name in (
        "POST /api/v1/auth/login",
        "POST /api/v1/queue/join",
        "GET /api/v1/queue/stream",
        "GET /api/v1/queue/status",
        "POST /api/v1/bookings/reserve",
        "POST /api/v1/payments",
        "GET /api/v1/payments/[id]",
        "POST /api/v1/bookings/[id]/confirm",
    ):
        assert summary["by_name"].get(name, {}).get("requests", 0) >= 1, (name, why)
    assert summary["waits_s"]["queue"]["count"] >= 1, why

    # What the buyers were told is what PostgreSQL holds: every paid journey is a confirmed
    # booking (journeys cut short at the end may have paid as well, untold).
    async def persisted() -> bool:
        confirmed = await pg.fetchval(
            "SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'confirmed'", event_id
        )
        return confirmed >= funnel["paid"]

    await wait_until(persisted, 30, f"{funnel['paid']} confirmed bookings in PostgreSQL")


def test_the_locustfile_defaults_are_the_demos_buyers():
    """Read, not imported: importing locust would monkey-patch this process with gevent."""
    tree = ast.parse((REPO_ROOT / "ops" / "locustfile.py").read_text())
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert constants["DEMO_TENANT"] == seed.DEMO_TENANT
    assert constants["DEMO_PASSWORD"] == seed.DEMO_PASSWORD
    assert constants["DEMO_EMAIL"].format(7) == "buyer000007@demo.test"


@pytest.mark.parametrize(("span", "secs"), [("90", 90), ("15s", 15), ("2m", 120), ("1h30m", 5400)])
def test_run_times_read_as_locust_reads_them(span, secs):
    assert loadtest.seconds(span) == secs


def test_the_runner_says_what_to_start_when_no_gateway_answers(capsys, tmp_path: Path):
    from ops.processes import free_port

    assert loadtest.main(["--host", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path)]) == 2
    assert "ops/demo.sh --serve" in capsys.readouterr().out
