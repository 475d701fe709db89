"""Password reset: a single-use, expiring token by mail (a local SMTP sink), then a new password."""

from __future__ import annotations

import re

import pytest_asyncio

from booking_rush.services.mail import MailSettings
from tests.support import (
    accounts_gateway_settings,
    call,
    running_gateway,
    unique,
    wait_until,
)

OLD, NEW = "first pass 11", "second pass 22"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gw(schema, new_topics, jwt_secret, smtp_sink):
    topics = await new_topics("reset")
    settings = accounts_gateway_settings(
        schema,
        topics,
        jwt_secret,
        mail=MailSettings(port=smtp_sink[1]),
    )
    async with running_gateway(settings) as url:
        yield url


async def _post(http, url, body):
    return await call(http, "POST", url, body=body)


async def test_reset_by_mail(gw, http, pg, smtp_sink, new_tenant):
    sink, _ = smtp_sink
    slug = await new_tenant()
    address = f"{unique('u')}@example.com"
    assert (
        await _post(http, f"{gw}/api/v1/auth/register", {"tenant": slug, "email": address, "password": OLD})
    )[0] == 201
    _, session = await _post(
        http, f"{gw}/api/v1/auth/login", {"tenant": slug, "email": address, "password": OLD}
    )

    before = len(sink.messages)
    status, answer = await _post(
        http, f"{gw}/api/v1/auth/forgot-password", {"tenant": slug, "email": address}
    )
    assert (status, answer["data"]) == (200, {"sent": True})

    async def mailed() -> bool:
        return any(m["To"] == address for m in sink.messages[before:])

    await wait_until(mailed, 10, "the reset mail")
    mail = next(m for m in sink.messages[before:] if m["To"] == address)
    text = mail.get_payload(decode=True).decode()
    token = re.search(r"^([A-Za-z0-9_-]{40,})\s*$", text, re.M).group(1)

    status, _ = await _post(http, f"{gw}/api/v1/auth/reset-password", {"token": token, "password": NEW})
    assert status == 200
    status, again = await _post(http, f"{gw}/api/v1/auth/reset-password", {"token": token, "password": NEW})
    assert (status, again["error"]["code"]) == (401, "UNAUTHORIZED")  # single use: a spent credential
    assert (
        await _post(http, f"{gw}/api/v1/auth/login", {"tenant": slug, "email": address, "password": OLD})
    )[0] == 401
    assert (
        await _post(http, f"{gw}/api/v1/auth/login", {"tenant": slug, "email": address, "password": NEW})
    )[0] == 200
    status, _ = await _post(
        http, f"{gw}/api/v1/auth/refresh", {"refresh_token": session["data"]["refresh_token"]}
    )
    assert status == 401  # the old session ended with the reset


async def test_unknown_accounts_get_the_same_answer_and_no_mail(gw, http, pg, smtp_sink, new_tenant):
    sink, _ = smtp_sink
    slug = await new_tenant()
    before = len(sink.messages)
    status, answer = await _post(
        http, f"{gw}/api/v1/auth/forgot-password", {"tenant": slug, "email": "nobody@example.com"}
    )
    assert (status, answer["data"]) == (200, {"sent": True})
    assert len(sink.messages) == before


async def test_expired_or_made_up_tokens_fail(gw, http, pg):
    status, answer = await _post(
        http, f"{gw}/api/v1/auth/reset-password", {"token": "x" * 43, "password": NEW}
    )
    assert (status, answer["error"]["code"]) == (401, "UNAUTHORIZED")
    status, answer = await _post(
        http, f"{gw}/api/v1/auth/reset-password", {"token": "x" * 43, "password": "weak"}
    )
    assert (status, answer["error"]["details"]) == (
        400,
        {"password": "8 characters to 72 bytes (UTF-8), with letters and digits"},
    )
