"""Password reset: a single-use, expiring token by mail (a local SMTP sink), then a new password."""

from __future__ import annotations

import re

import pytest_asyncio

from booking_rush.services.mail import MailSettings
from gateway import appkeys
from tests.support import (
    accounts_gateway_settings,
    call,
    running_gateway_app,
    unique,
    wait_until,
)

OLD, NEW = "first pass 11", "second pass 22"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(schema, new_topics, jwt_secret, smtp_sink):
    topics = await new_topics("reset")
    settings = accounts_gateway_settings(
        schema,
        topics,
        jwt_secret,
        mail=MailSettings(port=smtp_sink[1]),
    )
    async with running_gateway_app(settings) as (url, app):
        yield url, app[appkeys.PASSWORD_HASHER]


@pytest_asyncio.fixture(loop_scope="session")
async def gw(gateway):
    return gateway[0]


async def _post(http, url, body):
    return await call(http, "POST", url, body=body)


async def _registered(http, gw, slug) -> str:
    address = f"{unique('u')}@example.com"
    status, _ = await _post(
        http, f"{gw}/api/v1/auth/register", {"tenant": slug, "email": address, "password": OLD}
    )
    assert status == 201
    return address


async def _mailed_token(http, gw, sink, slug, address) -> str:
    """Ask for a reset of `address` and read the token from the mail the sink received."""
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
    return re.search(r"^([A-Za-z0-9_-]{40,})\s*$", text, re.M).group(1)


async def test_reset_by_mail(gw, http, pg, smtp_sink, new_tenant):
    sink, _ = smtp_sink
    slug = await new_tenant()
    address = await _registered(http, gw, slug)
    _, session = await _post(
        http, f"{gw}/api/v1/auth/login", {"tenant": slug, "email": address, "password": OLD}
    )
    token = await _mailed_token(http, gw, sink, slug, address)

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
    status, _ = await call(http, "GET", f"{gw}/api/v1/auth/me", session["data"]["access_token"])
    assert status == 401  # and its access token with it, before it expires


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


async def test_a_made_up_token_costs_no_hash(gateway, http, smtp_sink, new_tenant):
    """A guessed token is refused on a database read: a crowd of guesses cannot keep the
    gateway's bcrypt threads busy. A real reset hashes the new password once."""
    gw, hasher = gateway
    before = hasher.hashed
    for guess in ("x" * 43, "y" * 43, "z" * 200):
        status, answer = await _post(
            http, f"{gw}/api/v1/auth/reset-password", {"token": guess, "password": NEW}
        )
        assert (status, answer["error"]["code"]) == (401, "UNAUTHORIZED")
    assert hasher.hashed == before

    slug = await new_tenant()
    address = await _registered(http, gw, slug)
    token = await _mailed_token(http, gw, smtp_sink[0], slug, address)
    before = hasher.hashed
    status, _ = await _post(http, f"{gw}/api/v1/auth/reset-password", {"token": token, "password": NEW})
    assert status == 200 and hasher.hashed == before + 1


async def test_a_reset_ends_every_other_link_sent(gw, http, smtp_sink, new_tenant):
    """Two mails asked for (one by the owner, one perhaps by whoever read their mailbox): using
    either one spends both."""
    sink, _ = smtp_sink
    slug = await new_tenant()
    address = await _registered(http, gw, slug)
    first = await _mailed_token(http, gw, sink, slug, address)
    second = await _mailed_token(http, gw, sink, slug, address)
    assert first != second
    status, _ = await _post(http, f"{gw}/api/v1/auth/reset-password", {"token": second, "password": NEW})
    assert status == 200
    status, answer = await _post(
        http, f"{gw}/api/v1/auth/reset-password", {"token": first, "password": "third pass 33"}
    )
    assert (status, answer["error"]["code"]) == (401, "UNAUTHORIZED")
    status, _ = await _post(
        http, f"{gw}/api/v1/auth/login", {"tenant": slug, "email": address, "password": NEW}
    )
    assert status == 200
