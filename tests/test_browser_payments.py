"""Paying, in a real headless Chromium (tests/browser.py): a buyer goes from the waiting room through
booking and payment to the e-ticket; a declined card says so and gives the seats back; a payment
begun before the page was lost is followed to the ticket; My bookings asks for a refund and gives a
reservation back.

A sale of its own, as in test_payments: command/sweeper/persistence workers, a payment worker
(Dramatiq) with the fake provider, whose scenario the last four characters of the card number pick,
and an SMTP sink for the mails.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest_asyncio
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select

from booking_rush.contract.messages import now_ms
from gateway.auth import issue_access_token
from gateway.password_hasher import hash_password
from lua import keys
from ops.inventory import load_event_inventory
from ops.seed_data import ZoneSpec, create_event, ensure_users
from tests.browser import Shop, open_shop, page_problems, stored_session, submit_sign_in, wait
from tests.support import (
    WorkerProcess,
    admission_tick,
    book,
    call,
    gateway_settings,
    running_gateway,
    unique,
    wait_until,
    worker_env,
)

PASSWORD = "pay pages pass 2026"
SEATS = 20
PRICE = "100.00"  # two tickets: 200.00
CARD = "4242 4242 4242 4242"  # spaces as people type them; the page sends the digits
DECLINED = "4000 0000 0000 0002"
FLAKY = "4000000000000119"  # the provider errs once: the payment is retried after the backoff
RETRY_BACKOFF_MS = 4000  # so a payment with FLAKY is still in progress when the page opens
EXPIRY = f"12/{(datetime.now(UTC).year + 3) % 100:02d}"
PAID_S = 30  # a payment's way through Kafka, the payment worker and back (the retry included)


@dataclass
class Sale:
    url: str
    shop: Shop
    token: str  # the buyer's, for the API calls the test makes beside the browser


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sale(schema, pg, new_topics, jwt_secret, smtp_sink):
    _, smtp_port = smtp_sink
    topics = await new_topics("paypages")
    env = {
        "BR_SMTP_PORT": str(smtp_port),
        "BR_FAKEPAY_LATENCY_MS": "20",
        "BR_PAYMENT_MIN_BACKOFF_MS": str(RETRY_BACKOFF_MS),
        "BR_PAYMENT_MAX_BACKOFF_MS": str(RETRY_BACKOFF_MS + 1000),
    }
    async with pg.acquire() as conn:
        shop = await open_shop(conn, "pay-shop-", PASSWORD)
        buyer = await conn.fetchval("SELECT id FROM users WHERE email = $1", shop.email)
    token = issue_access_token(jwt_secret, user_id=str(buyer), tenant_id=shop.tenant_id)
    workers = await WorkerProcess(worker_env(schema, topics, f"{topics.prefix}w", **env)).start()
    payer = await WorkerProcess(
        worker_env(schema, topics, f"{topics.prefix}p", **env), module="workers.payment_worker"
    ).start()
    settings = gateway_settings(
        schema,
        topics,
        jwt_secret,
        bcrypt_cost=4,
        rate_limits="general=6000/1000,reserve=1000/1000,login=1000/1000,login_address=1000/1000",
    )
    try:
        async with running_gateway(settings) as url:
            yield Sale(url, shop, token)
    finally:
        await payer.stop()
        await workers.stop()


@dataclass
class Event:
    event_id: str
    show_id: str
    zone_id: str
    title: str

    @property
    def zone_key(self) -> str:
        return keys.zone(self.event_id, self.show_id, self.zone_id)


async def _event(pg, sale_redis, sale: Sale) -> Event:
    """An event of the shop's with one show and one zone ("Stalls", SEATS seats at PRICE)."""
    title = unique("Pay Night ")
    async with pg.acquire() as conn:
        event = await create_event(
            conn,
            tenant_id=sale.shop.tenant_id,
            organizer_id=sale.shop.organizer_id,
            title=title,
            shows=1,
            zones=[ZoneSpec("Stalls", Decimal(PRICE), SEATS)],
        )
        await load_event_inventory(sale_redis, conn, event.event_id)
    ((show_id, zones),) = event.shows.items()
    return Event(event.event_id, show_id, zones["Stalls"], title)


async def _reserved(http, sale: Sale, event: Event, quantity: int = 2) -> str:
    body = {
        "event_id": event.event_id,
        "show_id": event.show_id,
        "zone_id": event.zone_id,
        "quantity": quantity,
    }
    status, answer = await book(http, sale.url, sale.token, body)
    assert status == 201, answer
    return answer["data"]["booking_id"]


