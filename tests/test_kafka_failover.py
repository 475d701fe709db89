"""A replicated log loses nothing when a broker dies: a 3-broker KRaft cluster on loopback
(ops/kafka_cluster.py; topics with 3 replicas, 2 in sync), two workers and a gateway, a sale at a
steady rate, and the leader of the show's partition SIGKILLed in the middle of it. Every booking
a client heard 201 for is in PostgreSQL, none is sold twice, and while the partition fails over
every request ends as 201 or 503 QUEUE_UNAVAILABLE with nothing applied.

How long reserve answered 503s and when the first 201 came after the kill are printed (`-s`).
The cluster is up for this module only (about 10 s to start, three JVMs of ~0.2 GB each).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient

from booking_rush.contract.topics import Topics
from booking_rush.services.clients import CachedKeyPartitioner
from ops.kafka_cluster import KafkaCluster
from ops.open_loop import offered_at_rate
from ops.topics import create_topics
from tests.support import (
    WorkerProcess,
    book,
    gateway_settings,
    running_gateway,
    seats_add_up,
    unique,
    worker_env,
)

RATE = 40  # reserve requests a second, open loop
SECONDS = 30
KILL_AT = 8
PARTITIONS = 2


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(schema):
    folder = Path(tempfile.mkdtemp(prefix="kafka-cluster-"))
    kafka = KafkaCluster(schema, folder)
    try:
        yield await asyncio.to_thread(kafka.start)
    finally:
        kafka.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def _leader(bootstrap: str, topic: str, partition: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return next(p["leader"] for p in described["partitions"] if p["partition"] == partition)


async def test_the_leader_of_a_busy_partition_dies_mid_sale_and_nothing_acknowledged_is_lost(
    cluster, schema, jwt_secret, make_event, make_users, token_for, sale_redis, pg, http
):
    topics = Topics(f"{unique('failover-')}.")
    await create_topics(
        cluster.bootstrap,
        topics.prefix,
        reservations=PARTITIONS,
        events=PARTITIONS,
        replication_factor=3,
        min_insync_replicas=2,
        say=lambda _: None,
    )
    event = await make_event([("GA", 100_000)], shows=1, max_per_user=1000)
    ((show, zones),) = event.shows.items()
    zone = zones["GA"]
    tokens = [token_for(u) for u in await make_users(40)]
    partition = CachedKeyPartitioner()(show.encode(), list(range(PARTITIONS)), list(range(PARTITIONS)))
    doomed = await _leader(cluster.bootstrap, topics.reservations, partition)

    workers = [
        await WorkerProcess(
            worker_env(schema, topics, f"{topics.prefix}w{i}", BR_KAFKA_BOOTSTRAP=cluster.bootstrap)
        ).start()
        for i in range(2)
    ]
    answers: list[tuple[float, float, int, dict]] = []  # (sent at, answered at, status, answer)
    settings = gateway_settings(
        schema,
        topics,
        jwt_secret,
        kafka_bootstrap=cluster.bootstrap,
        rate_limits="general=60000/10000,reserve=60000/10000",
    )
    try:
        async with running_gateway(settings) as url:
            started = time.monotonic()

            kill_now = asyncio.Event()  # the load has reached the request due at KILL_AT s

            async def one(i: int) -> None:
                if i == KILL_AT * RATE:
                    kill_now.set()
                body = {"event_id": event.event_id, "show_id": show, "zone_id": zone, "quantity": 1}
                sent = time.monotonic() - started
                status, answer = await book(http, url, tokens[i % len(tokens)], body)
                answers.append((sent, time.monotonic() - started, status, answer))

            async def kill() -> None:
                await kill_now.wait()  # mid-load, whatever the generator's lag
                await asyncio.to_thread(cluster.kill, doomed)

            killing = asyncio.create_task(kill())
            await offered_at_rate(RATE, RATE * SECONDS, started, one)
            await killing

        refused = sorted(sent for sent, _, status, _ in answers if status == 503)
        after = sorted(done for sent, done, status, _ in answers if status == 201 and sent >= KILL_AT)
        booked_after = [done for _, done, status, _ in answers if status == 201 and done >= KILL_AT]
        print(
            f"broker {doomed} (leader of {topics.reservations}-{partition}) killed at {KILL_AT} s: "
            f"{len(refused)} requests answered 503"
            + (
                f", sent from {refused[0] - KILL_AT:+.1f} s to {refused[-1] - KILL_AT:+.1f} s"
                if refused
                else ""
            )
            + (
                f"; first 201 of a request sent after the kill at {after[0] - KILL_AT:+.1f} s"
                if after
                else ""
            )
            + f"; {len(booked_after)} bookings answered after the kill; 503 codes "
            + str(Counter(a["error"]["code"] for _, _, status, a in answers if status == 503))
        )

        # Every request ended definite: booked, or refused with nothing applied (QUEUE_UNAVAILABLE:
        # Kafka did not take it in time; REQUEST_EXPIRED: it reached a worker past its deadline).
        for _, _, status, answer in answers:
            assert status in (201, 503), (status, answer)
            if status == 503:
                assert answer["error"]["code"] in ("QUEUE_UNAVAILABLE", "REQUEST_EXPIRED"), answer
        booked = {answer["data"]["booking_id"] for _, _, status, answer in answers if status == 201}
        assert booked and after, "no booking after the failover"
        # Nothing a 503 refused was applied, nothing sold twice, nothing acknowledged lost.
        await seats_add_up(sale_redis, pg, event.event_id, show, zone, 100_000, booked)
    finally:
        for w in workers:
            await w.stop()
