"""Organizer endpoints (spec §2.1.2, §6.3): create, edit, publish, cancel and delete events.

Organizers manage only their own tenant's events (admins too, any of their tenant's): another
tenant's event answers 404, as if it did not exist. Publishing puts the zones on sale, and
editing a published event refreshes prices and the per-user limit, through a load_inventory
command a worker applies (workers/inventory.py: a live counter is never overwritten).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from booking_rush.contract import messages
from gateway import appkeys, errors, event_store
from gateway.audit_trail import audit
from gateway.auth import Principal, current_principal
from gateway.bookings import render_result
from gateway.dispatch import Sent, accepted, answer_of, dispatch, pending_answer, reply_channel_ready, send
from gateway.params import path_uuid
from gateway.payloads import read_json_object
from gateway.responses import ok

MANAGERS = {"organizer", "admin"}
TRANSITIONS = {"draft": {"published", "cancelled"}, "published": {"cancelled"}, "cancelled": set()}
EDITABLE = ("title", "description", "venue", "max_tickets_per_user", "booking_window_minutes", "min_age")
# The audit action of an edit that moves the status; an edit that keeps it is "event.updated".
STATUS_ACTIONS = {"published": "event.published", "cancelled": "event.cancelled"}


def _manager(request: web.Request) -> Principal:
    principal = current_principal(request)
    if principal.role not in MANAGERS:
        raise errors.Forbidden("only organizers and admins manage events")
    return principal


def _text(body: dict, name: str, *, required: bool = False, limit: int = 2000) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise errors.ValidationError(f"invalid {name}", details={name: f"1..{limit} characters"})
    return value.strip()


def _int_field(
    body: dict,
    name: str,
    low: int,
    high: int,
    *,
    default: int | None = None,
    nullable: bool = False,
    hint: str | None = None,
    where: str | None = None,
) -> int | None:
    """An integer field in low..high (`default` when absent; None allowed when `nullable`)."""
    value = body.get(name, default)
    if value is None and nullable:
        return None
    if type(value) is not int or not low <= value <= high:  # bool is an int subclass: refused too
        raise errors.ValidationError(f"invalid {name}", details={where or name: hint or f"{low}..{high}"})
    return value


def _limit(body: dict) -> int:
    return _int_field(body, "max_tickets_per_user", 1, 20, default=4)


def _window(body: dict) -> int:
    return _int_field(body, "booking_window_minutes", 0, 10_080, default=60, hint="0..10080 (a week)")


def _min_age(body: dict) -> int | None:
    return _int_field(body, "min_age", 1, 99, nullable=True, hint="1..99 or null")


def _zone(raw: Any, where: str) -> event_store.ZoneSpec:
    if not isinstance(raw, dict):
        raise errors.ValidationError("invalid zone", details={where: "an object"})
    name = _text(raw, "name", required=True, limit=100)
    try:
        price = Decimal(str(raw.get("price")))
    except InvalidOperation as exc:
        raise errors.ValidationError("invalid price", details={f"{where}.price": "a decimal"}) from exc
    if not price.is_finite() or price < 0 or price > 10**9 or price.as_tuple().exponent < -2:
        raise errors.ValidationError("invalid price", details={f"{where}.price": "0..1e9, 2 decimals"})
    seats = _int_field(raw, "seats", 1, 1_000_000, where=f"{where}.seats", hint="1..1000000")
    return event_store.ZoneSpec(name, price, seats)


def _shows(body: dict) -> list[event_store.ShowSpec]:
    raw = body.get("shows")
    if not isinstance(raw, list) or not 1 <= len(raw) <= 50:
        raise errors.ValidationError("invalid shows", details={"shows": "1..50 shows"})
    shows = []
    for i, show in enumerate(raw):
        where = f"shows[{i}]"
        if not isinstance(show, dict):
            raise errors.ValidationError("invalid show", details={where: "an object"})
        try:
            when = datetime.fromisoformat(str(show.get("show_date")))
        except ValueError as exc:
            raise errors.ValidationError(
                "invalid show_date", details={f"{where}.show_date": "ISO 8601"}
            ) from exc
        if when.tzinfo is None:
            raise errors.ValidationError(
                "show_date needs a time zone", details={f"{where}.show_date": "ISO 8601 with offset"}
            )
        if when <= datetime.now(UTC):
            raise errors.ValidationError(
                "show_date must be in the future", details={f"{where}.show_date": "future"}
            )
        zones = show.get("zones")
        if not isinstance(zones, list) or not 1 <= len(zones) <= 50:
            raise errors.ValidationError("invalid zones", details={f"{where}.zones": "1..50 zones"})
        specs = [_zone(z, f"{where}.zones[{j}]") for j, z in enumerate(zones)]
        if len({z.name for z in specs}) != len(specs):
            raise errors.ValidationError("zone names repeat", details={f"{where}.zones": "unique names"})
        shows.append(event_store.ShowSpec(when, specs))
    return shows


async def _category_id(pool, slug: Any) -> str | None:
    if slug is None:
        return None
    category = await pool.fetchval("SELECT id FROM categories WHERE slug = $1", str(slug)[:100])
    if category is None:
        raise errors.ValidationError("unknown category", details={"category": "an existing category slug"})
    return str(category)


async def _detail(pool, event_id: str) -> dict[str, Any]:
    return await event_store.event_detail(pool, await event_store.get_event(pool, event_id))


async def _own_event(request: web.Request, principal: Principal):
    row = await event_store.get_event(request.app[appkeys.PG_POOL], path_uuid(request, "event_id"))
    if row is None or str(row["tenant_id"]) != principal.tenant_id:
        raise errors.NotFound("no such event")  # another tenant's event does not exist for you
    return row


async def create_event(request: web.Request) -> web.Response:
    principal = _manager(request)
    body = await read_json_object(request)
    pool = request.app[appkeys.PG_POOL]
    async with pool.acquire() as conn:
        event_id, _ = await event_store.insert_event(
            conn,
            tenant_id=principal.tenant_id,
            organizer_id=principal.user_id,
            title=_text(body, "title", required=True, limit=200),
            description=_text(body, "description"),
            venue=_text(body, "venue", limit=200),
            max_per_user=_limit(body),
            booking_window_minutes=_window(body),
            min_age=_min_age(body),
            shows=_shows(body),
            category_id=await _category_id(pool, body.get("category")),
        )
    event = await _detail(pool, event_id)
    await audit(request, "event.created", "event", event_id, title=event["title"], shows=len(event["shows"]))
    return ok(event, status=201)


async def update_event(request: web.Request) -> web.Response:
    principal = _manager(request)
    row = await _own_event(request, principal)
    body = await read_json_object(request)
    pool = request.app[appkeys.PG_POOL]
    status = body.get("status", row["status"])
    if status != row["status"] and status not in TRANSITIONS.get(row["status"], set()):
        raise errors.InvalidTransition(f"an event cannot go from {row['status']} to {status!r}")
    if status == "published":
        reply_channel_ready(request.app)
    loading: Sent | None = None
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE events SET title = $2, description = $3, venue = $4, max_tickets_per_user = $5, "
            "status = $6, booking_window_minutes = $7, min_age = $8, updated_at = now() WHERE id = $1",
            row["id"],
            _text(body, "title", required=True, limit=200) if "title" in body else row["title"],
            _text(body, "description") if "description" in body else row["description"],
            _text(body, "venue", limit=200) if "venue" in body else row["venue"],
            _limit(body) if "max_tickets_per_user" in body else row["max_tickets_per_user"],
            status,
            _window(body) if "booking_window_minutes" in body else row["booking_window_minutes"],
            _min_age(body) if "min_age" in body else row["min_age"],
        )
        if status == "published":
            # Seats go on sale (or prices and the limit change). The command is in Kafka before
            # the edit commits, so Kafka refusing it rolls the edit back (503, nothing changed).
            loading = await _send_inventory(request, conn, principal, str(row["id"]))
    if loading is not None:
        # Answered once the seats are on sale. A late worker still applies the command (it has
        # no deadline); the answer stays the event, as the API document has it, and the event's
        # availability shows when its seats are on sale.
        await answer_of(request.app, loading)
    action = STATUS_ACTIONS[status] if status != row["status"] else "event.updated"
    await audit(
        request,
        action,
        "event",
        str(row["id"]),
        fields=[f for f in EDITABLE if f in body],
        status_from=row["status"],
        status_to=status,
    )
    return ok(await _detail(pool, str(row["id"])))


async def _send_inventory(request: web.Request, conn, principal: Principal, event_id: str) -> Sent | None:
    """The event's zones, prices and limit to a worker, acknowledged by Kafka (None: no zones)."""
    inventory = await event_store.inventory_of(conn, event_id)
    if inventory is None:
        return None
    command = messages.load_inventory_command(
        request_id=messages.new_public_id(event_id),
        event_id=event_id,
        user_id=principal.user_id,
        version=inventory.version,
        max_per_user=inventory.max_per_user,
        zones=inventory.zones,
        reply_to=request.app[appkeys.GATEWAY_ID],
    )
    sent = send(request.app, event_id, command)
    await accepted(request.app, sent)
    return sent