async def _booking(http, sale: Sale, booking_id: str) -> dict:
    status, answer = await call(http, "GET", f"{sale.url}/api/v1/bookings/{booking_id}", sale.token)
    assert status == 200, answer
    return answer["data"]


async def _available(sale_redis, event: Event) -> int:
    return int(await sale_redis.hget(event.zone_key, "available"))


def _signed_in(driver, sale: Sale) -> None:
    """The buyer is signed in in this browser (the module's tests share it)."""
    driver.get(f"{sale.url}/login")
    if stored_session(driver) is None:
        submit_sign_in(driver, sale.shop.slug, sale.shop.email, PASSWORD)
        wait(driver, seen.url_to_be(f"{sale.url}/events"))


def _text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _fill(driver, values: dict[str, str]) -> None:
    for element_id, value in values.items():
        field = driver.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(value)


def _pay_form(driver, sale: Sale, booking_id: str) -> None:
    driver.get(f"{sale.url}/pay/{booking_id}")
    wait(driver, seen.visibility_of_element_located((By.ID, "pay-form")))


def _ticket(driver, sale: Sale, booking_id: str) -> dict:
    """The ticket page, once the payment has taken the buyer there."""
    wait(driver, seen.url_to_be(f"{sale.url}/tickets/{booking_id}"), PAID_S)
    wait(driver, seen.visibility_of_element_located((By.ID, "ticket")))
    wait(driver, lambda d: _text(d, "ticket-zone") != "")
    return {
        "code": _text(driver, "ticket-code"),
        "title": _text(driver, "event-title"),
        "zone": _text(driver, "ticket-zone"),
        "quantity": _text(driver, "ticket-quantity"),
        "total": _text(driver, "ticket-total"),
    }


# --- From the line to the e-ticket -------------------------------------------------------------


def _into_the_line_signing_in(driver, sale: Sale, event: Event) -> str:
    """Signed out, the buyer opens the waiting room: signs in first, comes back, is given a place."""
    room_page = f"{sale.url}/waiting-room/{event.event_id}"
    driver.get(f"{sale.url}/login")
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    driver.get(room_page)
    wait(driver, seen.url_contains("/login?next="))
    submit_sign_in(driver, sale.shop.slug, sale.shop.email, PASSWORD)
    wait(driver, seen.url_to_be(room_page))
    wait(driver, lambda d: _text(d, "position").isdigit())
    return stored_session(driver)["user"]["id"]


async def _let_in(room, event_id: str) -> list[str]:
    return await admission_tick(room, event_id, timeout=10)


def _book_then_pay_by_card(driver, sale: Sale, event: Event) -> dict:
    """Admitted, the page moves on to booking: two seats, "Pay now", a card, and the ticket."""
    wait(driver, seen.url_to_be(f"{sale.url}/book/{event.event_id}"), PAID_S)
    wait(driver, seen.visibility_of_element_located((By.ID, "reserve-form")))
    Select(driver.find_element(By.ID, "zone")).select_by_value(event.zone_id)
    Select(driver.find_element(By.ID, "quantity")).select_by_value("2")
    driver.find_element(By.ID, "reserve").click()
    pay_now = wait(driver, seen.element_to_be_clickable((By.ID, "pay-now")))
    booking_id = _text(driver, "booking-id")
    pay_now.click()
    wait(driver, seen.url_to_be(f"{sale.url}/pay/{booking_id}"))
    wait(driver, seen.visibility_of_element_located((By.ID, "pay-form")))
    wait(driver, lambda d: _text(d, "booking-zone") != "")
    summary = {
        "title": _text(driver, "event-title"),
        "zone": _text(driver, "booking-zone"),
        "quantity": _text(driver, "booking-quantity"),
        "total": _text(driver, "booking-total"),
        "time_left": _text(driver, "time-left"),
    }
    _fill(driver, {"card-number": CARD, "card-expiry": EXPIRY, "card-cvc": "123"})
    driver.find_element(By.ID, "pay").click()
    return {"booking_id": booking_id, "summary": summary, "ticket": _ticket(driver, sale, booking_id)}


