"""An event's prices and promotions, for its organizers and admins (spec §2.2.2): promo codes
(create, list with their uses, pause and resume), a zone's early bird (set, end), the event's
bundle tiers, and a report of what each rule and code gave away.

Every change is a command through Kafka applied by lua/set_pricing.lua in the sale Redis, in
order with the reservations (a reserve applied after it sees it), and recorded on booking.events
(PostgreSQL's promo_codes and pricing_rules follow). What is shown live (rules, uses) is read
from the sale Redis; what was given away, from the bookings PostgreSQL keeps.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from booking_rush.contract import messages, pricing
from gateway import appkeys, errors, event_store, pricing_input
from gateway.access import manager_of
from gateway.audit_trail import audit
from gateway.event_store import iso_ms
from gateway.params import path_uuid
from gateway.payloads import read_json_object
from gateway.responses import ok
from gateway.results import render_result
from gateway.roundtrip.dispatch import dispatch, pending_answer, reply_channel_ready
from lua import keys

# What each discount gave, by rule and code: bookings holding seats (reserved, being paid) and
# sold ones apart. A breakdown's discounts are a list (an empty one may be stored as {}).
REPORT = """
SELECT d->>'kind' AS kind, coalesce(d->>'code', '') AS code,
       count(*) FILTER (WHERE b.status = 'confirmed') AS sold_bookings,
       coalesce(sum(b.quantity) FILTER (WHERE b.status = 'confirmed'), 0) AS sold_seats,
       coalesce(sum((d->>'amount_cents')::bigint) FILTER (WHERE b.status = 'confirmed'), 0) AS sold_off,
       count(*) FILTER (WHERE b.status IN ('reserved', 'paying')) AS held_bookings,
       coalesce(sum((d->>'amount_cents')::bigint) FILTER (WHERE b.status IN ('reserved', 'paying')), 0)
           AS held_off
FROM bookings b
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(b.price_breakdown->'discounts') = 'array'
         THEN b.price_breakdown->'discounts' ELSE '[]'::jsonb END) d
WHERE b.event_id = $1
GROUP BY 1, 2
ORDER BY 1, 2
"""


async def _managed_event(request: web.Request) -> dict[str, Any]:
    """The event in the path, if the caller (an organizer or admin) is of its tenant."""
    principal = manager_of(request)
    row = await event_store.get_event(request.app[appkeys.PG_POOL], path_uuid(request, "event_id"))
    if row is None or str(row["tenant_id"]) != principal.tenant_id:
        raise errors.NotFound("no such event")  # another tenant's event does not exist for you
    if row["status"] == "cancelled":
        raise errors.InvalidTransition("a cancelled event's prices do not change")
    return row


async def _apply(
    request: web.Request, event_id: str, key: str, what: str, change: dict
) -> dict | web.Response:
    """The change through Kafka to lua/set_pricing.lua; its result, or the 202 to poll."""
    reply_channel_ready(request.app)
    command = messages.set_pricing_command(
        request_id=messages.new_request_id(event_id),
        event_id=event_id,
        user_id=manager_of(request).user_id,
        what=what,
        change=change,
        reply_to=request.app[appkeys.GATEWAY_ID],
    )
    reply = await dispatch(request.app, key, command)
    if reply is None:
        return pending_answer(command["request_id"])
    result = reply["result"]
    if result["status"] == "unknown_zone":
        raise errors.InvalidTransition("the zone is not on sale yet: publish the event first")
    if result["status"] != "pricing_set":
        render_result(result, created_status=200)  # raises the refusal's error
    await audit(request, f"pricing.{what}", "event", event_id, change=change, version=result["version"])
    return result


def _code_view(definition: dict[str, Any], uses: int, currency: str) -> dict[str, Any]:
    value = definition["value"]
    return {
        "code": definition["code"],
        "name": definition["name"],
        "kind": definition["kind"],
        "percent": value if definition["kind"] == "percent" else None,
        "amount": pricing.money(value) if definition["kind"] == "amount" else None,
        "currency": currency,
        "starts_at": iso_ms(definition["starts_at"]) if definition["starts_at"] else None,
        "ends_at": iso_ms(definition["ends_at"]) if definition["ends_at"] else None,
        "show_id": definition["show_id"] or None,
        "zone_id": definition["zone_id"] or None,
        "max_uses": definition["max_uses"] or None,
        "per_user": definition["per_user"] or None,
        "min_quantity": definition["min_quantity"],
        "status": definition["status"],
        "uses": uses,
    }


async def _check_scope(request: web.Request, event_id: str, definition: dict[str, Any]) -> None:
    """A code limited to a show or zone names one of this event's."""
    if not definition["show_id"] and not definition["zone_id"]:
        return
    row = await request.app[appkeys.PG_POOL].fetchrow(
        "SELECT count(*) FILTER (WHERE s.id = $2) AS shows, count(*) FILTER (WHERE z.id = $3 "
        "AND ($2 IS NULL OR z.show_id = $2)) AS zones "
        "FROM shows s JOIN seat_zones z ON z.show_id = s.id WHERE s.event_id = $1",
        event_id,
        definition["show_id"] or None,
        definition["zone_id"] or None,
    )
    if definition["show_id"] and not row["shows"]:
        raise errors.ValidationError("invalid show_id", details={"show_id": "a show of this event"})
    if definition["zone_id"] and not row["zones"]:
        raise errors.ValidationError(
            "invalid zone_id", details={"zone_id": "a zone of this event (and show)"}
        )


