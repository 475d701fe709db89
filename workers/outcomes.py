"""What a batch of applied commands leads to: from each script's answer, the events to record on
booking.events, the replies to the gateways, and the jobs that follow (refunds, mails).

Every script answers `{result_json, replayed}` (expire_hold.lua: `{code, result_json}`, below);
each script's header documents its result's statuses.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from booking_rush.contract import jobs, messages
from booking_rush.telemetry import worker_metrics

log = logging.getLogger("workers.outcomes")

# The second value of a client command's answer: 1 when it is a redelivered command's first
# result, answered again (its effects happened the first time).
REPLAYED = 1

# lua/expire_hold.lua's codes (its header says more).
EXPIRED_NOW = 1
ALREADY_EXPIRED = 2  # the same result again: its event is re-emitted (the consumers are idempotent)
NOTHING_TO_EXPIRE = 0
NOT_DUE = -1
KEYS_MISMATCH = -2  # the command named keys that are not its hold's: a caller's bug

# Shaped like reserve_seats' own answer for a command past its deadline: what a reserve that
# Kafka took too late is answered instead of running (its client was told 503).
LATE_COMMAND_OUTPUT = [messages.encode({"status": "expired"}), 0]

PAYMENT_COMMANDS = frozenset({messages.BEGIN_PAYMENT, messages.SETTLE_PAYMENT, messages.REFUND})
NO_PAYMENT_RECORDS = frozenset(
    {"not_found", "not_payable", "reservation_expired", "tenant_suspended", "event_cancelled"}
)

# A settled payment or refund step, and the mails it is told by (workers/payments/notifications.py).
MAIL_AFTER = {
    "confirmed": ("payment_success", "booking_confirmed"),
    "payment_failed": ("payment_failed",),
    "refunded": ("refunded",),
    "refund_approved": ("refund_approved",),
    "refund_refused": ("refund_refused",),
}
REFUND_AT_PROVIDER = frozenset({"late_success", "refund_approved"})
# A cancelled event's refunds (lua/refund_payment.lua step cancel) say nothing by themselves: the
# holder gets one mail when the booking is settled (workers/payments/cancellation.py).
CANCELLED_EVENT = "event_cancelled"


class Outcomes(NamedTuple):
    events: list[dict[str, Any]]
    replies: list[tuple[str, str, dict[str, Any]]]  # (reply channel, event id, reply)
    follow_ups: list[tuple]  # (actor name, *args)
    booked: list[tuple[str, str]]  # (user id, event id) of each booking made
    loaded: list[str]  # event ids whose seats went on sale
    cancelled: list[str]  # event ids whose cancellation applied: their bookings to settle


def outcomes(commands: list[dict[str, Any]], outputs: list[Any]) -> Outcomes:
    """What each command's script answered leads to (the same again on a redelivery)."""
    done = Outcomes([], [], [], [], [], [])
    events = done.events
    for cmd, out in zip(commands, outputs, strict=True):
        traced_from = len(events)
        if cmd["type"] == messages.EXPIRE:
            code, raw = int(out[0]), out[1]
            if code in (EXPIRED_NOW, ALREADY_EXPIRED):
                expired = messages.decode(raw)
                events.append(messages.booking_expired_event(cmd, expired))
                done.follow_ups.extend(
                    voucher_follow_ups(cmd["event_id"], cmd["booking_id"], expired["booking"], "release")
                )
            elif code == KEYS_MISMATCH:
                log.error("expire command names keys that do not match its hold: %s", cmd)
            continue
        result = messages.decode(out[0])
        status = result["status"]
        if cmd["type"] == messages.RESERVE and not (len(out) > 1 and out[1] == REPLAYED):
            count_reservation(cmd["event_id"], status)
        if cmd["type"] in PAYMENT_COMMANDS:
            events += payment_events(cmd["event_id"], cmd["booking_id"], result)
            done.follow_ups.extend(payment_follow_ups(cmd, result))
        elif status == "reserved":
            events.append(messages.booking_created_event(cmd, result))
            done.booked.append((result["user_id"], cmd["event_id"]))
        elif status == "cancelled" and cmd["type"] == messages.CANCEL:  # again on a redelivery too
            events.append(messages.booking_cancelled_event(cmd, result))
            done.follow_ups.extend(
                voucher_follow_ups(cmd["event_id"], cmd["booking_id"], result["booking"], "release")
            )
        elif cmd["type"] == messages.VOUCHER:
            if result.get("voucher"):
                events.append(messages.voucher_changed_event(cmd, result))
        elif cmd["type"] == messages.APPLY_VOUCHER and status == "voucher_applied":
            events.append(messages.booking_event(cmd["event_id"], cmd["booking_id"], result["booking"]))
        elif status == "adjusted":
            events.append(messages.zone_adjusted_event(cmd, result))
        elif cmd["type"] == messages.LOAD_INVENTORY:
            events.append(messages.inventory_loaded_event(cmd, result))
            done.loaded.append(cmd["event_id"])
        elif cmd["type"] == messages.SET_SALE_STATE:
            events.append(messages.sale_state_changed_event(cmd, result))
            if status == "cancelled":  # again on a redelivery: a round finds what is left
                done.follow_ups.append((jobs.SETTLE_CANCELLATION, cmd["event_id"]))
                done.cancelled.append(cmd["event_id"])
        elif cmd["type"] == messages.SET_PRICING and status == "pricing_set":
            events.append(messages.pricing_changed_event(cmd, result))
        if cmd.get("reply_to"):  # system commands (payment outcomes, refunds done) have none
            done.replies.append((cmd["reply_to"], cmd["event_id"], messages.reply(cmd, result)))
        if "trace" in cmd:  # the events of a traced command carry its trace on (record headers)
            for event in events[traced_from:]:
                event["trace"] = cmd["trace"]
    return done


