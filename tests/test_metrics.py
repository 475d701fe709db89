"""/metrics on the gateway and on a worker: the spec §9.2 names, the waiting room's, labelled by
route and event, and a multi-process gateway that sums its processes in one scrape. The
gateway serves it on an internal port of its own, never on the API's."""

from __future__ import annotations

import uuid

import aiohttp
import redis
from prometheus_client import generate_latest

from booking_rush.contract.messages import now_ms
from booking_rush.telemetry.payment_metrics import DramatiqQueueDepth
from gateway import appkeys
from ops.processes import free_port
from tests.support import (
    WorkerProcess,
    book,
    call,
    event_stream,
    gateway_process,
    gateway_settings,
    metric_samples,
    queue_call,
    reserve_body,
    running_gateway,
    running_gateway_app,
    wait_until,
    worker_env,
)
from workers.admitter import Admitter
from workers.settings import WorkerSettings


def value(found: dict, name: str, **labels: str) -> float:
    """The sum of `name` over every series whose labels include `labels`."""
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


async def scrape(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        return metric_samples(await r.text())


async def test_the_gateway_counts_requests_by_route_and_streams_by_event(
    schema, topics, jwt_secret, workers, http, make_event, make_users, token_for, room
):
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits="general=6000/1000", metrics_port=0)
    async with running_gateway_app(settings) as (api, app):
        url = f"http://127.0.0.1:{app[appkeys.METRICS_PORT]}"
        event = await make_event([("GA", 5)], shows=1)
        (user,) = await make_users(1)
        body = reserve_body(event)
        before = await scrape(http, f"{url}/metrics")
        route = "/api/v1/bookings/reserve"
        status, _ = await book(http, api, token_for(user), body)
        assert status == 201
        status, _ = await call(http, "POST", f"{api}/api/v1/bookings/reserve", token_for(user), {"bad": 1})
        assert status == 400
        after = await scrape(http, f"{url}/metrics")
        for code in ("201", "400"):
            grew = value(after, "http_requests_total", route=route, status=code) - value(
                before, "http_requests_total", route=route, status=code
            )
            assert grew == 1, code
        assert value(after, "http_request_duration_seconds_count", route=route) >= 2

        await room.configure(event.event_id, {"mode": "always", "grace_s": 600})
        _, joined = await queue_call(http, api, token_for(user), "join", event.event_id)
        async with event_stream(http, api, event.event_id, joined["data"]["queue_ticket"]) as stream:
            await stream.next_event()
            live = await scrape(http, f"{url}/metrics")
            assert value(live, "waiting_room_sse_connections", event_id=event.event_id) == 1

        async def closed() -> bool:
            gone = await scrape(http, f"{url}/metrics")
            return value(gone, "waiting_room_sse_connections", event_id=event.event_id) == 0

        await wait_until(closed, 10, "the stream's gauge back to 0")


async def test_a_worker_serves_reservations_failures_lag_and_live_holds(
    schema, new_topics, jwt_secret, http, make_event, make_users, token_for
):
    topics = await new_topics("metrics")
    worker = await WorkerProcess(worker_env(schema, topics, f"{topics.prefix}w", BR_METRICS_PORT="0")).start()
    try:
        metrics_url = f"http://127.0.0.1:{await worker.metrics_port()}/metrics"
        event = await make_event([("GA", 2)], shows=1)
        users = await make_users(2)
        body = reserve_body(event, quantity=2)
        settings = gateway_settings(schema, topics, jwt_secret, rate_limits="general=6000/1000")
        async with running_gateway(settings) as url:
            assert (await book(http, url, token_for(users[0]), body))[0] == 201
            assert (await book(http, url, token_for(users[1]), body))[0] == 409  # sold out

        async def counted() -> bool:
            found = await scrape(http, metrics_url)
            return (
                value(found, "booking_reservations_total", event_id=event.event_id) == 1
                and value(
                    found,
                    "booking_reservation_failures_total",
                    event_id=event.event_id,
                    reason="insufficient_stock",
                )
                == 1
                and value(found, "active_reservations", event_id=event.event_id) == 1
                and value(found, "zone_seats_total", event_id=event.event_id) == 2
                and value(found, "zone_seats_available", event_id=event.event_id) == 0
            )

        await wait_until(counted, 20, "reservations, failures and live holds on the worker's /metrics")
        found = await scrape(http, metrics_url)
        assert (
            "kafka_consumer_lag",
            (("group", f"{topics.prefix}commands"), ("topic", topics.reservations)),
        ) in found
        assert value(found, "redis_operation_duration_seconds_count", operation="command_batch") >= 1
        assert ("db_connections_active", (("service", "worker"),)) in found
    finally:
        await worker.stop()


