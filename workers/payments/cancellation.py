"""A cancelled event's bookings, each settled once (spec §2.2.3: "event cancelled by organizer:
100 %"): a payment worker job, `settle_cancellation(event_id)`, run in bounded rounds.

The cancel command (lua/sale_state.lua) marks the event cancelled in the sale Redis: from then
on no reserve and no payment begins, so the bookings to settle are exactly the holds the sale
Redis has (PostgreSQL lags). The first round lists them into `{ev:E}:cancellation:todo`; every
round takes a bounded batch of it and moves each booking on by its state, each step a command
through Kafka applied by the booking's own scripts (idempotent, checked against the state):

  reserved                 -> cancel (cancel_reason event_cancelled): seats back      "released"
  paying                   -> the provider is asked (check_payment); then as below
  confirmed                -> refund 100 % (lua/refund_payment.lua step cancel; a pending
                              request is superseded, a refused one overridden)        "refunded"
  refunded in part before  -> a top-up refund of the rest (a second record)            "topped_up"
  ended before the cancel  -> nothing to do                                            "ended_before"

A booking leaves the list when its final state is seen; removing it from the set is what counts
it (SREM answers 1 once), so two rounds at once, or a round redone after its worker was killed,
count and mail each booking once. Its holder gets one mail (the notify job is once per kind and
booking). A booking still unsettled after MAX_ROUNDS_PER_BOOKING looks is recorded as a failure
with its state and left for a person (`GET /api/v1/admin/events/{id}/cancellation`). While the
list is not empty the job sends itself again after a pause (bounded work per round, the provider
given time); the archiver keeps the event until the settlement is done.
"""

from __future__ import annotations

import logging
from typing import Any

from booking_rush.contract import jobs, messages, pricing
from booking_rush.contract.messages import now_ms
from lua import keys

log = logging.getLogger("workers.payments.cancellation")

NEXT_ROUND_MS = 500
MAX_ROUNDS_PER_BOOKING = 120  # at NEXT_ROUND_MS apart and more: minutes of the provider's time
ENDED = frozenset({"expired", "cancelled"})
REFUNDED = frozenset({"refunded", "topped_up"})  # money went back: a compensation voucher too

COMPENSATION = """
SELECT e.tenant_id::text AS tenant_id,
       coalesce((t.settings->>'cancellation_compensation_percent')::int, 0) AS percent
FROM events e JOIN tenants t ON t.id = e.tenant_id WHERE e.id = $1
"""


async def _compensation(rt, event_id: str) -> tuple[str, int]:
    """(the event's tenant, its compensation percentage: 0 for none)."""
    row = await rt.pool.fetchrow(COMPENSATION, event_id)
    return (row["tenant_id"], row["percent"]) if row else ("", 0)


async def _issue_voucher(
    rt,
    event_id: str,
    booking_id: str,
    hold: dict[str, Any],
    payment: dict[str, Any],
    tenant_id: str,
    percent: int,
) -> None:
    """The buyer's compensation: `percent` of what they paid, a voucher for the tenant's future
    events (lua/voucher.lua, in the tenant's slot; issuing it again changes nothing)."""
    amount = payment.get("amount_cents", 0) * percent // 100
    if amount <= 0:
        return
    await rt.command(
        messages.voucher_command(
            op="issue",
            event_id=event_id,
            tenant_id=tenant_id,
            code=pricing.voucher_code(booking_id),
            user_id=hold["user_id"],
            booking_id=booking_id,
            amount_cents=amount,
            currency=hold.get("currency") or "THB",
        )
    )


