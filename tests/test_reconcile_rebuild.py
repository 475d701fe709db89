"""Checking the sale Redis against the durable record (ops/reconcile.py) and rebuilding it after
it lost its data (ops/rebuild.py), on the real services.

A sale of its own: a command worker (commands, sweeper), a persistence worker and a payment
worker on topics of their own, so the rebuild test can stop and restart each of them, and a
gateway in front. The expected state comes from PostgreSQL + the events after the persistence
group's committed offsets + the dead-letter topic (ops/sale_state.py).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import pytest_asyncio

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from booking_rush.services.clients import idempotent_producer
from lua import keys
from ops.demo_pay import GOOD_CARD as CARD
from ops.inventory import unload_event
from ops.rebuild import hold_hash, paying_deadline, payment_hash, rebuild, settle_result
from ops.reconcile import reconcile, unhandled_dead_letters
from ops.sale_state import EventState
from tests.support import (
    Topics,
    WorkerProcess,
    book,
    call,
    gateway_settings,
    reserve_body,
    running_gateway,
    tenant_with_event,
    wait_until,
    worker_env,
)
from workers.settings import WorkerSettings

HOLDING = ("reserved", "paying", "confirmed")


@dataclass
class Sale:
    url: str
    topics: Topics
    settings: WorkerSettings  # what the tools read: services, topics, the persistence group
    envs: dict[str, dict[str, str]]
    procs: dict[str, WorkerProcess] = field(default_factory=dict)

    async def start(self, name: str) -> None:
        module = "workers.payment_worker" if name == "payments" else "workers"
        self.procs[name] = await WorkerProcess(self.envs[name], module=module).start()

    async def stop(self, name: str) -> None:
        await self.procs.pop(name).stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sale(schema, new_topics, jwt_secret, smtp_sink):
    _, smtp_port = smtp_sink
    topics = await new_topics("rebuild")
    extra = {"BR_SMTP_PORT": str(smtp_port), "BR_FAKEPAY_LATENCY_MS": "20"}
    envs = {
        "commands": worker_env(
            schema, topics, f"{topics.prefix}c", BR_WORKER_ROLES="commands,sweeper", **extra
        ),
        "persistence": worker_env(
            schema, topics, f"{topics.prefix}p", BR_WORKER_ROLES="persistence", **extra
        ),
        "payments": worker_env(schema, topics, f"{topics.prefix}pay", **extra),
    }
    settings = WorkerSettings(
        endpoints=schema.endpoints(topics.prefix),
        persistence_group=envs["persistence"]["BR_PERSISTENCE_GROUP"],
    )
    gateway = gateway_settings(schema, topics, jwt_secret, rate_limits="general=6000/1000")
    current = Sale("", topics, settings, envs)
    try:
        for name in envs:
            await current.start(name)
        async with running_gateway(gateway) as url:
            current.url = url
            yield current
    finally:
        for proc in current.procs.values():
            await proc.stop()


def _zone_key(event) -> str:
    show = next(iter(event.shows))
    return keys.zone(event.event_id, show, event.shows[show]["GA"])


async def _pay_and_settle(http, sale, token, booking_id) -> str:
    status, paid = await call(
        http,
        "POST",
        f"{sale.url}/api/v1/payments",
        token,
        {"booking_id": booking_id, "method": "card", "details": CARD},
    )
    assert status == 201, paid
    payment_id = paid["data"]["payment_id"]

    async def succeeded() -> bool:
        status, answer = await call(http, "GET", f"{sale.url}/api/v1/payments/{payment_id}", token)
        assert status == 200, answer
        assert answer["data"]["status"] != "failed", answer
        return answer["data"]["status"] == "success"

    await wait_until(succeeded, 30, f"payment {payment_id} to succeed")
    return payment_id


async def _cancel(http, sale, token, booking_id) -> None:
    status, answer = await call(http, "POST", f"{sale.url}/api/v1/bookings/{booking_id}/cancel", token)
    assert status == 200 and answer["data"]["status"] == "cancelled", answer


async def _hold_status(sale_redis, event, booking_id) -> str | None:
    raw = await sale_redis.hget(keys.hold(event.event_id, booking_id), "status")
    return raw.decode() if raw else None


async def _is(sale_redis, event, booking_id, status) -> bool:
    return await _hold_status(sale_redis, event, booking_id) == status


async def _persisted(pg, statuses: dict[str, str]) -> None:
    """Wait until PostgreSQL has every booking in its status (proof their events were produced)."""

    async def caught_up() -> bool:
        rows = await pg.fetch(
            "SELECT public_id, status FROM bookings WHERE public_id = ANY($1)", list(statuses)
        )
        return {r["public_id"]: r["status"] for r in rows} == statuses

    await wait_until(caught_up, 30, "PostgreSQL to catch up with the bookings")


def _found(report) -> list[tuple[str, str]]:
    return [(d.kind, d.subject) for d in report.differences]


async def test_reconcile_finds_no_difference_then_exactly_the_one_injected(
    sale, http, make_event, make_users, token_for, pg, sale_redis
):
    event = await make_event([("GA", 10)], shows=1)
    show = next(iter(event.shows))
    zone = event.shows[show]["GA"]
    users = await make_users(3)
    booked = []
    for user, quantity in zip(users, (2, 1, 2), strict=True):
        status, answer = await book(
            http, sale.url, token_for(user), reserve_body(event, quantity=quantity, key=f"rc-{user}")
        )
        assert status == 201, answer
        booked.append(answer["data"]["booking_id"])
    paid, cancelled, reserved = booked
    await _cancel(http, sale, token_for(users[1]), cancelled)
    payment_id = await _pay_and_settle(http, sale, token_for(users[0]), paid)
    await wait_until(
        lambda: _is(sale_redis, event, paid, "confirmed"), 30, "the paid booking confirmed in Redis"
    )
    await _persisted(pg, {paid: "confirmed", cancelled: "cancelled", reserved: "reserved"})

    report = await reconcile(sale_redis, pg, sale.settings, [event.event_id])
    assert report.differences == [], "\n".join(map(str, report.differences))
    assert (report.bookings, report.zones) == (3, 1)

    zone_key = _zone_key(event)
    await sale_redis.hincrby(zone_key, "available", 1)  # a seat out of thin air
    try:
        report = await reconcile(sale_redis, pg, sale.settings, [event.event_id])
        assert _found(report) == [("zone available", f"zone {show}/{zone}")]
        assert (report.differences[0].redis, report.differences[0].expected) == (7, 6)
        assert not report.ok
    finally:
        await sale_redis.hincrby(zone_key, "available", -1)

    hold_key = keys.hold(event.event_id, reserved)
    saved = await sale_redis.hgetall(hold_key)
    await sale_redis.delete(hold_key)  # a hold lost
    try:
        report = await reconcile(sale_redis, pg, sale.settings, [event.event_id])
        assert _found(report) == [("hold missing", f"booking {reserved}")]
    finally:
        await sale_redis.hset(hold_key, mapping=saved)
    report = await reconcile(sale_redis, pg, sale.settings, [event.event_id])
    assert report.differences == []
    assert await sale_redis.hget(keys.payment(event.event_id, payment_id), "status") == b"success"


async def test_dead_letters_are_listed_until_marked_handled(
    sale, pg, sale_redis, make_event, make_users, schema
):
    event = await make_event([("GA", 10)], shows=1)
    show = next(iter(event.shows))
    now = now_ms()
    booking_id = messages.new_public_id(event.event_id)
    # A booking of a user PostgreSQL does not know: refused (a foreign key), so dead-lettered.
    orphan = {
        "type": messages.BOOKING_CREATED,
        "event_id": event.event_id,
        "booking_id": booking_id,
        "user_id": str(uuid.uuid4()),
        "show_id": show,
        "zone_id": event.shows[show]["GA"],
        "quantity": 1,
        "total_cents": 10000,
        "remaining": 9,
        "created_at": now,
        "expires_at": now + 600_000,
        "request_id": messages.new_public_id(event.event_id),
        "idempotency_scope": "k:orphan",
        "body_hash": "h",
        "status": "reserved",
        "version": 1,
    }
    async with idempotent_producer(schema.kafka_bootstrap) as producer:
        await producer.send_and_wait(sale.topics.events, b"not json at all", key=show.encode())
        await producer.send_and_wait(sale.topics.events, messages.encode(orphan), key=show.encode())

    group = f"{sale.topics.dead_letter}.review"

    async def listed(n: int) -> bool:
        letters, _ = await unhandled_dead_letters(sale.settings, group)
        return len(letters) == n

    await wait_until(lambda: listed(2), 30, "both refused events on the dead-letter topic")
    report = await reconcile(sale_redis, pg, sale.settings, [])
    assert not report.ok and report.differences == []
    garbage, refused = report.dead_letters
    assert garbage.about.startswith("undecodable") and garbage.error
    assert booking_id in refused.about and "foreign key" in refused.error
    assert refused.source.startswith(sale.topics.events + ":")

    # The refused booking counts in the expected state (it is nowhere else): this Redis never had
    # it, so reconciling its event shows exactly what it would hold.
    report = await reconcile(sale_redis, pg, sale.settings, [event.event_id])
    assert sorted(d.kind for d in report.differences) == ["hold missing", "user count", "zone available"]

    report = await reconcile(sale_redis, pg, sale.settings, [], handled=True)
    assert (len(report.dead_letters), report.marked_handled, report.ok) == (2, 2, True)
    report = await reconcile(sale_redis, pg, sale.settings, [])
    assert report.dead_letters == [] and report.ok

    async with idempotent_producer(schema.kafka_bootstrap) as producer:
        await producer.send_and_wait(sale.topics.events, b"{broken", key=show.encode())
    await wait_until(lambda: listed(1), 30, "the new dead letter listed, the handled ones not")
    report = await reconcile(sale_redis, pg, sale.settings, [], handled=True)
    assert [d.offset for d in report.dead_letters] == [refused.offset + 1]
    assert (await reconcile(sale_redis, pg, sale.settings, [])).ok


async def test_rebuild_refuses_a_live_event_and_with_yes_replaces_its_state(
    sale, http, make_event, make_users, token_for, pg, sale_redis
):
    event = await make_event([("GA", 10)], shows=1)
    ev = event.event_id
    users = await make_users(2)
    booked = []
    for user in users:
        status, answer = await book(
            http, sale.url, token_for(user), reserve_body(event, quantity=2, key=f"yes-{user}")
        )
        assert status == 201, answer
        booked.append(answer["data"]["booking_id"])
    await _cancel(http, sale, token_for(users[1]), booked[1])
    await _persisted(pg, {booked[0]: "reserved", booked[1]: "cancelled"})

    # A Redis gone wrong: seats from nowhere, a hold nobody made, a count off, and a retry's
    # answer recorded while the zone was missing.
    bogus = messages.new_public_id(ev)
    await sale_redis.hincrby(_zone_key(event), "available", 3)
    await sale_redis.hset(
        keys.hold(ev, bogus), mapping={"status": "reserved", "quantity": 1, "user_id": users[1]}
    )
    await sale_redis.set(keys.user_count(ev, users[1]), 1)
    stale_answer = keys.idempotency(ev, users[1], "k:retry")
    await sale_redis.hset(stale_answer, mapping={"h": "x", "r": messages.encode({"status": "unknown_zone"})})
    report = await reconcile(sale_redis, pg, sale.settings, [ev])
    assert sorted(d.kind for d in report.differences) == ["hold extra", "user count", "zone available"]

    refused = await rebuild(sale_redis, pg, sale.settings, [ev])
    assert not refused.ok and "already exist" in refused.events[0].refused
    assert int(await sale_redis.hget(_zone_key(event), "available")) == 11  # nothing written

    summary = await rebuild(sale_redis, pg, sale.settings, [ev], replace=True)
    assert summary.ok, summary.summary()
    (done,) = summary.events
    assert done.cleared_keys > 0 and done.dropped_records == 1
    assert dict(done.holds) == {"reserved": 1, "cancelled": 1}
    assert await sale_redis.exists(keys.hold(ev, bogus), stale_answer) == 0
    assert int(await sale_redis.hget(_zone_key(event), "available")) == 8
    report = await reconcile(sale_redis, pg, sale.settings, [ev])
    assert report.differences == [], "\n".join(map(str, report.differences))


def test_records_rebuilt_from_postgresql_keep_what_the_scripts_read():
    """PostgreSQL has no column for a paying deadline nor a settled payment's outcome: both are
    derived, or a redelivered outcome would apply twice and a paying hold would never be asked."""
    state = EventState("e", 4)
    state.payments["p"] = {"payment_id": "p", "status": "pending", "created_at": 1_000}
    paying = {"booking_id": "b", "status": "paying", "payment_id": "p", "idempotency_scope": "k:x"}
    settings = WorkerSettings(payment_hold_ms=900_000)
    assert paying_deadline(paying, state, settings) == 901_000
    assert paying_deadline({**paying, "paying_until": 5}, state, settings) == 5
    assert paying_deadline({**paying, "payment_id": "other"}, state, settings) is None
    assert hold_hash(paying)["scope"] == "k:x" and "idempotency_scope" not in hold_hash(paying)
    outcomes = {
        ("success", None): "confirmed",
        ("success", "late_payment"): "late_success",
        ("refunded", "requested"): "confirmed",
        ("refunded", "late_payment"): "late_success",
        ("failed", None): "payment_failed",
        ("pending", None): None,
        ("processing", None): None,
    }
    for (status, reason), result in outcomes.items():
        assert settle_result({"status": status, "refund_reason": reason}) == result
    assert payment_hash({"payment_id": "p", "status": "failed", "event_id": "e", "show_id": "s"}) == {
        "payment_id": "p",
        "status": "failed",
        "settle_result": "payment_failed",
    }


async def test_redis_wiped_and_rebuilt_during_a_sale_sells_no_seat_twice(
    sale, http, make_event, make_users, token_for, pg, sale_redis
):
    event = await make_event([("GA", 40)], shows=1, max_per_user=4)
    ev = event.event_id
    users = await make_users(36)
    buyers, late = users[:30], users[30:]
    bodies = {u: reserve_body(event, quantity=2, key=f"rb-{u}") for u in users}

    async def reserve(user):
        return user, *(await book(http, sale.url, token_for(user), bodies[user]))

    first = await asyncio.gather(*(reserve(u) for u in buyers))
    booked = {u: a["data"]["booking_id"] for u, s, a in first if s == 201}
    assert sorted(s for _, s, _ in first) == [201] * 20 + [409] * 10  # 40 seats, 2 each
    expected = dict.fromkeys(booked.values(), "reserved")
    owners = list(booked)

    payments = {}
    for user in owners[:4]:
        payments[booked[user]] = await _pay_and_settle(http, sale, token_for(user), booked[user])
        expected[booked[user]] = "confirmed"
    for user in owners[4:6]:
        await _cancel(http, sale, token_for(user), booked[user])
        expected[booked[user]] = "cancelled"
    for booking_id, status in expected.items():
        await wait_until(
            lambda b=booking_id, s=status: _is(sale_redis, event, b, s), 30, f"{booking_id} {status}"
        )
    await _persisted(pg, expected)

    # From here on, events reach Kafka but not PostgreSQL: the rebuild must read the tail.
    await sale.stop("persistence")
    _, status, answer = await reserve(late[0])
    assert status == 201, answer
    booked[late[0]] = answer["data"]["booking_id"]
    expected[booked[late[0]]] = "reserved"
    payments[booked[owners[6]]] = await _pay_and_settle(http, sale, token_for(owners[6]), booked[owners[6]])
    expected[booked[owners[6]]] = "confirmed"
    await wait_until(lambda: _is(sale_redis, event, booked[owners[6]], "confirmed"), 30, "confirmed")

    await sale.stop("commands")  # SIGTERM: applied batches are produced and committed first
    before = await _snapshot(sale_redis, event, expected)
    assert before["available"] == 40 - 2 * sum(s in HOLDING for s in expected.values()) == 2

    assert await unload_event(sale_redis, ev) > 0
    assert await sale_redis.exists(_zone_key(event)) == 0
    summary = await rebuild(sale_redis, pg, sale.settings, [ev])
    assert summary.ok, summary.summary()
    (done,) = summary.events
    assert sum(done.holds.values()) == len(expected) and done.payments == len(payments)
    assert await _snapshot(sale_redis, event, expected) == before
    assert await sale_redis.sismember(keys.LIVE_EVENTS, ev)
    again = await rebuild(sale_redis, pg, sale.settings, [ev])  # zones exist now: refused
    assert not again.ok and again.events[0].refused
    report = await reconcile(sale_redis, pg, sale.settings, [ev])
    assert report.differences == [], "\n".join(map(str, report.differences))

    await sale.start("commands")
    await sale.start("persistence")
    # A redelivered reserve (same idempotency key, same body) gets its first booking, even for a
    # booking paid since: nothing is sold again.
    for user in (owners[0], owners[10], late[0]):
        _, status, answer = await reserve(user)
        assert status == 201 and answer["data"]["booking_id"] == booked[user], answer
    # A paid booking's payment is there again for its owner.
    owner_of = {b: u for u, b in booked.items()}
    for booking_id, payment_id in payments.items():
        status, answer = await call(
            http, "GET", f"{sale.url}/api/v1/payments/{payment_id}", token_for(owner_of[booking_id])
        )
        assert status == 200 and answer["data"]["status"] == "success", answer

    # The sale goes on until sold out: the 2 seats left go to one more buyer, then 409.
    outcomes = [await reserve(user) for user in late[1:]]
    assert [s for _, s, _ in outcomes] == [201] + [409] * (len(late) - 2)
    _, _, answer = outcomes[0]
    booked[late[1]] = answer["data"]["booking_id"]
    expected[booked[late[1]]] = "reserved"

    after = await _snapshot(sale_redis, event, expected)
    assert after["holds"] == {b: (s, 2) for b, s in expected.items()}  # every 201 still there, as it was
    held = 2 * sum(s in HOLDING for s in expected.values())
    assert held == 40 and after["available"] == 40 - held == 0
    assert len(set(booked.values())) == len(booked)

    async def postgresql_agrees() -> bool:
        row = await pg.fetchrow(
            "SELECT count(*) AS n, coalesce(sum(quantity) FILTER (WHERE status = ANY($2)), 0) AS held, "
            "(SELECT available_seats FROM seat_zones WHERE id = $3) AS available "
            "FROM bookings WHERE event_id = $1",
            ev,
            list(HOLDING),
            event.shows[next(iter(event.shows))]["GA"],
        )
        return (row["n"], row["held"], row["available"]) == (len(expected), 40, 0)

    await wait_until(postgresql_agrees, 30, "PostgreSQL to agree: every booking, 40 held, none left")
    await _persisted(pg, expected)
    report = await reconcile(sale_redis, pg, sale.settings, [ev])
    assert report.differences == [], "\n".join(map(str, report.differences))


async def _snapshot(sale_redis, event, expected: dict[str, str]) -> dict:
    """What the sale Redis says about the event's zone, bookings, users and payments."""
    ev = event.event_id
    holds = {}
    counts = {}
    for booking_id in expected:
        hold = await sale_redis.hgetall(keys.hold(ev, booking_id))
        assert hold, f"booking {booking_id} has no hold"
        holds[booking_id] = (hold[b"status"].decode(), int(hold[b"quantity"]))
        user = hold[b"user_id"].decode()
        counts[user] = await sale_redis.get(keys.user_count(ev, user))
    return {
        "available": int(await sale_redis.hget(_zone_key(event), "available")),
        "total": int(await sale_redis.hget(_zone_key(event), "total")),
        "holds": holds,
        "counts": counts,
        "expiry": sorted(m.decode() for m in await sale_redis.zrange(keys.expiry_index(ev), 0, -1)),
        "meta": await sale_redis.hgetall(keys.event_meta(ev)),
        "index": await sale_redis.smembers(keys.zone_index(ev)),
    }