async def create_promo_code(request: web.Request) -> web.Response:
    event = await _managed_event(request)
    event_id = str(event["id"])
    definition = pricing_input.promo_code(await read_json_object(request))
    await _check_scope(request, event_id, definition)
    result = await _apply(request, event_id, event_id, "promo", definition)
    if isinstance(result, web.Response):
        return result
    return ok(_code_view(result["rule"], 0, event["currency"]), status=201)


async def _live_codes(request: web.Request, event_id: str) -> tuple[dict[str, dict], dict[str, int]]:
    """The event's codes and their uses, from the sale Redis (the live truth); PostgreSQL's
    when the sale Redis holds none (an event archived, or never on sale)."""
    sale = request.app[appkeys.SALE_REDIS]
    try:
        async with sale.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.promos(event_id))
            pipe.hgetall(keys.promo_uses(event_id))
            raw_codes, raw_uses = await pipe.execute()
    except RedisError as exc:
        raise errors.RedisUnavailable("the sale store is unavailable; ask again shortly") from exc
    codes = {k.decode(): messages.decode(v) for k, v in raw_codes.items()}
    uses = {k.decode(): int(v) for k, v in raw_uses.items() if b"|" not in k}
    if not codes:
        rows = await request.app[appkeys.PG_POOL].fetch(
            "SELECT code, definition FROM promo_codes WHERE event_id = $1", event_id
        )
        codes = {r["code"]: messages.decode(r["definition"]) for r in rows}
    return codes, uses


async def list_promo_codes(request: web.Request) -> web.Response:
    event = await _managed_event(request)
    event_id = str(event["id"])
    codes, uses = await _live_codes(request, event_id)
    views = [_code_view(d, uses.get(code, 0), event["currency"]) for code, d in sorted(codes.items())]
    return ok({"event_id": event_id, "promo_codes": views})


async def change_promo_code(request: web.Request) -> web.Response:
    """PATCH {status: active | paused}: a paused code is refused as if it did not exist."""
    event = await _managed_event(request)
    event_id = str(event["id"])
    code = pricing.normal_code(request.match_info["code"])
    if not pricing.CODE_PATTERN.fullmatch(code):
        raise errors.NotFound("no such promo code")
    status = pricing_input.promo_status(await read_json_object(request))
    result = await _apply(request, event_id, event_id, "promo_status", {"code": code, "status": status})
    if isinstance(result, web.Response):
        return result
    uses = await request.app[appkeys.SALE_REDIS].hget(keys.promo_uses(event_id), code)
    return ok(_code_view(result["rule"], int(uses or 0), event["currency"]))


async def _zone_of(request: web.Request, event_id: str) -> dict[str, Any]:
    zone_id = path_uuid(request, "zone_id")
    row = await request.app[appkeys.PG_POOL].fetchrow(
        "SELECT z.id, z.show_id, (z.price * 100)::bigint AS price_cents FROM seat_zones z "
        "JOIN shows s ON s.id = z.show_id WHERE z.id = $1 AND s.event_id = $2",
        zone_id,
        event_id,
    )
    if row is None:
        raise errors.NotFound("no such zone in this event")
    return {"zone_id": zone_id, "show_id": str(row["show_id"]), "price_cents": row["price_cents"]}


def _early_bird_view(rule: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "show_id": rule["show_id"],
        "zone_id": rule["zone_id"],
        "active": bool(rule.get("on")),
        "kind": rule.get("kind"),
        "price": pricing.money(rule["value"]) if rule.get("kind") == "price" else None,
        "percent": rule["value"] if rule.get("kind") == "percent" else None,
        "currency": currency,
        "until": iso_ms(rule["until"]) if rule.get("until") else None,
        "seats": rule.get("seats") or None,
        "taken": rule.get("taken", 0),
    }