async def test_a_buyer_goes_from_the_line_through_payment_to_the_e_ticket(
    browser, sale, room, pg, sale_redis, http
):
    event = await _event(pg, sale_redis, sale)
    await room.configure(event.event_id, {"mode": "always", "rate_per_min": 600, "grace_s": 600})
    user_id = await asyncio.to_thread(_into_the_line_signing_in, browser, sale, event)
    assert await _let_in(room, event.event_id) == [user_id]
    paid = await asyncio.to_thread(_book_then_pay_by_card, browser, sale, event)

    summary = paid["summary"]
    assert (summary["title"], summary["zone"], summary["quantity"], summary["total"]) == (
        event.title,
        "Stalls",
        "2",
        "200.00 THB",
    )
    assert re.fullmatch(r"\((9|10):\d\d left\)", summary["time_left"]), summary  # the 10-minute hold
    booking = await _booking(http, sale, paid["booking_id"])
    assert booking["status"] == "confirmed" and booking["ticket_code"].startswith("BR-")
    assert paid["ticket"] == {
        "code": booking["ticket_code"],
        "title": event.title,
        "zone": "Stalls",
        "quantity": "2",
        "total": "200.00 THB",
    }
    assert await _available(sale_redis, event) == SEATS - 2  # sold seats stay sold
    assert await asyncio.to_thread(page_problems, browser) == []


# --- A declined card -------------------------------------------------------------------------------


def _mistyped_details(driver, sale: Sale, booking_id: str) -> dict:
    """Malformed details are caught on the page, field by field; nothing is sent."""
    _signed_in(driver, sale)
    _pay_form(driver, sale, booking_id)
    driver.find_element(By.CSS_SELECTOR, "input[name=method][value=bank_transfer]").click()
    switched = {
        "bank": driver.find_element(By.ID, "bank-fields").is_displayed(),
        "card": driver.find_element(By.ID, "card-fields").is_displayed(),
    }
    driver.find_element(By.CSS_SELECTOR, "input[name=method][value=card]").click()
    _fill(driver, {"card-number": "4242 42", "card-expiry": "01/20", "card-cvc": "12"})
    driver.find_element(By.ID, "pay").click()
    wait(driver, lambda d: _text(d, "pay-status") == "Check the highlighted details.")
    errors = {
        line.get_attribute("data-field"): line.text
        for line in driver.find_elements(By.CSS_SELECTOR, "#card-fields .field-error")
        if line.is_displayed()
    }
    return {"switched": switched, "errors": errors}


def _pay_with_a_declined_card(driver, sale: Sale) -> dict:
    _fill(driver, {"card-number": DECLINED, "card-expiry": EXPIRY, "card-cvc": "123"})
    driver.find_element(By.ID, "pay").click()
    wait(driver, seen.visibility_of_element_located((By.ID, "pay-problem")), PAID_S)
    link = driver.find_element(By.ID, "pay-next")
    return {
        "problem": _text(driver, "pay-problem-text"),
        "next": (link.text, link.get_attribute("href")),
        "form_shown": driver.find_element(By.ID, "pay-form").is_displayed(),
    }


async def test_a_declined_card_says_so_and_the_seats_go_back_on_sale(browser, sale, pg, sale_redis, http):
    event = await _event(pg, sale_redis, sale)
    booking_id = await _reserved(http, sale, event)
    assert await _available(sale_redis, event) == SEATS - 2

    mistyped = await asyncio.to_thread(_mistyped_details, browser, sale, booking_id)
    assert mistyped["switched"] == {"bank": True, "card": False}
    assert mistyped["errors"] == {
        "card_number": "12 to 19 digits",
        "expiry": "this card has expired",
        "cvc": "3 or 4 digits",
    }
    booking = await _booking(http, sale, booking_id)
    assert (booking["status"], booking["payment_id"]) == ("reserved", None)  # nothing was sent

    declined = await asyncio.to_thread(_pay_with_a_declined_card, browser, sale)
    assert declined == {
        "problem": "The card was declined. Your seats were released.",
        "next": ("Book again", f"{sale.url}/book/{event.event_id}"),
        "form_shown": False,
    }
    assert await _available(sale_redis, event) == SEATS
    booking = await _booking(http, sale, booking_id)
    assert (booking["status"], booking["cancel_reason"]) == ("cancelled", "payment_failed")
    assert await asyncio.to_thread(page_problems, browser) == []


# --- Back to a payment begun before the page was lost ---------------------------------------------


