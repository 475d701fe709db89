"""A browser user signs in through the login page and reads the events page, in a real headless
Chromium (tests/browser.py; the `browser` fixture is in conftest).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from urllib.parse import quote

import pytest_asyncio
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen

from gateway.event_store import ZoneSpec
from gateway.routes.openapi import DOCUMENT
from lua import keys
from ops.inventory import load_event_inventory
from ops.seed_data import create_event
from tests.browser import open_shop, page_problems, stored_session, submit_sign_in, wait
from tests.support import gateway_settings, running_gateway, unique

PASSWORD = "browser pass 2026"
# Organizer-controlled text the page must show as text, never run or render as markup.
HOSTILE_TITLE = 'Rush Night <img src=x id="injected" onerror="document.title=\'pwned\'">'


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def site(schema, pg, sale_redis, new_topics, jwt_secret):
    """A gateway with the spec's own rate limits, a tenant with one buyer, and a published event
    in a category of its own (so the page lists exactly it) with seats already being sold."""
    category = unique("rush-")
    async with pg.acquire() as conn:
        shop = await open_shop(conn, "browser-shop-", PASSWORD)
        category_id = await conn.fetchval(
            "INSERT INTO categories (tenant_id, name, slug) VALUES ($1, $2, $2) RETURNING id",
            shop.tenant_id,
            category,
        )
        event = await create_event(
            conn,
            tenant_id=shop.tenant_id,
            organizer_id=shop.organizer_id,
            title=HOSTILE_TITLE,
            shows=2,
            zones=[ZoneSpec("VIP", Decimal("250"), 40), ZoneSpec("Floor", Decimal("80"), 400)],
            venue="Loopback Arena",
            category_id=str(category_id),
        )
        event_id, layout = event.event_id, event.shows
        await load_event_inventory(sale_redis, conn, event_id)
    first_show = next(iter(layout))
    # Seats sold during the sale live in the sale Redis only: the page must show these.
    await sale_redis.hincrby(keys.zone(event_id, first_show, layout[first_show]["VIP"]), "available", -7)
    settings = gateway_settings(schema, await new_topics("browser"), jwt_secret, bcrypt_cost=4)
    async with running_gateway(settings) as url:
        yield {
            "url": url,
            "tenant": shop.slug,
            "email": shop.email,
            "event_id": event_id,
            "layout": layout,
            "events_page": f"{url}/events?category={category}",
        }


async def _live_seats(sale_redis, site) -> dict[str, str]:
    """zone id -> what the page must show for it, read from the sale Redis."""
    shown = {}
    for show_id, zones in site["layout"].items():
        for zone_id in zones.values():
            zone = await sale_redis.hgetall(keys.zone(site["event_id"], show_id, zone_id))
            shown[zone_id] = f"{int(zone[b'available'])} / {int(zone[b'total'])}"
    return shown


def _read_events_page(driver, site) -> dict:
    driver.get(site["events_page"])
    item = wait(
        driver, seen.presence_of_element_located((By.CSS_SELECTOR, f"[data-event-id='{site['event_id']}']"))
    )
    wait(driver, lambda d: len(item.find_elements(By.CSS_SELECTOR, "tr[data-zone-id]")) == 4)
    return {
        "listed": len(driver.find_elements(By.CSS_SELECTOR, "li.event")),
        "title": item.find_element(By.CLASS_NAME, "event-title").text,
        "injected": driver.find_elements(By.ID, "injected"),
        "document_title": driver.title,
        "meta": item.find_element(By.CLASS_NAME, "event-meta").text,
        "room": item.find_element(By.CLASS_NAME, "waiting-room").get_attribute("href"),
        "seats": {
            row.get_attribute("data-zone-id"): row.find_element(By.CLASS_NAME, "zone-available").text
            for row in item.find_elements(By.CSS_SELECTOR, "tr[data-zone-id]")
        },
        "prices": sorted(e.text for e in item.find_elements(By.CLASS_NAME, "zone-price")),
        "sign_in_shown": driver.find_element(By.ID, "sign-in-link").is_displayed(),
    }


async def test_events_page_lists_shows_zones_prices_and_live_seats(browser, site, sale_redis):
    page = await asyncio.to_thread(_read_events_page, browser, site)
    assert page["listed"] == 1
    assert page["title"] == HOSTILE_TITLE and not page["injected"] and page["document_title"] != "pwned"
    assert "Loopback Arena" in page["meta"]
    assert page["seats"] == await _live_seats(sale_redis, site)
    assert "33 / 40" in page["seats"].values()  # the 7 sold in Redis, not PostgreSQL's 40
    assert page["prices"] == ["250.00 THB", "250.00 THB", "80.00 THB", "80.00 THB"]
    assert page["room"] == f"{site['url']}/waiting-room/{site['event_id']}"
    assert page["sign_in_shown"]
    assert await asyncio.to_thread(page_problems, browser) == []


def _sign_in(driver, site, password: str) -> None:
    driver.find_element(By.ID, "sign-in-link").click()
    wait(driver, seen.url_contains("/login"))
    submit_sign_in(driver, site["tenant"], site["email"], password)


def _wrong_then_right_password(driver, site) -> dict:
    driver.get(site["events_page"])
    _sign_in(driver, site, "not the password")
    error = wait(driver, seen.visibility_of_element_located((By.ID, "login-error"))).text
    still_on_login = "/login" in driver.current_url
    driver.find_element(By.ID, "password").clear()
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    wait(driver, seen.url_to_be(site["events_page"]))
    who = wait(driver, seen.visibility_of_element_located((By.ID, "user-email"))).text
    return {"error": error, "still_on_login": still_on_login, "who": who, "session": stored_session(driver)}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def signed_in(browser, site) -> dict:
    """The buyer signs in through the login page (first with a wrong password)."""
    return await asyncio.to_thread(_wrong_then_right_password, browser, site)


async def test_a_browser_signs_in_and_keeps_its_tokens(browser, site, signed_in, http):
    outcome = signed_in
    assert outcome["still_on_login"] and outcome["error"] == "Wrong organisation, email or password."
    assert outcome["who"] == site["email"]
    session = outcome["session"]
    assert session["tenant"] == site["tenant"] and session["refresh_token"]
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    async with http.get(f"{site['url']}/api/v1/auth/me", headers=headers) as r:
        assert r.status == 200 and (await r.json())["data"]["user"]["email"] == site["email"]
    assert await asyncio.to_thread(page_problems, browser) == []


# ?next= values that are another site once the browser has read them as a URL.
HOSTILE_NEXT = [
    "/\t/evil.example",  # a tab is dropped: //evil.example
    "/\n/evil.example",
    "/\\evil.example",  # a backslash is a slash: //evil.example
    "//evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    " /\t/evil.example",
]
SAFE_NEXT = {"/events?category=x": "/events?category=x", "/book/abc#top": "/book/abc#top"}

_SAFE_NEXT = """
const [candidates, done] = arguments;
import("/static/session.js").then((s) => done(candidates.map((raw) => s.safeNext(raw))));
"""


def _sign_in_with_next(driver, site, raw_next: str) -> str:
    driver.get(f"{site['url']}/login?next={quote(raw_next, safe='')}")
    submit_sign_in(driver, site["tenant"], site["email"], PASSWORD)
    wait(driver, lambda d: "/login" not in d.current_url)
    return driver.current_url


async def test_after_signing_in_the_page_goes_nowhere_but_this_site(browser, site, signed_in):
    candidates = HOSTILE_NEXT + list(SAFE_NEXT)
    judged = await asyncio.to_thread(browser.execute_async_script, _SAFE_NEXT, candidates)
    assert judged == ["/events"] * len(HOSTILE_NEXT) + list(SAFE_NEXT.values())
    landed = await asyncio.to_thread(_sign_in_with_next, browser, site, "/\t/evil.example")
    assert landed == f"{site['url']}/events"


_CALL_ME_TWICE_WITH_A_DEAD_ACCESS_TOKEN = """
const done = arguments[arguments.length - 1];
const key = "booking-rush.session";
const session = JSON.parse(localStorage.getItem(key));
localStorage.setItem(key, JSON.stringify({...session, access_token: "expired.or.garbage"}));
import("/static/session.js")
  .then((s) => Promise.all([s.api("/api/v1/auth/me"), s.api("/api/v1/auth/me")]))
  .then((answers) => done(answers.map((a) => a.data.user.email)))
  .catch((failure) => done("failed: " + failure.message));
