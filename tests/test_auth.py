"""Accounts over HTTP: register, login, refresh rotation with reuse detection, logout, me."""

from __future__ import annotations

import jwt
import pytest
import pytest_asyncio

from tests.support import accounts_gateway_settings, call, gateway_settings, running_gateway, unique

PASSWORD = "correct horse 42"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def auth_gateway(schema, new_topics, jwt_secret):
    topics = await new_topics("auth")
    # No worker reads these topics: a reserve answers 202 after this short wait.
    settings = accounts_gateway_settings(schema, topics, jwt_secret, reply_timeout_s=0.2)
    async with running_gateway(settings) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def tenant_slug(new_tenant):
    return await new_tenant("shop-")


async def _post(http, url, path, body, token=None):
    return await call(http, "POST", f"{url}/api/v1/auth/{path}", token, body)


async def _register_and_login(http, url, tenant, email=None):
    email = email or f"{unique('buyer')}@example.com"
    status, body = await _post(
        http, url, "register", {"tenant": tenant, "email": email, "password": PASSWORD, "full_name": "Ann"}
    )
    assert status == 201, body
    status, session = await _post(
        http, url, "login", {"tenant": tenant, "email": email, "password": PASSWORD}
    )
    assert status == 200, session
    return email, session["data"]


async def test_register_login_and_me(auth_gateway, http, tenant_slug, pg):
    email, session = await _register_and_login(http, auth_gateway, tenant_slug)
    assert session["token_type"] == "Bearer" and session["expires_in"] == 900
    assert session["user"]["email"] == email and session["user"]["role"] == "user"
    stored = await pg.fetchval("SELECT password_hash FROM users WHERE email = $1", email)
    assert stored.startswith("$2") and PASSWORD not in stored
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    async with http.get(f"{auth_gateway}/api/v1/auth/me", headers=headers) as r:
        assert r.status == 200
        assert (await r.json())["data"]["user"]["full_name"] == "Ann"
    async with http.put(
        f"{auth_gateway}/api/v1/auth/me",
        json={"full_name": "Ann Lee", "birth_date": "1990-05-01"},
        headers=headers,
    ) as r:
        user = (await r.json())["data"]["user"]
        assert (user["full_name"], user["birth_date"]) == ("Ann Lee", "1990-05-01")
    async with http.put(
        f"{auth_gateway}/api/v1/auth/me", json={"birth_date": "2999-01-01"}, headers=headers
    ) as r:
        assert r.status == 400
    # The next session's access token carries the birth date, for age rules at booking time.
    status, again = await _post(
        http, auth_gateway, "login", {"tenant": tenant_slug, "email": email, "password": PASSWORD}
    )
    claims = jwt.decode(again["data"]["access_token"], options={"verify_signature": False})
    assert claims["birth_date"] == "1990-05-01"