async def test_the_api_port_does_not_serve_metrics(gateway_url, http):
    status, answer = await call(http, "GET", f"{gateway_url}/metrics")
    assert (status, answer["error"]["code"]) == (404, "NOT_FOUND")


async def test_a_gateway_of_several_processes_sums_them_in_one_scrape(schema, topics, jwt_secret, http):
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    async with gateway_process(
        schema, topics, jwt_secret, http, BR_GATEWAY_PROCESSES="2", BR_GATEWAY_METRICS_PORT=str(port)
    ) as base:
        before = value(await scrape(http, metrics), "http_requests_total", route="/healthz")
        # Fresh connections: the kernel spreads them over both processes (SO_REUSEPORT).
        for _ in range(40):
            async with aiohttp.ClientSession() as fresh, fresh.get(f"{base}/healthz") as r:
                assert r.status == 200
        scraped = await scrape(http, metrics)
        # Either process answered the scrape, and it counted both processes' requests.
        assert value(scraped, "http_requests_total", route="/healthz") - before == 40


async def test_the_admitter_observes_each_admitted_persons_wait(room, make_event, make_users):
    event = await make_event([("GA", 50)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "rate_per_min": 60_000, "grace_s": 600})
    users = await make_users(2)
    now = now_ms()
    for user, waited_s in zip(users, (40, 10), strict=True):
        await room.enter(event.event_id, user, now - waited_s * 1000, "join")
    before = metric_samples(generate_latest().decode())
    admitter = Admitter(room, WorkerSettings())
    tick = await admitter.room.admit(event.event_id, now)
    assert sorted(user for user, _ in tick["admitted"]) == sorted(users)
    await admitter.observe_waits({event.event_id: tick}, now)
    await admitter.observe_waits({event.event_id: tick}, now)  # a second look finds nothing left
    after = metric_samples(generate_latest().decode())

    def grew(name: str) -> float:
        return value(after, name, event_id=event.event_id) - value(before, name, event_id=event.event_id)

    assert grew("waiting_room_wait_seconds_count") == 2
    assert grew("waiting_room_wait_seconds_sum") == 50
    assert value(after, "waiting_room_wait_seconds_bucket", event_id=event.event_id, le="15.0") == 1


def test_the_dramatiq_queue_depth_reads_each_list_and_survives_an_unreachable_redis(schema):
    namespace = f"depth-{uuid.uuid4().hex[:8]}"
    aux = redis.Redis.from_url(schema.aux_redis_url, socket_timeout=1)
    try:
        aux.rpush(f"{namespace}:payments", "m1", "m2")
        aux.rpush(f"{namespace}:payments.DQ", "m3")
        depth = DramatiqQueueDepth(aux, namespace, ["mail", "payments", "payments.DQ"])
        ((family,),) = [list(depth.collect())]
        assert {s.labels["queue"]: s.value for s in family.samples} == {
            "mail": 0,
            "payments": 2,
            "payments.DQ": 1,
        }
    finally:
        aux.delete(f"{namespace}:payments", f"{namespace}:payments.DQ")
        aux.close()
    # Nothing listens there: the scrape goes on without the series instead of failing.
    nowhere = redis.Redis(port=free_port(), socket_timeout=1, socket_connect_timeout=1)
    ((family,),) = [list(DramatiqQueueDepth(nowhere, namespace, ["payments"]).collect())]
    assert family.name == "dramatiq_queue_depth" and family.samples == []
