"""Isolation, proven route by route (spec §2.3): tenant A's admin, organizer and buyer try every
authenticated operation of the OpenAPI document that takes an id, on tenant B's ids (event, show,
zone, booking, request, payment, room, user). Each answers 404 (or 403 where the role may not
use the route at all), and nothing of B changes. The table must name every such operation: a
route added to the document later fails this test until it is covered here."""

from __future__ import annotations

import pytest_asyncio

from gateway.auth import issue_access_token
from gateway.routes.openapi import DOCUMENT
from lua import keys
from ops.demo_pay import GOOD_CARD
from ops.seed_data import ensure_tenant, ensure_users
from tests.support import book, call, published_event, unique

ROLES = ("admin", "organizer", "user")


def operations_taking_an_id() -> set[tuple[str, str]]:
    """(METHOD, path) of every signed-in operation with an id in its path, query or body."""
    found = set()
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or not operation.get("security"):
                continue
            names = [p["name"] for p in operation.get("parameters", []) if p.get("in") in ("path", "query")]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            names += _property_names(body.get("schema", {}))
            if any(name.endswith("_id") for name in names):
                found.add((method.upper(), path))
    return found


def _property_names(schema: dict) -> list[str]:
    """A body schema's property names, through oneOf / anyOf / allOf."""
    names = list(schema.get("properties", {}))
    for alternatives in (schema.get(k, []) for k in ("oneOf", "anyOf", "allOf")):
        for alternative in alternatives:
            names += _property_names(alternative)
    return names


