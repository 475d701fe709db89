"""Catalog endpoints for everyone (spec §4.3, §6.3): events, their shows, zones with live seats."""

from __future__ import annotations

from aiohttp import web

from gateway import appkeys, errors, event_store
from gateway.params import int_query, path_uuid, text_query
from gateway.responses import ok
from lua import keys


async def list_events(request: web.Request) -> web.Response:
    page = int_query(request, "page", 1, 1, 100_000)
    per_page = int_query(request, "per_page", 20, 1, 100)
    status = request.query.get("status", "published")
    if status not in event_store.PUBLIC_STATUSES:
        raise errors.ValidationError(
            "status must be published or cancelled", details={"status": list(event_store.PUBLIC_STATUSES)}
        )
    category = text_query(request, "category")

    async def load() -> list:
        return list(
            await event_store.list_events(
                request.app[appkeys.PG_POOL],
                statuses=(status,),
                category=category,
                page=page,
                per_page=per_page,
            )
        )

    events, total = await request.app[appkeys.CATALOG_CACHE].get_or_load(
        "events", [status, category, page, per_page], load
    )
    return ok(events, meta={"page": page, "per_page": per_page, "total": total})


async def _public_event(request: web.Request):
    row = await event_store.get_event(request.app[appkeys.PG_POOL], path_uuid(request, "event_id"))
    if row is None or row["status"] not in event_store.PUBLIC_STATUSES:
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

    event = await request.app[appkeys.CATALOG_CACHE].get_or_load("event", event_id, load)
    if event is None:
        raise errors.NotFound("no such event")
    return ok(event)


async def event_shows(request: web.Request) -> web.Response:
    row = await _public_event(request)
    return ok(await event_store.shows_of(request.app[appkeys.PG_POOL], str(row["id"])))


async def _live_zones(request: web.Request, event_id: str, zones: list) -> list[dict]:
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
    if show is None or show["status"] not in event_store.PUBLIC_STATUSES:
        raise errors.NotFound("no such show")
    event_id, show_id = str(show["event_id"]), str(show["id"])
    live = await _live_zones(request, event_id, zones)
    return ok({"show_id": show_id, "event_id": event_id, "zones": live})


async def event_availability(request: web.Request) -> web.Response:
    """Every show of an event with its zones and live seats in one answer, so a page listing
    events asks once per event rather than once per show."""
    event_id = path_uuid(request, "event_id")
    zones = await event_store.public_zones_of_event(request.app[appkeys.PG_POOL], event_id)
    if zones is None:
        raise errors.NotFound("no such event")
    shows: dict[str, dict] = {}
    for z, live in zip(zones, await _live_zones(request, event_id, zones), strict=True):
        show = shows.setdefault(
            str(z["show_id"]),
            {"show_id": str(z["show_id"]), "show_date": event_store.iso(z["show_date"]), "zones": []},
        )
        show["zones"].append(live)
    return ok({"event_id": event_id, "shows": list(shows.values())})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/events", list_events, name="list_events")
    app.router.add_get("/api/v1/events/{event_id}", get_event, name="get_event")
    app.router.add_get("/api/v1/events/{event_id}/shows", event_shows, name="event_shows")
    app.router.add_get(
        "/api/v1/events/{event_id}/availability", event_availability, name="event_availability"
    )
    app.router.add_get("/api/v1/shows/{show_id}/zones", show_zones, name="show_zones")
