"""Behind the ingress: the client's address is read through the proxies we trust (and only
those), the account routes keep per-address limits whoever the bearer is, reset mails are
limited per account, and the audit log names the client, not the proxy."""

from __future__ import annotations

import pytest
import pytest_asyncio

from gateway.auth import issue_access_token
from gateway.client_address import ProxyConfigError, ProxyTrust
from tests.support import ACCOUNT_LIMITS_LIFTED, call, gateway_settings, running_gateway, unique

PROXY = ProxyTrust.parse("127.0.0.1/32, 10.0.0.0/8", hops=2)


@pytest_asyncio.fixture(loop_scope="session")
async def tenant_slug(new_tenant):
    return await new_tenant("proxied-")


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        ("127.0.0.1", {}, "127.0.0.1"),  # no header: the proxy itself
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),
        (
            "127.0.0.1",
            {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"},
            "203.0.113.7",
        ),  # left is the client's word
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7, 10.1.2.3"}, "203.0.113.7"),  # two trusted hops
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7, 10.1.2.3, 10.4.5.6"}, "10.1.2.3"),  # hops spent
        ("198.51.100.9", {"X-Forwarded-For": "203.0.113.7"}, "198.51.100.9"),  # not a proxy of ours
        ("127.0.0.1", {"X-Forwarded-For": "not-an-address"}, "127.0.0.1"),
        ("127.0.0.1", {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}, "2001:db8::1"),
        ("127.0.0.1", {"Forwarded": "for=203.0.113.7:5555", "X-Forwarded-For": "1.1.1.1"}, "203.0.113.7"),
    ],
)
def test_the_client_is_the_first_untrusted_hop(peer, headers, client):
    assert PROXY.client(peer, headers) == client


def test_by_default_nobody_is_trusted():
    assert ProxyTrust().client("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}) == "127.0.0.1"
    for bad in ("10.0.0.0/33", "proxy.example"):
        with pytest.raises(ProxyConfigError):
            ProxyTrust.parse(bad)
    with pytest.raises(ProxyConfigError):
        ProxyTrust.parse("10.0.0.0/8", hops=0)


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _login(http, url: str, tenant: str, email: str, address: str, token: str | None = None) -> int:
    body = {"tenant": tenant, "email": email, "password": "wrong pass 1"}
    return (await call(http, "POST", f"{url}/api/v1/auth/login", token, body, headers=_from(address)))[0]


async def test_one_clients_bad_logins_do_not_lock_out_another(
    schema, new_topics, jwt_secret, http, tenant_slug
):
    limits = ACCOUNT_LIMITS_LIFTED + ",login_address=3/3"
    topics = await new_topics("behind-proxy")
    behind = gateway_settings(
        schema, topics, jwt_secret, bcrypt_cost=4, rate_limits=limits, trusted_proxies=PROXY
    )
    async with running_gateway(behind) as url:
        attacker = [
            await _login(http, url, tenant_slug, f"{unique('a')}@x.test", "203.0.113.66") for _ in range(4)
        ]
        assert attacker == [401, 401, 401, 429]  # three a minute from that address, here
        assert await _login(http, url, tenant_slug, "someone@x.test", "198.51.100.20") == 401  # not 429
    # Trusting nobody (the default), the same headers mean nothing: everyone is 127.0.0.1.
    direct = gateway_settings(schema, topics, jwt_secret, bcrypt_cost=4, rate_limits=limits)
    async with running_gateway(direct) as url:
        for _ in range(3):
            await _login(http, url, tenant_slug, f"{unique('a')}@x.test", "203.0.113.66")
        assert await _login(http, url, tenant_slug, "someone@x.test", "198.51.100.20") == 429


async def test_a_bearer_token_does_not_buy_a_login_budget_of_its_own(
    schema, new_topics, jwt_secret, http, tenant_slug, make_users
):
    limits = ACCOUNT_LIMITS_LIFTED + ",login_address=3/3"
    settings = gateway_settings(
        schema, await new_topics("token-budget"), jwt_secret, bcrypt_cost=4, rate_limits=limits
    )
    users = await make_users(4)
    async with running_gateway(settings) as url:
        statuses = [
            await _login(
                http,
                url,
                tenant_slug,
                f"{unique('b')}@x.test",
                "127.0.0.1",
                issue_access_token(jwt_secret, user_id=u),
            )
            for u in users
        ]
    assert statuses == [401, 401, 401, 429]  # four accounts' tokens, one address, one budget


async def test_reset_mails_are_limited_per_account_from_any_address(
    schema, new_topics, jwt_secret, http, tenant_slug
):
    limits = ACCOUNT_LIMITS_LIFTED.replace("reset_mail=1000/1000/60", "reset_mail=3/3/3600")
    settings = gateway_settings(
        schema,
        await new_topics("reset-mail"),
        jwt_secret,
        bcrypt_cost=4,
        rate_limits=limits,
        trusted_proxies=PROXY,
    )
    body = {"tenant": tenant_slug, "email": f"{unique('victim')}@x.test"}
    async with running_gateway(settings) as url:
        statuses = [
            (
                await call(
                    http,
                    "POST",
                    f"{url}/api/v1/auth/forgot-password",
                    None,
                    body,
                    headers=_from(f"203.0.113.{i}"),
                )
            )[0]
            for i in range(1, 5)
        ]
        other = {**body, "email": f"{unique('other')}@x.test"}
        assert (await call(http, "POST", f"{url}/api/v1/auth/forgot-password", None, other))[0] == 200
    assert statuses == [200, 200, 200, 429]  # unknown or not, the account named gets three an hour


async def test_forgot_and_reset_have_per_address_policies_of_their_own(
    schema, new_topics, jwt_secret, http, tenant_slug
):
    limits = ACCOUNT_LIMITS_LIFTED + ",forgot_address=2/2,reset_address=2/2"
    settings = gateway_settings(
        schema, await new_topics("forgot-limit"), jwt_secret, bcrypt_cost=4, rate_limits=limits
    )
    async with running_gateway(settings) as url:
        forgot = [
            (
                await call(
                    http,
                    "POST",
                    f"{url}/api/v1/auth/forgot-password",
                    None,
                    {"tenant": tenant_slug, "email": f"{unique('f')}@x.test"},
                )
            )[0]
            for _ in range(3)
        ]
        reset = [
            (
                await call(
                    http,
                    "POST",
                    f"{url}/api/v1/auth/reset-password",
                    None,
                    {"token": "t" * 40, "password": "new pass 1"},
                )
            )[0]
            for _ in range(3)
        ]
    assert forgot == [200, 200, 429]
    assert reset == [401, 401, 429]


async def test_the_audit_log_names_the_client_not_the_proxy(
    schema, new_topics, jwt_secret, http, tenant_slug, pg
):
    settings = gateway_settings(
        schema,
        await new_topics("audit-ip"),
        jwt_secret,
        bcrypt_cost=4,
        rate_limits=ACCOUNT_LIMITS_LIFTED,
        trusted_proxies=PROXY,
    )
    email = f"{unique('audited')}@x.test"
    async with running_gateway(settings) as url:
        assert await _login(http, url, tenant_slug, email, "203.0.113.42") == 401
    ip = await pg.fetchval(
        "SELECT details->>'ip' FROM audit_logs WHERE action = 'user.login_failed' AND entity_id = $1", email
    )
    assert ip == "203.0.113.42"
