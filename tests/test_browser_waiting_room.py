"""A buyer in a busy sale, in a real headless Chromium (tests/browser.py): signs in on the way into
the waiting room, watches their place fall while the test lets people in one admission tick at a
time, is admitted, lands on the booking page and reserves two seats (the session's workers apply
the reservation in the sale Redis).

It runs with the live-position stream, then with EventSource taken out of the browser and with
the stream refused (404), so that the page's polling fallback carries the whole sale on its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import pytest_asyncio
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select

from booking_rush.contract.messages import now_ms
from booking_rush.services.web_push import PushSettings, VapidKey
from gateway import appkeys
from lua import keys
from ops.inventory import load_event_inventory
from ops.seed_data import ZoneSpec, create_event
from tests.browser import open_shop, page_problems, stored_session, submit_sign_in, wait
from tests.support import admission_tick, gateway_settings, running_gateway_app, unique, wait_until

PASSWORD = "waiting room pass 2026"
CROWD = 30  # let in just before: the measured pace that makes the estimate (and the polls) short
AHEAD = 3  # still in line ahead of the buyer
SLOW_RATE_PER_MIN = 60  # the bucket holds one second's worth: a tick admits one at most
BALCONY_SEATS = 40
# A tick reaches the page at once on the stream, within a poll period (2-5 s) when polling.
TICK_SEEN_S = 30


# How the page hears of the line -> a script run before the page's own that arranges it.
UPDATES = {
    "stream": None,
    "no-event-source": "delete window.EventSource;",
    # The stream route answers 404 (as before it existed): the page must fall back to polling.
    "stream-refused": """
        const Original = window.EventSource;
        window.EventSource = class extends Original {
            constructor(url, options) { super(url.replace("/queue/stream", "/queue/no-stream"), options); }
        };""",
}


@pytest.fixture(params=list(UPDATES))
def updates(request, browser):
    """How the page should hear of the line: "stream" or "polling"."""
    script = UPDATES[request.param]
    if script is None:
        yield "stream"
        return
    added = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
    yield "polling"
    browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})


@pytest_asyncio.fixture
async def sale(pg, sale_redis, room, gateway_url):
    return await _sale(pg, sale_redis, room, gateway_url)


async def _sale(pg, sale_redis, room, gateway_url) -> dict:
    """An event behind a waiting room (mode always): a crowd already let in at a fast pace, then
    admission slowed to one a second, and a few people in line when the buyer arrives."""
    title = unique("Rush Hour ")
    async with pg.acquire() as conn:
        shop = await open_shop(conn, "room-shop-", PASSWORD)
        event = await create_event(
            conn,
            tenant_id=shop.tenant_id,
            organizer_id=shop.organizer_id,
            title=title,
            shows=1,
            zones=[ZoneSpec("Stalls", Decimal("45"), 100), ZoneSpec("Balcony", Decimal("30"), BALCONY_SEATS)],
            max_per_user=4,
        )
        await load_event_inventory(sale_redis, conn, event.event_id)
    event_id = event.event_id
    ((show_id, zones),) = event.shows.items()
    # grace_s: the people in line are the test's, joined once; they must not be dropped as absent.
    await room.configure(event_id, {"mode": "always", "rate_per_min": 100 * 60, "grace_s": 600})
    for user in [unique("crowd-") for _ in range(CROWD)]:
        await room.enter(event_id, user, now_ms())
    assert len((await room.admit(event_id, now_ms()))["admitted"]) == CROWD
    await room.configure(event_id, {"rate_per_min": SLOW_RATE_PER_MIN})
    ahead = [unique("ahead-") for _ in range(AHEAD)]
    for user in ahead:
        await room.enter(event_id, user, now_ms())
    return {
        "event_id": event_id,
        "title": title,
        "tenant": shop.slug,
        "email": shop.email,
        "ahead": ahead,
        "balcony": keys.zone(event_id, show_id, zones["Balcony"]),
        "balcony_id": zones["Balcony"],
        "room_page": f"{gateway_url}/waiting-room/{event_id}",
        "book_page": f"{gateway_url}/book/{event_id}",
        "login_page": f"{gateway_url}/login",
    }


async def _tick(room, event_id: str) -> list[str]:
    return await admission_tick(room, event_id, timeout=5)


def _standing(driver) -> dict:
    def text(element_id: str) -> str:
        return driver.find_element(By.ID, element_id).text

    progress = driver.find_element(By.ID, "progress")
    return {
        "position": text("position"),
        "ahead": text("ahead"),
        "waiting": text("waiting"),
        "eta": text("eta"),
        "progress": (progress.get_attribute("value"), progress.get_attribute("max")),
        "state": driver.find_element(By.TAG_NAME, "body").get_attribute("data-state"),
        "updates": driver.find_element(By.TAG_NAME, "body").get_attribute("data-updates"),
    }


def _enter_room_signed_out(driver, sale) -> dict:
    """Signed out, the buyer opens the waiting room: signs in first, comes back, joins the line."""
    driver.get(sale["login_page"])
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    driver.get(sale["room_page"])
    wait(driver, seen.url_contains("/login?next="))
    login_page = driver.current_url
    submit_sign_in(driver, sale["tenant"], sale["email"], PASSWORD)
    wait(driver, seen.url_to_be(sale["room_page"]))
    wait(driver, seen.visibility_of_element_located((By.ID, "standing")))
    wait(driver, lambda d: d.find_element(By.ID, "position").text.isdigit())
    wait(driver, lambda d: d.find_element(By.ID, "event-title").text != "Loading…")
    return {
        "login_page": login_page,
        "title": driver.find_element(By.ID, "event-title").text,
        "user_id": stored_session(driver)["user"]["id"],
        **_standing(driver),
    }


def _place_falls_to(driver, position: int) -> dict:
    wait(driver, lambda d: d.find_element(By.ID, "position").text == str(position), TICK_SEEN_S)
    return _standing(driver)


def _admitted_then_book_two(driver, sale) -> dict:
    """Admission moves the page on to booking by itself; there the buyer reserves 2 balcony seats."""
    wait(driver, seen.url_to_be(sale["book_page"]), TICK_SEEN_S)
    kept = driver.execute_script(
        "return sessionStorage.getItem(arguments[0])", f"booking-rush.queue-pass.{sale['event_id']}"
    )
    wait(driver, seen.visibility_of_element_located((By.ID, "reserve-form")))
    Select(driver.find_element(By.ID, "zone")).select_by_value(sale["balcony_id"])
    quantity = Select(driver.find_element(By.ID, "quantity"))
    quantity.select_by_value("2")
    driver.find_element(By.ID, "reserve").click()
    wait(driver, seen.visibility_of_element_located((By.ID, "confirmation")))

    def text(element_id: str) -> str:
        return driver.find_element(By.ID, element_id).text

    return {
        "pass": json.loads(kept) if kept else None,
        "quantities": [option.text for option in quantity.options],
        "booking_id": text("booking-id"),
        "zone": text("booking-zone"),
        "quantity": text("booking-quantity"),
        "total": text("booking-total"),
        "held_until": text("booking-expires"),
        "error_shown": driver.find_element(By.ID, "book-error").is_displayed(),
    }


async def test_a_room_asking_proof_of_work_is_joined_by_the_page_solving_it(browser, sale, room):
    """The page meets PROOF_OF_WORK_REQUIRED, solves the puzzle in a Web Worker and joins."""
    await room.configure(sale["event_id"], {"pow_bits": 12})
    entered = await asyncio.to_thread(_enter_room_signed_out, browser, sale)
    assert (entered["state"], entered["position"]) == ("waiting", str(AHEAD + 1))
    standing = await room.enter(sale["event_id"], entered["user_id"], now_ms(), "status")
    assert standing.state == "waiting" and standing.pow_bits == 12


def _leave_the_line(driver) -> dict:
    driver.find_element(By.ID, "leave-line").click()
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "left")
    return {
        "said": driver.find_element(By.ID, "room-state").text,
        "standing_shown": driver.find_element(By.ID, "standing").is_displayed(),
    }


async def test_a_buyer_who_leaves_the_line_frees_the_place(browser, sale, room):
    event_id = sale["event_id"]
    entered = await asyncio.to_thread(_enter_room_signed_out, browser, sale)
    assert entered["state"] == "waiting"
    left = await asyncio.to_thread(_leave_the_line, browser)
    assert left == {
        "said": "You left the line: your place went to the people behind you.",
        "standing_shown": False,
    }
    standing = await room.enter(event_id, entered["user_id"], now_ms(), "status")
    assert standing.state == "not_joined"  # freed at once, not after the grace period
    assert (await room.stats(event_id, now_ms()))["waiting"] == AHEAD


async def test_a_buyer_waits_in_line_is_let_in_and_reserves(browser, updates, sale, room, sale_redis):
    event_id = sale["event_id"]
    entered = await asyncio.to_thread(_enter_room_signed_out, browser, sale)
    assert entered["login_page"].endswith(f"/login?next=%2Fwaiting-room%2F{event_id}")
    assert entered["title"] == sale["title"]
    position = AHEAD + 1
    assert {k: entered[k] for k in ("position", "ahead", "waiting", "state")} == {
        "position": str(position),
        "ahead": str(AHEAD),
        "waiting": str(position),
        "state": "waiting",
    }
    # 4 in line at the crowd's pace (30 a minute): 8 seconds, not "unknown".
    assert entered["eta"] == "less than a minute"
    assert entered["progress"] == ("0", str(position - 1))

    for user in sale["ahead"]:
        assert await _tick(room, event_id) == [user]  # the line moves in order
        position -= 1
        shown = await asyncio.to_thread(_place_falls_to, browser, position)
        assert shown["ahead"] == str(position - 1) and shown["state"] == "waiting"
        assert shown["progress"] == (str(AHEAD + 1 - position), str(AHEAD))
    assert shown["updates"] == updates

    assert await _tick(room, event_id) == [entered["user_id"]]
    booked = await asyncio.to_thread(_admitted_then_book_two, browser, sale)
    assert booked["pass"]["pass"] and datetime.fromisoformat(booked["pass"]["expires_at"]) > datetime.now(UTC)
    assert booked["quantities"] == ["1", "2", "3", "4"]  # the event's max per user
    assert not booked["error_shown"]
    assert (booked["zone"], booked["quantity"], booked["total"]) == ("Balcony", "2", "60.00 THB")
    assert booked["held_until"]
    assert int(await sale_redis.hget(sale["balcony"], "available")) == BALCONY_SEATS - 2
    assert await sale_redis.zscore(keys.expiry_index(event_id), booked["booking_id"]) is not None
    assert await asyncio.to_thread(page_problems, browser) == []


def _reserve_one(driver, sale) -> dict:
    wait(driver, seen.visibility_of_element_located((By.ID, "reserve-form")))
    Select(driver.find_element(By.ID, "zone")).select_by_value(sale["balcony_id"])
    driver.find_element(By.ID, "reserve").click()  # hides an earlier problem, disables the button
    wait(
        driver,
        lambda d: (
            d.find_element(By.ID, "book-error").is_displayed()
            and d.find_element(By.ID, "reserve").is_enabled()
        ),
    )
    link = driver.find_element(By.ID, "back-to-room")
    return {
        "problem": driver.find_element(By.ID, "book-error-text").text,
        "back_to_room": link.get_attribute("href") if link.is_displayed() else None,
        "confirmed": driver.find_element(By.ID, "confirmation").is_displayed(),
    }


def _book_without_then_with_a_bad_pass(driver, sale) -> dict:
    """Signed out, the buyer opens the booking page directly: signs in, comes back, reserves with
    no pass, then with one that is not genuine."""
    pass_key = f"booking-rush.queue-pass.{sale['event_id']}"
    driver.get(sale["login_page"])
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    driver.get(sale["book_page"])
    wait(driver, seen.url_contains("/login?next="))
    login_page = driver.current_url
    submit_sign_in(driver, sale["tenant"], sale["email"], PASSWORD)
    wait(driver, seen.url_to_be(sale["book_page"]))
    without = _reserve_one(driver, sale)
    forged_pass = {"pass": "not.a.pass", "expires_at": "2999-01-01T00:00:00Z"}
    driver.execute_script(
        "sessionStorage.setItem(arguments[0], arguments[1])", pass_key, json.dumps(forged_pass)
    )
    forged = _reserve_one(driver, sale)
    forgotten = driver.execute_script("return sessionStorage.getItem(arguments[0])", pass_key) is None
    return {"login_page": login_page, "without": without, "forged": forged, "forgotten": forgotten}


async def test_booking_behind_the_room_without_a_valid_pass_sends_the_buyer_back_to_the_line(
    browser, sale, sale_redis
):
    outcome = await asyncio.to_thread(_book_without_then_with_a_bad_pass, browser, sale)
    assert outcome["login_page"].endswith(f"/login?next=%2Fbook%2F{sale['event_id']}")
    assert outcome["without"] == {
        "problem": "This sale has a waiting room: take your place in line to book.",
        "back_to_room": sale["room_page"],
        "confirmed": False,
    }
    assert outcome["forged"] == {
        "problem": "Your waiting-room pass is not valid here. Join the line again.",
        "back_to_room": sale["room_page"],
        "confirmed": False,
    }
    assert outcome["forgotten"]
    assert int(await sale_redis.hget(sale["balcony"], "available")) == BALCONY_SEATS
    assert await asyncio.to_thread(page_problems, browser) == []


# Records every value the page gives body[data-updates] ("stream", "polling") from now on.
WATCH_UPDATES = """
window.updatesSeen = [];
new MutationObserver(() => window.updatesSeen.push(document.body.dataset.updates))
  .observe(document.body, { attributes: true, attributeFilter: ["data-updates"] });
