"""The operator dashboard, in a real headless Chromium (tests/browser.py): an admin signs in on the
way to /dashboard, watches an event of their tenant with a waiting room (queue depth, active,
admitted, admission rate, seats per show and zone, a held booking made through the API), sees the
chart gain points as the page refreshes, and changes the room through the form (a bad rate is
named by its field; a good change reaches the admin API). A buyer of the same tenant is told the
page is for admins only, even with a stored session that claims otherwise (the API answers 403).
"""

from __future__ import annotations

import asyncio
import json
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
from ops.seed_data import ZoneSpec, create_event, ensure_tenant, ensure_users
from tests.browser import page_problems, stored_session, submit_sign_in, wait
from tests.support import book, call, unique

PASSWORD = "dashboard pass 2026"
STALLS, BALCONY = 50, 20  # seats per zone, in each of the two shows
HELD = 2  # balcony seats of the first show a buyer holds (one booking, not paid)
ADMITTED = 2  # let in before the page opens
WAITING = 4  # still in line
CHART_POINTS = 3  # samples the chart shows after a couple of refreshes (one every 3 s)
REFRESH_SEEN_S = 15  # a change shows within one refresh


@pytest_asyncio.fixture
async def ops(pg, sale_redis, room, gateway_url, http, jwt_secret):
    """A tenant with an admin and a buyer who sign in with a password, one published event (two
    shows, two zones) with a held booking, behind a waiting room (mode always) that has let
    ADMITTED people in and has WAITING in line."""
    slug = unique("dash-shop-")
    admin_email, buyer_email = f"{unique('admin')}@example.com", f"{unique('fan')}@example.com"
    title = unique("Ops Night ")
    password_hash = await hash_password(PASSWORD, 4)
    async with pg.acquire() as conn:
        tenant_id = await ensure_tenant(conn, slug, "Dashboard Shop")
        (organizer,) = await ensure_users(conn, tenant_id, [f"{unique('org')}@example.com"], "organizer")
        (admin,) = await ensure_users(conn, tenant_id, [admin_email], "admin", password_hash=password_hash)
        (buyer,) = await ensure_users(conn, tenant_id, [buyer_email], password_hash=password_hash)
        event = await create_event(
            conn,
            tenant_id=tenant_id,
            organizer_id=organizer,
            title=title,
            shows=2,
            zones=[ZoneSpec("Stalls", Decimal("60"), STALLS), ZoneSpec("Balcony", Decimal("35"), BALCONY)],
            venue="Control Room Hall",
        )
        await load_event_inventory(sale_redis, conn, event.event_id)
    event_id = event.event_id
    first_show, second_show = event.shows
    # A real hold, made while the room is off (no pass needed): the workers apply it.
    buyer_token = issue_access_token(jwt_secret, user_id=buyer, tenant_id=tenant_id)
    body = {
        "event_id": event_id,
        "show_id": first_show,
        "zone_id": event.shows[first_show]["Balcony"],
        "quantity": HELD,
    }
    status, answer = await book(http, gateway_url, buyer_token, body)
    assert status == 201, answer
    # grace_s: the people in line are the test's, joined once; they must not be dropped as absent.
    await room.configure(event_id, {"mode": "always", "rate_per_min": 600, "grace_s": 600})
    for user in [unique("early-") for _ in range(ADMITTED)]:
        await room.enter(event_id, user, now_ms())
    assert len((await room.admit(event_id, now_ms()))["admitted"]) == ADMITTED
    for user in [unique("later-") for _ in range(WAITING)]:
        await room.enter(event_id, user, now_ms())
    # Joins counted per address, as the gateway counts them (a documentation address: 203.0.113.0/24).
    await room.redis.zincrby(keys.room(event_id, "join_addresses"), 3, "203.0.113.7")
    return {
        "event_id": event_id,
        "title": title,
        "tenant": slug,
        "admin_email": admin_email,
        "buyer_email": buyer_email,
        "admin_token": issue_access_token(jwt_secret, user_id=admin, tenant_id=tenant_id, role="admin"),
        "balcony": event.shows[first_show]["Balcony"],
        "shows": [first_show, second_show],
        "dashboard": f"{gateway_url}/dashboard",
        "login_page": f"{gateway_url}/login",
        "room_api": f"{gateway_url}/api/v1/admin/events/{event_id}/room",
    }


def _signed_out_to_dashboard(driver, ops, email: str) -> str:
    """Signed out, open /dashboard: sign in first, come back. Returns the sign-in page's address."""
    driver.get(ops["login_page"])
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    driver.get(ops["dashboard"])
    wait(driver, seen.url_contains("/login?next="))
    login_page = driver.current_url
    submit_sign_in(driver, ops["tenant"], email, PASSWORD)
    wait(driver, seen.url_contains("/dashboard"))
    return login_page


