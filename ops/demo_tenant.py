"""The demo's tenant, made the way a deployment makes one: a system admin (made as `python -m
ops.sysadmin create` makes one) signs in at /api/v1/system/auth/login and creates the tenant
through /api/v1/system/tenants; the invitation mailed to its admin (the demo's own SMTP sink) is
accepted at /api/v1/auth/invitations/accept. On a later run the tenant is there already (409)."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from ops import sysadmin
from ops.config import StackConfig

SYSTEM_ADMIN = "operator@demo.test"


async def tenant_through_the_api(
    cfg: StackConfig,
    base: str,
    mailbox,
    *,
    slug: str,
    name: str,
    admin_email: str,
    password: str,
    bcrypt_cost: int,
) -> str:
    """ "created" (through the API, its admin invited and signed up) or "existing"."""
    await sysadmin.create(cfg.database_url, SYSTEM_ADMIN, password, bcrypt_cost)  # None: made before
    async with aiohttp.ClientSession() as http:
        login = {"email": SYSTEM_ADMIN, "password": password}
        async with http.post(f"{base}/api/v1/system/auth/login", json=login) as answer:
            answer.raise_for_status()
            token = (await answer.json())["data"]["access_token"]
        tenant = {"name": name, "slug": slug, "admin_email": admin_email}
        headers = {"Authorization": f"Bearer {token}"}
        async with http.post(f"{base}/api/v1/system/tenants", json=tenant, headers=headers) as answer:
            if answer.status == 409:
                return "existing"
            answer.raise_for_status()
        arrived = await asyncio.to_thread(
            mailbox.wait_until, lambda mails: any(m["To"] == admin_email for m in mails), 30
        )  # (the mail is sent before the 201: at once, in practice)
        if not arrived:
            raise RuntimeError(f"no invitation reached {admin_email}")
        mail = next(m for m in mailbox.messages if m["To"] == admin_email)
        link = re.search(r"/invitation#token=([A-Za-z0-9_-]+)", mail.get_payload(decode=True).decode())
        accept = {"token": link.group(1), "password": password, "full_name": "Demo Admin"}
        async with http.post(f"{base}/api/v1/auth/invitations/accept", json=accept) as answer:
            answer.raise_for_status()
    return "created"
