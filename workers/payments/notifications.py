"""The mails a booking's life sends (spec §4.6): templates, and what fills them.

Each mail is sent at most once per (kind, booking): the actor marks it sent in the aux Redis
after the SMTP server took it, so a redelivered job does not send it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

from booking_rush.contract import pricing

SUBJECTS = {
    "payment_success": Template("Payment received for $event_title"),
    "booking_confirmed": Template("Your tickets for $event_title: $ticket_code"),
    "payment_failed": Template("Payment failed for $event_title"),
    "refunded": Template("Refund processed for $event_title"),
    "refund_approved": Template("Refund approved for $event_title"),
    "refund_refused": Template("Refund request refused for $event_title"),
    "event_cancelled": Template("$event_title is cancelled"),
}

BODIES = {
    "payment_success": Template(
        """Hello $name,

we received your payment of $amount ($method) for $quantity ticket(s) to $event_title
($show_date).

$breakdown

  Booking:   $booking_id
  Payment:   $payment_id

Your e-ticket follows in a separate mail.

Booking Rush
"""
    ),
    "booking_confirmed": Template(
        """Hello $name,

your payment of $amount was received and your booking is confirmed.

$breakdown

  Event:     $event_title
  Show:      $show_date
  Zone:      $zone_name
  Tickets:   $quantity
  Booking:   $booking_id

Your e-ticket code: $ticket_code
Show it at the entrance.

Booking Rush
"""
    ),
    "payment_failed": Template(
        """Hello $name,

the payment for your booking of $quantity ticket(s) to $event_title ($show_date) did not go
through ($reason), so the seats were released and nothing was charged.

You are welcome to book again while seats are left.

Booking Rush
"""
    ),
    "refund_approved": Template(
        """Hello $name,

your request for a refund of $refund_amount ($refund_percent % of $amount) for your booking of
$quantity ticket(s) to $event_title ($show_date) was approved. It is on its way; a mail follows
once it has been processed.

  Booking:   $booking_id

Booking Rush
"""
    ),
    "refund_refused": Template(
        """Hello $name,

your request for a refund for your booking of $quantity ticket(s) to $event_title ($show_date)
was refused by the organizer:

  $refund_reason

Your tickets stay valid.

  Booking:   $booking_id

Booking Rush
"""
    ),
    "event_cancelled": Template(
        """Hello $name,

the organizer cancelled $event_title ($show_date). $settlement

  Booking:   $booking_id
  Tickets:   $quantity

We are sorry.

Booking Rush
"""
    ),
    "refunded": Template(
        """Hello $name,

we refunded $refund_amount ($refund_percent % of $amount) for your booking of $quantity
ticket(s) to $event_title ($show_date). It reaches your account by the payment method you
used.

  Booking:   $booking_id

Booking Rush
"""
    ),
}

KINDS = frozenset(SUBJECTS)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


def render(kind: str, to: str, context: dict[str, object]) -> Mail:
    """A mail of `kind` filled from `context` (a missing field is a bug: KeyError)."""
    values = {k: str(v) for k, v in context.items()}
    return Mail(to, SUBJECTS[kind].substitute(values), BODIES[kind].substitute(values))


def money_back(payment: dict) -> int:
    """What went back of a payment: its refund and a cancelled event's top-up."""
    return (payment.get("refund_cents") or 0) + (payment.get("topup_cents") or 0)


def settlement(payment: dict, voucher: dict, tenant_name: str) -> str:
    """What a cancelled event's booking came to: its payment refunded (and the compensation
    voucher, when the organiser gives one), or a reservation released."""
    back = money_back(payment)
    if not (payment.get("status") == "refunded" or back):
        return "Your reservation was released; nothing was charged."
    means = payment.get("masked") or payment.get("method") or "your payment"
    said = f"We refunded {money(back)} in all to {means}."
    if voucher:
        said += (
            f"\n\nWith our apologies, a voucher: {voucher['code']}, {money(voucher['amount_cents'])} "
            f"{voucher.get('currency', '')} off a booking of your choice at {tenant_name} (once, yours only)."
        )
    return said


def money(cents: int | None) -> str:
    return pricing.money(cents or 0)
