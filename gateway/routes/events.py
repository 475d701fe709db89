"""Events (spec §4.3, §6.3, §2.1.2): what anyone may read (published and cancelled events,
their shows, zones with live seats) and what their organizers do (create, edit, publish,
cancel, delete a draft, change a zone's seats).

Organizers manage only their own tenant's events (admins too, any of their tenant's): another
tenant's event answers 404, as if it did not exist. Publishing puts the zones on sale, and
editing a published event refreshes prices and the per-user limit, through a load_inventory
command a worker applies (workers/inventory.py: a live counter is never overwritten).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from booking_rush.contract import messages
from gateway import appkeys, errors, event_input, event_store, tenants
from gateway.access import manager_of
from gateway.audit_trail import audit
from gateway.auth import Principal, current_principal
from gateway.params import int_query, path_uuid, text_query
from gateway.payloads import read_json_object
from gateway.responses import ok
from gateway.results import render_result
from gateway.roundtrip.dispatch import (
    Sent,
    accepted,
    answer_of,
    dispatch,
    pending_answer,
    reply_channel_ready,
    send,
)
from lua import keys

TRANSITIONS = {"draft": {"published", "cancelled"}, "published": {"cancelled"}, "cancelled": set()}
# The audit action of an edit that moves the status; an edit that keeps it is "event.updated".
STATUS_ACTIONS = {"published": "event.published", "cancelled": "event.cancelled"}


async def list_events(request: web.Request) -> web.Response:
    page = int_query(request, "page", 1, 1, 100_000)
    per_page = int_query(request, "per_page", 20, 1, 100)
    status = request.query.get("status", "published")
    if status not in event_store.PUBLIC_STATUSES:
        raise errors.ValidationError(
            "status must be published or cancelled", details={"status": list(event_store.PUBLIC_STATUSES)}
        )
    category = text_query(request, "category")
    tenant = text_query(request, "tenant")  # one storefront's events (its slug), or every one's
    if tenant is not None and await tenants.tenant_id_by_slug(request.app[appkeys.PG_POOL], tenant) is None:
        raise errors.NotFound("no such storefront")
    # Cancelled events are their own tenant's people's to see (event_store.is_visible).
    own = caller_tenant(request) if status == "cancelled" else None
    if status == "cancelled" and own is None:
        return ok([], meta={"page": page, "per_page": per_page, "total": 0})

    async def load() -> list:
        return list(
            await event_store.list_events(
                request.app[appkeys.PG_POOL],
                statuses=(status,),
                category=category,
                page=page,
                per_page=per_page,
                tenant=tenant,
                tenant_id=own,
            )
        )

    events, total = await request.app[appkeys.LISTING_CACHE].get_or_load(
        "events", [status, category, page, per_page, tenant, own], load
    )
    return ok(events, meta={"page": page, "per_page": per_page, "total": total})


def caller_tenant(request: web.Request) -> str | None:
    """The tenant of whoever asks, if they sent a valid token (public reads need none)."""
    if "Authorization" not in request.headers:
        return None
    try:
        return current_principal(request).tenant_id
    except errors.Unauthorized:
        return None


async def _public_event(request: web.Request):
    row = await event_store.get_event(request.app[appkeys.PG_POOL], path_uuid(request, "event_id"))
    if row is None or not event_store.is_visible(row["status"], row["tenant_id"], caller_tenant(request)):
        raise errors.NotFound("no such event")
    return row


async def get_event(request: web.Request) -> web.Response:
    event_id = path_uuid(request, "event_id")

    async def load() -> dict | None:
        pool = request.app[appkeys.PG_POOL]
        row = await event_store.get_event(pool, event_id)
        if row is None or row["status"] not in event_store.PUBLIC_STATUSES:
            return None
        return await event_store.event_detail(pool, row)

    event = await request.app[appkeys.LISTING_CACHE].get_or_load("event", event_id, load)
    if event is None or not event_store.is_visible(
        event["status"], event["tenant_id"], caller_tenant(request)
    ):
        raise errors.NotFound("no such event")
    return ok(event)


async def event_shows(request: web.Request) -> web.Response:
    row = await _public_event(request)
    return ok(await event_store.shows_of(request.app[appkeys.PG_POOL], str(row["id"])))


async def _live_zones(request: web.Request, event_id: str, zones: list, currency: str) -> list[dict]:
    """Zones as JSON with seats read live from the sale Redis (the truth during a sale), all in
    one pipeline; each zone record carries its `show_id`."""
    async with request.app[appkeys.SALE_REDIS].pipeline(transaction=False) as pipe:
        for z in zones:
            pipe.hget(keys.zone(event_id, str(z["show_id"]), str(z["id"])), "available")
        live = await pipe.execute()
    return [
        {
            "id": str(z["id"]),
            "name": z["name"],
            "price": f"{z['price']:.2f}",
            "currency": currency,
            "total_seats": z["total_seats"],
            # Not loaded into Redis yet (not on sale): the durable count.
            "available_seats": int(seats) if seats is not None else z["available_seats"],
        }
        for z, seats in zip(zones, live, strict=True)
    ]


async def show_zones(request: web.Request) -> web.Response:
    show, zones = await event_store.show_with_zones(
        request.app[appkeys.PG_POOL], path_uuid(request, "show_id")
    )
    if show is None or not event_store.is_visible(show["status"], show["tenant_id"], caller_tenant(request)):
        raise errors.NotFound("no such show")
    event_id, show_id = str(show["event_id"]), str(show["id"])
    live = await _live_zones(request, event_id, zones, show["currency"])
    return ok({"show_id": show_id, "event_id": event_id, "zones": live})


async def event_availability(request: web.Request) -> web.Response:
    """Every show of an event with its zones and live seats in one answer, so a page listing
    events asks once per event rather than once per show."""
    event_id = path_uuid(request, "event_id")
    zones = await event_store.public_zones_of_event(
        request.app[appkeys.PG_POOL], event_id, caller_tenant(request)
    )
    if zones is None:
        raise errors.NotFound("no such event")
    shows: dict[str, dict] = {}
    for z, live in zip(
        zones, await _live_zones(request, event_id, zones, zones[0]["currency"] if zones else ""), strict=True
    ):
        show = shows.setdefault(
            str(z["show_id"]),
            {"show_id": str(z["show_id"]), "show_date": event_store.iso(z["show_date"]), "zones": []},
        )
        show["zones"].append(live)
    return ok({"event_id": event_id, "shows": list(shows.values())})


async def _detail(pool, event_id: str) -> dict[str, Any]:
    return await event_store.event_detail(pool, await event_store.get_event(pool, event_id))


async def _own_event(request: web.Request, principal: Principal):
    row = await event_store.get_event(request.app[appkeys.PG_POOL], path_uuid(request, "event_id"))
    if row is None or str(row["tenant_id"]) != principal.tenant_id:
        raise errors.NotFound("no such event")  # another tenant's event does not exist for you
    return row


async def create_event(request: web.Request) -> web.Response:
    principal = manager_of(request)
    body = await read_json_object(request)
    pool = request.app[appkeys.PG_POOL]
    # Everything checked before a connection is taken (the category's lookup takes one of its own:
    # done inside, a burst of creations would hold every connection waiting for a second one).
    draft = event_input.new_event(body)
    category_id = await event_input.category_id(pool, body.get("category"), principal.tenant_id)
    async with pool.acquire() as conn:
        event_id, _ = await event_store.insert_event(
            conn,
            tenant_id=principal.tenant_id,
            organizer_id=principal.user_id,
            category_id=category_id,
            **draft,
        )
    event = await _detail(pool, event_id)
    await audit(request, "event.created", "event", event_id, title=event["title"], shows=len(event["shows"]))
    return ok(event, status=201)


async def update_event(request: web.Request) -> web.Response:
    principal = manager_of(request)
    row = await _own_event(request, principal)
    body = await read_json_object(request)
    pool = request.app[appkeys.PG_POOL]
    status = event_input.status(body, row["status"])
    if status != row["status"] and status not in TRANSITIONS.get(row["status"], set()):
        raise errors.InvalidTransition(f"an event cannot go from {row['status']} to {status!r}")
    if status in ("published", "cancelled"):
        reply_channel_ready(request.app)
    edit = event_input.edited(body, row)
    loading: Sent | None = None
    cancelling: Sent | None = None
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE events SET title = $2, description = $3, venue = $4, max_tickets_per_user = $5, "
            "status = $6, booking_window_minutes = $7, min_age = $8, updated_at = now() WHERE id = $1",
            row["id"],
            edit["title"],
            edit["description"],
            edit["venue"],
            edit["max_tickets_per_user"],
            status,
            edit["booking_window_minutes"],
            edit["min_age"],
        )
        if status == "published":
            # Seats go on sale (or prices and the limit change). The command is in Kafka before
            # the edit commits, so Kafka refusing it rolls the edit back (503, nothing changed).
            loading = await _send_inventory(request, conn, principal, str(row["id"]))
        if status == "cancelled" and row["status"] == "published":
            # Its sale ends in the sale Redis, in order with the reserves (lua/sale_state.lua);
            # from there every booking is settled. In Kafka before the status commits.
            cancelling = await _send_cancel(request, principal, str(row["id"]))
    if cancelling is not None:
        await answer_of(request.app, cancelling)  # once no reserve can succeed any more
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
        fields=[f for f in event_input.EDITABLE if f in body],
        status_from=row["status"],
        status_to=status,
    )
    return ok(await _detail(pool, str(row["id"])))


async def _send_cancel(request: web.Request, principal: Principal, event_id: str) -> Sent:
    command = messages.sale_state_command(
        request_id=messages.new_request_id(event_id),
        event_id=event_id,
        user_id=principal.user_id,
        state="cancelled",
        reason="event_cancelled",
        reply_to=request.app[appkeys.GATEWAY_ID],
    )
    sent = send(request.app, event_id, command)
    await accepted(request.app, sent)
    return sent


async def _send_inventory(request: web.Request, conn, principal: Principal, event_id: str) -> Sent | None:
    """The event's zones, prices and limit to a worker, acknowledged by Kafka (None: no zones)."""
    inventory = await event_store.inventory_of(conn, event_id)
    if inventory is None:
        return None
    command = messages.load_inventory_command(
        request_id=messages.new_request_id(event_id),
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
    principal = manager_of(request)
    row = await _own_event(request, principal)
    if row["status"] != "draft":
        raise errors.InvalidTransition("only a draft can be deleted; cancel a published event")
    await request.app[appkeys.PG_POOL].execute(
        "DELETE FROM events WHERE id = $1 AND status = 'draft'", row["id"]
    )
    # A draft was never on sale; its promo codes and bundle tiers may be in the sale Redis.
    event_id = str(row["id"])
    await request.app[appkeys.SALE_REDIS].delete(
        keys.promos(event_id), keys.promo_uses(event_id), keys.event_meta(event_id)
    )
    await audit(request, "event.deleted", "event", str(row["id"]), title=row["title"])
    return ok({"deleted": str(row["id"])})


async def change_zone_seats(request: web.Request) -> web.Response:
    """`{seats}`: a draft's zone changes in PostgreSQL; a published one through the same path as
    reservations (Kafka, then adjust_zone.lua), so it can never oversell."""
    principal = manager_of(request)
    show_id, zone_id = path_uuid(request, "show_id"), path_uuid(request, "zone_id")
    body = await read_json_object(request)
    seats = event_input.int_field(body, "seats", 0, 1_000_000, hint="0..1000000")
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
        request_id=messages.new_request_id(event_id),
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


async def _not_begun(redis, event_id: str) -> str:
    """Cancelled, no settling round yet: waiting for a payment worker, or (never on sale, a
    draft cancelled) nothing to settle."""
    return (
        "waiting" if await redis.hget(keys.event_meta(event_id), "cancelled") == b"1" else "nothing_to_settle"
    )


async def cancellation(request: web.Request) -> web.Response:
    """GET /api/v1/admin/events/{id}/cancellation: how settling a cancelled event's bookings goes
    (workers/payments/cancellation.py): counts by outcome, what is left, failures with reasons."""
    principal = manager_of(request)
    row = await _own_event(request, principal)
    event_id = str(row["id"])
    redis = request.app[appkeys.SALE_REDIS]
    raw = {k.decode(): v.decode() for k, v in (await redis.hgetall(keys.cancellation(event_id))).items()}
    if row["status"] != "cancelled":
        raise errors.NotFound("this event is not cancelled")
    return ok(
        {
            "event_id": event_id,
            "status": raw.get("status") or await _not_begun(redis, event_id),
            "bookings": int(raw.get("bookings", 0)),
            "left": await redis.scard(keys.cancellation_todo(event_id)),
            "outcomes": {k.split(":", 1)[1]: int(v) for k, v in raw.items() if k.startswith("outcome:")},
            "failures": [
                {"booking_id": k.split(":", 1)[1], "reason": v}
                for k, v in raw.items()
                if k.startswith("failure:")
            ],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get(
        "/api/v1/admin/events/{event_id}/cancellation", cancellation, name="event_cancellation"
    )
    app.router.add_get("/api/v1/events", list_events, name="list_events")
    app.router.add_get("/api/v1/events/{event_id}", get_event, name="get_event")
    app.router.add_get("/api/v1/events/{event_id}/shows", event_shows, name="event_shows")
    app.router.add_get(
        "/api/v1/events/{event_id}/availability", event_availability, name="event_availability"
    )
    app.router.add_get("/api/v1/shows/{show_id}/zones", show_zones, name="show_zones")
    app.router.add_put("/api/v1/shows/{show_id}/zones/{zone_id}", change_zone_seats, name="change_zone_seats")
    app.router.add_post("/api/v1/events", create_event, name="create_event")
    app.router.add_put("/api/v1/events/{event_id}", update_event, name="update_event")
    app.router.add_delete("/api/v1/events/{event_id}", delete_event, name="delete_event")
