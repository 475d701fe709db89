"""The dashboards, alert rules and autoscaler queries of ops/k8s/ run on a real Prometheus
(Debian's) that scrapes a real gateway, booking worker and payment worker after a small sale:
a reservation, a sell-out refusal, bad input, a payment and its confirmation, a waiting room that
let one person in and holds another in line with a live-position stream open.

What a parser cannot tell: that every query evaluates on the series our processes really expose
(no label-matching error, no name that exists only on paper), that each returns data, that the
gateway's HPA reads the open streams per pod through the adapter's query, and that every alert
rule evaluates cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

import aiohttp
import promql_parser
import pytest
import yaml

from ops.demo_pay import GOOD_CARD as CARD
from ops.processes import free_port
from tests.support import (
    WorkerProcess,
    book,
    call,
    event_stream,
    final_answer,
    gateway_process,
    queue_call,
    reserve_body,
    wait_until,
    worker_env,
)
from tests.test_deploy_manifests import (
    EXTERNAL_METRICS,
    NAMESPACE,
    RULE_FILE,
    adapter_rules,
    fill_adapter,
    grafana_expressions,
    metric_name,
    selectors,
    series_name,
)

# The pods Prometheus is told it scrapes (the adapter's query names gateway pods a and b).
PODS = {"gateway": "gateway-a", "command-worker": "command-worker-a", "payment-worker": "payment-worker-a"}


@contextlib.asynccontextmanager
async def running_prometheus(targets: dict[str, int], folder: Path, http: aiohttp.ClientSession):
    """Prometheus scraping each job's 127.0.0.1 port every second, with the namespace and pod
    labels the PodMonitor's scrape adds, evaluating the alert rules every second; yields its URL."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `ops/bootstrap.sh --for-tests` installs Debian's package"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULE_FILE)],
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": NAMESPACE, "pod": PODS[job]}}
                ],
            }
            for job, port in targets.items()
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = folder / "prometheus.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdout=log,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        async def ready() -> bool:
            assert proc.returncode is None, f"prometheus exited: {log_path.read_text()[-2000:]}"
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/-/ready") as r:
                    return r.status == 200
            return False

        await wait_until(ready, 60, "Prometheus ready")
        yield base
    finally:
        proc.terminate()
        await proc.wait()


async def query(http: aiohttp.ClientSession, base: str, expr: str) -> list[dict]:
    async with http.get(f"{base}/api/v1/query", params={"query": expr}) as r:
        answer = await r.json()
    assert r.status == 200 and answer["status"] == "success", f"{expr}: {answer}"
    return answer["data"]["result"]


def ours(expr: str) -> bool:
    """Whether every metric the expression reads comes from our processes or the scrape itself."""
    names = {metric_name(s) for s in selectors(promql_parser.parse(expr))}
    return not (names & (set(EXTERNAL_METRICS) - {"up"}))


@pytest.fixture
async def observed_sale(
    schema, new_topics, jwt_secret, http, make_event, make_users, token_for, room, smtp_sink, tmp_path
):
    """The processes, Prometheus, and the sale they went through; yields (Prometheus URL, facts)."""
    _, smtp_port = smtp_sink
    topics = await new_topics("prometheus")
    env = {"BR_METRICS_PORT": "0", "BR_SMTP_PORT": str(smtp_port), "BR_FAKEPAY_LATENCY_MS": "20"}
    worker = await WorkerProcess(
        worker_env(
            schema,
            topics,
            f"{topics.prefix}w",
            BR_WORKER_ROLES="commands,sweeper,persistence,admitter",
            BR_ADMIT_TICK_SECONDS="0.2",
            **env,
        )
    ).start()
    payer = await WorkerProcess(
        worker_env(schema, topics, f"{topics.prefix}p", **env), module="workers.payment_worker"
    ).start()
    try:
        worker_port, payer_port = await worker.metrics_port(), await payer.metrics_port()
        gateway_port = free_port()  # its /metrics: an internal port of its own, not the API's
        async with gateway_process(
            schema, topics, jwt_secret, http, BR_GATEWAY_METRICS_PORT=str(gateway_port)
        ) as url:
            targets = {"gateway": gateway_port, "command-worker": worker_port, "payment-worker": payer_port}
            async with running_prometheus(targets, tmp_path, http) as prometheus:
                async with sale_through(url, http, make_event, make_users, token_for, room) as facts:
                    yield prometheus, facts
    finally:
        await payer.stop()
        await worker.stop()


