"""An event cancelled by its organizer (spec §2.2.3: 100 %): its sale ends at the moment the cancel
is applied in the sale Redis, and every booking it holds is settled exactly once — reserved ones
released, paid ones refunded in full, one refunded in part before topped up, a pending refund
request superseded, a payment in progress settled first — while buyers keep reserving, and with a
payment worker killed halfway (workers/payments/cancellation.py).

A sale of its own: command/sweeper/persistence workers, two payment workers with the fake
provider, a gateway and an SMTP sink.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from dataclasses import dataclass, field

import pytest_asyncio

from booking_rush.contract import jobs, pricing
from booking_rush.contract.messages import now_ms
from gateway.auth import issue_access_token
from lua import keys
from ops.demo_pay import GOOD_CARD as CARD
from ops.demo_pay import Mailbox
from ops.seed_data import ensure_users
from tests.support import (
    WorkerProcess,
    book,
    call,
    final_answer,
    gateway_settings,
    published_event,
    queue_call,
    reserve_body,
    running_gateway,
    tenant_with_event,
    unique,
    wait_until,
    worker_env,
)

FLAKY = {**CARD, "card_number": "4000000000000119"}  # the provider errs once, then charges
SEATS = 60


@dataclass
class Sale:
    url: str
    prefix: str
    inbox: Mailbox
    envs: dict[str, dict[str, str]]
    payers: list[WorkerProcess] = field(default_factory=list)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sale(schema, new_topics, jwt_secret, smtp_sink):
    inbox, smtp_port = smtp_sink
    topics = await new_topics("cancel")
    env = {
        "BR_SWEEP_INTERVAL_SECONDS": "0.2",
        "BR_SWEEP_REISSUE_SECONDS": "1",
        "BR_SMTP_PORT": str(smtp_port),
        "BR_FAKEPAY_LATENCY_MS": "20",
        # A flaky card's second attempt comes long after the cancel: its payment is in progress then.
        "BR_PAYMENT_MIN_BACKOFF_MS": "20000",
        "BR_PAYMENT_MAX_BACKOFF_MS": "21000",
        "BR_PAYMENT_MAX_RETRIES": "3",
        # Small rounds, so a payment worker can be killed with most of the settling still ahead.
        "BR_CANCELLATION_BATCH": "3",
    }
    workers = await WorkerProcess(worker_env(schema, topics, f"{topics.prefix}w", **env)).start()
    envs = {f"p{i}": worker_env(schema, topics, f"{topics.prefix}p{i}", **env) for i in range(3)}
    current = Sale("", topics.prefix, inbox, envs)
    for name in ("p0", "p1"):
        current.payers.append(await WorkerProcess(envs[name], module="workers.payment_worker").start())
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits="general=6000/1000,reserve=6000/1000")
    try:
        async with running_gateway(settings) as url:
            current.url = url
            yield current
    finally:
        for payer in current.payers:
            await payer.stop()
        await workers.stop()


async def _answered(http, sale, token, method, url, body=None):
    status, answer = await call(http, method, url, token, body)
    return await final_answer(http, sale.url, token, status, answer, created=False)


async def _payment(http, sale, token, payment_id) -> dict:
    status, answer = await call(http, "GET", f"{sale.url}/api/v1/payments/{payment_id}", token)
    assert status == 200, answer
    return answer["data"]


async def _paid(http, sale, token, booking_id, card=CARD) -> str:
    status, paid = await _answered(
        http,
        sale,
        token,
        "POST",
        f"{sale.url}/api/v1/payments",
        {"booking_id": booking_id, "method": "card", "details": card},
    )
    assert status == 201, paid
    return paid["data"]["payment_id"]


async def _settles(http, sale, token, payment_id, wanted, what) -> dict:
    seen = {}

    async def there() -> bool:
        seen.update(await _payment(http, sale, token, payment_id))
        return wanted(seen)

    await wait_until(there, 60, what)
    return seen


@pytest_asyncio.fixture(loop_scope="session")
async def compensating(pg, tenant):
    """The session's tenant gives 10 % of what was paid as a voucher, for one test."""
    update = "UPDATE tenants SET settings = settings || jsonb_build_object($2::text, $3::int) WHERE id = $1"
    await pg.execute(update, tenant["tenant_id"], "cancellation_compensation_percent", 10)
    yield
    await pg.execute(update, tenant["tenant_id"], "cancellation_compensation_percent", 0)


