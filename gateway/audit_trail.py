"""The gateway's audit hook (spec §8.5): one call a route makes after an action it must account for.

An audit row is a record of what happened, not part of it: the action has already succeeded when
the route calls `audit`, so a failed or slow insert is logged and the answer goes out regardless.
Callers pass only what identifies the action (ids, field names, new settings), never passwords,
tokens or other secrets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from booking_rush.contract.audit import AuditEntry
from booking_rush.services.audit_log import record
from gateway import appkeys
from gateway.auth import PRINCIPAL
from gateway.middlewares import client_address

log = logging.getLogger("gateway.audit")

# An audit insert waits this long at most (a busy pool must not hold the caller's answer).
AUDIT_TIMEOUT_S = 2.0


async def audit(
    request: web.Request,
    action: str,
    entity_type: str,
    entity_id: str,
    *,
    actor_id: str | None = None,
    tenant_id: str | None = None,
    **details: Any,
) -> None:
    """Record `action` on `entity_type`/`entity_id`. The actor and tenant default to the request's
    verified principal (a login, which has none yet, names them); the request id and client
    address go into the details, to tie the row to the access log."""
    principal = request.get(PRINCIPAL)
    if principal is not None:
        actor_id = actor_id or principal.user_id
        tenant_id = tenant_id or principal.tenant_id
    entry = AuditEntry(
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        tenant_id=tenant_id,
        actor_id=actor_id,
        details={**details, "request_id": request.get(appkeys.REQUEST_ID), "ip": client_address(request)},
    )
    try:
        async with asyncio.timeout(AUDIT_TIMEOUT_S):
            await record(request.app[appkeys.PG_POOL], [entry])
    except Exception:
        log.exception("audit row not written: %s %s %s", action, entity_type, entity_id)
