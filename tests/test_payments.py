"""Paying for a reservation: reserved -> paying -> confirmed (or released), on the real services.

A sale of its own: command/sweeper/persistence workers and a payment worker (Dramatiq on the aux
Redis) with the fake provider, and a local SMTP sink for the mails. A test makes a paying deadline
pass by having the sweeper look an hour ahead (the same path the sweeper's clock takes, without
racing it). The fake provider's scenario is chosen by the last four characters of the card
number (workers/payments/provider.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest_asyncio

from booking_rush.contract.messages import now_ms
from booking_rush.services.clients import idempotent_producer
from gateway.routes.payments import refund_percent
from lua import keys
from ops.demo_pay import GOOD_CARD as CARD
from ops.demo_pay import Mailbox
from tests.support import (
    WorkerProcess,
    book,
    call,
    final_answer,
    gateway_settings,
    metric_samples,
    queue_call,
    reserve_body,
    running_gateway,
    wait_until,
    worker_env,
)
from workers.archiver import Archiver
from workers.settings import WorkerSettings
from workers.sweeper import Sweeper

DECLINED = {**CARD, "card_number": "4000000000000002"}
FLAKY = {**CARD, "card_number": "4000000000000119"}  # the provider errs once, then charges
TIMES_OUT = {**CARD, "card_number": "4000000000000408"}  # charged, but the answer never comes
LOST = {**CARD, "card_number": "4000000000000409"}  # the charge reaches the provider 12 s late
# Longer than any test here: the deadline passes when a test has the sweeper look an hour ahead.
PAYING_HOLD_S = 60


@dataclass
class Sale:
    url: str
    prefix: str  # of its topics and job queues
    inbox: Mailbox
    payer: WorkerProcess


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sale(schema, new_topics, jwt_secret, smtp_sink):
    inbox, smtp_port = smtp_sink
    topics = await new_topics("pay")
    env = {
        "BR_PAYMENT_HOLD_SECONDS": str(PAYING_HOLD_S),
        "BR_SWEEP_INTERVAL_SECONDS": "0.2",
        "BR_SWEEP_REISSUE_SECONDS": "1",
        "BR_SMTP_PORT": str(smtp_port),
        "BR_FAKEPAY_LATENCY_MS": "20",
        # Long enough that the sweeper's question (asked as soon as the charge was attempted)
        # comes before the money does, even on a loaded machine.
        "BR_FAKEPAY_SETTLE_DELAY_MS": "12000",
        "BR_PAYMENT_PROVIDER_TIMEOUT_SECONDS": "1",
        "BR_PAYMENT_MIN_BACKOFF_MS": "200",
        "BR_PAYMENT_MAX_BACKOFF_MS": "1000",
        "BR_PAYMENT_MAX_RETRIES": "60",
        "BR_METRICS_PORT": "0",
    }
    workers = await WorkerProcess(worker_env(schema, topics, f"{topics.prefix}w", **env)).start()
    payer = await WorkerProcess(
        worker_env(schema, topics, f"{topics.prefix}p", **env), module="workers.payment_worker"
    ).start()
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits="general=6000/1000")
    try:
        async with running_gateway(settings) as url:
            yield Sale(url, topics.prefix, inbox, payer)
    finally:
        await payer.stop()
        await workers.stop()


async def _reserved(sale, http, make_event, make_users, token_for, quantity=2, seats=10):
    event = await make_event([("GA", seats)], shows=1)
    (user,) = await make_users(1)
    body = reserve_body(event, quantity=quantity)
    status, answer = await book(http, sale.url, token_for(user), body)
    assert status == 201, answer
    return event, user, answer["data"]["booking_id"]


async def _answered(http, sale, token, method: str, url: str, body=None):
    """A command's answer, following a 202 (a worker slow to answer) to the final one."""
    status, answer = await call(http, method, url, token, body)
    return await final_answer(http, sale.url, token, status, answer, created=False)


async def _pay(http, sale, token, booking_id, details=CARD, method="card"):
    body = {"booking_id": booking_id, "method": method, "details": details}
    return await _answered(http, sale, token, "POST", f"{sale.url}/api/v1/payments", body)