async def test_duplicate_email_in_a_tenant_is_refused(auth_gateway, http, tenant_slug):
    email, _ = await _register_and_login(http, auth_gateway, tenant_slug)
    status, body = await _post(
        http, auth_gateway, "register", {"tenant": tenant_slug, "email": email.upper(), "password": PASSWORD}
    )
    assert (status, body["error"]["code"]) == (409, "EMAIL_ALREADY_REGISTERED")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "short1"}, "password"),
        ({"email": "a@example.com", "password": "onlyletters"}, "password"),
        ({"email": "a@example.com", "password": 12345678}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "full_name": ["x"]}, "full_name"),
    ],
)
async def test_register_validates_its_input(auth_gateway, http, tenant_slug, body, field):
    status, answer = await _post(http, auth_gateway, "register", {"tenant": tenant_slug, **body})
    assert (status, answer["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert field in answer["error"]["details"]


async def test_unknown_tenant_and_bad_bodies(auth_gateway, http):
    status, answer = await _post(
        http,
        auth_gateway,
        "register",
        {"tenant": "nope-" + unique(""), "email": "a@example.com", "password": PASSWORD},
    )
    assert (status, answer["error"]["code"]) == (404, "NOT_FOUND")
    async with http.post(f"{auth_gateway}/api/v1/auth/login", data=b"[1]") as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, "VALIDATION_ERROR")


async def test_wrong_password_or_unknown_email_look_the_same(auth_gateway, http, tenant_slug):
    email, _ = await _register_and_login(http, auth_gateway, tenant_slug)
    wrong = await _post(
        http, auth_gateway, "login", {"tenant": tenant_slug, "email": email, "password": "wrong pass 1"}
    )
    unknown = await _post(
        http,
        auth_gateway,
        "login",
        {"tenant": tenant_slug, "email": "nobody@example.com", "password": PASSWORD},
    )
    assert wrong == unknown
    assert wrong[0] == 401 and wrong[1]["error"]["code"] == "UNAUTHORIZED"


async def test_refresh_rotates_and_reuse_revokes_the_family(auth_gateway, http, tenant_slug):
    _, session = await _register_and_login(http, auth_gateway, tenant_slug)
    first = session["refresh_token"]
    status, rotated = await _post(http, auth_gateway, "refresh", {"refresh_token": first})
    assert status == 200
    second = rotated["data"]["refresh_token"]
    assert second != first and rotated["data"]["access_token"]
    # The old token again: theft. It is refused, and so is the newer one of the same family.
    status, answer = await _post(http, auth_gateway, "refresh", {"refresh_token": first})
    assert (status, answer["error"]["code"]) == (401, "UNAUTHORIZED")
    assert "reused" in answer["error"]["message"]
    status, _ = await _post(http, auth_gateway, "refresh", {"refresh_token": second})
    assert status == 401


async def test_logout_invalidates_the_refresh_token(auth_gateway, http, tenant_slug):
    _, session = await _register_and_login(http, auth_gateway, tenant_slug)
    status, answer = await _post(
        http, auth_gateway, "logout", {"refresh_token": session["refresh_token"]}, session["access_token"]
    )
    assert (status, answer["data"]["revoked"]) == (200, True)
    status, _ = await _post(http, auth_gateway, "refresh", {"refresh_token": session["refresh_token"]})
    assert status == 401
    status, _ = await _post(http, auth_gateway, "logout", {"refresh_token": "x" * 43})
    assert status == 401  # logout needs the access token


async def test_someone_elses_refresh_token_cannot_be_logged_out(auth_gateway, http, tenant_slug):
    _, alice = await _register_and_login(http, auth_gateway, tenant_slug)
    _, bob = await _register_and_login(http, auth_gateway, tenant_slug)
    status, answer = await _post(
        http, auth_gateway, "logout", {"refresh_token": alice["refresh_token"]}, bob["access_token"]
    )
    assert (status, answer["data"]["revoked"]) == (200, False)
    status, _ = await _post(http, auth_gateway, "refresh", {"refresh_token": alice["refresh_token"]})
    assert status == 200


async def test_a_token_from_login_books_seats(auth_gateway, http, tenant, make_event, pg):
    """The tokens /auth issues are the ones the booking routes accept (a buyer of the event's own
    storefront: another's would not find it)."""
    email = f"{unique('buyer')}@example.com"
    status, _ = await _post(
        http, auth_gateway, "register", {"tenant": tenant["slug"], "email": email, "password": PASSWORD}
    )
    assert status == 201
    # Booking waits for the address to be verified (tests/test_email_verification.py): done here directly.
    await pg.execute("UPDATE users SET email_verified_at = now() WHERE email = $1", email)
    _, login = await _post(
        http, auth_gateway, "login", {"tenant": tenant["slug"], "email": email, "password": PASSWORD}
    )
    session = login["data"]
    event = await make_event([("VIP", 5)], shows=1)
    show = next(iter(event.shows))
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["VIP"], "quantity": 1}
    async with http.post(
        f"{auth_gateway}/api/v1/bookings/reserve",
        json=body,
        headers={"Authorization": f"Bearer {session['access_token']}"},
    ) as r:
        assert r.status in (201, 202)  # no worker on this gateway's topics: 202 is the answer


async def test_login_is_rate_limited_by_the_spec(schema, new_topics, jwt_secret, http, tenant_slug):
    topics = await new_topics("auth-limit")
    settings = gateway_settings(schema, topics, jwt_secret, bcrypt_cost=4)
    async with running_gateway(settings) as url:
        statuses = [
            (
                await _post(
                    http,
                    url,
                    "login",
                    {"tenant": tenant_slug, "email": "x@example.com", "password": "whatever1"},
                )
            )[0]
            for _ in range(4)
        ]
    assert statuses == [401, 401, 401, 429]  # burst 3 per address