async def test_a_cancelled_event_settles_every_booking_once_while_buyers_keep_reserving(
    sale, http, make_event, make_users, token_for, tenant, pg, sale_redis, aux, compensating
):
    event = await make_event([("GA", SEATS)], shows=1, max_per_user=4)
    ev = event.event_id
    show = next(iter(event.shows))
    zone_key = keys.zone(ev, show, event.shows[show]["GA"])
    organizer = token_for(tenant["organizer_id"], role="organizer")
    names = ["reserved_a", "reserved_b", "confirmed_a", "confirmed_b", "half_refunded", "asked", "paying"]
    people = dict(zip(names, await make_users(len(names)), strict=True))
    tokens = {name: token_for(user) for name, user in people.items()}
    booking, payment = {}, {}
    for name in names:
        status, answer = await book(http, sale.url, tokens[name], reserve_body(event, quantity=1))
        assert status == 201, answer
        booking[name] = answer["data"]["booking_id"]
    for name in ("confirmed_a", "confirmed_b", "half_refunded", "asked"):
        payment[name] = await _paid(http, sale, tokens[name], booking[name])
        await _settles(
            http, sale, tokens[name], payment[name], lambda p: p["status"] == "success", f"{name} paid"
        )

    # 5 days before the show, a refund is half (spec §2.2.3): one asked and approved, one only asked.
    await pg.execute("UPDATE shows SET show_date = now() + interval '5 days' WHERE id = $1", show)
    for name in ("half_refunded", "asked"):
        status, asked = await _answered(
            http, sale, tokens[name], "POST", f"{sale.url}/api/v1/payments/{payment[name]}/refund"
        )
        assert asked["data"]["refund"]["percent"] == 50, asked
    status, _ = await _answered(
        http,
        sale,
        organizer,
        "POST",
        f"{sale.url}/api/v1/admin/payments/{payment['half_refunded']}/refund/approve",
    )
    assert status == 200
    await _settles(
        http,
        sale,
        tokens["half_refunded"],
        payment["half_refunded"],
        lambda p: p["status"] == "refunded",
        "half refunded",
    )
    payment["paying"] = await _paid(http, sale, tokens["paying"], booking["paying"], FLAKY)  # in progress

    # Buyers keep reserving while the organizer cancels.
    racers = await make_users(40)
    raced: list[tuple[str, int, dict]] = []
    stop_racing = asyncio.Event()

    async def race(user: str) -> None:
        while not stop_racing.is_set():
            status, answer = await book(http, sale.url, token_for(user), reserve_body(event, quantity=1))
            raced.append((user, status, answer))
            if status != 201:
                return  # refused: the sale is over (or sold out, or the buyer at their limit)

    racing = [asyncio.create_task(race(u)) for u in racers]  # in flight while the cancel is
    status, cancelled = await call(
        http, "PUT", f"{sale.url}/api/v1/events/{ev}", organizer, {"status": "cancelled"}
    )
    assert status == 200 and cancelled["data"]["status"] == "cancelled", cancelled
    after = await book(http, sale.url, tokens["reserved_a"], reserve_body(event, quantity=1))
    assert (after[0], after[1]["error"]["code"]) == (409, "EVENT_CANCELLED")  # applied after: refused
    stop_racing.set()
    await asyncio.gather(*racing)
    answers = Counter(s if s == 201 else a["error"]["code"] for _, s, a in raced)
    assert set(answers) <= {201, "EVENT_CANCELLED", "MAX_PER_USER_EXCEEDED", "INSUFFICIENT_STOCK"}, answers
    raced_bookings = {a["data"]["booking_id"] for _, s, a in raced if s == 201}

    # A payment worker dies halfway; the sweeper resumes what it held, the other goes on.
    async def partly_settled() -> bool:
        raw = await sale_redis.hgetall(keys.cancellation(ev))
        done = sum(int(v) for k, v in raw.items() if k.startswith(b"outcome:"))
        return done >= 1

    await wait_until(partly_settled, 60, "the settling under way")
    left_then = await sale_redis.scard(keys.cancellation_todo(ev))
    assert left_then >= 3  # more than a round's worth still ahead
    sale.payers[0].proc.send_signal(signal.SIGKILL)
    await sale.payers[0].wait_exit()
    sale.payers[0] = await WorkerProcess(sale.envs["p2"], module="workers.payment_worker").start()

    async def settled() -> dict:
        status, answer = await call(
            http, "GET", f"{sale.url}/api/v1/admin/events/{ev}/cancellation", organizer
        )
        assert status == 200, answer
        return answer["data"] if answer["data"]["status"] == "done" else None

    progress = await wait_until(settled, 120, "every booking settled")
    held = len(booking) + len(raced_bookings)
    assert progress["bookings"] == held and progress["left"] == 0 and progress["failures"] == []
    assert progress["outcomes"] == {"released": 3 + len(raced_bookings), "refunded": 3, "topped_up": 1}, (
        progress
    )

    # Each booking ended once, in full: seats back, money back, never more than was paid.
    assert int(await sale_redis.hget(zone_key, "available")) == SEATS
    for name in ("confirmed_a", "confirmed_b", "asked"):
        p = await _payment(http, sale, tokens[name], payment[name])
        assert (p["status"], p["refund"]["percent"], p["refund"]["amount"]) == ("refunded", 100, "100.00"), p
    raw = await sale_redis.hgetall(keys.payment(ev, payment["asked"]))
    assert raw[b"refund_superseded"] == b"1"
    half = await sale_redis.hgetall(keys.payment(ev, payment["half_refunded"]))
    assert (half[b"refund_cents"], half[b"topup_cents"], half[b"topup_status"]) == (
        b"5000",
        b"5000",
        b"refunded",
    )
    for name in ("confirmed_a", "confirmed_b", "asked", "half_refunded"):
        charged = await aux.hget(
            f"fakepay:{jobs.namespace(sale.prefix)}:charge:{payment[name]}", "refunded_cents"
        )
        assert charged == b"10000", (name, charged)  # the provider refunded exactly what was paid
    paying = await _payment(http, sale, tokens["paying"], payment["paying"])
    assert paying["status"] == "failed"  # no money had moved: settled first, seats back
    for name in ("reserved_a", "reserved_b", "paying"):
        status, b = await call(http, "GET", f"{sale.url}/api/v1/bookings/{booking[name]}", tokens[name])
        assert b["data"]["status"] == "cancelled"

    # One mail to each holder, and none of the refund mails a buyer's own refund sends.
    every = [*booking.values(), *raced_bookings]

    def mailed(messages) -> bool:
        return all(
            any(b in m.get_payload() and "is cancelled" in m["Subject"] for m in messages) for b in every
        )

    assert await asyncio.to_thread(sale.inbox.wait_until, mailed, 60)
    cancelled_mails = Counter(
        b
        for m in sale.inbox.messages
        if "is cancelled" in m["Subject"]
        for b in every
        if b in m.get_payload()
    )
    assert set(cancelled_mails.values()) == {1}
    refund_mails = [
        m for m in sale.inbox.messages if "Refund" in m["Subject"] and booking["asked"] in m.get_payload()
    ]
    assert refund_mails == []

    # After the cancel: the buyers' and organizers' routes say so.
    status, answer = await call(
        http, "POST", f"{sale.url}/api/v1/admin/payments/{payment['asked']}/refund/approve", organizer
    )
    assert (status, answer["error"]["code"]) == (409, "REFUND_SUPERSEDED")
    status, answer = await queue_call(http, sale.url, tokens["reserved_a"], "join", ev)
    assert (status, answer["error"]["code"]) == (409, "EVENT_CANCELLED")

    async def persisted() -> bool:
        rows = await pg.fetch("SELECT status FROM bookings WHERE event_id = $1", ev)
        statuses = Counter(r["status"] for r in rows)
        return statuses == Counter({"cancelled": 3 + len(raced_bookings), "refunded": 4})

    await wait_until(persisted, 60, "PostgreSQL to follow")
    # A voucher for each booking refunded, one each (its code is the booking's), none for the rest.
    for name in names:
        voucher = await sale_redis.hgetall(
            keys.voucher(tenant["tenant_id"], pricing.voucher_code(booking[name]))
        )
        refunded = name in ("confirmed_a", "confirmed_b", "asked", "half_refunded")
        assert (voucher.get(b"amount_cents"), voucher.get(b"status")) == (
            (b"1000", b"issued") if refunded else (None, None)
        )

    async def vouchers_persisted() -> bool:
        count = await pg.fetchval(
            "SELECT count(*) FROM vouchers WHERE from_booking = ANY($1::text[])", list(booking.values())
        )
        return count == 4

    await wait_until(vouchers_persisted, 30, "the vouchers in PostgreSQL")
    topup = await pg.fetchrow(
        "SELECT topup_status, topup_amount FROM payments WHERE public_id = $1", payment["half_refunded"]
    )
    assert (topup["topup_status"], str(topup["topup_amount"])) == ("refunded", "50.00")


