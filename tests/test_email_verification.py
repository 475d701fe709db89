"""A buyer who registers confirms their address before queueing or booking: registration mails a
single-use link, an unverified buyer may sign in but joining a waiting room or reserving answers
403 EMAIL_NOT_VERIFIED, using the link verifies the address and hands out a session that says
so, and the link is mailed again at most three times an hour. Accounts made any other way
(seeded, invited, the tests' own) are verified when made."""

from __future__ import annotations

import asyncio
import re

import pytest_asyncio
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen

from booking_rush.services.mail import MailSettings
from tests.browser import page_problems, stored_session, submit_sign_in, wait
from tests.support import (
    accounts_gateway_settings,
    call,
    queue_call,
    reserve,
    running_gateway,
    tenant_with_event,
    unique,
)

PASSWORD = "verify me 2026"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gw(schema, new_topics, jwt_secret, smtp_sink):
    settings = accounts_gateway_settings(
        schema, await new_topics("verify"), jwt_secret, mail=MailSettings(port=smtp_sink[1])
    )
    async with running_gateway(settings) as url:
        yield url


def _link_token(inbox, address: str, nth: int = -1) -> str:
    mails = [m for m in inbox.messages if m["To"] == address]
    return re.search(
        r"/verify-email#token=([A-Za-z0-9_-]+)", mails[nth].get_payload(decode=True).decode()
    ).group(1)


async def _register(http, gw, slug: str) -> tuple[str, dict]:
    email = f"{unique('new')}@buyer.test"
    status, made = await call(
        http,
        "POST",
        f"{gw}/api/v1/auth/register",
        body={"tenant": slug, "email": email, "password": PASSWORD},
    )
    assert status == 201, made
    return email, made["data"]


async def _login(http, gw, slug: str, email: str) -> dict:
    status, session = await call(
        http, "POST", f"{gw}/api/v1/auth/login", body={"tenant": slug, "email": email, "password": PASSWORD}
    )
    assert status == 200, session
    return session["data"]


async def test_a_registered_buyer_confirms_the_address_before_queueing_or_booking(
    gw, http, smtp_sink, tenant, make_event, room
):
    inbox, _ = smtp_sink
    event = await make_event([("GA", 10)], shows=1)
    email, made = await _register(http, gw, tenant["slug"])
    assert made["verification_sent"] is True and made["user"]["email_verified"] is False
    session = await _login(http, gw, tenant["slug"], email)  # signing in is allowed
    assert session["user"]["email_verified"] is False
    token = session["access_token"]

    await room.configure(event.event_id, {"mode": "paused"})
    status, refused = await queue_call(http, gw, token, "join", event.event_id)
    assert (status, refused["error"]["code"]) == (403, "EMAIL_NOT_VERIFIED")
    show = next(iter(event.shows))
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["GA"], "quantity": 1}
    status, refused = await reserve(http, gw, token, body)
    assert (status, refused["error"]["code"]) == (403, "EMAIL_NOT_VERIFIED")

    status, verified = await call(
        http, "POST", f"{gw}/api/v1/auth/verify-email", body={"token": _link_token(inbox, email)}
    )
    assert status == 200 and verified["data"]["user"]["email_verified"] is True
    status, joined = await queue_call(http, gw, verified["data"]["access_token"], "join", event.event_id)
    assert status == 200 and joined["data"]["state"] == "paused"
    status, spent = await call(
        http, "POST", f"{gw}/api/v1/auth/verify-email", body={"token": _link_token(inbox, email)}
    )
    assert (status, spent["error"]["code"]) == (404, "NOT_FOUND")  # once

    # The session from before renews into one that is verified too.
    status, renewed = await call(
        http, "POST", f"{gw}/api/v1/auth/refresh", body={"refresh_token": session["refresh_token"]}
    )
    assert status == 200 and renewed["data"]["user"]["email_verified"] is True
    status, _ = await queue_call(http, gw, renewed["data"]["access_token"], "status", event.event_id)
    assert status == 200


async def test_the_link_is_mailed_again_three_times_an_hour_and_not_once_verified(
    gw, http, smtp_sink, tenant
):
    inbox, _ = smtp_sink
    email, _ = await _register(http, gw, tenant["slug"])
    token = (await _login(http, gw, tenant["slug"], email))["access_token"]
    url = f"{gw}/api/v1/auth/verify-email/resend"
    for _ in range(3):
        status, sent = await call(http, "POST", url, token)
        assert status == 200 and sent["data"] == {"sent": True, "email_verified": False}
    status, limited = await call(http, "POST", url, token)
    assert (status, limited["error"]["code"]) == (429, "RATE_LIMITED")
    assert len([m for m in inbox.messages if m["To"] == email]) == 4  # at registration, then three
    # Any of the links works; then the others are spent.
    first = _link_token(inbox, email, 0)
    assert (await call(http, "POST", f"{gw}/api/v1/auth/verify-email", body={"token": first}))[0] == 200
    last = _link_token(inbox, email, -1)
    assert (await call(http, "POST", f"{gw}/api/v1/auth/verify-email", body={"token": last}))[0] == 404