def table(b: dict) -> dict[tuple[str, str], dict]:
    """Each operation, on B's ids: the path's parameters, the query, the body."""
    event, show, zone = b["event_id"], b["show_id"], b["zone_id"]
    return {
        ("PUT", "/api/v1/events/{event_id}"): {"path": {"event_id": event}, "body": {"title": "Hijacked"}},
        ("DELETE", "/api/v1/events/{event_id}"): {"path": {"event_id": event}},
        ("PUT", "/api/v1/shows/{show_id}/zones/{zone_id}"): {
            "path": {"show_id": show, "zone_id": zone},
            "body": {"seats": 1},
        },
        ("PUT", "/api/v1/admin/users/{user_id}"): {
            "path": {"user_id": b["buyer"]},
            "body": {"disabled": True},
        },
        ("GET", "/api/v1/admin/events/{event_id}/room"): {"path": {"event_id": event}},
        ("PUT", "/api/v1/admin/events/{event_id}/room"): {
            "path": {"event_id": event},
            "body": {"mode": "closed"},
        },
        ("GET", "/api/v1/admin/events/{event_id}/room/patterns"): {"path": {"event_id": event}},
        ("POST", "/api/v1/admin/events/{event_id}/room/revocations"): {
            "path": {"event_id": event},
            "body": {"user_id": b["buyer"]},
        },
        ("POST", "/api/v1/queue/join"): {"body": {"event_id": event}},
        ("GET", "/api/v1/queue/status"): {"query": {"event_id": event}},
        ("POST", "/api/v1/queue/leave"): {"body": {"event_id": event}},
        ("POST", "/api/v1/queue/notify"): {"body": {"event_id": event, "email": True}},
        ("DELETE", "/api/v1/queue/notify"): {"query": {"event_id": event}},
        ("POST", "/api/v1/bookings/reserve"): {
            "body": {"event_id": event, "show_id": show, "zone_id": zone, "quantity": 1}
        },
        ("POST", "/api/v1/bookings/{booking_id}/cancel"): {"path": {"booking_id": b["booking_id"]}},
        ("GET", "/api/v1/bookings/{booking_id}"): {"path": {"booking_id": b["booking_id"]}},
        ("GET", "/api/v1/bookings/requests/{request_id}"): {"path": {"request_id": b["request_id"]}},
        ("POST", "/api/v1/bookings/{booking_id}/confirm"): {"path": {"booking_id": b["booking_id"]}},
        ("POST", "/api/v1/payments"): {
            "body": {"booking_id": b["paying_booking_id"], "method": "card", "details": GOOD_CARD}
        },
        ("GET", "/api/v1/payments/{payment_id}"): {"path": {"payment_id": b["payment_id"]}},
        ("POST", "/api/v1/payments/{payment_id}/refund"): {"path": {"payment_id": b["payment_id"]}},
        ("POST", "/api/v1/admin/payments/{payment_id}/refund/approve"): {
            "path": {"payment_id": b["payment_id"]}
        },
        ("POST", "/api/v1/bookings/quote"): {
            "body": {
                "event_id": event,
                "show_id": show,
                "zone_id": zone,
                "quantity": 1,
                "promo_code": "B-CODE-123",
            }
        },
        ("GET", "/api/v1/events/{event_id}/pricing"): {"path": {"event_id": event}},
        ("GET", "/api/v1/events/{event_id}/promo-codes"): {"path": {"event_id": event}},
        ("POST", "/api/v1/events/{event_id}/promo-codes"): {
            "path": {"event_id": event},
            "body": {"code": "HIJACKED-CODE", "kind": "percent", "percent": 100},
        },
        ("PATCH", "/api/v1/events/{event_id}/promo-codes/{code}"): {
            "path": {"event_id": event, "code": "B-CODE-123"},
            "body": {"status": "paused"},
        },
        ("PUT", "/api/v1/events/{event_id}/zones/{zone_id}/early-bird"): {
            "path": {"event_id": event, "zone_id": zone},
            "body": {"kind": "percent", "percent": 100, "seats": 20},
        },
        ("DELETE", "/api/v1/events/{event_id}/zones/{zone_id}/early-bird"): {
            "path": {"event_id": event, "zone_id": zone}
        },
        ("PUT", "/api/v1/events/{event_id}/bundles"): {
            "path": {"event_id": event},
            "body": {"tiers": [{"min_quantity": 2, "percent": 100}]},
        },
        ("POST", "/api/v1/admin/payments/{payment_id}/refund/refuse"): {
            "path": {"payment_id": b["payment_id"]},
            "body": {"reason": "hijacked"},
        },
        ("GET", "/api/v1/admin/events/{event_id}/refunds"): {"path": {"event_id": event}},
        ("GET", "/api/v1/admin/events/{event_id}/cancellation"): {"path": {"event_id": event}},
        ("POST", "/api/v1/bookings/{booking_id}/voucher"): {
            "path": {"booking_id": b["booking_id"]},
            "body": {"code": "V-ABCDEFGHJKLM"},
        },
        ("POST", "/api/v1/system/tenants/{tenant_id}/suspend"): {"path": {"tenant_id": b["tenant_id"]}},
        ("POST", "/api/v1/system/tenants/{tenant_id}/reactivate"): {"path": {"tenant_id": b["tenant_id"]}},
    }