async def test_rebuild_keeps_a_suspended_tenants_events_suspended(sale, pg, sale_redis):
    """The sale's state comes back from PostgreSQL with the rest: a suspended tenant's events
    stay refused (lua/sale_state.lua's flag), an active tenant's do not."""
    made = await tenant_with_event(pg, sale_redis, "rebuilt-")
    tenant_id, event = made["tenant_id"], made["event"]
    ev = event.event_id
    await pg.execute("UPDATE tenants SET status = 'suspended' WHERE id = $1", tenant_id)
    summary = await rebuild(sale_redis, pg, sale.settings, [ev], replace=True)
    assert summary.ok, summary.summary()
    assert await sale_redis.hget(keys.event_meta(ev), "suspended") == b"1"
    await pg.execute("UPDATE tenants SET status = 'active' WHERE id = $1", tenant_id)
    assert (await rebuild(sale_redis, pg, sale.settings, [ev], replace=True)).ok
    assert not await sale_redis.hexists(keys.event_meta(ev), "suspended")


async def test_a_sale_with_codes_and_an_early_bird_reconciles_and_rebuilds_its_counters(
    sale, http, make_event, make_users, token_for, token_with_role, pg, sale_redis
):
    """The early-bird places and the codes' uses are counters like the seats: reconcile compares
    them with what the bookings holding seats took, rebuild writes them back with the rules."""
    event = await make_event([("GA", 20)], shows=1, max_per_user=4)
    ev, show = event.event_id, next(iter(event.shows))
    zone = event.shows[show]["GA"]
    organizer = await token_with_role("organizer")
    base = f"{sale.url}/api/v1/events/{ev}"
    changes = [
        ("PUT", f"{base}/zones/{zone}/early-bird", {"kind": "price", "price": "50.00", "seats": 5}),
        ("PUT", f"{base}/bundles", {"tiers": [{"min_quantity": 3, "percent": 5}]}),
        (
            "POST",
            f"{base}/promo-codes",
            {"code": "RECON-CODE1", "kind": "percent", "percent": 10, "per_user": 2},
        ),
        ("POST", f"{base}/promo-codes", {"code": "RECON-PAUSED", "kind": "amount", "amount": "5.00"}),
        ("PATCH", f"{base}/promo-codes/recon-paused", {"status": "paused"}),
    ]
    for method, url, body in changes:
        status, answer = await call(http, method, url, organizer, body)
        assert status in (200, 201), answer
    users = await make_users(4)
    booked = {}
    for user, quantity, code in zip(
        users, (2, 3, 1, 1), ("RECON-CODE1", "recon-code1", "Recon-Code1", None), strict=True
    ):
        body = {
            **reserve_body(event, quantity=quantity, key=f"pr-{user}"),
            **({"promo_code": code} if code else {}),
        }
        status, answer = await book(http, sale.url, token_for(user), body)
        assert status == 201, answer
        booked[user] = answer["data"]["booking_id"]
    await _cancel(http, sale, token_for(users[2]), booked[users[2]])  # gives its use back
    await _pay_and_settle(http, sale, token_for(users[0]), booked[users[0]])
    await wait_until(lambda: _is(sale_redis, event, booked[users[0]], "confirmed"), 30, "the payment")
    await _persisted(
        pg,
        {
            booked[users[0]]: "confirmed",
            booked[users[1]]: "reserved",
            booked[users[2]]: "cancelled",
            booked[users[3]]: "reserved",
        },
    )

    async def rules_persisted() -> bool:
        paused = await pg.fetchval(
            "SELECT status FROM promo_codes WHERE event_id = $1 AND code = 'RECON-PAUSED'", ev
        )
        return paused == "paused"

    await wait_until(rules_persisted, 30, "the pricing changes in PostgreSQL")
    zone_key = _zone_key(event)
    assert await sale_redis.hget(zone_key, "eb_taken") == b"5"
    assert await sale_redis.hget(keys.promo_uses(ev), "RECON-CODE1") == b"2"
    report = await reconcile(sale_redis, pg, sale.settings, [ev])
    assert report.differences == [], "\n".join(map(str, report.differences))

    for key, field_name, kind, subject in (
        (keys.promo_uses(ev), "RECON-CODE1", "promo code uses", "RECON-CODE1"),
        (zone_key, "eb_taken", "zone early-bird places", f"zone {show}/{zone}"),
    ):
        await sale_redis.hincrby(key, field_name, 1)
        try:
            report = await reconcile(sale_redis, pg, sale.settings, [ev])
            assert _found(report) == [(kind, subject)]
        finally:
            await sale_redis.hincrby(key, field_name, -1)

    # The sale Redis loses the event; the rebuild brings the rules, codes and counters back.
    await unload_event(sale_redis, ev)
    summary = await rebuild(sale_redis, pg, sale.settings, [ev])
    assert summary.ok, summary.summary()
    assert await sale_redis.hget(zone_key, "eb_taken") == b"5"
    assert await sale_redis.hmget(keys.promo_uses(ev), "RECON-CODE1", f"RECON-CODE1|{users[1]}") == [
        b"2",
        b"1",
    ]
    assert messages.decode(await sale_redis.hget(keys.promos(ev), "RECON-PAUSED"))["status"] == "paused"
    report = await reconcile(sale_redis, pg, sale.settings, [ev])
    assert report.differences == [], "\n".join(map(str, report.differences))

    # And the sale goes on priced as before: no early-bird place left, the bundle, the code.
    (late,) = await make_users(1)
    body = {**reserve_body(event, quantity=3, key=f"pr-{late}"), "promo_code": "recon-code1"}
    status, answer = await book(http, sale.url, token_for(late), body)
    assert status == 201, answer
    # 3 x 100.00, 5 % off (285.00), then 10 % off: 256.50.
    assert answer["data"]["total_price"] == "256.50"
    assert [d["kind"] for d in answer["data"]["price"]["discounts"]] == ["bundle", "promo"]
    paused = {**reserve_body(event, key=f"pr2-{late}"), "promo_code": "RECON-PAUSED"}
    status, answer = await book(http, sale.url, token_for(late), paused)
    assert answer["error"]["code"] == "PROMO_CODE_INVALID"