def _come_back_to_the_payment(driver, sale: Sale, booking_id: str) -> dict:
    _signed_in(driver, sale)
    driver.get(f"{sale.url}/pay/{booking_id}")
    wait(driver, seen.visibility_of_element_located((By.ID, "following")))
    wait(driver, lambda d: _text(d, "payment-masked") != "")
    following = {
        "masked": _text(driver, "payment-masked"),
        "amount": _text(driver, "payment-amount"),
        "form_shown": driver.find_element(By.ID, "pay-form").is_displayed(),
    }
    return {"following": following, "ticket": _ticket(driver, sale, booking_id)}


async def test_a_payment_begun_before_the_page_was_lost_is_followed_to_the_ticket(
    browser, sale, pg, sale_redis, http
):
    event = await _event(pg, sale_redis, sale)
    booking_id = await _reserved(http, sale, event)
    details = {"card_number": FLAKY, "expiry": EXPIRY, "cvc": "123"}
    status, begun = await call(
        http,
        "POST",
        f"{sale.url}/api/v1/payments",
        sale.token,
        {"booking_id": booking_id, "method": "card", "details": details},
    )
    assert status == 201, begun

    came_back = await asyncio.to_thread(_come_back_to_the_payment, browser, sale, booking_id)
    assert came_back["following"] == {"masked": "card ****0119", "amount": "200.00", "form_shown": False}
    booking = await _booking(http, sale, booking_id)
    assert came_back["ticket"]["code"] == booking["ticket_code"] and booking["status"] == "confirmed"
    status, payment = await call(
        http, "GET", f"{sale.url}/api/v1/payments/{begun['data']['payment_id']}", sale.token
    )
    assert payment["data"]["status"] == "success" and payment["data"]["attempts"] >= 2
    assert await asyncio.to_thread(page_problems, browser) == []


# --- My bookings --------------------------------------------------------------------------------


def _css(booking_id: str) -> str:
    return f"li.booking[data-booking-id='{booking_id}']"


def _row_in_state(driver, booking_id: str, state: str):
    """The booking's row once the list shows it in `state`, its event's title filled in. The list
    is drawn afresh after an action, so one selector matches row and state at once."""
    row = wait(
        driver,
        seen.presence_of_element_located((By.CSS_SELECTOR, f"{_css(booking_id)}[data-status='{state}']")),
    )
    wait(driver, lambda d: row.find_element(By.CLASS_NAME, "booking-event").text != "…")
    return row


def _row_facts(row) -> dict:
    return {
        "event": row.find_element(By.CLASS_NAME, "booking-event").text,
        "state": row.find_element(By.CLASS_NAME, "state").text,
        "meta": row.find_element(By.CLASS_NAME, "booking-meta").text,
        "extra": row.find_element(By.CLASS_NAME, "booking-extra").text,
        "actions": [a.text for a in row.find_elements(By.CSS_SELECTOR, ".actions > *")],
    }


def _pay_by_e_wallet_then_ask_for_a_refund(driver, sale: Sale, booking_id: str) -> dict:
    _signed_in(driver, sale)
    _pay_form(driver, sale, booking_id)
    driver.find_element(By.CSS_SELECTOR, "input[name=method][value=e_wallet]").click()
    _fill(driver, {"wallet-id": "fan+rush@wallet"})
    driver.find_element(By.ID, "pay").click()
    ticket = _ticket(driver, sale, booking_id)

    driver.find_element(By.LINK_TEXT, "My bookings").click()
    wait(driver, seen.url_to_be(f"{sale.url}/my-bookings"))
    row = _row_in_state(driver, booking_id, "confirmed")
    listed = _row_facts(row)
    ticket_link = row.find_element(By.CSS_SELECTOR, "a.ticket").get_attribute("href")
    row.find_element(By.CSS_SELECTOR, "button.refund").click()
    note = wait(
        driver, seen.visibility_of_element_located((By.CSS_SELECTOR, f"{_css(booking_id)} .booking-note"))
    )
    wait(driver, lambda d: note.text != "Asking for a refund…")
    asked = {
        "note": note.text,
        "actions": [a.text for a in row.find_elements(By.CSS_SELECTOR, ".actions > *")],
    }

    driver.refresh()  # a refund asked for earlier is shown, and not offered again
    row = _row_in_state(driver, booking_id, "confirmed")
    note = wait(
        driver, seen.visibility_of_element_located((By.CSS_SELECTOR, f"{_css(booking_id)} .booking-note"))
    )
    again = {
        "note": note.text,
        "actions": [a.text for a in row.find_elements(By.CSS_SELECTOR, ".actions > *")],
    }
    return {"ticket": ticket, "listed": listed, "ticket_link": ticket_link, "asked": asked, "again": again}