@pytest_asyncio.fixture(loop_scope="session")
async def tenant_b(pg, sale_redis, gateway_url, http, jwt_secret, room):
    """Tenant B: an organizer, a published event in a waiting room with a promo code, a buyer in
    line holding one booking and paying for another."""
    async with pg.acquire() as conn:
        tenant_id = await ensure_tenant(conn, unique("b-"), "Tenant B")
        organizer, buyer = await ensure_users(
            conn, tenant_id, [f"{unique('o')}@b.test", f"{unique('u')}@b.test"]
        )
        await conn.execute("UPDATE users SET role = 'organizer' WHERE id = $1", organizer)
    event = await published_event(
        pg, sale_redis, {"tenant_id": tenant_id, "organizer_id": organizer}, [("GA", 20)], 1
    )
    show = next(iter(event.shows))
    zone = event.shows[show]["GA"]
    token = issue_access_token(jwt_secret, user_id=buyer, tenant_id=tenant_id)
    body = {"event_id": event.event_id, "show_id": show, "zone_id": zone, "quantity": 1}
    held, paying = [(await book(http, gateway_url, token, body))[1]["data"] for _ in range(2)]
    status, payment = await call(
        http,
        "POST",
        f"{gateway_url}/api/v1/payments",
        token,
        {"booking_id": paying["booking_id"], "method": "card", "details": GOOD_CARD},
    )
    assert status in (201, 202), payment
    payment_id = payment["data"].get("id") or payment["data"].get("payment_id")
    organizer_token = issue_access_token(jwt_secret, user_id=organizer, tenant_id=tenant_id, role="organizer")
    status, code = await call(
        http,
        "POST",
        f"{gateway_url}/api/v1/events/{event.event_id}/promo-codes",
        organizer_token,
        {"code": "B-CODE-123", "kind": "percent", "percent": 10},
    )
    assert status == 201, code
    results = await sale_redis.keys(keys.request_result(event.event_id, "*"))
    await room.configure(event.event_id, {"mode": "paused"})
    await call(http, "POST", f"{gateway_url}/api/v1/queue/join", token, {"event_id": event.event_id})
    return {
        "tenant_id": tenant_id,
        "event_id": event.event_id,
        "show_id": show,
        "zone_id": zone,
        "buyer": buyer,
        "booking_id": held["booking_id"],
        "paying_booking_id": paying["booking_id"],
        "payment_id": payment_id,
        "request_id": results[0].decode().rsplit(":", 1)[-1],
    }


async def snapshot(pg, sale_redis, b: dict) -> dict:
    """What of B an intruder could change."""
    zone = keys.zone(b["event_id"], b["show_id"], b["zone_id"])
    return {
        "event": dict(
            await pg.fetchrow("SELECT title, status, updated_at FROM events WHERE id = $1", b["event_id"])
        ),
        "tenant": await pg.fetchval("SELECT status FROM tenants WHERE id = $1", b["tenant_id"]),
        "buyer": dict(await pg.fetchrow("SELECT role, disabled_at FROM users WHERE id = $1", b["buyer"])),
        "zone": await sale_redis.hgetall(zone),
        "room": await sale_redis.hgetall(keys.room(b["event_id"], "config")),
        "line": await sale_redis.zrange(keys.room(b["event_id"], "waiting"), 0, -1),
        "notify": await sale_redis.hgetall(keys.room(b["event_id"], "notify")),
        "held": await sale_redis.hgetall(keys.hold(b["event_id"], b["booking_id"])),
        "paying": await sale_redis.hgetall(keys.hold(b["event_id"], b["paying_booking_id"])),
        "payment": await sale_redis.hgetall(keys.payment(b["event_id"], b["payment_id"])),
        "promo codes": await sale_redis.hgetall(keys.promos(b["event_id"])),
        "bundles": await sale_redis.hget(keys.event_meta(b["event_id"]), "bundles"),
    }


async def test_every_route_taking_an_id_is_in_the_table(tenant_b):
    assert operations_taking_an_id() == set(table(tenant_b))


async def test_tenant_a_cannot_reach_tenant_bs_things_by_id(
    gateway_url, http, tenant_b, make_users, token_for, pg, sale_redis
):
    before = await snapshot(pg, sale_redis, tenant_b)
    people = await make_users(len(ROLES))  # tenant A: the session's
    tokens = {}
    for role, user in zip(ROLES, people, strict=True):
        await pg.execute("UPDATE users SET role = $2 WHERE id = $1", user, role)
        tokens[role] = token_for(user, role=role)
    answers = {}
    for (method, path), request in table(tenant_b).items():
        url = gateway_url + path.format(**request.get("path", {}))
        for role, token in tokens.items():
            status, answer = await call(
                http, method, url, token, request.get("body"), params=request.get("query")
            )
            answers[(method, path, role)] = (status, answer.get("error", {}).get("code"))
    let_through = {k: v for k, v in answers.items() if v not in ((404, "NOT_FOUND"), (403, "FORBIDDEN"))}
    assert let_through == {}
    assert await snapshot(pg, sale_redis, tenant_b) == before
