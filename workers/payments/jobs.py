"""The payment worker's Dramatiq actors: charge, ask about a payment past its deadline, refund,
and send the booking's mails.

An actor never changes a booking itself: it asks the provider, then sends the outcome as a
command to the reservations topic, where lua/settle_payment.lua or lua/refund_payment.lua applies
it once (a redelivered job or command finds the state already moved). The one direct write is
pending -> processing (a payment's own progress, not a booking transition), whose event the
actor publishes itself.

Failures that may pass (the provider unavailable, an answer that did not come, the outcome not
known yet) raise, and Dramatiq's Retries middleware runs the job again with exponential backoff.
A charge whose outcome stays unknown is not given up: when the paying hold's deadline passes, the
sweeper has `check_payment` ask the provider, again every reissue period, until it knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
import dramatiq
from opentelemetry.trace import SpanKind

from booking_rush.contract import jobs, messages, pricing
from booking_rush.contract.messages import now_ms
from booking_rush.services.clients import new_idempotent_producer, pg_pool, sale_redis, stop_producer
from booking_rush.services.env import env_float, env_int
from booking_rush.services.job_queue import JobQueue
from booking_rush.services.mail import Mailer, MailError, MailSettings
from booking_rush.telemetry import payment_metrics, tracing
from lua import keys, load_scripts
from workers.payments import notifications
from workers.payments.cancellation import settle_cancellation
from workers.payments.provider import (
    FakeProvider,
    FakeProviderSettings,
    PaymentProvider,
    ProviderResult,
    ProviderTimeout,
    ProviderUnavailable,
)
from workers.settings import WorkerSettings

log = logging.getLogger("workers.payments")

SETTLED = frozenset({"success", "failed", "refunded"})
PAYMENT_TIMEOUT = "payment_timeout"  # failed: the provider knew of no charge at the deadline


class OutcomeUnknown(Exception):
    """The provider has not said how the charge ended (yet): ask again later."""


class NotBegunYet(Exception):
    """The job came before its begin_payment command was applied: try again shortly."""


@dataclass(frozen=True)
class PaymentSettings:
    """How hard the actors try (BR_PAYMENT_*), besides the worker settings they share."""

    provider_timeout_s: float = 5.0
    max_retries: int = 10
    min_backoff_ms: int = 500
    max_backoff_ms: int = 60_000
    # An async actor holds a Dramatiq thread while it waits on the provider, so the threads bound
    # how many payments are in flight at once; idle ones cost little.
    threads: int = 32
    # Bookings a cancelled event's settling round moves on at most (workers/payments/cancellation.py).
    cancellation_batch: int = 200

    @classmethod
    def from_env(cls) -> PaymentSettings:
        d = cls()
        return cls(
            provider_timeout_s=env_float("BR_PAYMENT_PROVIDER_TIMEOUT_SECONDS", d.provider_timeout_s),
            max_retries=env_int("BR_PAYMENT_MAX_RETRIES", d.max_retries),
            min_backoff_ms=env_int("BR_PAYMENT_MIN_BACKOFF_MS", d.min_backoff_ms),
            max_backoff_ms=env_int("BR_PAYMENT_MAX_BACKOFF_MS", d.max_backoff_ms),
            threads=env_int("BR_PAYMENT_THREADS", d.threads),
            cancellation_batch=env_int("BR_CANCELLATION_BATCH", d.cancellation_batch),
        )


class PaymentRuntime:
    """The clients the actors share in one process, opened on Dramatiq's event loop at first use
    (the loop lives in a thread Dramatiq starts) and closed when the worker stops."""

    def __init__(self, settings: WorkerSettings, payment: PaymentSettings, mail: MailSettings) -> None:
        self.settings, self.payment, self.mail = settings, payment, mail
        self._stack = contextlib.AsyncExitStack()
        self._opened: asyncio.Task | None = None

    async def ready(self) -> PaymentRuntime:
        if self._opened is None:
            self._opened = asyncio.ensure_future(self._open())
        await asyncio.shield(self._opened)
        return self

    async def _open(self) -> None:
        s = self.settings.endpoints
        self.redis = await self._stack.enter_async_context(sale_redis(s.sale_redis_url))
        self.aux = await self._stack.enter_async_context(sale_redis(s.aux_redis_url))
        self.scripts = await load_scripts(self.redis)
        self.producer = new_idempotent_producer(s.kafka_bootstrap, linger_ms=0)
        await self.producer.start()
        self._stack.push_async_callback(stop_producer, self.producer)
        self.pool: asyncpg.Pool = await self._stack.enter_async_context(pg_pool(s.database_url))
        self.provider: PaymentProvider = FakeProvider(
            self.aux, jobs.namespace(s.topic_prefix), FakeProviderSettings.from_env()
        )
        self.mailer = Mailer(self.mail)
        # Jobs this worker hands on (a question to the provider, a mail, the next round).
        self.jobs = JobQueue(s.aux_redis_url, s.topic_prefix)
        self._stack.callback(self.jobs.close)

    async def later(self, actor_name: str, delay_ms: int, *args: Any) -> None:
        await self.jobs.send_later(actor_name, delay_ms, *args)

    async def close(self) -> None:
        await self._stack.aclose()

    async def records(self, event_id: str, payment_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The payment and its booking's hold, as typed records ({} when missing)."""
        payment = messages.redis_record(await self.redis.hgetall(keys.payment(event_id, payment_id)))
        if not payment:
            return {}, {}
        return payment, messages.redis_record(
            await self.redis.hgetall(keys.hold(event_id, payment["booking_id"]))
        )

    async def ask(self, call) -> ProviderResult:
        """One provider call, bounded: no answer in time is a ProviderTimeout (outcome unknown)."""
        try:
            async with asyncio.timeout(self.payment.provider_timeout_s):
                return await call
        except TimeoutError as exc:
            raise ProviderTimeout("the provider did not answer in time") from exc

    async def command(self, command: dict[str, Any]) -> None:
        """Hand a system command to the command consumers (acknowledged: it will apply)."""
        await self.producer.send_and_wait(
            self.settings.topics.reservations,
            messages.encode(command),
            key=(command.get("show_id") or command["tenant_id"]).encode(),  # a voucher's: its tenant
        )

    async def attempt_begins(self, event_id: str, payment: dict, hold: dict) -> None:
        """pending -> processing, attempts + 1 (lua/settle_payment.lua), and its event, so
        PostgreSQL shows the attempt too (a payment's own progress: no booking changes)."""
        raw = await self.scripts.settle_payment(
            keys=keys.payment_keys(
                event_id,
                payment["booking_id"],
                payment["payment_id"],
                hold["user_id"],
                hold["show_id"],
                hold["zone_id"],
            ),
            args=[
                payment["booking_id"],
                payment["payment_id"],
                "processing",
                now_ms(),
                "",
                "",
                "",
            ],
        )
        result = messages.decode(raw[0])
        if result["status"] == "processing":
            event = messages.payment_event(event_id, result["payment"], hold)
            await self.producer.send_and_wait(
                self.settings.topics.events, messages.encode(event), key=hold["show_id"].encode()
            )

    async def settle(self, payment: dict, hold: dict, outcome: ProviderResult) -> None:
        command = messages.settle_payment_command(
            payment=payment,
            hold=hold,
            outcome="success" if outcome.status == "success" else "failed",
            provider_ref=outcome.reference or "",
            reason=outcome.reason or "",
        )
        log.info("payment %s: %s", payment["payment_id"], command["outcome"])
        await self.command(command)
        payment_metrics.PAYMENT_OUTCOMES.labels(command["outcome"]).inc()