async def test_my_bookings_lists_a_confirmed_booking_and_asks_for_its_refund(
    browser, sale, pg, sale_redis, http
):
    event = await _event(pg, sale_redis, sale)
    booking_id = await _reserved(http, sale, event)
    outcome = await asyncio.to_thread(_pay_by_e_wallet_then_ask_for_a_refund, browser, sale, booking_id)
    booking = await _booking(http, sale, booking_id)
    assert outcome["ticket"]["code"] == booking["ticket_code"]
    listed = outcome["listed"]
    assert listed["event"] == event.title and listed["state"] == "Confirmed"
    assert listed["meta"].endswith(" · Stalls · 2 tickets · 200.00 THB")
    assert listed["extra"] == f"Ticket {booking['ticket_code']}"
    assert listed["actions"] == ["Ticket", "Request refund"]
    assert outcome["ticket_link"] == f"{sale.url}/tickets/{booking_id}"
    requested = "Refund requested, awaiting approval: 200.00 (100 % of the price)."  # the show: 30 days on
    assert outcome["asked"] == {"note": requested, "actions": ["Ticket"]}
    assert outcome["again"] == {"note": requested, "actions": ["Ticket"]}
    status, payment = await call(
        http, "GET", f"{sale.url}/api/v1/payments/{booking['payment_id']}", sale.token
    )
    assert payment["data"]["method"] == "e_wallet"
    assert payment["data"]["refund"] == {
        "status": "requested",
        "percent": 100,
        "amount": "200.00",
        "reason": "requested",
    }
    assert await asyncio.to_thread(page_problems, browser) == []


def _unpaid_ticket_then_cancel(driver, sale: Sale, booking_id: str) -> dict:
    _signed_in(driver, sale)
    driver.get(f"{sale.url}/tickets/{booking_id}")
    wait(driver, seen.visibility_of_element_located((By.ID, "ticket-problem")))
    link = driver.find_element(By.ID, "ticket-next")
    unpaid = {
        "problem": _text(driver, "ticket-problem-text"),
        "next": (link.text, link.get_attribute("href")),
        "ticket_shown": driver.find_element(By.ID, "ticket").is_displayed(),
    }

    driver.get(f"{sale.url}/my-bookings")
    row = _row_in_state(driver, booking_id, "reserved")
    listed = _row_facts(row)
    pay_link = row.find_element(By.CSS_SELECTOR, "a.pay").get_attribute("href")
    row.find_element(By.CSS_SELECTOR, "button.cancel").click()  # first asks
    asked = row.find_element(By.CLASS_NAME, "booking-note").text
    row.find_element(By.CSS_SELECTOR, "button.cancel").click()
    row = _row_in_state(driver, booking_id, "cancelled")
    return {
        "unpaid": unpaid,
        "listed": listed,
        "pay_link": pay_link,
        "asked": asked,
        "cancelled": _row_facts(row),
        "note": wait(driver, seen.visibility_of_element_located((By.ID, "bookings-note"))).text,
    }


async def test_my_bookings_gives_a_reservation_back(browser, sale, pg, sale_redis, http):
    event = await _event(pg, sale_redis, sale)
    booking_id = await _reserved(http, sale, event, quantity=3)
    assert await _available(sale_redis, event) == SEATS - 3
    outcome = await asyncio.to_thread(_unpaid_ticket_then_cancel, browser, sale, booking_id)
    assert outcome["unpaid"] == {
        "problem": "This booking has not been paid for yet.",
        "next": ("Pay now", f"{sale.url}/pay/{booking_id}"),
        "ticket_shown": False,
    }
    listed = outcome["listed"]
    assert (listed["event"], listed["state"], listed["actions"]) == (
        event.title,
        "Reserved, awaiting payment",
        ["Pay", "Cancel"],
    )
    assert listed["meta"].endswith(" · Stalls · 3 tickets · 300.00 THB") and listed["extra"].startswith(
        "Held until"
    )
    assert outcome["pay_link"] == f"{sale.url}/pay/{booking_id}"
    assert outcome["asked"] == "Cancel this booking? Its seats go back on sale."
    assert (outcome["cancelled"]["state"], outcome["cancelled"]["actions"]) == ("Cancelled", [])
    assert outcome["note"] == "Booking cancelled; its seats went back on sale."
    assert await _available(sale_redis, event) == SEATS
    assert (await _booking(http, sale, booking_id))["status"] == "cancelled"
    assert await asyncio.to_thread(page_problems, browser) == []