async def _payment_settles(http, sale, token, payment_id, wanted: set[str], timeout=30, attempts=0) -> dict:
    seen: dict = {}

    async def settled() -> bool:
        status, answer = await call(http, "GET", f"{sale.url}/api/v1/payments/{payment_id}", token)
        assert status == 200, answer
        seen.update(answer["data"])
        return seen["status"] in wanted and seen["attempts"] >= attempts

    await wait_until(settled, timeout, f"payment {wanted}")
    return seen


async def _available(sale_redis, event, booking_zone="GA") -> int:
    show = next(iter(event.shows))
    return int(
        await sale_redis.hget(keys.zone(event.event_id, show, event.shows[show][booking_zone]), "available")
    )


async def _row(pg, booking_id, wanted_status):
    async def persisted() -> bool:
        return (
            await pg.fetchval("SELECT status FROM bookings WHERE public_id = $1", booking_id) == wanted_status
        )

    await wait_until(persisted, 30, f"booking {wanted_status} in PostgreSQL")


async def _sweep_an_hour_ahead(sale, schema, sale_redis, event) -> None:
    """The sweeper, as of an hour from now: every hold's deadline has passed (a reservation gets
    an expire command, a hold being paid for a question to the provider)."""
    settings = WorkerSettings(endpoints=schema.endpoints(sale.prefix))
    async with idempotent_producer(schema.kafka_bootstrap) as producer:
        later = now_ms() + 3_600_000
        await Sweeper(sale_redis, producer, settings).sweep_once(as_of_ms=later, event_ids=[event.event_id])


def _mail_to(sale, address: str, subject_part: str):
    return [m for m in sale.inbox.messages if m["To"] == address and subject_part in m["Subject"]]


async def _mail_arrives(sale, address: str, subject_part: str) -> None:
    """Wait, woken by each arrival, for a mail to `address` whose subject has `subject_part`."""

    def arrived(messages) -> bool:
        return any(m["To"] == address and subject_part in m["Subject"] for m in messages)

    assert await asyncio.to_thread(sale.inbox.wait_until, arrived, 30), f"no mail '{subject_part}'"


async def test_a_payment_confirms_the_booking_with_an_e_ticket_a_mail_and_rows(
    sale, http, make_event, make_users, token_for, pg, sale_redis, room
):
    """The whole way: join the waiting room, admitted, reserve with the pass, pay, confirmed."""
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "grace_s": 600, "rate_per_min": 60_000})
    (user,) = await make_users(1)
    token = token_for(user)
    status, joined = await queue_call(http, sale.url, token, "join", event.event_id)
    assert status == 200 and joined["data"]["state"] == "waiting", joined
    await room.admit(event.event_id, now_ms())  # what an admitter does each tick
    _, standing = await queue_call(http, sale.url, token, "status", event.event_id)
    assert standing["data"]["state"] == "admitted", standing
    body = reserve_body(event, quantity=2)
    status, reserved = await book(http, sale.url, token, body, {"X-Queue-Pass": standing["data"]["pass"]})
    assert status == 201, reserved
    booking_id = reserved["data"]["booking_id"]
    status, paid = await _pay(http, sale, token, booking_id)
    assert status == 201, paid
    assert paid["data"]["status"] in ("pending", "processing")
    assert paid["data"]["amount"] == "200.00" and paid["data"]["masked"] == "card ****4242"
    payment_id = paid["data"]["payment_id"]
    status, again = await _pay(http, sale, token, booking_id)  # paying again names the same payment
    assert status == 200 and again["data"]["payment_id"] == payment_id

    payment = await _payment_settles(http, sale, token, payment_id, {"success"})
    assert payment["attempts"] >= 1
    status, confirmed = await call(http, "POST", f"{sale.url}/api/v1/bookings/{booking_id}/confirm", token)
    assert status == 200, confirmed
    ticket = confirmed["data"]["ticket_code"]
    assert confirmed["data"]["status"] == "confirmed" and ticket.startswith("BR-")
    assert await _available(sale_redis, event) == 8  # sold seats stay sold
    assert await sale_redis.zscore(keys.expiry_index(event.event_id), booking_id) is None

    email = await pg.fetchval("SELECT email FROM users WHERE id = $1", user)
    await _mail_arrives(sale, email, ticket)
    (mail,) = _mail_to(sale, email, ticket)
    assert ticket in mail.get_payload() and "200.00" in mail.get_payload()
    await _mail_arrives(sale, email, "Payment received")
    (receipt,) = _mail_to(sale, email, "Payment received")
    assert "200.00 (card ****4242)" in receipt.get_payload()

    await _row(pg, booking_id, "confirmed")
    row = await pg.fetchrow(
        "SELECT b.ticket_code, p.status, p.amount, p.method, p.attempts FROM bookings b "
        "JOIN payments p ON p.booking_id = b.id WHERE b.public_id = $1",
        booking_id,
    )
    assert (row["ticket_code"], row["status"], str(row["amount"]), row["method"]) == (
        ticket,
        "success",
        "200.00",
        "card",
    )
    assert row["attempts"] >= 1
    zone = next(iter(event.shows.values()))["GA"]
    assert await pg.fetchval("SELECT available_seats FROM seat_zones WHERE id = $1", zone) == 8