async def process_payment(
    rt: PaymentRuntime, event_id: str, payment_id: str, details: dict[str, str]
) -> None:
    """Charge a payment begun by the buyer, then send its outcome."""
    payment, hold = await rt.records(event_id, payment_id)
    if not payment:
        raise NotBegunYet(payment_id)
    if payment.get("failure_reason") == PAYMENT_TIMEOUT and payment["status"] == "failed":
        # Given up at the deadline while our charge was on its way: never charge now, but keep
        # asking, so money that reaches the provider after all is found and refunded.
        outcome = await rt.ask(rt.provider.status(payment_id))
        if outcome.status != "success":
            raise OutcomeUnknown(f"payment {payment_id}: provider says {outcome.status}")
        await rt.settle(payment, hold, outcome)
        return
    if payment["status"] in SETTLED:
        return
    await rt.attempt_begins(event_id, payment, hold)
    try:
        outcome = await rt.ask(
            rt.provider.charge(payment_id, payment["amount_cents"], payment["method"], details)
        )
    except ProviderTimeout:
        # The charge may have happened: the provider's word decides, never our guess.
        outcome = await rt.ask(rt.provider.status(payment_id))
    if outcome.status not in ("success", "failed"):
        raise OutcomeUnknown(f"payment {payment_id}: provider says {outcome.status}")
    await rt.settle(payment, hold, outcome)


