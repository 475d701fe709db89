"""The System Admin of spec §1, outside every tenant: signs in without a tenant, creates tenants
(each a storefront) and lists them; a new tenant's first admin is invited by mail with a
single-use link, and accepts it here (setting their password) to start a session."""

from __future__ import annotations

import asyncio

from aiohttp import web

from booking_rush.contract import messages
from booking_rush.services.mail import MailError
from gateway import accounts, appkeys, errors, tenants
from gateway.access import system_admin_of
from gateway.audit_trail import audit
from gateway.middlewares import take_token
from gateway.params import int_query, path_uuid
from gateway.payloads import read_json_object
from gateway.responses import ok
from gateway.roundtrip.dispatch import dispatch
from gateway.routes.auth import account_subject, new_session


async def system_login(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    await take_token(request, "login", account_subject({"tenant": None, "email": body.get("email")}))
    pool = request.app[appkeys.PG_POOL]
    account = await accounts.system_login(
        pool, request.app[appkeys.PASSWORD_HASHER], email=body.get("email"), password=body.get("password")
    )
    return await new_session(request, account, "system.login")


async def create_tenant(request: web.Request) -> web.Response:
    admin = system_admin_of(request)
    new = tenants.parse_new_tenant(await read_json_object(request))
    tenant, token = await tenants.create_tenant(request.app[appkeys.PG_POOL], new, admin.user_id)
    # The token after '#': a browser does not send it to any server, nor does a proxy log it.
    link = f"{request.url.origin()}/invitation#token={token}"
    try:
        await request.app[appkeys.MAILER].send(
            new.admin_email,
            f"You are invited to run {new.name} on Booking Rush",
            f"{new.name} has a storefront on Booking Rush, and you are its first admin. Set your "
            f"password within {tenants.INVITATION_TTL.days} days with this link (it works once):\n\n"
            f"{link}\n\nYour organisation's sign-in name is: {new.slug}\n",
        )
    except MailError as exc:
        raise errors.ServiceUnavailable("the tenant was made but its invitation could not be mailed") from exc
    await audit(request, "tenant.created", "tenant", tenant["id"], actor_id=admin.user_id, slug=new.slug)
    return ok({**tenant, "invited": new.admin_email}, status=201)


async def list_tenants(request: web.Request) -> web.Response:
    system_admin_of(request)
    page = int_query(request, "page", 1, 1, 100_000)
    per_page = int_query(request, "per_page", 20, 1, 100)
    rows, total = await tenants.list_tenants(request.app[appkeys.PG_POOL], page, per_page)
    return ok(rows, meta={"page": page, "per_page": per_page, "total": total})


async def accept_invitation(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    pool = request.app[appkeys.PG_POOL]
    account = await tenants.accept_invitation(
        pool,
        request.app[appkeys.PASSWORD_HASHER],
        token=body.get("token"),
        password=body.get("password"),
        full_name=body.get("full_name"),
    )
    return await new_session(request, account, "tenant.admin_joined")


async def suspend_tenant(request: web.Request) -> web.Response:
    """Stop a tenant's sales and sessions: its users cannot sign in or refresh and their access
    tokens end at once (every gateway process); each of its published events is suspended in
    the sale Redis by a command through Kafka, so a reserve or payment applied after it is
    refused 403 TENANT_SUSPENDED (one already in Kafka too) and its waiting room closes saying
    why. Holds made run out or are paid; payments begun settle; refunds go on."""
    admin = system_admin_of(request)
    tenant_id = path_uuid(request, "tenant_id")
    app = request.app
    row = await tenants.set_status(app[appkeys.PG_POOL], tenant_id, "suspended")
    await app[appkeys.REVOCATIONS].revoke("tenant", tenant_id)
    applied, pending = await _set_sale_state(request, tenant_id, "suspended", admin.user_id)
    await audit(
        request, "tenant.suspended", "tenant", tenant_id, actor_id=admin.user_id, events=applied + pending
    )
    return ok({**row, "events_applied": applied, "events_pending": pending})


async def reactivate_tenant(request: web.Request) -> web.Response:
    """Sales resume (each event's room back to the mode it had), then sign-in opens again."""
    admin = system_admin_of(request)
    tenant_id = path_uuid(request, "tenant_id")
    pool = request.app[appkeys.PG_POOL]
    await tenants.get_tenant(pool, tenant_id)  # 404 before anything is sent
    applied, pending = await _set_sale_state(request, tenant_id, "active", admin.user_id)
    row = await tenants.set_status(pool, tenant_id, "active")
    await audit(
        request, "tenant.reactivated", "tenant", tenant_id, actor_id=admin.user_id, events=applied + pending
    )
    return ok({**row, "events_applied": applied, "events_pending": pending})


async def _set_sale_state(request: web.Request, tenant_id: str, state: str, user_id: str) -> tuple[int, int]:
    """One command per published event of the tenant, all sent at once; (applied, still in
    Kafka when the reply timeout ran out: applied when a worker gets to it)."""
    app = request.app
    events = await app[appkeys.PG_POOL].fetch(
        "SELECT e.id::text AS event_id, min(s.id::text) AS show_id FROM events e "
        "JOIN shows s ON s.event_id = e.id WHERE e.tenant_id = $1 AND e.status = 'published' GROUP BY e.id",
        tenant_id,
    )
    commands = [
        (
            row["show_id"],
            messages.sale_state_command(
                request_id=messages.new_request_id(row["event_id"]),
                event_id=row["event_id"],
                user_id=user_id,
                state=state,
                reason="tenant_suspended",
                reply_to=app[appkeys.GATEWAY_ID],
            ),
        )
        for row in events
    ]
    replies = await asyncio.gather(*(dispatch(app, show_id, command) for show_id, command in commands))
    pending = sum(reply is None for reply in replies)
    return len(replies) - pending, pending


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/system/auth/login", system_login, name="system_login")
    app.router.add_get("/api/v1/system/tenants", list_tenants, name="system_list_tenants")
    app.router.add_post("/api/v1/system/tenants", create_tenant, name="system_create_tenant")
    tenant = "/api/v1/system/tenants/{tenant_id}"
    app.router.add_post(f"{tenant}/suspend", suspend_tenant, name="system_suspend_tenant")
    app.router.add_post(f"{tenant}/reactivate", reactivate_tenant, name="system_reactivate_tenant")
    app.router.add_post("/api/v1/auth/invitations/accept", accept_invitation, name="accept_invitation")