def _text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _figures(driver) -> dict:
    ids = (
        "room-mode", "room-engaged", "queue-depth", "queue-split", "room-active", "room-admitted",
        "room-rate", "room-rate-setting", "seats-total", "seats-taken", "seats-remaining", "held-bookings",
        "join-addresses", "new-accounts",
    )  # fmt: skip
    return {element_id: _text(driver, element_id) for element_id in ids}


def _zones(driver) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(show id, zone name) -> (seats, sold or held, remaining) as the page shows them."""
    shown = {}
    for section in driver.find_elements(By.CSS_SELECTOR, "#shows section.show"):
        show_id = section.get_attribute("data-show-id")
        for row in section.find_elements(By.CSS_SELECTOR, "tr[data-zone-id]"):
            name, total, taken, remaining = (
                row.find_element(By.CLASS_NAME, c).text
                for c in ("zone-name", "zone-total", "zone-taken", "zone-remaining")
            )
            shown[(show_id, name)] = (total, taken, remaining)
    return shown


def _chart_points(driver) -> dict:
    def count(element_id: str) -> int:
        return len(driver.find_element(By.ID, element_id).get_attribute("points").split())

    return {
        "samples": int(driver.find_element(By.ID, "room-chart").get_attribute("data-samples")),
        "depth": count("depth-line"),
        "rate": count("rate-line"),
    }


def _admin_watches(driver, ops) -> dict:
    login_page = _signed_out_to_dashboard(driver, ops, ops["admin_email"])
    row = wait(
        driver, seen.presence_of_element_located((By.CSS_SELECTOR, f"tr[data-event-id='{ops['event_id']}']"))
    )
    wait(driver, lambda d: _text(d, "queue-depth") != "–" and len(_zones(d)) == 4)
    # The chart gains a point a refresh: wait for a few, then read it (no sleeping).
    wait(driver, lambda d: _chart_points(d)["samples"] >= CHART_POINTS, REFRESH_SEEN_S)
    return {
        "login_page": login_page,
        "address": driver.current_url,
        "listed": len(driver.find_elements(By.CSS_SELECTOR, "#event-table tbody tr")),
        "row": row.find_element(By.CLASS_NAME, "event-name").text,
        "watching": "watched" in row.get_attribute("class"),
        "title": _text(driver, "event-title"),
        "figures": _figures(driver),
        "zones": _zones(driver),
        "chart": _chart_points(driver),
        "busiest": [
            tuple(cell.text for cell in row.find_elements(By.TAG_NAME, "td"))
            for row in driver.find_elements(By.CSS_SELECTOR, "#busiest-addresses tbody tr")
        ],
        "admins_only": driver.find_element(By.ID, "admins-only").is_displayed(),
        "user": stored_session(driver)["user"]["email"],
    }


def _set_rate(driver, rate: str) -> None:
    field = driver.find_element(By.ID, "rate-input")
    field.clear()
    field.send_keys(rate)


def _bad_rate_then_good_change(driver) -> dict:
    _set_rate(driver, "0")
    driver.find_element(By.ID, "room-save").click()
    rate_error = (By.CSS_SELECTOR, ".field-error[data-field='rate_per_min']")
    error = wait(driver, seen.visibility_of_element_located(rate_error))
    refused = {
        "error": error.text,
        "invalid": driver.find_element(By.ID, "rate-input").get_attribute("aria-invalid"),
        "shown_errors": [
            e.get_attribute("data-field")
            for e in driver.find_elements(By.CSS_SELECTOR, ".field-error")
            if e.is_displayed()
        ],
        "status": _text(driver, "room-form-status"),
    }
    _set_rate(driver, "90")
    Select(driver.find_element(By.ID, "mode-input")).select_by_value("paused")
    driver.find_element(By.ID, "room-save").click()
    wait(driver, lambda d: _text(d, "room-form-status").startswith("Saved"))
    return {"refused": refused, "saved": _text(driver, "room-form-status")}


def _shown_after_refresh(driver) -> dict:
    samples = _chart_points(driver)["samples"]
    wait(driver, lambda d: _chart_points(d)["samples"] > samples, REFRESH_SEEN_S)  # a refresh since
    mode = Select(driver.find_element(By.ID, "mode-input")).first_selected_option
    return {
        **_figures(driver),
        "form_rate": driver.find_element(By.ID, "rate-input").get_attribute("value"),
        "form_mode": mode.get_attribute("value"),
    }


async def test_an_admin_watches_sales_and_the_room_and_changes_it(browser, ops, http):
    page = await asyncio.to_thread(_admin_watches, browser, ops)
    assert page["login_page"].endswith("/login?next=%2Fdashboard")
    assert page["user"] == ops["admin_email"]
    assert not page["admins_only"]
    # Only the tenant's own published events are listed; the only one is watched at once.
    assert page["listed"] == 1 and page["row"] == ops["title"] and page["watching"]
    assert page["address"] == f"{ops['dashboard']}?event={ops['event_id']}"
    assert page["title"] == ops["title"]
    seats = 2 * (STALLS + BALCONY)
    assert page["figures"] == {
        "room-mode": "always",
        "room-engaged": "yes",  # the admission tick above engaged it (mode always)
        "queue-depth": str(WAITING),
        "queue-split": f"{WAITING} · 0",
        "room-active": str(ADMITTED),
        "room-admitted": str(ADMITTED),
        "room-rate": str(ADMITTED),
        "room-rate-setting": "600",
        "seats-total": str(seats),
        "seats-taken": str(HELD),
        "seats-remaining": str(seats - HELD),
        "held-bookings": "1",
        # Signs of bots: one address joined 3 times; those in line here are not accounts.
        "join-addresses": "1",
        "new-accounts": f"0 of {WAITING} (0 %)",
    }
    first, second = ops["shows"]
    assert page["zones"] == {
        (first, "Stalls"): (str(STALLS), "0", str(STALLS)),
        (first, "Balcony"): (str(BALCONY), str(HELD), str(BALCONY - HELD)),
        (second, "Stalls"): (str(STALLS), "0", str(STALLS)),
        (second, "Balcony"): (str(BALCONY), "0", str(BALCONY)),
    }
    assert page["busiest"] == [("203.0.113.7", "3")]
    assert page["chart"]["depth"] == page["chart"]["rate"] == page["chart"]["samples"] >= CHART_POINTS

    changed = await asyncio.to_thread(_bad_rate_then_good_change, browser)
    assert changed["refused"]["error"] == "Must be an integer in 1..1000000."
    assert changed["refused"]["invalid"] == "true" and changed["refused"]["shown_errors"] == ["rate_per_min"]
    assert changed["refused"]["status"] == "Not saved: check the highlighted setting."
    assert changed["saved"].startswith("Saved: mode paused, rate per min 90")

    status, answer = await call(http, "GET", ops["room_api"], ops["admin_token"])
    assert status == 200, answer
    config = answer["data"]["config"]
    assert (config["mode"], config["rate_per_min"], config["max_active"]) == ("paused", 90, 1000)
    assert config["grace_s"] == 600  # settings the form does not show are left alone

    # Another operator (roomctl, another tab) changes the room: the next refresh shows it, form too.
    status, answer = await call(http, "PUT", ops["room_api"], ops["admin_token"], {"rate_per_min": 75})
    assert status == 200, answer
    shown = await asyncio.to_thread(_shown_after_refresh, browser)
    assert (shown["room-mode"], shown["room-rate-setting"]) == ("paused", "75")
    assert (shown["form_mode"], shown["form_rate"]) == ("paused", "75")
    assert shown["queue-depth"] == str(WAITING)
    assert await asyncio.to_thread(page_problems, browser) == []


def _buyer_is_turned_away(driver, ops) -> dict:
    _signed_out_to_dashboard(driver, ops, ops["buyer_email"])
    notice = wait(driver, seen.visibility_of_element_located((By.ID, "admins-only")))
    first = {
        "notice": notice.text,
        "panel": driver.find_element(By.ID, "event-panel").is_displayed(),
        "events": driver.find_element(By.ID, "events-section").is_displayed(),
    }
    # A stored session that says "admin" changes nothing: the admin API answers 403.
    session = stored_session(driver)
    session["user"]["role"] = "admin"
    driver.execute_script("localStorage.setItem('booking-rush.session', arguments[0])", json.dumps(session))
    driver.refresh()
    notice = wait(driver, seen.visibility_of_element_located((By.ID, "admins-only")))
    return {
        "first": first,
        "claimed": {
            "notice": notice.text,
            "panel": driver.find_element(By.ID, "event-panel").is_displayed(),
            "address": driver.current_url,
        },
    }


async def test_a_buyer_is_told_the_dashboard_is_for_admins_only(browser, ops):
    seen_ = await asyncio.to_thread(_buyer_is_turned_away, browser, ops)
    assert seen_["first"]["notice"].startswith("Admins only")
    assert not seen_["first"]["panel"] and not seen_["first"]["events"]
    assert seen_["claimed"]["notice"].startswith("Admins only")
    assert not seen_["claimed"]["panel"]
    # It got as far as asking the admin API about the tenant's event, which refused.
    assert seen_["claimed"]["address"].endswith(f"/dashboard?event={ops['event_id']}")
    assert await asyncio.to_thread(page_problems, browser) == []
