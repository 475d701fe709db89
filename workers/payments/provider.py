"""The payment provider the workers charge and refund through, and a fake one to sale-test against.

`PaymentProvider` is what the payment code depends on; a real provider's client implements it
later. `FakeProvider` plays the bank: its state lives in the aux Redis under `fakepay:{namespace}:`
so every worker process of a run charges against the same "bank", and tests can look inside it.

Like Stripe's test cards, the last 4 characters of the method's detail field pick a scenario:

    0002  declined ("card_declined"), and registered as such
    0119  the first attempt for a key is refused (ProviderUnavailable, nothing registered)
    0408  registered as a success, but the answer is lost (ProviderTimeout)
    0409  the answer is lost and the charge only shows up `settle_delay_ms` later
    else  success, unless `failure_rate` / `timeout_rate` draw otherwise

The charge and refund steps are Lua scripts, so concurrent calls with one key (several workers
retrying the same payment) register one charge and one refund, never two. Settling (0409) is
judged lazily from timestamps; nothing runs in the background.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import lua
from booking_rush.contract.messages import now_ms
from booking_rush.contract.payments import DETAIL_FIELD, METHODS
from booking_rush.services.env import env_float, env_int


@dataclass(frozen=True)
class ProviderResult:
    """What the provider says about one charge.

    status: "success" | "failed" | "pending" | "not_found" | "refunded" ("pending" is for real
    providers that settle asynchronously; the fake never answers it).
    """

    status: str
    reference: str | None = None  # the provider's charge id
    reason: str | None = None  # why it failed (e.g. "card_declined")
    refunded_cents: int = 0


class ProviderTimeout(Exception):
    """No answer in time: the outcome is unknown (the charge may or may not have happened)."""


class ProviderUnavailable(Exception):
    """A transient error (5xx, connection refused): nothing happened; retry later."""


@runtime_checkable
class PaymentProvider(Protocol):
    async def charge(
        self, key: str, amount_cents: int, method: str, details: dict[str, str]
    ) -> ProviderResult:
        """Charge once per `key`: charging the same key again returns that charge's outcome, never
        charges twice. Raises ProviderTimeout (outcome unknown) or ProviderUnavailable (nothing
        happened)."""
        ...

    async def status(self, key: str) -> ProviderResult:
        """The outcome of the charge with that key; "not_found" if there is none."""
        ...

    async def refund(self, key: str, amount_cents: int, refund_id: str = "") -> ProviderResult:
        """Refund (part of) a successful charge, once per (key, refund id): asking again returns
        that refund's result and refunds nothing more; refunds of one charge never add up to more
        than it ("amount_exceeds_charge"). A charge that did not succeed answers
        ProviderResult("failed", reason="not_refundable")."""
        ...


DECLINE_SUFFIX = "0002"
TRANSIENT_SUFFIX = "0119"
TIMEOUT_SUFFIX = "0408"
LOST_RESPONSE_SUFFIX = "0409"

DECLINED_REASON = "card_declined"
NOT_REFUNDABLE_REASON = "not_refundable"
REFUND_TOO_LARGE_REASON = "amount_exceeds_charge"

# Long enough for any retry or reconciliation of a test run to find its charge; short enough that
# a load test's millions of charges leave the aux Redis on their own.
RECORD_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class FakeProviderSettings:
    latency_ms: int = 50  # every call sleeps this long before answering
    failure_rate: float = 0.0  # share of ordinary charges declined at random
    timeout_rate: float = 0.0  # share of ordinary charges that register success but time out
    settle_delay_ms: int = 3000  # how long a lost-response (0409) charge stays invisible

    def __post_init__(self) -> None:
        # A bad BR_FAKEPAY_* value should fail at start-up, not skew a load test silently.
        if self.latency_ms < 0 or self.settle_delay_ms < 0:
            raise ValueError("fake provider delays must not be negative")
        for name in ("failure_rate", "timeout_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"fake provider {name} must be between 0 and 1")

    @classmethod
    def from_env(cls) -> FakeProviderSettings:
        defaults = cls()
        return cls(
            latency_ms=env_int("BR_FAKEPAY_LATENCY_MS", defaults.latency_ms),
            failure_rate=env_float("BR_FAKEPAY_FAILURE_RATE", defaults.failure_rate),
            timeout_rate=env_float("BR_FAKEPAY_TIMEOUT_RATE", defaults.timeout_rate),
            settle_delay_ms=env_int("BR_FAKEPAY_SETTLE_DELAY_MS", defaults.settle_delay_ms),
        )


def _now_ms() -> int:
    # Wall clock, not monotonic: registers_at_ms is compared across the processes sharing the bank.
    return now_ms()


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def new_reference() -> str:
    return "fp_" + secrets.token_hex(8)


@dataclass(frozen=True)
class _Outcome:
    """What a first charge attempt registers and how it answers."""

    status: str
    reason: str = ""
    registers_in_ms: int = 0
    answer_times_out: bool = False
    refuse_first_attempt: bool = False


class FakeProvider:
    """A PaymentProvider whose bank is a set of Redis hashes, one per charge key."""

    def __init__(
        self, redis, namespace: str, settings: FakeProviderSettings = FakeProviderSettings()
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.settings = settings
        self._charge_script = redis.register_script(lua.source("fakepay_charge"))
        self._refund_script = redis.register_script(lua.source("fakepay_refund"))

    def charge_key(self, key: str) -> str:
        """The Redis hash holding the charge with that key (tests read it)."""
        return f"fakepay:{self.namespace}:charge:{key}"

    async def _answer_delay(self) -> None:
        await asyncio.sleep(self.settings.latency_ms / 1000)

    def _outcome_for(self, method: str, details: dict[str, str]) -> _Outcome:
        if method not in DETAIL_FIELD:
            raise ValueError(f"unknown payment method {method!r}; expected one of {METHODS}")
        suffix = details.get(DETAIL_FIELD[method], "")[-4:]
        if suffix == DECLINE_SUFFIX:
            return _Outcome("failed", reason=DECLINED_REASON)
        if suffix == TRANSIENT_SUFFIX:
            return _Outcome("success", refuse_first_attempt=True)
        if suffix == TIMEOUT_SUFFIX:
            return _Outcome("success", answer_times_out=True)
        if suffix == LOST_RESPONSE_SUFFIX:
            return _Outcome("success", registers_in_ms=self.settings.settle_delay_ms, answer_times_out=True)
        if random.random() < self.settings.failure_rate:
            return _Outcome("failed", reason=DECLINED_REASON)
        if random.random() < self.settings.timeout_rate:
            return _Outcome("success", answer_times_out=True)
        return _Outcome("success")

    @staticmethod
    def _visible_result(status: str, reference: str, reason: str, refunded_cents: int) -> ProviderResult:
        if status == "success" and refunded_cents > 0:
            return ProviderResult("refunded", reference, refunded_cents=refunded_cents)
        return ProviderResult(status, reference, reason or None)

    async def charge(
        self, key: str, amount_cents: int, method: str, details: dict[str, str]
    ) -> ProviderResult:
        """A repeated charge answers the charge's current state (so "refunded" once refunded)."""
        outcome = self._outcome_for(method, details)
        await self._answer_delay()
        now = _now_ms()
        verdict, status, reference, reason, registers_at, refunded = map(
            _text,
            await self._charge_script(
                keys=[self.charge_key(key)],
                args=[
                    outcome.status,
                    new_reference(),
                    outcome.reason,
                    amount_cents,
                    method,
                    now + outcome.registers_in_ms,
                    "1" if outcome.refuse_first_attempt else "0",
                    RECORD_TTL_S,
                ],
            ),
        )
        if verdict == "unavailable":
            raise ProviderUnavailable(f"fake provider refused the first attempt of charge {key}")
        if verdict == "registered" and outcome.answer_times_out:
            raise ProviderTimeout(f"fake provider lost the answer to charge {key}")
        if int(registers_at) > now:
            # A lost-response charge retried before it settled: the provider still has no answer.
            raise ProviderTimeout(f"fake provider has not settled charge {key} yet")
        return self._visible_result(status, reference, reason, int(refunded))

    async def status(self, key: str) -> ProviderResult:
        await self._answer_delay()
        status, reference, reason, registers_at, refunded = map(
            _text,
            await self.redis.hmget(
                self.charge_key(key), "status", "reference", "reason", "registers_at_ms", "refunded_cents"
            ),
        )
        if not status or int(registers_at) > _now_ms():
            return ProviderResult("not_found")
        return self._visible_result(status, reference, reason, int(refunded or 0))

    async def refund(self, key: str, amount_cents: int, refund_id: str = "") -> ProviderResult:
        """Only a successful refund is remembered: a refund refused because the charge had not
        settled yet (0409) can be tried again once it has."""
        if amount_cents <= 0:
            raise ValueError(f"refund amount must be positive, got {amount_cents}")
        await self._answer_delay()
        verdict, reference, refunded = map(
            _text,
            await self._refund_script(
                keys=[self.charge_key(key)], args=[amount_cents, _now_ms(), RECORD_TTL_S, refund_id]
            ),
        )
        if verdict == "not_refundable":
            return ProviderResult("failed", reference or None, NOT_REFUNDABLE_REASON)
        if verdict == "too_large":
            return ProviderResult("failed", reference, REFUND_TOO_LARGE_REASON)
        return ProviderResult("refunded", reference, refunded_cents=int(refunded))