# --- The pages' addresses -------------------------------------------------------------------------


async def test_booking_pages_answer_only_for_a_booking_id(sale, http):
    good = "ab" * 32
    for path in (f"/pay/{good}", f"/tickets/{good}", "/my-bookings"):
        async with http.get(f"{sale.url}{path}") as r:
            assert r.status == 200 and r.content_type == "text/html", path
            assert r.headers["Content-Security-Policy"] == "default-src 'self'"
            html = await r.text()
        assert "<script>" not in html and " on" + "click=" not in html and "<style" not in html
    malformed = ("not-an-id", good[:-1], good + "0", good.upper(), "00000000-0000-0000-0000-000000000000")
    for page in ("pay", "tickets"):
        for booking_id in malformed:
            async with http.get(f"{sale.url}/{page}/{booking_id}") as r:
                assert r.status == 404, (page, booking_id)
                assert (await r.json())["error"]["code"] == "NOT_FOUND"


# --- A promo code and an early bird, from the quote to the ticket and the mail -----------------


def _breakdown(driver, table_id: str) -> list[tuple[str, str]]:
    wait(driver, seen.visibility_of_element_located((By.ID, table_id)))
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tr")
    return [(r.find_element(By.TAG_NAME, "th").text, r.find_element(By.TAG_NAME, "td").text) for r in rows]


def _book_with_a_code(driver, sale: Sale, event: Event, wrong: str, code: str) -> dict:
    """Two seats: the quote before a code, with a wrong one, with the right one; then Reserve,
    the payment page, a card and the ticket, each showing the price."""
    _signed_in(driver, sale)
    driver.get(f"{sale.url}/book/{event.event_id}")
    wait(driver, seen.visibility_of_element_located((By.ID, "reserve-form")))
    Select(driver.find_element(By.ID, "zone")).select_by_value(event.zone_id)
    Select(driver.find_element(By.ID, "quantity")).select_by_value("2")
    wait(driver, lambda d: len(_breakdown(d, "quote")) == 3)
    seen_at = {"no code": _breakdown(driver, "quote")}
    code_field = driver.find_element(By.ID, "promo-code")
    code_field.send_keys(wrong + "\t")
    wait(driver, lambda d: _text(d, "quote-status") != "")
    seen_at["wrong code"] = (
        _text(driver, "quote-status"),
        driver.find_element(By.ID, "quote").is_displayed(),
    )
    code_field.clear()
    code_field.send_keys(code.lower() + "\t")
    wait(driver, lambda d: _text(d, "quote-status") == "Code applied.")
    seen_at["quote"] = _breakdown(driver, "quote")
    driver.find_element(By.ID, "reserve").click()
    pay_now = wait(driver, seen.element_to_be_clickable((By.ID, "pay-now")))
    seen_at["reserved"] = _breakdown(driver, "booking-price")
    booking_id = _text(driver, "booking-id")
    pay_now.click()
    wait(driver, seen.visibility_of_element_located((By.ID, "pay-form")))
    seen_at["pay"] = _breakdown(driver, "booking-price")
    seen_at["pay total"] = _text(driver, "booking-total")
    _fill(driver, {"card-number": CARD, "card-expiry": EXPIRY, "card-cvc": "123"})
    driver.find_element(By.ID, "pay").click()
    seen_at["ticket total"] = _ticket(driver, sale, booking_id)["total"]
    seen_at["ticket"] = _breakdown(driver, "ticket-price")
    return {"booking_id": booking_id, **seen_at}


