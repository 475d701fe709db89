"""The System Admin (spec §1): the first is made by `python -m ops.sysadmin create`, signs in
without a tenant, creates tenants and lists them; a new tenant's first admin gets a single-use
invitation by mail, sets a password with it and runs their own tenant (and only it)."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest
import pytest_asyncio
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen

from booking_rush.services.mail import MailSettings
from tests.browser import page_problems, stored_session, wait
from tests.support import accounts_gateway_settings, call, run_module, running_gateway, unique

PASSWORD = "system admin pass 2026"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gw(schema, new_topics, jwt_secret, smtp_sink):
    settings = accounts_gateway_settings(
        schema, await new_topics("system"), jwt_secret, mail=MailSettings(port=smtp_sink[1])
    )
    async with running_gateway(settings) as url:
        yield url


async def sysadmin_cli(schema, *args: str, password: str = PASSWORD) -> tuple[int, str, str]:
    env = {"BR_SYSADMIN_PASSWORD": password, "BR_BCRYPT_COST": "4", "BR_DATABASE_URL": schema.database_url}
    return await run_module("ops.sysadmin", *args, env=env)


@pytest_asyncio.fixture(loop_scope="session")
async def system_admin(schema, gw, http) -> dict:
    email = f"{unique('ops')}@system.test"
    code, out, err = await sysadmin_cli(schema, "create", "--email", email)
    assert code == 0, err
    status, session = await call(
        http, "POST", f"{gw}/api/v1/system/auth/login", body={"email": email, "password": PASSWORD}
    )
    assert status == 200, session
    return {"email": email, **session["data"]}


async def test_the_cli_makes_a_system_admin_who_signs_in_without_a_tenant(schema, gw, http, system_admin):
    user = system_admin["user"]
    assert (user["role"], user["tenant_id"]) == ("system_admin", None)
    code, _, err = await sysadmin_cli(schema, "create", "--email", system_admin["email"])
    assert code == 1 and "already" in err  # once per address
    code, _, err = await sysadmin_cli(schema, "create", "--email", f"{unique('w')}@x.test", password="short")
    assert code == 2 and "password" in err
    status, refused = await call(
        http,
        "POST",
        f"{gw}/api/v1/system/auth/login",
        body={"email": system_admin["email"], "password": "wrong 1234"},
    )
    assert (status, refused["error"]["code"]) == (401, "UNAUTHORIZED")
    # Its session renews like anyone's, though it has no tenant.
    status, renewed = await call(
        http, "POST", f"{gw}/api/v1/auth/refresh", body={"refresh_token": system_admin["refresh_token"]}
    )
    assert status == 200 and renewed["data"]["user"]["role"] == "system_admin"


async def test_the_database_keeps_tenantless_accounts_to_system_admins(pg):
    with pytest.raises(asyncpg.CheckViolationError):
        await pg.execute(
            "INSERT INTO users (tenant_id, email, password_hash, role) VALUES (NULL, $1, 'x', 'user')",
            f"{unique('nobody')}@x.test",
        )


async def test_a_system_admin_creates_a_tenant_whose_invited_admin_runs_it(gw, http, system_admin, smtp_sink):
    inbox, _ = smtp_sink
    token = system_admin["access_token"]
    slug, admin_email = unique("venue-"), f"{unique('boss')}@venue.test"
    body = {
        "name": "Riverside Hall",
        "slug": slug,
        "currency": "THB",
        "time_zone": "Asia/Bangkok",
        "admin_email": admin_email,
    }
    status, made = await call(http, "POST", f"{gw}/api/v1/system/tenants", token, body)
    assert status == 201, made
    assert {k: made["data"][k] for k in ("name", "slug", "status", "currency", "time_zone", "invited")} == {
        "name": "Riverside Hall",
        "slug": slug,
        "status": "active",
        "currency": "THB",
        "time_zone": "Asia/Bangkok",
        "invited": admin_email,
    }
    status, again = await call(http, "POST", f"{gw}/api/v1/system/tenants", token, body)
    assert (status, again["error"]["code"]) == (409, "CONFLICT")

    status, listed = await call(http, "GET", f"{gw}/api/v1/system/tenants", token, params={"per_page": 100})
    total = listed["meta"]["total"]
    last_page = (total + 99) // 100
    _, last = await call(
        http, "GET", f"{gw}/api/v1/system/tenants", token, params={"per_page": 100, "page": last_page}
    )
    assert slug in {t["slug"] for t in last["data"]}  # oldest first: the newest is on the last page

    (mail,) = [m for m in inbox.messages if m["To"] == admin_email]
    text = mail.get_payload(decode=True).decode()
    link_token = re.search(r"/invitation#token=([A-Za-z0-9_-]+)", text).group(1)
    assert slug in text
    accept = {"token": link_token, "password": "venue admin 2026", "full_name": "Boss"}
    status, session = await call(http, "POST", f"{gw}/api/v1/auth/invitations/accept", body=accept)
    assert status == 200, session
    user = session["data"]["user"]
    assert (user["role"], user["tenant_id"], user["email"]) == ("admin", made["data"]["id"], admin_email)
    status, spent = await call(http, "POST", f"{gw}/api/v1/auth/invitations/accept", body=accept)
    assert (status, spent["error"]["code"]) == (404, "NOT_FOUND")  # single use

    # The new admin runs their own tenant: signs in with its slug, sees its users, and no more.
    login = {"tenant": slug, "email": admin_email, "password": "venue admin 2026"}
    status, signed_in = await call(http, "POST", f"{gw}/api/v1/auth/login", body=login)
    assert status == 200
    status, users = await call(http, "GET", f"{gw}/api/v1/admin/users", signed_in["data"]["access_token"])
    assert status == 200 and [u["email"] for u in users["data"]] == [admin_email]
    status, refused = await call(
        http, "GET", f"{gw}/api/v1/system/tenants", signed_in["data"]["access_token"]
    )
    assert (status, refused["error"]["code"]) == (403, "FORBIDDEN")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"slug": "Not A Slug"}, "slug"),
        ({"slug": "-edge"}, "slug"),
        ({"currency": "baht"}, "currency"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"admin_email": "not-an-address"}, "admin_email"),
        ({"name": ""}, "name"),
    ],
)
async def test_a_tenant_that_is_not_one_is_refused_with_the_field_named(
    gw, http, system_admin, change, field
):
    body = {"name": "X", "slug": unique("ok-"), "admin_email": "a@b.test", **change}
    status, refused = await call(
        http, "POST", f"{gw}/api/v1/system/tenants", system_admin["access_token"], body
    )
    assert (status, refused["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert field in refused["error"]["details"]


def _accept_in_the_browser(driver, link: str, slug: str) -> dict:
    driver.get(link)
    wait(driver, seen.element_to_be_clickable((By.ID, "accept")))
    address_after_load = driver.current_url
    driver.find_element(By.ID, "tenant").send_keys(slug)
    driver.find_element(By.ID, "full-name").send_keys("Invited Boss")
    driver.find_element(By.ID, "password").send_keys("venue admin 2026")
    driver.find_element(By.ID, "accept").click()
    wait(driver, seen.url_contains("/dashboard"))
    return {"address_after_load": address_after_load, "session": stored_session(driver)}


async def test_the_invitation_link_opens_a_page_that_sets_the_password(
    gw, http, system_admin, smtp_sink, browser
):
    inbox, _ = smtp_sink
    slug, admin_email = unique("club-"), f"{unique('boss')}@club.test"
    body = {"name": "Club", "slug": slug, "admin_email": admin_email}
    status, _ = await call(http, "POST", f"{gw}/api/v1/system/tenants", system_admin["access_token"], body)
    assert status == 201
    (mail,) = [m for m in inbox.messages if m["To"] == admin_email]
    link = re.search(
        r"(http\S+/invitation#token=[A-Za-z0-9_-]+)", mail.get_payload(decode=True).decode()
    ).group(1)
    accepted = await asyncio.to_thread(_accept_in_the_browser, browser, link, slug)
    assert "#token" not in accepted["address_after_load"]  # taken out of the address bar and history
    user = accepted["session"]["user"]
    assert (user["role"], user["email"], accepted["session"]["tenant"]) == ("admin", admin_email, slug)
    assert await asyncio.to_thread(page_problems, browser) == []
