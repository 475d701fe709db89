"""The fake payment provider against the real aux Redis: each scenario the workers must survive
(decline, refusal, lost answers, late settling), idempotent charges and refunds, and its settings."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest

from booking_rush.contract.messages import now_ms
from booking_rush.contract.payments import DETAIL_FIELD, METHODS
from tests.support import wait_until
from workers.payments.provider import (
    RECORD_TTL_S,
    FakeProvider,
    FakeProviderSettings,
    PaymentProvider,
    ProviderResult,
    ProviderTimeout,
    ProviderUnavailable,
)

INSTANT = FakeProviderSettings(latency_ms=0)


def provider(aux, settings: FakeProviderSettings = INSTANT) -> FakeProvider:
    return FakeProvider(aux, uuid.uuid4().hex, settings)


def card(last4: str) -> dict[str, str]:
    return {"card_number": "424242424242" + last4}


async def record(aux, fake: FakeProvider, key: str) -> dict[str, str]:
    raw = await aux.hgetall(fake.charge_key(key))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def test_the_fake_is_a_payment_provider(aux):
    assert isinstance(provider(aux), PaymentProvider)


async def test_a_success_is_registered_once_and_a_repeated_charge_returns_it(aux):
    fake = provider(aux)
    first = await fake.charge("k1", 12_500, "card", card("4242"))
    assert first.status == "success"
    assert re.fullmatch(r"fp_[0-9a-f]{16}", first.reference)
    assert first.reason is None

    again = await fake.charge("k1", 12_500, "card", card("4242"))
    assert again == first
    assert await fake.status("k1") == first

    stored = await record(aux, fake, "k1")
    assert stored["status"] == "success"
    assert stored["reference"] == first.reference
    assert stored["amount_cents"] == "12500"
    assert stored["method"] == "card"
    assert stored["attempts"] == "2"
    assert 0 < await aux.ttl(fake.charge_key("k1")) <= RECORD_TTL_S
    assert await aux.keys(f"fakepay:{fake.namespace}:*") == [fake.charge_key("k1").encode()]


async def test_concurrent_charges_of_one_key_register_one_charge(aux):
    fake = provider(aux, FakeProviderSettings(latency_ms=5))
    results = await asyncio.gather(*(fake.charge("race", 100, "card", card("4242")) for _ in range(20)))
    assert len({r.reference for r in results}) == 1
    assert (await record(aux, fake, "race"))["attempts"] == "20"


async def test_unknown_key_is_not_found(aux):
    assert await provider(aux).status("never-charged") == ProviderResult("not_found")


@pytest.mark.parametrize("method", METHODS)
async def test_0002_is_declined_and_registered_for_every_method(aux, method):
    fake = provider(aux)
    result = await fake.charge("k", 100, method, {DETAIL_FIELD[method]: "NL00BANK0000000002"})
    assert result.status == "failed"
    assert result.reason == "card_declined"
    assert result.reference.startswith("fp_")
    assert await fake.status("k") == result
    assert await fake.charge("k", 100, method, {DETAIL_FIELD[method]: "NL00BANK0000000002"}) == result


async def test_0119_refuses_the_first_attempt_without_registering_then_succeeds(aux):
    fake = provider(aux)
    with pytest.raises(ProviderUnavailable):
        await fake.charge("k", 100, "e_wallet", {"wallet_id": "w-0119"})
    assert await fake.status("k") == ProviderResult("not_found")
    assert "status" not in await record(aux, fake, "k")

    second = await fake.charge("k", 100, "e_wallet", {"wallet_id": "w-0119"})
    assert second.status == "success"
    assert await fake.charge("k", 100, "e_wallet", {"wallet_id": "w-0119"}) == second
    assert await fake.status("k") == second


async def test_0408_times_out_after_registering_the_success(aux):
    fake = provider(aux)
    with pytest.raises(ProviderTimeout):
        await fake.charge("k", 100, "card", card("0408"))
    known = await fake.status("k")
    assert known.status == "success"
    assert known.reference == (await record(aux, fake, "k"))["reference"]
    assert await fake.charge("k", 100, "card", card("0408")) == known


async def test_0409_stays_invisible_until_it_settles(aux):
    fake = provider(aux, FakeProviderSettings(latency_ms=0, settle_delay_ms=300))
    started_ms = now_ms()
    with pytest.raises(ProviderTimeout):
        await fake.charge("k", 100, "bank_transfer", {"account": "DE00-0409"})
    registered = await record(aux, fake, "k")
    assert int(registered["registers_at_ms"]) >= started_ms + 300
    assert await fake.status("k") == ProviderResult("not_found")
    assert (await fake.refund("k", 100)).reason == "not_refundable"

    with pytest.raises(ProviderTimeout):
        await fake.charge("k", 100, "bank_transfer", {"account": "DE00-0409"})
    after_retry = await record(aux, fake, "k")
    assert after_retry["reference"] == registered["reference"]
    assert after_retry["registers_at_ms"] == registered["registers_at_ms"]

    async def registered_at_last() -> bool:
        return (await fake.status("k")).status != "not_found"

    await wait_until(registered_at_last, 5, "the lost-response charge settled")
    settled = await fake.status("k")
    assert time.time() * 1000 >= int(registered["registers_at_ms"])
    assert settled == ProviderResult("success", registered["reference"])
    assert await fake.charge("k", 100, "bank_transfer", {"account": "DE00-0409"}) == settled


async def test_full_refund_is_done_once(aux):
    fake = provider(aux)
    charged = await fake.charge("k", 5_000, "card", card("4242"))
    refunded = await fake.refund("k", 5_000)
    assert refunded == ProviderResult("refunded", charged.reference, refunded_cents=5_000)
    assert await fake.refund("k", 5_000) == refunded
    assert await fake.status("k") == refunded
    assert (await record(aux, fake, "k"))["refunded_cents"] == "5000"


async def test_partial_refund_then_a_second_refund_refunds_nothing_more(aux):
    fake = provider(aux)
    charged = await fake.charge("k", 5_000, "card", card("4242"))
    partial = await fake.refund("k", 1_500)
    assert partial == ProviderResult("refunded", charged.reference, refunded_cents=1_500)
    assert await fake.refund("k", 3_500) == partial
    assert (await record(aux, fake, "k"))["refunded_cents"] == "1500"


async def test_concurrent_refunds_refund_once(aux):
    fake = provider(aux)
    await fake.charge("k", 5_000, "card", card("4242"))
    results = await asyncio.gather(*(fake.refund("k", amount) for amount in range(100, 1_100, 100)))
    assert len(set(results)) == 1
    assert (await record(aux, fake, "k"))["refunded_cents"] == str(results[0].refunded_cents)


async def test_a_charge_that_did_not_succeed_is_not_refundable(aux):
    fake = provider(aux)
    declined = await fake.charge("k", 100, "card", card("0002"))
    assert await fake.refund("k", 100) == ProviderResult("failed", declined.reference, "not_refundable")
    assert await fake.refund("missing", 100) == ProviderResult("failed", reason="not_refundable")
    assert (await record(aux, fake, "k"))["refunded_cents"] == "0"


async def test_refunding_more_than_was_charged_fails(aux):
    fake = provider(aux)
    charged = await fake.charge("k", 100, "card", card("4242"))
    assert await fake.refund("k", 101) == ProviderResult("failed", charged.reference, "amount_exceeds_charge")
    assert (await fake.refund("k", 100)).refunded_cents == 100
    with pytest.raises(ValueError):
        await fake.refund("k", 0)


async def test_failure_rate_one_declines_ordinary_charges(aux):
    fake = provider(aux, FakeProviderSettings(latency_ms=0, failure_rate=1.0))
    for i in range(5):
        result = await fake.charge(f"k{i}", 100, "card", card("4242"))
        assert (result.status, result.reason) == ("failed", "card_declined")
        assert await fake.status(f"k{i}") == result


async def test_timeout_rate_one_registers_success_and_times_out(aux):
    fake = provider(aux, FakeProviderSettings(latency_ms=0, timeout_rate=1.0))
    for i in range(5):
        with pytest.raises(ProviderTimeout):
            await fake.charge(f"k{i}", 100, "card", card("4242"))
        assert (await fake.status(f"k{i}")).status == "success"


async def test_latency_delays_every_answer(aux):
    fake = provider(aux, FakeProviderSettings(latency_ms=100))
    started = time.monotonic()
    await fake.charge("k", 100, "card", card("4242"))
    await fake.status("k")
    await fake.refund("k", 100)
    assert time.monotonic() - started >= 0.3


async def test_unknown_method_is_a_value_error(aux):
    fake = provider(aux)
    with pytest.raises(ValueError):
        await fake.charge("k", 100, "cash", {"card_number": "4242424242424242"})
    assert await aux.exists(fake.charge_key("k")) == 0


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("BR_FAKEPAY_LATENCY_MS", "7")
    monkeypatch.setenv("BR_FAKEPAY_FAILURE_RATE", "0.25")
    monkeypatch.setenv("BR_FAKEPAY_TIMEOUT_RATE", "0.5")
    monkeypatch.setenv("BR_FAKEPAY_SETTLE_DELAY_MS", "1200")
    assert FakeProviderSettings.from_env() == FakeProviderSettings(7, 0.25, 0.5, 1200)


def test_settings_from_env_defaults_when_empty_or_missing(monkeypatch):
    monkeypatch.setenv("BR_FAKEPAY_LATENCY_MS", "")
    monkeypatch.delenv("BR_FAKEPAY_FAILURE_RATE", raising=False)
    monkeypatch.delenv("BR_FAKEPAY_TIMEOUT_RATE", raising=False)
    monkeypatch.setenv("BR_FAKEPAY_SETTLE_DELAY_MS", "")
    assert FakeProviderSettings.from_env() == FakeProviderSettings()


def test_settings_reject_rates_outside_zero_to_one(monkeypatch):
    monkeypatch.setenv("BR_FAKEPAY_FAILURE_RATE", "1.5")
    with pytest.raises(ValueError):
        FakeProviderSettings.from_env()