async def test_a_promo_code_is_quoted_locked_charged_and_shown_to_the_ticket_and_the_mail(
    browser, sale, pg, sale_redis, http, jwt_secret, smtp_sink
):
    inbox, _ = smtp_sink
    event = await _event(pg, sale_redis, sale)
    organizer = issue_access_token(
        jwt_secret, user_id=sale.shop.organizer_id, tenant_id=sale.shop.tenant_id, role="organizer"
    )
    base = f"{sale.url}/api/v1/events/{event.event_id}"
    for method, url, body in (
        ("PUT", f"{base}/zones/{event.zone_id}/early-bird", {"kind": "price", "price": "80.00", "seats": 1}),
        ("POST", f"{base}/promo-codes", {"code": "PAGE-CODE-10", "kind": "percent", "percent": 10}),
    ):
        status, answer = await call(http, method, url, organizer, body)
        assert status in (200, 201), answer

    shown = await asyncio.to_thread(_book_with_a_code, browser, sale, event, "NOT-A-CODE-1", "PAGE-CODE-10")
    assert shown["no code"] == [
        ("2 × 100.00 (list price)", "200.00"),
        ("Early bird (1 at 80.00)", "−20.00"),
        ("Total", "180.00 THB"),
    ]
    assert shown["wrong code"] == ("no such promo code for this event", False)
    locked = [
        ("2 × 100.00 (list price)", "200.00"),
        ("Early bird (1 at 80.00)", "−20.00"),
        ("Code PAGE-CODE-10 (10%)", "−18.00"),
        ("Total", "162.00 THB"),
    ]
    assert shown["quote"] == shown["reserved"] == shown["pay"] == shown["ticket"] == locked
    assert shown["pay total"] == shown["ticket total"] == "162.00 THB"
    status, payment = await call(
        http,
        "GET",
        f"{sale.url}/api/v1/payments/{(await _booking(http, sale, shown['booking_id']))['payment_id']}",
        sale.token,
    )
    assert payment["data"]["amount"] == "162.00"  # the payment charged what the hold locked

    def confirmation(messages) -> bool:
        return any(
            shown["booking_id"] in m.get_payload() and "Your tickets" in m["Subject"] for m in messages
        )

    assert await asyncio.to_thread(inbox.wait_until, confirmation, 30)
    mail = next(
        m for m in inbox.messages if shown["booking_id"] in m.get_payload() and "Your tickets" in m["Subject"]
    )
    body = mail.get_payload()
    assert re.search(r"Code PAGE-CODE-10 \(10%\)\s+-18\.00", body), body
    assert re.search(r"Total\s+162\.00 THB", body), body
    assert await asyncio.to_thread(page_problems, browser) == []


# --- The refund requests reach an admin on the dashboard ----------------------------------------


def _decide_on_the_dashboard(
    driver, sale: Sale, admin_email: str, event: Event, approve: str, refuse: str
) -> dict:
    driver.get(f"{sale.url}/login")
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    driver.get(f"{sale.url}/dashboard?event={event.event_id}")
    wait(driver, seen.url_contains("/login?next="))
    submit_sign_in(driver, sale.shop.slug, admin_email, PASSWORD)
    row = "#refund-requests tr[data-payment-id='{}']"
    wait(driver, seen.presence_of_element_located((By.CSS_SELECTOR, row.format(approve))), PAID_S)
    wait(driver, seen.presence_of_element_located((By.CSS_SELECTOR, row.format(refuse))))
    listed = _text(driver, "refunds-status")
    shown = (
        driver.find_element(By.CSS_SELECTOR, row.format(approve)).find_element(By.CLASS_NAME, "share").text
    )
    driver.find_element(By.CSS_SELECTOR, row.format(refuse)).find_element(By.CLASS_NAME, "refuse").click()
    asked_why = _text(driver, "refunds-status")
    driver.find_element(By.CSS_SELECTOR, row.format(approve)).find_element(By.CLASS_NAME, "approve").click()
    wait(driver, lambda d: _text(d, "refunds-status").startswith("Approved"))
    refused_row = driver.find_element(By.CSS_SELECTOR, row.format(refuse))
    refused_row.find_element(By.CLASS_NAME, "reason").send_keys("Tickets are transferable instead.")
    refused_row.find_element(By.CLASS_NAME, "refuse").click()
    wait(driver, lambda d: _text(d, "refunds-status").startswith("Refused"))
    left = len(driver.find_elements(By.CSS_SELECTOR, "#refund-requests tbody tr"))
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")  # the buyer's browser again
    return {"listed": listed, "share": shown, "asked_why": asked_why, "left": left}