async def check_payment(rt: PaymentRuntime, event_id: str, payment_id: str) -> None:
    """A paying hold's deadline passed: settle it by what the provider knows. No charge there
    means the buyer's payment never arrived: the seats go back. Unknown: the sweeper asks again."""
    payment, hold = await rt.records(event_id, payment_id)
    if not payment or payment["status"] in SETTLED:
        return
    try:
        outcome = await rt.ask(rt.provider.status(payment_id))
    except (ProviderTimeout, ProviderUnavailable) as exc:
        log.warning("payment %s past its deadline, provider unreachable (%s); asking later", payment_id, exc)
        return
    if outcome.status == "not_found":
        outcome = ProviderResult("failed", reason=PAYMENT_TIMEOUT)
    if outcome.status in ("success", "failed"):
        await rt.settle(payment, hold, outcome)


async def process_refund(rt: PaymentRuntime, event_id: str, payment_id: str) -> None:
    """An approved refund (by an organizer, or automatic for money that came too late)."""
    if await _refund_at_provider(rt, event_id, payment_id, "refund", "complete"):
        payment_metrics.PAYMENT_OUTCOMES.labels("refunded").inc()


async def process_topup(rt: PaymentRuntime, event_id: str, payment_id: str) -> None:
    """A cancelled event's top-up: the rest of a payment refunded in part before (a refund of
    its own at the provider, so the two never add up to more than was charged)."""
    await _refund_at_provider(rt, event_id, payment_id, "topup", "complete_topup")


async def _refund_at_provider(
    rt: PaymentRuntime, event_id: str, payment_id: str, record: str, step: str
) -> bool:
    """The payment's approved `record` (refund, topup: its <record>_status and <record>_cents)
    refunded at the provider under its own refund id, then `step` sent; whether it was."""
    payment, hold = await rt.records(event_id, payment_id)
    if payment.get(f"{record}_status") != "approved":
        return False
    refund_id = "" if record == "refund" else record  # the first refund keeps the provider's old key
    outcome = await rt.ask(rt.provider.refund(payment_id, payment[f"{record}_cents"], refund_id=refund_id))
    if outcome.status != "refunded":
        log.error("%s of %s refused by the provider: %s", record, payment_id, outcome.reason)
        return False
    await rt.command(
        messages.refund_command(step=step, payment=payment, hold=hold, provider_ref=outcome.reference or "")
    )
    return True


async def voucher_step(rt: PaymentRuntime, op: str, event_id: str, booking_id: str) -> None:
    """The booking's voucher released (it ended unpaid) or used (it was paid)."""
    hold = messages.redis_record(await rt.redis.hgetall(keys.hold(event_id, booking_id)))
    if not hold.get("voucher_code"):
        return
    await rt.command(
        messages.voucher_command(
            op=op,
            event_id=event_id,
            tenant_id=hold["voucher_tenant"],
            code=hold["voucher_code"],
            user_id=hold["user_id"],
            booking_id=booking_id,
        )
    )


MAIL_CLAIM_S = 300  # a sender that died mid-send frees its claim after this long

MAIL_CONTEXT = """
SELECT u.email, u.full_name, e.title, s.show_date, z.name AS zone_name, e.tenant_id::text AS tenant_id,
       t.name AS tenant_name,
       coalesce((t.settings->>'cancellation_compensation_percent')::int, 0) AS compensation
FROM users u, events e JOIN tenants t ON t.id = e.tenant_id, shows s, seat_zones z
WHERE u.id = $1 AND e.id = $2 AND s.id = $3 AND z.id = $4
"""


async def notify(rt: PaymentRuntime, kind: str, event_id: str, booking_id: str) -> None:
    """Send one booking mail, once."""
    sent_key = f"{jobs.namespace(rt.settings.endpoints.topic_prefix)}:mail-sent:{kind}:{booking_id}"
    # Claimed before sending, so two copies of the job (a replayed command) send one mail.
    if not await rt.aux.set(sent_key, "sending", nx=True, ex=MAIL_CLAIM_S):
        return
    try:
        await _send_mail(rt, kind, event_id, booking_id)
    except BaseException:
        await rt.aux.delete(sent_key)  # not sent: the retry may claim it again
        raise
    await rt.aux.set(sent_key, "sent", ex=30 * 86_400)


