"""The jobs the payment workers take (Dramatiq actors on the aux Redis), by name: what each is
given and the queue it waits in. Senders name them without importing the actors
(workers/payments/jobs.py declares them); services/job_queue.py hands them over."""

from __future__ import annotations

PAYMENTS_QUEUE = "payments"
MAIL_QUEUE = "mail"

PROCESS_PAYMENT = "process_payment"  # (event_id, payment_id, details): charge, then settle
CHECK_PAYMENT = "check_payment"  # (event_id, payment_id): a paying hold's deadline passed
PROCESS_REFUND = "process_refund"  # (event_id, payment_id): an approved refund, to the provider
PROCESS_TOPUP = "process_topup"  # (event_id, payment_id): a cancelled event's top-up refund
SETTLE_CANCELLATION = "settle_cancellation"  # (event_id,): one round of a cancelled event's settling
VOUCHER_STEP = "voucher_step"  # (op, event_id, booking_id): release or use the booking's voucher
NOTIFY = "notify"  # (kind, event_id, booking_id): one mail, sent once

QUEUE_OF = {
    PROCESS_PAYMENT: PAYMENTS_QUEUE,
    CHECK_PAYMENT: PAYMENTS_QUEUE,
    PROCESS_REFUND: PAYMENTS_QUEUE,
    PROCESS_TOPUP: PAYMENTS_QUEUE,
    SETTLE_CANCELLATION: PAYMENTS_QUEUE,
    VOUCHER_STEP: PAYMENTS_QUEUE,
}


def namespace(topic_prefix: str) -> str:
    """Each deployment (and each test, by its topic prefix) has its own queues."""
    return f"{topic_prefix}dramatiq"