async def test_the_line_of_a_cancelled_event_is_told_why_and_a_reactivation_does_not_reopen_it(
    sale, http, pg, room, sale_redis, scripts, jwt_secret
):
    made = await tenant_with_event(pg, sale_redis, "cancel-line-")  # suspended below: a tenant of its own
    ev, tenant_id = made["event"].event_id, made["tenant_id"]
    async with pg.acquire() as conn:
        buyers = await ensure_users(conn, tenant_id, [f"{unique('b')}@line.test" for _ in range(2)])
    in_line, late = (issue_access_token(jwt_secret, user_id=b, tenant_id=tenant_id) for b in buyers)
    await room.configure(ev, {"mode": "always"})
    status, _ = await queue_call(http, sale.url, in_line, "join", ev)
    assert status == 200
    organizer = issue_access_token(
        jwt_secret, user_id=made["organizer_id"], tenant_id=tenant_id, role="organizer"
    )
    status, answer = await call(
        http, "PUT", f"{sale.url}/api/v1/events/{ev}", organizer, {"status": "cancelled"}
    )
    assert status == 200, answer

    status, standing = await queue_call(http, sale.url, in_line, "status", ev)
    assert (standing["data"]["state"], standing["data"]["closed_reason"]) == ("closed", "event_cancelled")
    status, answer = await queue_call(http, sale.url, late, "join", ev)
    assert (status, answer["error"]["code"]) == (409, "EVENT_CANCELLED")
    status, left = await queue_call(http, sale.url, in_line, "leave", ev)
    assert status == 200, left  # people in line may still leave

    # Its tenant suspended and reactivated meanwhile (the commands lua/sale_state.lua gets then):
    # the cancelled event's room stays closed, saying why.
    for state in ("suspended", "active"):
        await scripts.sale_state(
            keys=[keys.event_meta(ev), keys.room(ev, "config")], args=[state, "tenant_suspended", now_ms()]
        )
    config = await sale_redis.hgetall(keys.room(ev, "config"))
    assert (config[b"mode"], config[b"closed_reason"]) == (b"closed", b"event_cancelled")
    assert await sale_redis.hget(keys.event_meta(ev), "cancelled") == b"1"