"""


def _refresh_twice(driver) -> list:
    return [driver.execute_async_script(_CALL_ME_TWICE_WITH_A_DEAD_ACCESS_TOKEN) for _ in range(2)]


async def test_a_dead_access_token_is_renewed_once_for_concurrent_calls(browser, site, signed_in, pg):
    before = await asyncio.to_thread(stored_session, browser)
    rounds = await asyncio.to_thread(_refresh_twice, browser)
    # Two calls at once share one refresh; sharing is what keeps reuse detection from revoking
    # the family, which the second round (a refresh with the rotated token) would then show.
    assert rounds == [[site["email"]] * 2] * 2
    after = await asyncio.to_thread(stored_session, browser)
    assert after["refresh_token"] != before["refresh_token"]
    user_id = after["user"]["id"]
    assert (
        await pg.fetchval(
            "SELECT count(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NOT NULL", user_id
        )
        == 0
    )


def _sign_out(driver) -> dict:
    driver.find_element(By.ID, "sign-out").click()
    wait(driver, seen.visibility_of_element_located((By.ID, "sign-in-link")))
    return {
        "session": stored_session(driver),
        "signed_in_shown": driver.find_element(By.ID, "signed-in").is_displayed(),
    }


async def test_signing_out_forgets_the_tokens_and_revokes_the_refresh_token(browser, site, signed_in, http):
    session = await asyncio.to_thread(stored_session, browser)
    outcome = await asyncio.to_thread(_sign_out, browser)
    assert outcome == {"session": None, "signed_in_shown": False}
    async with http.post(
        f"{site['url']}/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}
    ) as r:
        assert r.status == 401
    assert await asyncio.to_thread(page_problems, browser) == []


async def test_pages_carry_the_security_headers_and_no_inline_script(site, http):
    event_id = site["event_id"]
    for path in ("/login", "/events", f"/waiting-room/{event_id}", f"/book/{event_id}"):
        async with http.get(f"{site['url']}{path}") as r:
            assert r.status == 200 and r.content_type == "text/html"
            assert r.headers["Content-Security-Policy"] == "default-src 'self'"
            html = await r.text()
        assert "<script>" not in html and " on" + "click=" not in html and "<style" not in html
    for path in ("/waiting-room/not-an-id", "/book/1234"):  # an event page's id must be a UUID
        async with http.get(f"{site['url']}{path}") as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "NOT_FOUND"
    async with http.get(f"{site['url']}/", allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"] == "/events"
    async with http.get(f"{site['url']}/static/../gateway/settings.py") as r:
        assert r.status == 404


def _api_docs(driver, url: str) -> dict:
    driver.get(f"{url}/api/docs")
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 40)
    title = driver.find_element(By.CSS_SELECTOR, ".info .title").text
    # Open one operation and its "Try it out": the form Swagger UI builds from the document.
    reserve = driver.find_element(By.CSS_SELECTOR, "#operations-default-post_api_v1_bookings_reserve")
    reserve.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait(driver, lambda d: reserve.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    reserve.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    body = wait(driver, lambda d: reserve.find_element(By.CSS_SELECTOR, "textarea.body-param__text"))
    return {
        "title": title,
        "operations": len(driver.find_elements(By.CSS_SELECTOR, ".opblock")),
        "reserve_example": body.get_attribute("value"),
        "problems": page_problems(driver),
    }


async def test_the_api_docs_page_renders_the_document(browser, site, http):
    async with http.get(f"{site['url']}/api/docs") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        csp = r.headers["Content-Security-Policy"]
    page = await asyncio.to_thread(_api_docs, browser, site["url"])
    assert page["title"].startswith("Booking Rush")
    assert page["operations"] == sum(len(ops) for ops in DOCUMENT["paths"].values())
    assert '"event_id"' in page["reserve_example"] and '"quantity"' in page["reserve_example"]
    assert csp == "default-src 'self'; img-src 'self' data:"  # Swagger UI's icons are data: URLs
    assert page["problems"] == [], page["problems"]
    async with http.get(f"{site['url']}/events") as r:  # the relaxed policy is that page's alone
        assert r.headers["Content-Security-Policy"] == "default-src 'self'"