@contextlib.asynccontextmanager
async def sale_through(url, http, make_event, make_users, token_for, room):
    """Bookings, a payment, a sell-out, bad input; a room that let one in and holds one in line
    with a stream open (yielded while it is open)."""
    event = await make_event([("GA", 3)], shows=1)
    buyer, late, walker, streamer = await make_users(4)
    body = reserve_body(event, quantity=2)
    status, booked = await book(http, url, token_for(buyer), body)
    assert status == 201, booked
    assert (await book(http, url, token_for(late), body))[0] == 409  # one seat left for two
    status, _ = await call(http, "POST", f"{url}/api/v1/bookings/reserve", token_for(late), {"bad": 1})
    assert status == 400
    booking_id = booked["data"]["booking_id"]
    pay = {"booking_id": booking_id, "method": "card", "details": CARD}
    status, paid = await call(http, "POST", f"{url}/api/v1/payments", token_for(buyer), pay)
    status, paid = await final_answer(http, url, token_for(buyer), status, paid, created=False)
    assert status == 201, paid

    async def confirmed() -> bool:
        status, answer = await call(
            http, "POST", f"{url}/api/v1/bookings/{booking_id}/confirm", token_for(buyer)
        )
        status, answer = await final_answer(http, url, token_for(buyer), status, answer, created=False)
        return status == 200

    await wait_until(confirmed, 30, "the paid booking confirmed")

    roomed = await make_event([("GA", 10)], shows=1)
    await room.configure(roomed.event_id, {"mode": "always", "rate_per_min": 600, "grace_s": 600})
    assert (await queue_call(http, url, token_for(walker), "join", roomed.event_id))[0] == 200

    async def let_in() -> bool:  # by the worker's admitter
        _, standing = await queue_call(http, url, token_for(walker), "status", roomed.event_id)
        return standing["data"]["state"] == "admitted"

    await wait_until(let_in, 30, "the first in line admitted")
    await room.configure(roomed.event_id, {"mode": "paused"})
    _, joined = await queue_call(http, url, token_for(streamer), "join", roomed.event_id)
    async with event_stream(http, url, roomed.event_id, joined["data"]["queue_ticket"]) as stream:
        await stream.next_event()
        yield {"event": event.event_id, "roomed": roomed.event_id}


async def test_dashboards_autoscaler_and_alerts_run_on_a_real_prometheus(observed_sale, http):
    prometheus, facts = observed_sale
    await every_dashboard_and_autoscaler_query_returns_our_data(http, prometheus, facts)
    await every_alert_rule_evaluates_on_the_real_series(http, prometheus)


async def every_dashboard_and_autoscaler_query_returns_our_data(http, prometheus: str, facts: dict):
    wanted = [(where, expr) for where, expr in grafana_expressions() if ours(expr)]
    for i, rule in enumerate(adapter_rules()):
        wanted.append((f"adapter:{i}", fill_adapter(rule["metricsQuery"], series_name(rule["seriesQuery"]))))
    empty: list[str] = []

    async def all_answer() -> bool:
        empty[:] = [where for where, expr in wanted if not await query(http, prometheus, expr)]
        return not empty

    try:
        await wait_until(all_answer, 60, "every dashboard and autoscaler query to return data")
    except AssertionError as exc:
        raise AssertionError(f"no data from: {empty}") from exc

    # The gateway's HPA reads open streams per pod through the adapter: one stream, one pod.
    (adapter_query,) = [expr for where, expr in wanted if where.startswith("adapter:")]
    (per_pod,) = await query(http, prometheus, adapter_query)
    assert per_pod["metric"] == {"pod": PODS["gateway"]} and float(per_pod["value"][1]) == 1
    # And the numbers are the sale's.
    event, roomed = facts["event"], facts["roomed"]
    sold = await query(http, prometheus, f'sum(booking_reservations_total{{event_id="{event}"}})')
    assert float(sold[0]["value"][1]) == 1
    refused = await query(
        http, prometheus, f'sum by (reason) (booking_reservation_failures_total{{event_id="{event}"}})'
    )
    assert [(r["metric"]["reason"], float(r["value"][1])) for r in refused] == [("insufficient_stock", 1)]
    waiting = await query(http, prometheus, f'max(waiting_room_queue_depth{{event_id="{roomed}"}})')
    assert float(waiting[0]["value"][1]) == 1


async def every_alert_rule_evaluates_on_the_real_series(http, prometheus: str):
    rules: list[dict] = []

    async def all_evaluated() -> bool:
        async with http.get(f"{prometheus}/api/v1/rules") as r:
            groups = (await r.json())["data"]["groups"]
        rules[:] = [rule for group in groups for rule in group["rules"]]
        return bool(rules) and all(not rule["lastEvaluation"].startswith("0001") for rule in rules)

    await wait_until(all_evaluated, 30, "every rule evaluated once")
    unhealthy = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not unhealthy, unhealthy
    on_file = {r["alert"] for g in yaml.safe_load(RULE_FILE.read_text())["groups"] for r in g["rules"]}
    assert {rule["name"] for rule in rules} == on_file