def count_reservation(event_id: str, status: str) -> None:
    if status == "reserved":
        worker_metrics.RESERVATIONS.labels(event_id).inc()
    else:
        worker_metrics.RESERVATION_FAILURES.labels(event_id, status).inc()


def payment_events(event_id: str, booking_id: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The records a payment script returned, as events: the booking's and the payment's (also
    again on a replay; versions make PostgreSQL keep only what is newer)."""
    booking, payment = result.get("booking"), result.get("payment")
    if not booking or not payment or result["status"] in NO_PAYMENT_RECORDS:
        return []
    return [
        messages.booking_event(event_id, booking_id, booking),
        messages.payment_event(event_id, payment, booking),
    ]


def voucher_follow_ups(event_id: str, booking_id: str, booking: dict[str, Any], op: str) -> list[tuple]:
    """A booking holding a voucher that ended unpaid gives it back; one paid, uses it up (a
    command in the voucher's tenant slot, sent by a payment worker and retried until it applies)."""
    if not booking or not booking.get("voucher_code"):
        return []
    return [(jobs.VOUCHER_STEP, op, event_id, booking_id)]


def payment_follow_ups(cmd: dict[str, Any], result: dict[str, Any]) -> list[tuple]:
    """Money moved after the seats went back (late_success) or a refund approved: the provider
    is asked to refund (a cancelled event's top-up too); a settled step: its mails."""
    event_id, booking_id, status = cmd["event_id"], cmd["booking_id"], result["status"]
    follow: list[tuple] = []
    if status in REFUND_AT_PROVIDER:
        follow.append((jobs.PROCESS_REFUND, event_id, result["payment"]["payment_id"]))
    if status == "topup_approved":
        follow.append((jobs.PROCESS_TOPUP, event_id, result["payment"]["payment_id"]))
    voucher_step = {"confirmed": "use", "payment_failed": "release"}.get(status)
    if voucher_step and result.get("booking"):
        follow += voucher_follow_ups(event_id, booking_id, result["booking"], voucher_step)
    cancelled_event = (
        cmd.get("step") == "cancel" or (result.get("payment") or {}).get("refund_reason") == CANCELLED_EVENT
    )
    if not cancelled_event:
        follow += [(jobs.NOTIFY, kind, event_id, booking_id) for kind in MAIL_AFTER.get(status, ())]
    return follow
