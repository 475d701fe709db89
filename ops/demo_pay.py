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