def _price_view(hold: dict) -> dict:
    """The breakdown the hold locked, as the API and the pages show it."""
    breakdown = messages.decode(hold["pricing"]) if hold.get("pricing") else None
    return pricing.breakdown_view(
        breakdown, hold["quantity"], hold["total_cents"], hold.get("currency") or "THB"
    )


async def _send_mail(rt: PaymentRuntime, kind: str, event_id: str, booking_id: str) -> None:
    hold = messages.redis_record(await rt.redis.hgetall(keys.hold(event_id, booking_id)))
    payment_id = hold.get("payment_id") or ""  # a cancelled event's reservation had none
    payment = (
        messages.redis_record(await rt.redis.hgetall(keys.payment(event_id, payment_id)))
        if payment_id
        else {}
    )
    row = await rt.pool.fetchrow(MAIL_CONTEXT, hold["user_id"], event_id, hold["show_id"], hold["zone_id"])
    if row is None:
        log.error("no mail for %s: user, event or zone gone", booking_id)
        return
    voucher: dict = {}
    if kind == "event_cancelled" and row["compensation"] and notifications.money_back(payment):
        code = pricing.voucher_code(booking_id)
        voucher = messages.redis_record(await rt.redis.hgetall(keys.voucher(row["tenant_id"], code)))
        if not voucher:
            raise NotBegunYet(f"voucher {code}")  # its issue command is on its way: the mail waits
    mail = notifications.render(
        kind,
        row["email"],
        {
            "name": row["full_name"] or row["email"],
            "event_title": row["title"],
            "show_date": row["show_date"].strftime("%Y-%m-%d %H:%M UTC"),
            "zone_name": row["zone_name"],
            "quantity": hold["quantity"],
            "booking_id": booking_id,
            "payment_id": payment_id,
            "method": payment.get("masked") or payment.get("method", ""),
            "ticket_code": hold.get("ticket_code", ""),
            "amount": notifications.money(payment.get("amount_cents")),
            "reason": payment.get("failure_reason") or "declined",
            "refund_amount": notifications.money(payment.get("refund_cents")),
            "refund_percent": payment.get("refund_percent", 0),
            "refund_reason": payment.get("refund_reason") or "",
            "breakdown": pricing.breakdown_text(_price_view(hold), hold["quantity"]),
            "settlement": notifications.settlement(payment, voucher, row["tenant_name"]),
        },
    )
    try:
        await rt.mailer.send(mail.to, mail.subject, mail.body)
    except MailError as exc:
        raise ProviderUnavailable(str(exc)) from exc  # retried like any transient failure


TRANSIENT = (
    ProviderTimeout,
    ProviderUnavailable,
    OutcomeUnknown,
    NotBegunYet,
    OSError,
    asyncpg.PostgresError,
)


def declare_actors(broker: dramatiq.Broker, rt: PaymentRuntime) -> dict[str, dramatiq.Actor]:
    """The actors, bound to this process's runtime (no module globals)."""
    p = rt.payment

    def actor(fn, name: str):
        async def run(*args, trace: dict[str, str] | None = None):
            with tracing.TRACER.start_as_current_span(
                f"job {name}", context=tracing.context_of(trace), kind=SpanKind.CONSUMER
            ):
                await fn(await rt.ready(), *args)

        run.__name__ = name
        return dramatiq.actor(
            run,
            broker=broker,
            actor_name=name,
            queue_name=jobs.QUEUE_OF.get(name, jobs.MAIL_QUEUE),
            max_retries=p.max_retries,
            min_backoff=p.min_backoff_ms,
            max_backoff=p.max_backoff_ms,
            # Anything else is a bug: retrying it would only repeat it.
            retry_when=lambda retries, exc: retries < p.max_retries and isinstance(exc, TRANSIENT),
        )

    return {
        jobs.PROCESS_PAYMENT: actor(process_payment, jobs.PROCESS_PAYMENT),
        jobs.CHECK_PAYMENT: actor(check_payment, jobs.CHECK_PAYMENT),
        jobs.PROCESS_REFUND: actor(process_refund, jobs.PROCESS_REFUND),
        jobs.PROCESS_TOPUP: actor(process_topup, jobs.PROCESS_TOPUP),
        jobs.SETTLE_CANCELLATION: actor(settle_cancellation, jobs.SETTLE_CANCELLATION),
        jobs.VOUCHER_STEP: actor(voucher_step, jobs.VOUCHER_STEP),
        jobs.NOTIFY: actor(notify, jobs.NOTIFY),
    }
