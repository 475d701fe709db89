"""Who may act on what: a tenant's admins, its organizers, a booking's owner. Another tenant's
things do not exist for the caller: the routes answer 404 for them, not 403."""

from __future__ import annotations

from aiohttp import web

from gateway import appkeys, errors, event_store
from gateway.auth import Principal, current_principal

MANAGERS = {"organizer", "admin"}


def admin_of(request: web.Request) -> Principal:
    """The caller, an admin (of their own tenant: every query they make is scoped to it)."""
    principal = current_principal(request)
    if principal.role != "admin":
        raise errors.Forbidden("only admins manage users")
    return principal


def system_admin_of(request: web.Request) -> Principal:
    """The caller, a system admin (outside every tenant)."""
    principal = current_principal(request)
    if principal.role != "system_admin":
        raise errors.Forbidden("only system admins manage tenants")
    return principal


def manager_of(request: web.Request) -> Principal:
    """The caller, an organizer or an admin (of their own tenant)."""
    principal = current_principal(request)
    if principal.role not in MANAGERS:
        raise errors.Forbidden("only organizers and admins manage events")
    return principal


async def may_manage(request: web.Request, event_id: str, owner_id: str) -> bool:
    """The owner, or an admin of the event's tenant, may see and change a booking."""
    principal = current_principal(request)
    if principal.user_id == owner_id:
        return True
    if principal.role != "admin":
        return False
    event = await event_store.get_event(request.app[appkeys.PG_POOL], event_id)
    return event is not None and str(event["tenant_id"]) == principal.tenant_id


async def may_approve(request: web.Request, event_id: str) -> bool:
    """Organizers and admins of the event's tenant (those who manage its events)."""
    principal = current_principal(request)
    if principal.role not in MANAGERS:
        raise errors.Forbidden("only an organizer or an admin approves refunds")
    event = await event_store.get_event(request.app[appkeys.PG_POOL], event_id)
    return event is not None and str(event["tenant_id"]) == principal.tenant_id