async def test_seeded_accounts_are_verified(gw, http, make_users, token_for, make_event, room):
    (buyer,) = await make_users(1)
    event = await make_event([("GA", 5)], shows=1)
    await room.configure(event.event_id, {"mode": "paused"})
    status, _ = await queue_call(http, gw, token_for(buyer), "join", event.event_id)
    assert status == 200


def _body(driver, name: str) -> str | None:
    """The page's body[data-<name>], read by script (no element handle to go stale mid-navigation)."""
    return driver.execute_script("return document.body && document.body.dataset[arguments[0]]", name)


def _unverified_then_verified(driver, gw: str, slug: str, email: str, event_id: str, inbox) -> dict:
    room_page = f"{gw}/waiting-room/{event_id}"
    driver.get(f"{gw}/login")
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    driver.get(room_page)
    wait(driver, seen.url_contains("/login?next="))
    submit_sign_in(driver, slug, email, PASSWORD)
    wait(driver, lambda d: _body(d, "state") == "unverified")
    before = {
        "said": driver.find_element(By.ID, "room-state").text,
        "resend_shown": driver.find_element(By.ID, "resend-verification").is_displayed(),
    }
    driver.find_element(By.ID, "resend-verification").click()
    wait(driver, lambda d: d.find_element(By.ID, "resend-said").text)
    resent = driver.find_element(By.ID, "resend-said").text
    driver.get(f"{gw}/verify-email#token={_link_token(inbox, email)}")
    wait(driver, lambda d: _body(d, "verified") == "yes")
    confirmed = driver.find_element(By.ID, "verify-state").text
    driver.get(room_page)
    wait(driver, lambda d: _body(d, "state") == "paused")
    return {"before": before, "resent": resent, "confirmed": confirmed, "session": stored_session(driver)}


async def test_the_pages_tell_an_unverified_buyer_and_the_link_lets_them_in(
    gw, http, smtp_sink, tenant, make_event, room, browser
):
    inbox, _ = smtp_sink
    event = await make_event([("GA", 5)], shows=1)
    await room.configure(event.event_id, {"mode": "paused"})
    email, _ = await _register(http, gw, tenant["slug"])
    seen_ = await asyncio.to_thread(
        _unverified_then_verified, browser, gw, tenant["slug"], email, event.event_id, inbox
    )
    assert seen_["before"] == {
        "said": "Confirm your e-mail address first: open the link we mailed you, then come back to "
        "this page.",
        "resend_shown": True,
    }
    assert seen_["resent"] == "Sent: check your mailbox."
    assert seen_["confirmed"] == f"Thank you: {email} is confirmed. You can queue and book now."
    assert seen_["session"]["user"]["email_verified"] is True
    assert await asyncio.to_thread(page_problems, browser) == []


def _a_storefront(driver, gw: str, slug: str, own_event: str, inbox) -> dict:
    """The storefront's events page, then its registration, the mailed link, and its sign-in."""
    driver.get(f"{gw}/login")
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    driver.get(f"{gw}/t/{slug}/events")
    wait(driver, seen.presence_of_element_located((By.CSS_SELECTOR, f"[data-event-id='{own_event}']")))
    listed = [e.get_attribute("data-event-id") for e in driver.find_elements(By.CSS_SELECTOR, "li.event")]
    sign_in = driver.find_element(By.ID, "sign-in-link").get_attribute("href")
    driver.get(f"{gw}/t/{slug}/register")
    email = f"{unique('shopper')}@store.test"
    wait(driver, seen.element_to_be_clickable((By.ID, "register")))
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "register").click()
    registered = wait(driver, seen.visibility_of_element_located((By.ID, "registered"))).text
    driver.get(f"{gw}/verify-email#token={_link_token(inbox, email)}")
    wait(driver, lambda d: _body(d, "verified") == "yes")
    driver.get(f"{gw}/t/{slug}/login")
    tenant_field = wait(driver, seen.presence_of_element_located((By.ID, "tenant")))
    wait(driver, lambda d: tenant_field.get_attribute("value") == slug)
    return {"listed": listed, "sign_in": sign_in, "registered": registered, "email": email}


async def test_a_storefront_lists_its_own_events_and_registers_its_own_buyers(
    gw, http, smtp_sink, pg, sale_redis, make_event, browser
):
    inbox, _ = smtp_sink
    made = await tenant_with_event(pg, sale_redis, "store-")
    slug, tenant_id, own = made["slug"], made["tenant_id"], made["event"]
    await make_event([("GA", 5)], shows=1)  # another storefront's: not listed here
    seen_ = await asyncio.to_thread(_a_storefront, browser, gw, slug, own.event_id, inbox)
    assert seen_["listed"] == [own.event_id]
    assert seen_["sign_in"].startswith(f"{gw}/t/{slug}/login?next=")
    assert seen_["registered"].startswith(f"Welcome! We mailed a link to {seen_['email']}")
    user = await pg.fetchrow(
        "SELECT tenant_id, email_verified_at FROM users WHERE email = $1", seen_["email"]
    )
    assert str(user["tenant_id"]) == tenant_id and user["email_verified_at"] is not None
    assert await asyncio.to_thread(page_problems, browser) == []