async def delete_event(request: web.Request) -> web.Response:
    principal = _manager(request)
    row = await _own_event(request, principal)
    if row["status"] != "draft":
        raise errors.InvalidTransition("only a draft can be deleted; cancel a published event")
    await request.app[appkeys.PG_POOL].execute(
        "DELETE FROM events WHERE id = $1 AND status = 'draft'", row["id"]
    )
    await audit(request, "event.deleted", "event", str(row["id"]), title=row["title"])
    return ok({"deleted": str(row["id"])})


async def change_zone_seats(request: web.Request) -> web.Response:
    """`{seats}`: a draft's zone changes in PostgreSQL; a published one through the same path as
    reservations (Kafka, then adjust_zone.lua), so it can never oversell."""
    principal = _manager(request)
    show_id, zone_id = path_uuid(request, "show_id"), path_uuid(request, "zone_id")
    body = await read_json_object(request)
    seats = _int_field(body, "seats", 0, 1_000_000, hint="0..1000000")
    pool = request.app[appkeys.PG_POOL]
    row = await pool.fetchrow(
        "SELECT z.total_seats, s.event_id, e.tenant_id, e.status FROM seat_zones z "
        "JOIN shows s ON s.id = z.show_id JOIN events e ON e.id = s.event_id WHERE z.id = $1 AND s.id = $2",
        zone_id,
        show_id,
    )
    if row is None or str(row["tenant_id"]) != principal.tenant_id:
        raise errors.NotFound("no such zone")
    if row["status"] == "cancelled":
        raise errors.InvalidTransition("a cancelled event's seats do not change")
    if row["status"] == "draft":
        delta = seats - row["total_seats"]
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE seat_zones SET total_seats = $2, available_seats = $2, "
                "updated_at = now() WHERE id = $1",
                zone_id,
                seats,
            )
            await conn.execute(
                "UPDATE shows SET total_seats = total_seats + $2, "
                "available_seats = available_seats + $2, updated_at = now() WHERE id = $1",
                show_id,
                delta,
            )
        await audit(
            request,
            "zone.seats_changed",
            "zone",
            zone_id,
            event_id=str(row["event_id"]),
            show_id=show_id,
            seats_from=row["total_seats"],
            seats_to=seats,
        )
        return ok({"total_seats": seats, "available_seats": seats, "taken": 0})
    reply_channel_ready(request.app)
    event_id = str(row["event_id"])
    command = messages.adjust_zone_command(
        request_id=messages.new_public_id(event_id),
        event_id=event_id,
        show_id=show_id,
        zone_id=zone_id,
        user_id=principal.user_id,
        total=seats,
        reply_to=request.app[appkeys.GATEWAY_ID],
    )
    reply = await dispatch(request.app, show_id, command)
    outcome = "pending" if reply is None else reply["result"]["status"]
    if outcome in ("pending", "adjusted"):  # a refusal (below_taken) changed nothing
        await audit(
            request,
            "zone.seats_changed",
            "zone",
            zone_id,
            event_id=event_id,
            show_id=show_id,
            seats_to=seats,
            outcome=outcome,
            command_id=command["request_id"],
        )
    if reply is None:
        return pending_answer(command["request_id"])
    return render_result(reply["result"], created_status=200)


def add_routes(app: web.Application) -> None:
    app.router.add_put("/api/v1/shows/{show_id}/zones/{zone_id}", change_zone_seats, name="change_zone_seats")
    app.router.add_post("/api/v1/events", create_event, name="create_event")
    app.router.add_put("/api/v1/events/{event_id}", update_event, name="update_event")
    app.router.add_delete("/api/v1/events/{event_id}", delete_event, name="delete_event")