"""


async def test_a_stream_reconnecting_after_its_first_ticket_ran_out_opens_with_a_fresh_one(
    browser, pg, sale_redis, room, schema, new_topics, jwt_secret
):
    """Tickets live seconds here (minutes in production): by the time the stream drops, the one
    the page joined with has run out, and the page reopens with the one the stream sent, with no
    detour through polling and joining again."""
    ttl_s = 4
    settings = gateway_settings(
        schema,
        await new_topics("ticket-renewal"),
        jwt_secret,
        rate_limits="general=6000/1000",
        queue_ticket_ttl_s=ttl_s,
        stream_heartbeat_s=0.3,
    )
    async with running_gateway_app(settings) as (url, app):
        sale = await _sale(pg, sale_redis, room, url)
        entered = await asyncio.to_thread(_enter_room_signed_out, browser, sale)
        joined_at = time.time()
        hub = app[appkeys.STREAMS]

        def streams_of_the_buyer() -> list:
            clients = hub.rooms.get(sale["event_id"])
            return [c for c in (clients.clients if clients else ()) if c.user_id == entered["user_id"]]

        async def streaming() -> bool:
            return len(streams_of_the_buyer()) == 1

        await wait_until(streaming, 10, "the page's stream")
        browser.execute_script(WATCH_UPDATES)

        async def join_ticket_ran_out() -> bool:
            return time.time() > joined_at + ttl_s + 1

        await wait_until(join_ticket_ran_out, 2 * ttl_s, "the ticket the page joined with to run out")
        (dropped,) = streams_of_the_buyer()
        dropped.ended = True  # the gateway ends the stream, as a restart or a proxy would
        dropped.wake()

        async def reopened() -> bool:
            return [c for c in streams_of_the_buyer() if c is not dropped] != []

        await wait_until(reopened, 10, "the page to open its stream again")
        assert "polling" not in browser.execute_script("return window.updatesSeen")  # no detour
        assert _standing(browser)["position"] == entered["position"]


@pytest.fixture
def thai_reader(browser):
    """The browser asks for Thai first (Accept-Language and navigator.languages)."""
    agent = browser.execute_script("return navigator.userAgent")
    browser.execute_cdp_cmd(
        "Emulation.setUserAgentOverride", {"userAgent": agent, "acceptLanguage": "th-TH,th;q=0.9,en;q=0.5"}
    )
    yield
    browser.execute_cdp_cmd(
        "Emulation.setUserAgentOverride", {"userAgent": agent, "acceptLanguage": "en-US,en"}
    )


def _texts(driver) -> dict:
    def text(element_id: str) -> str:
        return driver.find_element(By.ID, element_id).text

    return {
        "lang": driver.execute_script("return document.documentElement.lang"),
        "position_label": driver.find_element(By.CSS_SELECTOR, "[data-i18n='standing.position']").text,
        "eta": text("eta"),
        "state": text("room-state"),
        "announced": driver.find_element(By.ID, "announce").get_attribute("textContent"),
        "leave": text("leave-line"),
    }


def _by_keyboard_to(driver, element_id: str, most: int = 30) -> bool:
    """Tab from the top of the page until `element_id` has the focus; then Enter. Whether it got there."""
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    for _ in range(most):
        ActionChains(driver).send_keys(Keys.TAB).perform()  # to whatever has the focus, as a person would
        if driver.switch_to.active_element.get_attribute("id") == element_id:
            ActionChains(driver).send_keys(Keys.ENTER).perform()
            return True
    return False


def _thai_then_english(driver, sale) -> dict:
    entered = _enter_room_signed_out(driver, sale)
    thai = _texts(driver)
    wait(driver, lambda d: d.find_element(By.ID, "announce").get_attribute("textContent"))
    thai["announced"] = _texts(driver)["announced"]
    reached = _by_keyboard_to(driver, "notify-email")
    wait(driver, lambda d: d.find_element(By.ID, "notify-said").text)
    told = driver.find_element(By.ID, "notify-said").text
    driver.find_element(By.CSS_SELECTOR, "[data-lang='en']").click()
    english = _texts(driver)
    told_in_english = driver.find_element(By.ID, "notify-said").text
    driver.refresh()
    wait(driver, lambda d: d.find_element(By.ID, "position").text.isdigit())
    return {
        "user_id": entered["user_id"],
        "thai": thai,
        "keyboard_reached_email": reached,
        "told": told,
        "english": english,
        "told_in_english": told_in_english,
        "after_reload": _texts(driver)["lang"],
    }


async def test_the_room_speaks_thai_to_a_thai_browser_switches_to_english_and_works_by_keyboard(
    browser, thai_reader, sale, room
):
    said = await asyncio.to_thread(_thai_then_english, browser, sale)
    thai = said["thai"]
    assert thai["lang"] == "th" and thai["position_label"] == "ลำดับของคุณในคิว"
    assert thai["eta"] == "ไม่ถึงหนึ่งนาที" and thai["leave"] == "ออกจากคิว"
    assert thai["announced"].startswith(f"คุณอยู่ลำดับที่ {AHEAD + 1} ในคิว")  # said to screen readers
    assert said["keyboard_reached_email"]
    assert said["told"].startswith("เราจะส่งอีเมลถึงคุณเมื่อถึงคิว")
    english = said["english"]
    assert english["lang"] == "en" and english["position_label"] == "Your place in line"
    assert english["eta"] == "less than a minute" and english["leave"] == "Leave the line"
    assert said["told_in_english"].startswith(
        "We will e-mail you when it is your turn. You then have 3 minutes"
    )
    assert said["after_reload"] == "en"  # the reader's choice outlives Accept-Language
    record = await room.redis.hget(keys.room(sale["event_id"], "notify"), said["user_id"])
    stored = json.loads(record)
    assert stored["lang"] == "th" and stored["email"] == sale["email"]  # asked for in Thai
    assert await asyncio.to_thread(page_problems, browser) == []


def _ask_for_push(driver, sale) -> dict:
    _enter_room_signed_out(driver, sale)
    button = wait(driver, seen.visibility_of_element_located((By.ID, "notify-push")))
    origin = sale["room_page"].split("/waiting-room/")[0]
    driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": origin, "permissions": ["notifications"]})
    button.click()
    wait(driver, lambda d: d.find_element(By.ID, "notify-said").text, 30)
    worker = driver.execute_async_script(
        "const done = arguments[0];"
        "navigator.serviceWorker.getRegistration('/static/')"
        "  .then((r) => done(r && r.active && r.active.scriptURL))"
    )
    return {"said": driver.find_element(By.ID, "notify-said").text, "worker": worker}


async def test_a_site_with_web_push_offers_it_and_the_page_registers_its_service_worker(
    browser, pg, sale_redis, room, schema, new_topics, jwt_secret
):
    """Headless Chromium here reaches no push service, so the subscription itself cannot be made
    (the server side is tested against a push service of the test's own: test_queue_notify.py):
    the page offers it, registers its worker, asks, and says plainly what happened."""
    push = PushSettings(vapid_private_key=VapidKey.generate())
    settings = gateway_settings(
        schema, await new_topics("push-page"), jwt_secret, rate_limits="general=6000/1000", push=push
    )
    async with running_gateway_app(settings) as (url, _):
        sale = await _sale(pg, sale_redis, room, url)
        asked = await asyncio.to_thread(_ask_for_push, browser, sale)
    assert asked["worker"] == f"{url}/static/push-sw.js"
    assert asked["said"].startswith(
        ("We will notify this device", "This browser could not sign up for notifications")
    )