async def test_a_declined_payment_releases_the_seats_once_and_confirm_is_refused(
    sale, http, make_event, make_users, token_for, pg, sale_redis
):
    event, user, booking_id = await _reserved(sale, http, make_event, make_users, token_for, quantity=3)
    token = token_for(user)
    assert await _available(sale_redis, event) == 7
    status, paid = await _pay(http, sale, token, booking_id, DECLINED)
    assert status == 201, paid
    payment = await _payment_settles(http, sale, token, paid["data"]["payment_id"], {"failed"})
    assert payment["failure_reason"] == "card_declined"
    assert await _available(sale_redis, event) == 10
    assert await sale_redis.get(keys.user_count(event.event_id, user)) is None
    status, refused = await call(http, "POST", f"{sale.url}/api/v1/bookings/{booking_id}/confirm", token)
    assert (status, refused["error"]["code"]) == (402, "PAYMENT_FAILED")
    status, refused = await _pay(http, sale, token, booking_id)  # the same payment, still failed
    assert status == 200 and refused["data"]["status"] == "failed"
    await _row(pg, booking_id, "cancelled")
    email = await pg.fetchval("SELECT email FROM users WHERE id = $1", user)
    await _mail_arrives(sale, email, "failed")
    assert await _available(sale_redis, event) == 10  # returned exactly once


async def test_a_transient_error_is_retried_and_a_timeout_is_settled_by_asking_the_provider(
    sale, http, make_event, make_users, token_for
):
    for details in (FLAKY, TIMES_OUT):
        _, user, booking_id = await _reserved(sale, http, make_event, make_users, token_for)
        token = token_for(user)
        status, paid = await _pay(http, sale, token, booking_id, details)
        assert status == 201, paid
        payment = await _payment_settles(http, sale, token, paid["data"]["payment_id"], {"success", "failed"})
        assert payment["status"] == "success", payment
        if details is FLAKY:
            assert payment["attempts"] >= 2


async def test_money_that_arrives_after_the_paying_deadline_is_refunded_and_the_seats_return_once(
    sale, schema, http, make_event, make_users, token_for, pg, sale_redis, scripts
):
    event, user, booking_id = await _reserved(sale, http, make_event, make_users, token_for)
    token = token_for(user)
    status, paid = await _pay(http, sale, token, booking_id, LOST)
    assert status == 201, paid
    payment_id = paid["data"]["payment_id"]
    # The charge went out (a second attempt began: the first one's answer was lost) ...
    await _payment_settles(http, sale, token, payment_id, {"processing"}, attempts=2)
    # ... and the paying deadline passes: the provider knows of no charge yet, the seats go back.
    await _sweep_an_hour_ahead(sale, schema, sale_redis, event)
    payment = await _payment_settles(http, sale, token, payment_id, {"failed", "success"}, timeout=20)
    assert (payment["status"], payment["failure_reason"]) == ("failed", "payment_timeout")
    assert await _available(sale_redis, event) == 10
    # The archiver, a day ahead, trims ended holds: not this one, whose payment may still pay.
    settings = WorkerSettings(endpoints=schema.endpoints(sale.prefix))
    await Archiver(sale_redis, scripts, pg, settings).trim_once(now_ms() + 86_400_000, [event.event_id])
    assert await sale_redis.hget(keys.hold(event.event_id, booking_id), "payment_id") == payment_id.encode()
    # Then the charge lands at the provider after all: refunded in full, automatically.
    payment = await _payment_settles(http, sale, token, payment_id, {"refunded"}, timeout=60)
    assert payment["refund"] == {
        "status": "refunded",
        "percent": 100,
        "amount": "200.00",
        "reason": "late_payment",
    }
    assert await _available(sale_redis, event) == 10  # not a second time
    status, refused = await call(http, "POST", f"{sale.url}/api/v1/bookings/{booking_id}/confirm", token)
    assert status == 402, refused