async def settle_cancellation(rt, event_id: str) -> None:
    """One round: list the bookings (once), move a batch on, send the next round if any is left."""
    progress, todo = keys.cancellation(event_id), keys.cancellation_todo(event_id)
    state = {k.decode(): v.decode() for k, v in (await rt.redis.hgetall(progress)).items()}
    if state.get("status") == "done":
        return
    if not state.get("listed"):
        await _list(rt, event_id)
    batch = [b.decode() for b in await rt.redis.srandmember(todo, rt.payment.cancellation_batch)]
    cancelled_at = int(await rt.redis.hget(keys.event_meta(event_id), "cancelled_at") or 0)
    tenant_id, percent = await _compensation(rt, event_id)
    for booking_id in batch:
        hold = messages.redis_record(await rt.redis.hgetall(keys.hold(event_id, booking_id)))
        payment = (await rt.records(event_id, hold["payment_id"]))[0] if hold.get("payment_id") else {}
        outcome = await _settle_one(rt, event_id, booking_id, hold, payment, cancelled_at)
        if outcome is None:
            rounds = await rt.redis.hincrby(progress, f"rounds:{booking_id}", 1)
            if rounds < MAX_ROUNDS_PER_BOOKING:
                continue
            outcome = "failed"
            await rt.redis.hset(progress, f"failure:{booking_id}", _where(hold, payment))
        # Before the booking leaves the list, so a round redone after a crash does it again:
        # the voucher is issued once (its code is the booking's), the mail sent once (per booking).
        if outcome in REFUNDED and percent:
            await _issue_voucher(rt, event_id, booking_id, hold, payment, tenant_id, percent)
        if outcome not in ("ended_before", "failed"):
            await rt.jobs.send(jobs.NOTIFY, "event_cancelled", event_id, booking_id)
        if await rt.redis.srem(todo, booking_id):  # counted once, whoever gets here first
            await rt.redis.hincrby(progress, f"outcome:{outcome}", 1)
            await rt.redis.hdel(progress, f"rounds:{booking_id}")
    if await rt.redis.scard(todo):
        await rt.redis.hset(progress, "round_at", now_ms())  # alive: the sweeper leaves it be
        await rt.later(jobs.SETTLE_CANCELLATION, NEXT_ROUND_MS, event_id)
    else:
        await rt.redis.hset(progress, mapping={"status": "done", "finished_at": now_ms()})
        await rt.redis.srem(keys.CANCELLATIONS, event_id)
        log.info("event %s: cancellation settled", event_id)


async def _list(rt, event_id: str) -> None:
    """The event's holds, into the list (again after a crash: the same set)."""
    prefix = keys.hold(event_id, "")
    found = [key.decode()[len(prefix) :] async for key in rt.redis.scan_iter(match=prefix + "*", count=1000)]
    async with rt.redis.pipeline(transaction=False) as pipe:
        for start in range(0, len(found), 1000):
            pipe.sadd(keys.cancellation_todo(event_id), *found[start : start + 1000])
        pipe.hset(
            keys.cancellation(event_id),
            mapping={"listed": 1, "bookings": len(found), "status": "settling", "started_at": now_ms()},
        )
        await pipe.execute()
    log.info("event %s cancelled: %d bookings to settle", event_id, len(found))


def _where(hold: dict[str, Any], payment: dict[str, Any]) -> str:
    """Where a booking the settling could not finish stands (as last read)."""
    where = f"booking {hold.get('status')}"
    if payment:
        where += f", payment {payment.get('status')}, refund {payment.get('refund_status')}"
        where += f", top-up {payment.get('topup_status')}" if payment.get("topup_status") else ""
    return where


async def _settle_one(
    rt, event_id: str, booking_id: str, hold: dict[str, Any], payment: dict[str, Any], cancelled_at: int
) -> str | None:
    """The booking's final outcome if it has one, else the next step sent (None)."""
    status = hold.get("status")
    if not hold.get("user_id"):  # gone, or a tombstone: it ended unpaid long ago
        return "ended_before"
    if status == "reserved":
        await rt.command(_cancel(event_id, booking_id, hold))
        return None
    if status in ENDED and not hold.get("payment_id"):
        return "released" if hold.get("cancel_reason") == "event_cancelled" else "ended_before"
    if status == "paying" or payment.get("status") in ("pending", "processing"):
        await rt.jobs.send(jobs.CHECK_PAYMENT, event_id, payment["payment_id"])
        return None
    if payment.get("status") == "failed":  # no money moved: its seats went back when it failed
        return "released" if payment.get("settled_at", 0) >= cancelled_at else "ended_before"
    return await _refund_in_full(rt, event_id, hold, payment)


async def _refund_in_full(rt, event_id: str, hold: dict[str, Any], payment: dict[str, Any]) -> str | None:
    if payment.get("topup_status") == "refunded":
        return "topped_up"
    refunded = payment.get("status") == "refunded" and payment.get("refund_status") == "refunded"
    if refunded and payment.get("refund_cents", 0) >= payment["amount_cents"]:
        return "refunded" if payment.get("refund_reason") == "event_cancelled" else "ended_before"
    await rt.command(messages.refund_command(step="cancel", payment=payment, hold=hold))
    return None


def _cancel(event_id: str, booking_id: str, hold: dict[str, Any]) -> dict[str, Any]:
    """The owner's cancel, sent by the system for them (no reply: the next round looks)."""
    command = messages.cancel_command(
        request_id=messages.new_request_id(event_id),
        event_id=event_id,
        booking_id=booking_id,
        user_id=hold["user_id"],
        show_id=hold["show_id"],
        zone_id=hold["zone_id"],
        reply_to="",
    )
    command["reason"] = "event_cancelled"
    return command