async def test_an_admin_approves_and_refuses_refund_requests_on_the_dashboard(
    browser, sale, pg, sale_redis, http, smtp_sink
):
    inbox, _ = smtp_sink
    event = await _event(pg, sale_redis, sale)
    admin_email = f"{unique('admin')}@example.com"
    async with pg.acquire() as conn:
        await ensure_users(
            conn, sale.shop.tenant_id, [admin_email], "admin", password_hash=await hash_password(PASSWORD, 4)
        )
    payments = []
    for _ in range(2):
        booking_id = await _reserved(http, sale, event, quantity=1)
        status, paid = await call(
            http,
            "POST",
            f"{sale.url}/api/v1/payments",
            sale.token,
            {
                "booking_id": booking_id,
                "method": "card",
                "details": {"card_number": "4242424242424242", "expiry": EXPIRY, "cvc": "123"},
            },
        )
        assert status == 201, paid
        payment_id = paid["data"]["payment_id"]

        async def succeeded(payment_id=payment_id) -> bool:
            return (await call(http, "GET", f"{sale.url}/api/v1/payments/{payment_id}", sale.token))[1][
                "data"
            ]["status"] == "success"

        await wait_until(succeeded, PAID_S, "the payment")
        status, asked = await call(
            http, "POST", f"{sale.url}/api/v1/payments/{payment_id}/refund", sale.token
        )
        assert asked["data"]["refund"]["status"] == "requested", asked
        payments.append(payment_id)
    approve, refuse = payments

    decided = await asyncio.to_thread(
        _decide_on_the_dashboard, browser, sale, admin_email, event, approve, refuse
    )
    assert decided == {
        "listed": "2 waiting",
        "share": "100.00 (100 % of 100.00)",
        "asked_why": "Say why it is refused: the buyer is told.",
        "left": 0,
    }
    refused = (await call(http, "GET", f"{sale.url}/api/v1/payments/{refuse}", sale.token))[1]["data"]
    assert (refused["refund"]["status"], refused["refund"]["reason"]) == (
        "refused",
        "Tickets are transferable instead.",
    )
    approved = (await call(http, "GET", f"{sale.url}/api/v1/payments/{approve}", sale.token))[1]["data"]
    assert approved["refund"]["status"] in ("approved", "refunded")

    def told(messages) -> bool:
        subjects = [m["Subject"] for m in messages if m["To"] == sale.shop.email]
        return any("Refund approved" in s for s in subjects) and any(
            "Refund request refused" in s for s in subjects
        )

    assert await asyncio.to_thread(inbox.wait_until, told, 30)
    assert await asyncio.to_thread(page_problems, browser) == []


# --- A compensation voucher on the booking page ----------------------------------------------------


def _book_and_apply_a_voucher(driver, sale: Sale, event: Event, code: str) -> dict:
    _signed_in(driver, sale)
    driver.get(f"{sale.url}/book/{event.event_id}")
    wait(driver, seen.visibility_of_element_located((By.ID, "reserve-form")))
    Select(driver.find_element(By.ID, "zone")).select_by_value(event.zone_id)
    Select(driver.find_element(By.ID, "quantity")).select_by_value("2")
    driver.find_element(By.ID, "reserve").click()
    wait(driver, seen.element_to_be_clickable((By.ID, "pay-now")))
    driver.find_element(By.ID, "voucher-code").send_keys(code.lower())
    driver.find_element(By.ID, "apply-voucher").click()
    wait(driver, lambda d: _text(d, "voucher-status") == "Voucher applied.")
    return {
        "booking_id": _text(driver, "booking-id"),
        "total": _text(driver, "booking-total"),
        "price": _breakdown(driver, "booking-price"),
    }


async def test_a_voucher_is_applied_on_the_booking_page(browser, sale, pg, sale_redis, http, scripts):
    event = await _event(pg, sale_redis, sale)
    buyer = await pg.fetchval("SELECT id::text FROM users WHERE email = $1", sale.shop.email)
    code = "V-BROWSERPAGE2"
    await scripts.voucher(  # as a cancellation of an earlier event of the shop would have issued it
        keys=[keys.voucher(sale.shop.tenant_id, code)],
        args=["issue", now_ms(), buyer, "earlier-booking", 3000, "THB", sale.shop.tenant_id],
    )
    shown = await asyncio.to_thread(_book_and_apply_a_voucher, browser, sale, event, code)
    assert shown["total"] == "170.00 THB"
    assert shown["price"] == [
        ("2 × 100.00 (list price)", "200.00"),
        ("Voucher V-BROWSERPAGE2", "−30.00"),
        ("Total", "170.00 THB"),
    ]
    booking = await _booking(http, sale, shown["booking_id"])
    assert booking["total_price"] == "170.00"
    assert await sale_redis.hget(keys.voucher(sale.shop.tenant_id, code), "status") == b"claimed"
    assert await asyncio.to_thread(page_problems, browser) == []
