"""The persistence consumer: idempotent batches, and a refused event dead-lettered, not stuck."""

from __future__ import annotations

import uuid

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from booking_rush.services.clients import idempotent_producer
from tests.support import WorkerProcess, read_topic, wait_until, worker_env


def _created(event, show, zone, user, qty=1):
    booking = messages.new_public_id(event.event_id)
    now = now_ms()
    return {
        "type": messages.BOOKING_CREATED,
        "event_id": event.event_id,
        "booking_id": booking,
        "user_id": user,
        "show_id": show,
        "zone_id": zone,
        "quantity": qty,
        "total_cents": 1000,
        "remaining": 0,
        "created_at": now,
        "expires_at": now + 600_000,
        "request_id": messages.new_public_id(event.event_id),
        "idempotency_scope": f"r:{booking}",
        "body_hash": "h",
    }


async def test_bad_event_goes_to_the_dead_letter_topic_and_the_rest_lands(
    schema, new_topics, make_event, make_users, pg
):
    topics = await new_topics("dlq")
    event = await make_event([("VIP", 10)], shows=1)
    show = next(iter(event.shows))
    zone = event.shows[show]["VIP"]
    users = await make_users(3)
    good = [_created(event, show, zone, u) for u in users]
    orphan = _created(event, show, zone, str(uuid.uuid4()))  # no such user: a foreign-key refusal
    async with idempotent_producer(schema.kafka_bootstrap) as producer:
        for e in [good[0], orphan, good[1], good[2], good[0]]:  # good[0] twice: a redelivery
            await producer.send_and_wait(topics.events, messages.encode(e), key=show.encode())
    worker = await WorkerProcess(
        worker_env(schema, topics, f"{topics.prefix}p", BR_WORKER_ROLES="persistence")
    ).start()
    try:

        async def persisted() -> bool:
            n = await pg.fetchval("SELECT count(*) FROM bookings WHERE event_id = $1", event.event_id)
            return n == 3

        await wait_until(persisted, 30, "the good bookings persisted")

        async def dead_lettered() -> bool:
            found = await read_topic(schema.kafka_bootstrap, topics.dead_letter, lambda e: True)
            return [e["booking_id"] for e in found] == [orphan["booking_id"]]

        await wait_until(dead_lettered, 30, "the refused event on the dead-letter topic")
    finally:
        await worker.stop()
    seats = await pg.fetchval("SELECT available_seats FROM seat_zones WHERE id = $1", zone)
    assert seats == 7  # three bookings of one seat; the redelivered one counted once