async def test_expiry_racing_payment_returns_each_hold_once(
    sale, schema, http, make_event, make_users, token_for, sale_redis, pg
):
    """Each reservation is paid for while the sweeper expires it as of a later clock: per
    booking exactly one wins (410, seats back; or paid and confirmed), never both."""
    event = await make_event([("GA", 20)], shows=1)
    users = await make_users(8)
    booked = {}
    for user in users:
        body = reserve_body(event, quantity=2)
        status, answer = await book(http, sale.url, token_for(user), body)
        assert status == 201, answer
        booked[answer["data"]["booking_id"]] = user
    assert await _available(sale_redis, event) == 4

    sweeper_settings = WorkerSettings(endpoints=schema.endpoints(sale.prefix))
    later = now_ms() + 3_600_000
    async with idempotent_producer(schema.kafka_bootstrap) as producer:
        sweeper = Sweeper(sale_redis, producer, sweeper_settings)
        answers = await asyncio.gather(
            sweeper.sweep_once(as_of_ms=later, event_ids=[event.event_id]),
            *(_pay(http, sale, token_for(u), b) for b, u in booked.items()),
        )
    outcomes = {}
    for (booking_id, user), (status, answer) in zip(booked.items(), answers[1:], strict=True):
        assert status in (201, 410), answer
        outcomes[booking_id] = status
        if status == 201:
            await _payment_settles(http, sale, token_for(user), answer["data"]["payment_id"], {"success"})

    async def settled() -> bool:
        statuses = [(await sale_redis.hget(keys.hold(event.event_id, b), "status")).decode() for b in booked]
        return all(s in ("confirmed", "expired") for s in statuses)

    await wait_until(settled, 30, "every hold expired or confirmed")
    confirmed = [
        b for b in booked if await sale_redis.hget(keys.hold(event.event_id, b), "status") == b"confirmed"
    ]
    assert {b for b, s in outcomes.items() if s == 201} == set(confirmed)
    assert await _available(sale_redis, event) == 20 - 2 * len(confirmed)


def test_refund_share_by_days_before_the_show():
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert refund_percent(now + timedelta(days=8), "published", now) == 100
    assert refund_percent(now + timedelta(days=7), "published", now) == 50
    assert refund_percent(now + timedelta(days=3), "published", now) == 50
    assert refund_percent(now + timedelta(days=2, hours=23), "published", now) == 0
    assert refund_percent(now + timedelta(hours=1), "cancelled", now) == 100


async def _paid(sale, http, make_event, make_users, token_for):
    event, user, booking_id = await _reserved(sale, http, make_event, make_users, token_for)
    status, paid = await _pay(http, sale, token_for(user), booking_id)
    assert status == 201, paid
    payment_id = paid["data"]["payment_id"]
    await _payment_settles(http, sale, token_for(user), payment_id, {"success"})
    return event, user, booking_id, payment_id


async def test_a_refund_is_requested_then_approved_then_processed(
    sale, http, make_event, make_users, token_for, tenant, pg, sale_redis
):
    event, user, booking_id, payment_id = await _paid(sale, http, make_event, make_users, token_for)
    token = token_for(user)
    refund_url = f"{sale.url}/api/v1/payments/{payment_id}/refund"
    approve_url = f"{sale.url}/api/v1/admin/payments/{payment_id}/refund/approve"
    status, asked = await _answered(http, sale, token, "POST", refund_url)  # the show is 30 days away
    assert status == 200, asked
    assert asked["data"]["refund"] == {
        "status": "requested",
        "percent": 100,
        "amount": "200.00",
        "reason": "requested",
    }
    status, again = await _answered(http, sale, token, "POST", refund_url)
    assert status == 200 and again["data"]["refund"]["status"] == "requested"

    status, refused = await call(http, "POST", approve_url, token)
    assert (status, refused["error"]["code"]) == (403, "FORBIDDEN")
    (stranger,) = await make_users(1)
    status, _ = await call(http, "POST", refund_url, token_for(stranger))
    assert status == 404
    assert await _available(sale_redis, event) == 8  # nothing moves before the approval

    organizer = token_for(tenant["organizer_id"], role="organizer")
    status, approved = await _answered(http, sale, organizer, "POST", approve_url)
    assert status == 200 and approved["data"]["refund"]["status"] in ("approved", "refunded"), approved
    payment = await _payment_settles(http, sale, token, payment_id, {"refunded"})
    assert payment["refund"]["status"] == "refunded"
    assert await _available(sale_redis, event) == 10
    assert await sale_redis.get(keys.user_count(event.event_id, user)) is None
    status, booking = await call(http, "GET", f"{sale.url}/api/v1/bookings/{booking_id}", token)
    assert booking["data"]["status"] == "refunded"

    email = await pg.fetchval("SELECT email FROM users WHERE id = $1", user)
    await _mail_arrives(sale, email, "Refund")
    await _row(pg, booking_id, "refunded")

    async def payment_row_refunded() -> bool:
        row = await pg.fetchrow("SELECT status, refund_amount FROM payments WHERE public_id = $1", payment_id)
        return row is not None and (row["status"], str(row["refund_amount"])) == ("refunded", "200.00")

    await wait_until(payment_row_refunded, 30, "refund persisted")
    zone = next(iter(event.shows.values()))["GA"]
    assert await pg.fetchval("SELECT available_seats FROM seat_zones WHERE id = $1", zone) == 10