async def _early_bird_changed(request: web.Request, event, zone: dict, rule: dict) -> web.Response:
    change = {"show_id": zone["show_id"], "zone_id": zone["zone_id"], **rule}
    result = await _apply(request, str(event["id"]), zone["show_id"], "early_bird", change)
    if isinstance(result, web.Response):
        return result
    return ok(_early_bird_view(result["rule"], event["currency"]))


async def set_early_bird(request: web.Request) -> web.Response:
    """PUT {kind: price | percent, price | percent, until?, seats?}: the zone's early bird from
    now on (places already taken count towards `seats`)."""
    event = await _managed_event(request)
    zone = await _zone_of(request, str(event["id"]))
    rule = pricing_input.early_bird(await read_json_object(request), zone["price_cents"])
    return await _early_bird_changed(request, event, zone, rule)


async def end_early_bird(request: web.Request) -> web.Response:
    """DELETE: the zone's early bird ends now (holds made under it keep their price)."""
    event = await _managed_event(request)
    zone = await _zone_of(request, str(event["id"]))
    return await _early_bird_changed(request, event, zone, {"on": False})


async def set_bundles(request: web.Request) -> web.Response:
    """PUT {tiers: [{min_quantity, percent, name?}]}: the event's bundle tiers (empty: none)."""
    event = await _managed_event(request)
    event_id = str(event["id"])
    tiers = pricing_input.bundle_tiers(await read_json_object(request))
    result = await _apply(request, event_id, event_id, "bundles", {"tiers": tiers})
    if isinstance(result, web.Response):
        return result
    return ok({"event_id": event_id, "tiers": tiers})


async def pricing_overview(request: web.Request) -> web.Response:
    """GET: the event's rules as they stand in the sale Redis (early birds with the places
    taken, bundle tiers), and what each rule and code gave away (PostgreSQL's bookings)."""
    event = await _managed_event(request)
    event_id, currency = str(event["id"]), event["currency"]
    pool = request.app[appkeys.PG_POOL]
    zones = await pool.fetch(
        "SELECT z.id, z.show_id FROM seat_zones z JOIN shows s ON s.id = z.show_id WHERE s.event_id = $1 "
        "ORDER BY s.show_date, z.price DESC",
        event_id,
    )
    fields = ("eb_on", "eb_kind", "eb_value", "eb_until", "eb_seats", "eb_taken")
    try:
        async with request.app[appkeys.SALE_REDIS].pipeline(transaction=False) as pipe:
            for z in zones:
                pipe.hmget(keys.zone(event_id, str(z["show_id"]), str(z["id"])), *fields)
            pipe.hget(keys.event_meta(event_id), "bundles")
            *rules, bundles = await pipe.execute()
    except RedisError as exc:
        raise errors.RedisUnavailable("the sale store is unavailable; ask again shortly") from exc
    early_birds = []
    for z, (on, kind, value, until, seats, taken) in zip(zones, rules, strict=True):
        if kind is None:
            continue
        rule = {
            "show_id": str(z["show_id"]),
            "zone_id": str(z["id"]),
            "on": on == b"1",
            "kind": kind.decode(),
            "value": int(value),
            "until": int(until or 0),
            "seats": int(seats or 0),
            "taken": int(taken or 0),
        }
        early_birds.append(_early_bird_view(rule, currency))
    tiers = messages.decode(bundles) if bundles else []
    report = [
        {
            "kind": r["kind"],
            "code": r["code"] or None,
            "sold": {
                "bookings": r["sold_bookings"],
                "seats": r["sold_seats"],
                "given_away": pricing.money(r["sold_off"]),
            },
            "held": {"bookings": r["held_bookings"], "given_away": pricing.money(r["held_off"])},
        }
        for r in await pool.fetch(REPORT, event_id)
    ]
    return ok(
        {
            "event_id": event_id,
            "currency": currency,
            "early_birds": early_birds,
            "bundles": tiers if isinstance(tiers, list) else [],
            "report": report,
        }
    )


def add_routes(app: web.Application) -> None:
    event = "/api/v1/events/{event_id}"
    app.router.add_get(f"{event}/pricing", pricing_overview, name="pricing_overview")
    app.router.add_post(f"{event}/promo-codes", create_promo_code, name="create_promo_code")
    app.router.add_get(f"{event}/promo-codes", list_promo_codes, name="list_promo_codes")
    app.router.add_patch(f"{event}/promo-codes/{{code}}", change_promo_code, name="change_promo_code")
    app.router.add_put(f"{event}/zones/{{zone_id}}/early-bird", set_early_bird, name="set_early_bird")
    app.router.add_delete(f"{event}/zones/{{zone_id}}/early-bird", end_early_bird, name="end_early_bird")
    app.router.add_put(f"{event}/bundles", set_bundles, name="set_bundles")
