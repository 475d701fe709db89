"""The persistence consumer against what Kafka really does: events out of order, twice, and a
consumer killed after its rows were written but before its offsets were committed."""

from __future__ import annotations

import random

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from booking_rush.services.clients import idempotent_producer
from tests.support import WorkerProcess, wait_until, worker_env


def _record(event, show, zone, user, status, version, quantity=2, **extra) -> dict:
    """A booking's whole record as the scripts hold it (every value a string)."""
    now = now_ms()
    return {
        "status": status,
        "user_id": user,
        "show_id": show,
        "zone_id": zone,
        "quantity": str(quantity),
        "total_cents": str(quantity * 10_000),
        "created_at": str(now),
        "expires_at": str(now + 600_000),
        "request_id": extra.pop("request_id"),
        "scope": f"r:{extra['booking_id']}",
        "body_hash": "h",
        "version": str(version),
        **{k: v for k, v in extra.items() if k != "booking_id"},
    }


def _life(event, show, zone, user, statuses: list[str]) -> list[dict]:
    """The events of one booking going through `statuses`, in order (versions 1, 2, ...)."""
    booking_id = messages.new_public_id(event.event_id)
    request_id = messages.new_public_id(event.event_id)
    return [
        messages.booking_event(
            event.event_id,
            booking_id,
            _record(event, show, zone, user, status, version, booking_id=booking_id, request_id=request_id),
        )
        for version, status in enumerate(statuses, start=1)
    ]


async def _produce(bootstrap: str, topic: str, events: list[dict]) -> None:
    async with idempotent_producer(bootstrap) as producer:
        for e in events:
            await producer.send_and_wait(topic, messages.encode(e), key=e["show_id"].encode())


async def _zone_available(pg, zone) -> int:
    return await pg.fetchval("SELECT available_seats FROM seat_zones WHERE id = $1", zone)


async def test_events_out_of_order_and_twice_end_in_the_newest_state_with_seats_counted_once(
    schema, new_topics, make_event, make_users, pg
):
    topics = await new_topics("order")
    event = await make_event([("GA", 20)], shows=1)
    show = next(iter(event.shows))
    zone = event.shows[show]["GA"]
    users = await make_users(3)
    confirmed = _life(event, show, zone, users[0], ["reserved", "paying", "confirmed"])
    cancelled = _life(event, show, zone, users[1], ["reserved", "cancelled"])
    refunded = _life(event, show, zone, users[2], ["reserved", "paying", "confirmed", "refunded"])
    # The newest first, the oldest last, each twice: a rebalance replay across producers.
    scrambled = [
        *reversed(confirmed),
        *reversed(cancelled),
        *refunded[2:],
        *refunded[:2],
        *confirmed,
        *cancelled,
    ]
    await _produce(schema.kafka_bootstrap, topics.events, scrambled)
    worker = await WorkerProcess(
        worker_env(schema, topics, f"{topics.prefix}p", BR_WORKER_ROLES="persistence")
    ).start()
    try:
        final = {confirmed[0]["booking_id"]: "confirmed", cancelled[0]["booking_id"]: "cancelled"}
        final[refunded[0]["booking_id"]] = "refunded"

        async def settled() -> bool:
            rows = await pg.fetch(
                "SELECT public_id, status, version FROM bookings WHERE event_id = $1", event.event_id
            )
            return {r["public_id"]: r["status"] for r in rows} == final

        await wait_until(settled, 30, "the newest state of every booking")
        versions = dict(
            await pg.fetch("SELECT public_id, version FROM bookings WHERE event_id = $1", event.event_id)
        )
        assert versions == {
            confirmed[0]["booking_id"]: 3,
            cancelled[0]["booking_id"]: 2,
            refunded[0]["booking_id"]: 4,
        }
        assert await _zone_available(pg, zone) == 18  # only the confirmed booking holds seats
        audited = await pg.fetch(
            "SELECT action FROM audit_logs WHERE entity_id = $1 ORDER BY created_at",
            confirmed[0]["booking_id"],
        )
        assert [a["action"] for a in audited] == ["booking.confirmed"]  # older events changed nothing
    finally:
        await worker.stop()


async def test_a_persistence_consumer_killed_after_its_write_loses_and_doubles_nothing(
    schema, new_topics, make_event, make_users, pg
):
    topics = await new_topics("pkill")
    event = await make_event([("GA", 400)], shows=1)
    show = next(iter(event.shows))
    zone = event.shows[show]["GA"]
    users = await make_users(40)
    lives = [_life(event, show, zone, u, ["reserved", "expired"]) for u in users[:20]]
    lives += [_life(event, show, zone, u, ["reserved"]) for u in users[20:]]
    events = [e for life in lives for e in life]
    random.Random(7).shuffle(events)  # across partitions anyway; versions settle the order
    await _produce(schema.kafka_bootstrap, topics.events, events)
    env = worker_env(
        schema, topics, f"{topics.prefix}p", BR_WORKER_ROLES="persistence", BR_WORKER_BATCH_SIZE="25"
    )
    crashing = await WorkerProcess({**env, "BR_FAULT_CRASH_AFTER_PERSIST": "1"}).start()
    assert await crashing.wait_exit(60) == -9  # killed right after its first batch committed
    written_before = await pg.fetchval("SELECT count(*) FROM bookings WHERE event_id = $1", event.event_id)
    assert written_before > 0
    worker = await WorkerProcess(env).start()  # the same group: the batch comes again
    try:

        async def caught_up() -> bool:
            rows = await pg.fetch("SELECT status FROM bookings WHERE event_id = $1", event.event_id)
            return sorted(r["status"] for r in rows) == ["expired"] * 20 + ["reserved"] * 20

        await wait_until(caught_up, 60, "every booking persisted")
        assert await _zone_available(pg, zone) == 400 - 2 * 20  # 20 live holds of 2, counted once
    finally:
        await worker.stop()
