"""Act three of the demo: buyers of act one pay for their reservations (ops/demo.py runs it).

Of the bookings act one made, a sample goes on: most pay by card and are confirmed with an
e-ticket code, some cards are declined (their seats go back), some buyers cancel instead. Every
outcome is checked three ways: what the API answered, the sale Redis, and PostgreSQL (payments,
bookings) once the persistence consumer has caught up; the mails arrive in a local SMTP sink the
demo runs as the buyers' mailbox.
"""

from __future__ import annotations

import asyncio
import email
import threading
import time
import uuid
from collections import Counter

import aiohttp
import asyncpg
from aiosmtpd.controller import Controller

GOOD_CARD = {"card_number": "4242424242424242", "expiry": "12/39", "cvc": "123"}
DECLINED_CARD = {**GOOD_CARD, "card_number": "4000000000000002"}  # the fake provider declines it


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


class Mailbox:
    """A local SMTP server that keeps what it is handed (the demo's buyers' inboxes, and the
    tests' SMTP sink)."""

    def __init__(self, port: int) -> None:
        self.messages: list[email.message.Message] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self._arrived:
            self.messages.append(email.message_from_bytes(envelope.content))
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 60) -> bool:
        """Block until `count` messages arrived (or `timeout`); whether they did."""
        return self.wait_until(lambda messages: len(messages) >= count, timeout)

    def wait_until(self, holds, timeout: float = 60) -> bool:
        """Block until `holds(messages)` is true, woken by each arrival (or `timeout`)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: holds(self.messages), timeout)

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def subjects(self) -> Counter:
        return Counter(m["Subject"].split(":")[0].split(" for ")[0] for m in self.messages)


def plan(booked: list[tuple[str, str, int]], sample: int) -> dict[str, list[tuple[str, str, int]]]:
    """Of `sample` bookings (token, booking id, seats): 8 in 10 pay, 1 is declined, 1 cancels."""
    chosen = booked[:sample]
    return {
        "pay": [b for i, b in enumerate(chosen) if i % 10 < 8],
        "declined": [b for i, b in enumerate(chosen) if i % 10 == 8],
        "cancel": [b for i, b in enumerate(chosen) if i % 10 == 9],
    }


async def _call(session, method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    """One API call, as a polite client makes it: a 429 waits for its Retry-After and asks again."""
    while True:
        async with session.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
            if r.status != 429:
                return r.status, await r.json()
            wait = int(r.headers.get("Retry-After", 1))
        await asyncio.sleep(wait)


async def _settled(session, base: str, token: str, payment_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, answer = await _call(session, "GET", f"{base}/api/v1/payments/{payment_id}", token)
        if status == 200 and answer["data"]["status"] in ("success", "failed"):
            return answer["data"]
        if time.monotonic() > deadline:
            raise RuntimeError(f"payment {payment_id} not settled in {timeout:.0f}s: {answer}")
        await asyncio.sleep(0.2)  # a client polling its payment's status


async def payment_act(base: str, booked: list[tuple[str, str, int]], sample: int, concurrency: int) -> dict:
    """Pay, decline and cancel through the API; return what the buyers were told."""
    groups = plan(booked, sample)
    sem = asyncio.Semaphore(concurrency)
    told: Counter = Counter()
    tickets: list[str] = []
    seconds: list[float] = []

    async def pay(session, token: str, booking_id: str, card: dict) -> None:
        async with sem:
            started = time.perf_counter()
            body = {"booking_id": booking_id, "method": "card", "details": card}
            status, answer = await _call(session, "POST", f"{base}/api/v1/payments", token, body)
            if status not in (200, 201):
                told[f"pay {status}"] += 1
                return
            payment = await _settled(session, base, token, answer["data"]["payment_id"])
            seconds.append(time.perf_counter() - started)
            told[f"payment {payment['status']}"] += 1
            confirm = f"{base}/api/v1/bookings/{booking_id}/confirm"
            status, answer = await _call(session, "POST", confirm, token)
            told[f"confirm {status}"] += 1
            if status == 200:
                tickets.append(answer["data"]["ticket_code"])

    async def cancel(session, token: str, booking_id: str) -> None:
        async with sem:
            status, _ = await _call(session, "POST", f"{base}/api/v1/bookings/{booking_id}/cancel", token)
            told[f"cancel {status}"] += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(
            *(pay(session, t, b, GOOD_CARD) for t, b, _ in groups["pay"]),
            *(pay(session, t, b, DECLINED_CARD) for t, b, _ in groups["declined"]),
            *(cancel(session, t, b) for t, b, _ in groups["cancel"]),
        )
    seconds.sort()
    released = sum(q for _, _, q in groups["declined"] + groups["cancel"])
    return {
        "sample": sum(len(g) for g in groups.values()),
        "answers": dict(sorted(told.items())),
        "tickets": len(tickets),
        "tickets_unique": len(set(tickets)) == len(tickets),
        "payment_s_p50": round(seconds[len(seconds) // 2], 2) if seconds else None,
        "seats_released": released,
        "confirmed_ids": [b for _, b, _ in groups["pay"]],
    }


async def persisted_payments(database_url: str, confirmed_ids: list[str], timeout: float = 120) -> dict:
    """PostgreSQL once it holds every confirmation: confirmed bookings and successful payments."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE b.status = 'confirmed') AS confirmed,"
                " count(p.id) FILTER (WHERE p.status = 'success') AS paid"
                " FROM bookings b LEFT JOIN payments p ON p.booking_id = b.id WHERE b.public_id = ANY($1)",
                confirmed_ids,
            )
            if row["confirmed"] >= len(confirmed_ids) or time.monotonic() > deadline:
                return {"pg_confirmed": row["confirmed"], "pg_paid": row["paid"]}
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