async def test_refund_requests_reach_the_organizers_who_approve_or_refuse_them(
    sale, http, make_event, make_users, token_for, tenant, pg
):
    """The organizers' list of requests waiting for them; a refusal with a reason (mailed,
    final, nothing moves); an approval (mailed); another tenant's people see none of it."""
    organizer = token_for(tenant["organizer_id"], role="organizer")
    asked = []
    for _ in range(2):
        event, user, booking_id, payment_id = await _paid(sale, http, make_event, make_users, token_for)
        status, answer = await _answered(
            http, sale, token_for(user), "POST", f"{sale.url}/api/v1/payments/{payment_id}/refund"
        )
        assert status == 200, answer
        asked.append((event, user, booking_id, payment_id))
    (event, refused_user, refused_booking, refused_payment) = asked[0]

    async def listed(event_id: str, status: str) -> list:
        url = f"{sale.url}/api/v1/admin/events/{event_id}/refunds?status={status}"
        code, answer = await call(http, "GET", url, organizer)
        assert code == 200, answer
        return answer["data"]

    async def waiting() -> list:
        return await listed(event.event_id, "requested")

    (request,) = await wait_until(waiting, 30, "the request in the organizers' list")
    email = await pg.fetchval("SELECT email FROM users WHERE id = $1", refused_user)
    assert (request["payment_id"], request["booking_id"], request["buyer"]["email"], request["quantity"]) == (
        refused_payment,
        refused_booking,
        email,
        2,
    )
    assert request["refund"]["amount"] == "200.00"

    refuse_url = f"{sale.url}/api/v1/admin/payments/{refused_payment}/refund/refuse"
    status, answer = await call(http, "POST", refuse_url, token_for(refused_user), {"reason": "no"})
    assert (status, answer["error"]["code"]) == (403, "FORBIDDEN")  # not the buyer's to decide
    status, answer = await call(http, "POST", refuse_url, organizer, {})
    assert status == 400  # a refusal says why
    reason = "Refunds closed for this festival: tickets can be resold."
    status, refused = await _answered(http, sale, organizer, "POST", refuse_url, {"reason": reason})
    assert status == 200 and refused["data"]["refund"]["status"] == "refused", refused
    assert refused["data"]["status"] == "success"  # the money stays, the tickets stay valid
    await _mail_arrives(sale, email, "Refund request refused")
    (mail,) = _mail_to(sale, email, "Refund request refused")
    assert reason in mail.get_payload()
    status, again = await _answered(
        http, sale, token_for(refused_user), "POST", f"{sale.url}/api/v1/payments/{refused_payment}/refund"
    )
    assert again["data"]["refund"]["status"] == "refused"  # final: asking again changes nothing
    status, answer = await _answered(
        http, sale, organizer, "POST", f"{sale.url}/api/v1/admin/payments/{refused_payment}/refund/approve"
    )
    assert status == 409, answer
    status, booking = await call(
        http, "GET", f"{sale.url}/api/v1/bookings/{refused_booking}", token_for(refused_user)
    )
    assert booking["data"]["status"] == "confirmed"

    async def refused_listed() -> list:
        return await listed(event.event_id, "refused")

    (row,) = await wait_until(refused_listed, 30, "the refusal in PostgreSQL")
    assert row["refund"]["reason"] == reason

    approved_event, approved_user, _, approved_payment = asked[1]
    status, _ = await _answered(
        http, sale, organizer, "POST", f"{sale.url}/api/v1/admin/payments/{approved_payment}/refund/approve"
    )
    assert status == 200
    await _mail_arrives(
        sale, await pg.fetchval("SELECT email FROM users WHERE id = $1", approved_user), "Refund approved"
    )

    other = await make_users(1)  # another tenant's people: tests/test_tenant_isolation.py
    status, answer = await call(
        http, "GET", f"{sale.url}/api/v1/admin/events/{event.event_id}/refunds", token_for(other[0])
    )
    assert (status, answer["error"]["code"]) == (403, "FORBIDDEN")  # a buyer sees no one's requests
    status, answer = await call(
        http, "GET", f"{sale.url}/api/v1/admin/events/{event.event_id}/refunds?status=nope", organizer
    )
    assert status == 400


