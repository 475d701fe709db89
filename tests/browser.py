"""Browser tests' tools (the headless Chromium itself is ops/chromium.py: Debian's, driven by Selenium;
nothing downloads a browser), and what those tests read from it or do in it.

A gateway under test runs in the test's event loop, so every browser step runs in a thread
(`asyncio.to_thread`) while the loop keeps serving the pages and the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from gateway.password_hasher import hash_password
from ops.chromium import WAIT_S
from ops.seed_data import ensure_tenant, ensure_users
from tests.support import unique


def wait(driver: WebDriver, condition, timeout: float = WAIT_S):
    return WebDriverWait(driver, timeout).until(condition)


def stored_session(driver: WebDriver) -> dict | None:
    raw = driver.execute_script("return localStorage.getItem('booking-rush.session')")
    return json.loads(raw) if raw else None


def page_problems(driver: WebDriver) -> list[str]:
    """Script errors and CSP violations the browser reported (failed loads, e.g. a 401 from a
    wrong password or the favicon's 404, are expected and not counted)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Uncaught" in entry["message"]
    ]


def submit_sign_in(driver: WebDriver, tenant: str, email: str, password: str) -> None:
    """Fill in and send the login page's form (the page must be loading or loaded)."""
    button = wait(driver, seen.element_to_be_clickable((By.ID, "sign-in")))
    for field, value in (("tenant", tenant), ("email", email), ("password", password)):
        driver.find_element(By.ID, field).clear()
        driver.find_element(By.ID, field).send_keys(value)
    button.click()


@dataclass(frozen=True)
class Shop:
    """A tenant of its own, with an organizer and one buyer who signs in with a password."""

    slug: str
    tenant_id: str
    organizer_id: str
    email: str


async def open_shop(conn: asyncpg.Connection, prefix: str, password: str) -> Shop:
    slug = unique(prefix)
    email = f"{unique('fan')}@example.com"
    tenant_id = await ensure_tenant(conn, slug, "Browser Shop")
    (organizer,) = await ensure_users(conn, tenant_id, [f"{unique('org')}@example.com"], "organizer")
    await ensure_users(conn, tenant_id, [email], password_hash=await hash_password(password, 4))
    return Shop(slug, tenant_id, organizer, email)