PROMO_CODE = "DEMO-THANKS-10"  # the organizer's: 10 % off, once per person


async def code_act(
    base: str,
    organizer_token: str,
    event_id: str,
    shows: dict,
    buyers: list[str],
    seats: int,
    concurrency: int,
) -> dict:
    """The seats the declines and cancels gave back, sold again with a promo code: the organizer
    makes the code (POST .../promo-codes, through Kafka), `buyers` who have no booking yet quote
    (the breakdown, nothing taken), reserve one seat with the code and pay. Checked: the code's
    uses match the bookings that took it, each payment charged what its reservation locked."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        code = {"code": PROMO_CODE, "kind": "percent", "percent": 10, "per_user": 1, "max_uses": seats}
        status, answer = await _call(
            session, "POST", f"{base}/api/v1/events/{event_id}/promo-codes", organizer_token, code
        )
        if status != 201:
            raise RuntimeError(f"the promo code was refused: {status} {answer}")
        targets = [(s, z) for s, zones in shows.items() for z in zones.values()]
        sem = asyncio.Semaphore(concurrency)
        told: Counter = Counter()
        charged: list[tuple[str, str]] = []  # (what the reservation locked, what the payment charged)
        example: dict = {}

        async def buy(token: str) -> None:
            async with sem:
                for show, zone in targets:  # the first zone with a seat given back
                    body = {
                        "event_id": event_id,
                        "show_id": show,
                        "zone_id": zone,
                        "quantity": 1,
                        "promo_code": "demo-thanks-10",
                    }
                    status, quote = await _call(session, "POST", f"{base}/api/v1/bookings/quote", token, body)
                    if status != 200 or quote["data"]["available"] < 1:
                        continue
                    example.setdefault("quote", quote["data"]["price"])
                    status, answer = await _call(
                        session, "POST", f"{base}/api/v1/bookings/reserve", token, body
                    )
                    if status == 409 and answer["error"]["code"] == "INSUFFICIENT_STOCK":
                        continue
                    told[f"reserve {status}"] += 1
                    if status != 201:
                        return
                    locked = answer["data"]["total_price"]
                    pay = {"booking_id": answer["data"]["booking_id"], "method": "card", "details": GOOD_CARD}
                    status, paid = await _call(session, "POST", f"{base}/api/v1/payments", token, pay)
                    if status in (200, 201):
                        payment = await _settled(session, base, token, paid["data"]["payment_id"])
                        told[f"payment {payment['status']}"] += 1
                        charged.append((locked, payment["amount"]))
                    return
                told["no seat left"] += 1

        await asyncio.gather(*(buy(t) for t in buyers[:seats]))
        status, listed = await _call(
            session, "GET", f"{base}/api/v1/events/{event_id}/promo-codes", organizer_token
        )
        uses = next(c["uses"] for c in listed["data"]["promo_codes"] if c["code"] == PROMO_CODE)
    return {
        "code": PROMO_CODE,
        "answers": dict(sorted(told.items())),
        "bookings_with_code": told["reserve 201"],
        "code_uses": uses,
        "charged_as_locked": all(locked == amount for locked, amount in charged),
        "example": example.get("quote"),
    }


COMPENSATION_PERCENT = 10  # the demo tenant's: a cancelled event's buyers get a voucher of 10 %


async def cancellation_act(
    base: str, admin_token: str, organizer_token: str, event_id: str, database_url: str, timeout: float = 180
) -> dict:
    """The organizer cancels the first sale (PUT /api/v1/events/{id} {status: cancelled}): no
    reserve succeeds after it, and the payment workers settle every booking once — paid ones
    refunded in full with a compensation voucher (the tenant's admin set 10 %), reservations
    released (GET /api/v1/admin/events/{id}/cancellation)."""
    async with aiohttp.ClientSession() as session:
        compensation = {"cancellation_compensation_percent": COMPENSATION_PERCENT}
        status, answer = await _call(session, "PUT", f"{base}/api/v1/admin/tenant", admin_token, compensation)
        if status != 200:
            raise RuntimeError(f"the compensation setting was refused: {status} {answer}")
        url = f"{base}/api/v1/events/{event_id}"
        status, answer = await _call(session, "PUT", url, organizer_token, {"status": "cancelled"})
        if status != 200:
            raise RuntimeError(f"the cancel was refused: {status} {answer}")
        started = time.monotonic()
        while True:
            status, answer = await _call(
                session, "GET", f"{base}/api/v1/admin/events/{event_id}/cancellation", organizer_token
            )
            progress = answer.get("data") or {}
            if progress.get("status") == "done" or time.monotonic() - started > timeout:
                break
            await asyncio.sleep(0.5)  # the organizer's page refreshing its progress
    settle_s = round(time.monotonic() - started, 1)
    conn = await asyncpg.connect(database_url)
    try:  # PostgreSQL follows the vouchers' events a moment later
        deadline = time.monotonic() + 30
        while True:
            vouchers = await conn.fetchval(
                "SELECT count(*) FROM vouchers v JOIN bookings b ON b.public_id = v.from_booking "
                "WHERE b.event_id = $1",
                uuid.UUID(event_id),
            )
            if vouchers >= progress.get("outcomes", {}).get("refunded", 0) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return {**progress, "settle_s": settle_s, "vouchers": vouchers}