async def test_a_cancellation_compensates_with_a_voucher_spent_once_on_the_tenants_next_event(
    sale, http, pg, sale_redis, jwt_secret
):
    made = await tenant_with_event(pg, sale_redis, "voucher-", zones=[("GA", 20)])
    tenant_id, cancelled_event = made["tenant_id"], made["event"]
    async with pg.acquire() as conn:
        admin, buyer, stranger = await ensure_users(
            conn, tenant_id, [f"{unique(p)}@voucher.test" for p in ("a", "b", "s")]
        )
        await conn.execute("UPDATE users SET role = 'admin' WHERE id = $1", admin)
    next_event = await published_event(pg, sale_redis, made, [("GA", 20)], shows=1)
    token = {
        who: issue_access_token(jwt_secret, user_id=user, tenant_id=tenant_id, role=role)
        for who, user, role in (
            ("admin", admin, "admin"),
            ("buyer", buyer, "user"),
            ("stranger", stranger, "user"),
        )
    }
    token["organizer"] = issue_access_token(
        jwt_secret, user_id=made["organizer_id"], tenant_id=tenant_id, role="organizer"
    )
    status, answer = await call(
        http,
        "PUT",
        f"{sale.url}/api/v1/admin/tenant",
        token["admin"],
        {"cancellation_compensation_percent": 10},
    )
    assert (status, answer["data"]["cancellation_compensation_percent"]) == (200, 10)

    # Two paid bookings (2 seats each, 200.00) of the event to be cancelled: two vouchers of 20.00.
    paid = []
    for _ in range(2):
        status, booked = await book(http, sale.url, token["buyer"], reserve_body(cancelled_event, quantity=2))
        assert status == 201, booked
        payment_id = await _paid(http, sale, token["buyer"], booked["data"]["booking_id"])
        await _settles(http, sale, token["buyer"], payment_id, lambda p: p["status"] == "success", "paid")
        paid.append(booked["data"]["booking_id"])
    status, _ = await call(
        http,
        "PUT",
        f"{sale.url}/api/v1/events/{cancelled_event.event_id}",
        token["organizer"],
        {"status": "cancelled"},
    )
    assert status == 200
    codes = [pricing.voucher_code(b) for b in paid]

    def mailed(messages) -> bool:
        return all(any(code in m.get_payload() for m in messages) for code in codes)

    assert await asyncio.to_thread(sale.inbox.wait_until, mailed, 60)  # each in its cancellation mail
    for code in codes:
        voucher = await sale_redis.hgetall(keys.voucher(tenant_id, code))
        assert (voucher[b"status"], voucher[b"amount_cents"], voucher[b"user_id"]) == (
            b"issued",
            b"2000",
            buyer.encode(),
        )

    async def reserved(who="buyer") -> str:
        status, booked = await book(http, sale.url, token[who], reserve_body(next_event, quantity=1))
        assert status == 201, booked
        return booked["data"]["booking_id"]

    def apply(booking_id: str, code: str, who="buyer"):
        url = f"{sale.url}/api/v1/bookings/{booking_id}/voucher"
        return call(http, "POST", url, token[who], {"code": code.lower()})

    # Spent on the tenant's next event: the reservation costs 20.00 less, the payment charges that.
    first = await reserved()
    status, applied = await apply(first, codes[0])
    assert status == 200, applied
    assert applied["data"]["total_price"] == "80.00"
    assert applied["data"]["price"]["discounts"][-1] == {
        "kind": "voucher",
        "name": "Voucher",
        "code": codes[0],
        "amount": "20.00",
    }
    payment_id = await _paid(http, sale, token["buyer"], first)
    charged = await _settles(
        http, sale, token["buyer"], payment_id, lambda p: p["status"] == "success", "paid"
    )
    assert charged["amount"] == "80.00"

    async def used() -> bool:
        return await sale_redis.hget(keys.voucher(tenant_id, codes[0]), "status") == b"used"

    await wait_until(used, 30, "the voucher used up by the payment")
    status, answer = await apply(await reserved(), codes[0])
    assert (status, answer["error"]["code"]) == (409, "VOUCHER_UNAVAILABLE")  # once
    status, answer = await apply(await reserved("stranger"), codes[1], who="stranger")
    assert (status, answer["error"]["code"]) == (404, "VOUCHER_NOT_FOUND")  # the buyer's alone

    # A claim racing the start of payment loses, and the voucher is free again; a reservation that
    # ends unpaid gives it back.
    paying = await reserved()
    await _paid(http, sale, token["buyer"], paying)
    status, answer = await apply(paying, codes[1])
    assert (status, answer["error"]["code"]) == (409, "VOUCHER_NOT_APPLICABLE")
    assert await sale_redis.hget(keys.voucher(tenant_id, codes[1]), "status") == b"issued"
    given_back = await reserved()
    assert (await apply(given_back, codes[1]))[0] == 200
    status, _ = await call(http, "POST", f"{sale.url}/api/v1/bookings/{given_back}/cancel", token["buyer"])
    assert status == 200

    async def released() -> bool:
        return await sale_redis.hget(keys.voucher(tenant_id, codes[1]), "status") == b"issued"

    await wait_until(released, 30, "the voucher given back")
    status, applied = await apply(await reserved(), codes[1])
    assert status == 200 and applied["data"]["total_price"] == "80.00"

    async def recorded() -> bool:
        rows = await pg.fetch("SELECT code, status FROM vouchers WHERE tenant_id = $1", tenant_id)
        return {r["code"]: r["status"] for r in rows} == {codes[0]: "used", codes[1]: "claimed"}

    await wait_until(recorded, 30, "the vouchers in PostgreSQL")