async def test_the_refund_share_follows_the_days_left_before_the_show(
    sale, http, make_event, make_users, token_for, pg
):
    for days, expected in ((5, (200, "100.00", 50)), (1, (409, None, 0))):
        event, user, _, payment_id = await _paid(sale, http, make_event, make_users, token_for)
        show = next(iter(event.shows))
        await pg.execute(
            "UPDATE shows SET show_date = now() + make_interval(days => $2) WHERE id = $1", show, days
        )
        status, answer = await _answered(
            http, sale, token_for(user), "POST", f"{sale.url}/api/v1/payments/{payment_id}/refund"
        )
        assert status == expected[0], answer
        if status == 200:
            assert (answer["data"]["refund"]["amount"], answer["data"]["refund"]["percent"]) == expected[1:]
        else:
            assert answer["error"]["code"] == "REFUND_NOT_ALLOWED"


async def test_confirm_refuses_an_unpaid_and_an_expired_booking(
    sale, http, make_event, make_users, token_for, sale_redis, schema
):
    event, user, booking_id = await _reserved(sale, http, make_event, make_users, token_for)
    confirm = f"{sale.url}/api/v1/bookings/{booking_id}/confirm"
    status, refused = await call(http, "POST", confirm, token_for(user))
    assert (status, refused["error"]["code"]) == (402, "PAYMENT_REQUIRED")
    (stranger,) = await make_users(1)
    status, _ = await call(http, "POST", confirm, token_for(stranger))
    assert status == 404
    await _sweep_an_hour_ahead(sale, schema, sale_redis, event)

    async def expired() -> bool:
        return await sale_redis.hget(keys.hold(event.event_id, booking_id), "status") == b"expired"

    await wait_until(expired, 30, "hold expired")
    status, refused = await call(http, "POST", confirm, token_for(user))
    assert (status, refused["error"]["code"]) == (410, "RESERVATION_EXPIRED")
    status, refused = await _pay(http, sale, token_for(user), booking_id)
    assert (status, refused["error"]["code"]) == (410, "RESERVATION_EXPIRED")


async def test_the_payment_worker_counts_outcomes_and_its_queues(
    sale, http, make_event, make_users, token_for
):
    url = f"http://127.0.0.1:{await sale.payer.metrics_port()}/metrics"

    async def scraped() -> dict:
        async with http.get(url) as r:
            assert r.status == 200
            return metric_samples(await r.text())

    def outcomes(found: dict, outcome: str) -> float:
        return found.get(("payment_outcomes_total", (("outcome", outcome),)), 0)

    before = await scraped()
    for card, outcome in ((CARD, "success"), (DECLINED, "failed")):
        _, user, booking_id = await _reserved(sale, http, make_event, make_users, token_for)
        status, paid = await _pay(http, sale, token_for(user), booking_id, card)
        assert status == 201, paid
        await _payment_settles(http, sale, token_for(user), paid["data"]["payment_id"], {outcome})
    after = await scraped()
    assert outcomes(after, "success") - outcomes(before, "success") == 1
    assert outcomes(after, "failed") - outcomes(before, "failed") == 1
    assert ("dramatiq_queue_depth", (("queue", "payments"),)) in after
    assert ("dramatiq_queue_depth", (("queue", "mail"),)) in after
