"""Operators' control of an event's waiting room (admins, their own tenant's events): read and
change mode, rate, max_active, pass lifetime, grace and schedule; live stats; revoke a pass.

A change is written to the room's config in the sale Redis and announced on the room broadcast
(WaitingRoom.configure): every gateway process re-reads it at once, and admitters read the config
on every tick, so it takes effect everywhere within one tick.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from booking_rush.contract.messages import now_ms
from gateway import appkeys, errors, event_store
from gateway.access import admin_of
from gateway.audit_trail import audit
from gateway.event_store import iso_ms
from gateway.params import parse_uuid, path_uuid, uuid_value
from gateway.payloads import read_json_object
from gateway.responses import ok
from waiting_room.config import ConfigError, RoomConfig
from waiting_room.room import JOIN_PATTERN_WINDOW_S


async def _own_event(request: web.Request) -> str:
    admin = admin_of(request)
    event_id = path_uuid(request, "event_id")
    row = await event_store.get_event(request.app[appkeys.PG_POOL], event_id)
    if row is None or str(row["tenant_id"]) != admin.tenant_id:
        raise errors.NotFound("no such event")  # another tenant's event does not exist for you
    return event_id


def _config_json(config: RoomConfig) -> dict[str, Any]:
    return {
        "mode": config.mode,
        "rate_per_min": config.rate_per_min,
        "max_active": config.max_active,
        "pass_ttl_s": config.pass_ttl_s,
        "grace_s": config.grace_s,
        "oversubscription": config.oversubscription,
        "opens_at": iso_ms(config.opens_at_ms) if config.opens_at_ms else None,
        "shuffle_seed": config.shuffle_seed or None,
        "auto_active": config.auto_active,
        "auto_rps": config.auto_rps,
        "pow_bits": config.pow_bits,
        "claim_window_s": config.claim_window_s,
    }


async def _room_answer(request: web.Request, event_id: str, config: RoomConfig) -> web.Response:
    stats = await request.app[appkeys.WAITING_ROOM].stats(event_id, now_ms())
    return ok({"event_id": event_id, "config": _config_json(config), "stats": stats})


async def get_room(request: web.Request) -> web.Response:
    event_id = await _own_event(request)
    return await _room_answer(request, event_id, await request.app[appkeys.WAITING_ROOM].config(event_id))


async def update_room(request: web.Request) -> web.Response:
    event_id = await _own_event(request)
    changes = await read_json_object(request)
    try:
        config = await request.app[appkeys.WAITING_ROOM].configure(event_id, changes)
    except ConfigError as exc:
        raise errors.ValidationError(f"invalid {exc.field}", details={exc.field: exc.reason}) from exc
    # The settings asked for, and the whole config they produced (its shuffle seed is kept for audit).
    await audit(
        request, "room.configured", "event", event_id, fields=sorted(changes), config=_config_json(config)
    )
    return await _room_answer(request, event_id, config)


async def revoke_pass(request: web.Request) -> web.Response:
    event_id = await _own_event(request)
    user_id = uuid_value((await read_json_object(request)).get("user_id"), "user_id")
    room = request.app[appkeys.WAITING_ROOM]
    revoked = await room.revoke_user(event_id, user_id, now_ms())
    if revoked is None:
        raise errors.NotFound("that user holds no live pass for this event")
    await audit(request, "room.pass_revoked", "queue_pass", revoked, event_id=event_id, user_id=user_id)
    return ok({"event_id": event_id, "user_id": user_id, "pass_id": revoked, "revoked": True})


# An account this new, in line for a flash sale, is worth a look (many at once: a bot farm).
NEW_ACCOUNT_S = 3600


async def room_patterns(request: web.Request) -> web.Response:
    """What suggests bots in the line: the addresses that joined most, and how many of the
    people in line have accounts made within the last hour."""
    event_id = await _own_event(request)
    patterns = await request.app[appkeys.WAITING_ROOM].join_patterns(event_id)
    in_line = patterns.pop("in_line")
    new_accounts = await request.app[appkeys.PG_POOL].fetchval(
        "SELECT count(*) FROM users"
        " WHERE id = ANY($1::uuid[]) AND created_at > now() - make_interval(secs => $2)",
        [user for user in in_line if parse_uuid(user)],  # a line's members are account ids
        NEW_ACCOUNT_S,
    )
    return ok(
        {
            "event_id": event_id,
            "join_addresses": {"window_s": JOIN_PATTERN_WINDOW_S, **patterns},
            "in_line": {"checked": len(in_line), "new_accounts_last_hour": new_accounts},
        }
    )


def add_routes(app: web.Application) -> None:
    room = "/api/v1/admin/events/{event_id}/room"
    app.router.add_get(room, get_room, name="admin_get_room")
    app.router.add_put(room, update_room, name="admin_update_room")
    app.router.add_post(f"{room}/revocations", revoke_pass, name="admin_revoke_pass")
    app.router.add_get(f"{room}/patterns", room_patterns, name="admin_room_patterns")
