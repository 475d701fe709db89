"""Operators run the waiting room: an admin of the event's tenant reads and changes the room and
revokes passes, through the API and through `roomctl`; changes reach the gateway within a tick;
nobody else may, and bad settings are refused with the field named."""

from __future__ import annotations

import pytest_asyncio

from booking_rush.contract.messages import now_ms
from gateway.auth import issue_access_token
from tests.support import book, call, queue_call, reserve, run_module, wait_until


def room_url(base: str, event_id: str) -> str:
    return f"{base}/api/v1/admin/events/{event_id}/room"


@pytest_asyncio.fixture(loop_scope="session")
async def sale(make_event, make_users, token_for, token_with_role):
    event = await make_event([("GA", 40)], shows=1)
    (buyer,) = await make_users(1)
    show = next(iter(event.shows))
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["GA"], "quantity": 1}
    return {
        "event_id": event.event_id,
        "admin": await token_with_role("admin"),
        "buyer": buyer,
        "buyer_token": token_for(buyer),
        "body": body,
    }


async def test_an_admin_reads_and_changes_the_room_and_the_gateway_follows(gateway_url, http, sale):
    url = room_url(gateway_url, sale["event_id"])
    status, room = await call(http, "GET", url, sale["admin"])
    assert status == 200 and room["data"]["config"]["mode"] == "off"
    assert room["data"]["stats"]["seats_total"] == 40
    # Off: reserve needs no pass.
    status, _ = await book(http, gateway_url, sale["buyer_token"], sale["body"])
    assert status == 201

    changes = {"mode": "always", "rate_per_min": 1200, "max_active": 50, "pass_ttl_s": 120, "grace_s": 30}
    status, room = await call(http, "PUT", url, sale["admin"], changes)
    assert status == 200, room
    assert {k: room["data"]["config"][k] for k in changes} == changes
    assert room["data"]["stats"]["engaged"] is True
    assert room["data"]["stats"]["seats_taken"] == 1

    status, refused = await reserve(http, gateway_url, sale["buyer_token"], sale["body"])
    assert (status, refused["error"]["code"]) == (403, "QUEUE_PASS_REQUIRED")


async def test_an_admin_revokes_a_pass_and_reserve_refuses_it(gateway_url, http, sale, room):
    await room.configure(sale["event_id"], {"mode": "always", "rate_per_min": 6000, "grace_s": 600})
    await queue_call(http, gateway_url, sale["buyer_token"], "join", sale["event_id"])
    await room.admit(sale["event_id"], now_ms())
    _, standing = await queue_call(http, gateway_url, sale["buyer_token"], "status", sale["event_id"])
    queue_pass = standing["data"]["pass"]

    url = f"{room_url(gateway_url, sale['event_id'])}/revocations"
    status, revoked = await call(http, "POST", url, sale["admin"], {"user_id": sale["buyer"]})
    assert status == 200 and revoked["data"]["revoked"] is True, revoked

    async def refused() -> bool:
        status, answer = await reserve(
            http, gateway_url, sale["buyer_token"], sale["body"], {"X-Queue-Pass": queue_pass}
        )
        return status == 403 and answer["error"]["code"] == "QUEUE_PASS_INVALID"

    await wait_until(refused, timeout=5, what="the revocation to reach the gateway")
    # Revoking again: there is no live pass left to revoke.
    status, again = await call(http, "POST", url, sale["admin"], {"user_id": sale["buyer"]})
    assert (status, again["error"]["code"]) == (404, "NOT_FOUND")


async def test_only_admins_of_the_events_tenant_control_its_room(
    gateway_url, http, sale, token_with_role, new_tenant, jwt_secret
):
    url = room_url(gateway_url, sale["event_id"])
    for role in ("user", "organizer"):
        status, answer = await call(http, "GET", url, await token_with_role(role))
        assert (status, answer["error"]["code"]) == (403, "FORBIDDEN"), role
    foreign_admin = issue_access_token(
        jwt_secret, user_id=sale["buyer"], tenant_id=await new_tenant(), role="admin"
    )
    for method, body in (("GET", None), ("PUT", {"mode": "closed"})):
        status, answer = await call(http, method, url, foreign_admin, body)
        assert (status, answer["error"]["code"]) == (404, "NOT_FOUND"), method
    status, _ = await call(http, "GET", url, None)
    assert status == 401


async def test_an_admin_sees_the_addresses_that_took_most_places_and_how_new_the_accounts_in_line_are(
    gateway_url, http, sale, make_users, token_for, room, pg, token_with_role, new_tenant, jwt_secret
):
    event_id = sale["event_id"]
    await room.configure(event_id, {"mode": "paused"})
    people = await make_users(4)
    for person in people:  # every test request comes from 127.0.0.1
        await queue_call(http, gateway_url, token_for(person), "join", event_id)
    await queue_call(http, gateway_url, token_for(people[0]), "join", event_id)  # again: the same place
    await queue_call(http, gateway_url, token_for(people[1]), "status", event_id)  # a poll is not a join
    # One of them has had an account for a while.
    await pg.execute("UPDATE users SET created_at = now() - interval '2 hours' WHERE id = $1", people[3])

    url = f"{room_url(gateway_url, event_id)}/patterns"
    status, patterns = await call(http, "GET", url, sale["admin"])
    assert status == 200, patterns
    assert patterns["data"]["join_addresses"] == {
        "window_s": 3600,
        "addresses": 1,
        "busiest": [{"address": "127.0.0.1", "joins": 4}],  # places taken
    }
    assert patterns["data"]["in_line"] == {"checked": 4, "new_accounts_last_hour": 3}

    foreign_admin = issue_access_token(
        jwt_secret, user_id=people[0], tenant_id=await new_tenant(), role="admin"
    )
    assert (await call(http, "GET", url, foreign_admin))[0] == 404
    assert (await call(http, "GET", url, await token_with_role("organizer")))[0] == 403


async def test_bad_settings_are_refused_with_the_field_named(gateway_url, http, sale):
    url = room_url(gateway_url, sale["event_id"])
    cases = [
        ({"mode": "sometimes"}, "mode"),
        ({"rate_per_min": 0}, "rate_per_min"),
        ({"max_active": "10"}, "max_active"),
        ({"pass_ttl_s": 10**9}, "pass_ttl_s"),
        ({"oversubscription": 0.5}, "oversubscription"),
        ({"opens_at": "tomorrow"}, "opens_at"),
        ({"opens_at": "2026-12-01T10:00:00"}, "opens_at"),  # no time zone
        ({"colour": "red"}, "colour"),
    ]
    for body, field in cases:
        status, answer = await call(http, "PUT", url, sale["admin"], body)
        assert (status, answer["error"]["code"]) == (400, "VALIDATION_ERROR"), body
        assert field in answer["error"]["details"], answer
    _, room = await call(http, "GET", url, sale["admin"])
    assert room["data"]["config"]["mode"] == "off"  # nothing half-applied


async def roomctl(gateway_url: str, token: str, *args: str) -> tuple[int, str, str]:
    return await run_module(
        "ops.roomctl", *args, env={"BR_ACCESS_TOKEN": token, "BR_GATEWAY_URL": gateway_url}
    )


async def test_roomctl_shows_and_changes_a_room_from_the_shell(gateway_url, http, sale):
    event_id = sale["event_id"]
    code, out, err = await roomctl(
        gateway_url,
        sale["admin"],
        "set",
        event_id,
        "mode=paused",
        "rate_per_min=90",
        "opens_at=2030-01-01T09:00:00Z",
    )
    assert code == 0, err
    assert "paused" in out and "2030-01-01T09:00:00" in out
    code, out, _ = await roomctl(gateway_url, sale["admin"], "show", event_id)
    assert code == 0 and "rate_per_min            90" in out and "seats_total             40" in out
    # The API answers the same: the CLI changed the room, not just printed.
    _, room = await call(http, "GET", room_url(gateway_url, event_id), sale["admin"])
    assert room["data"]["config"]["mode"] == "paused" and room["data"]["config"]["shuffle_seed"]
    code, _, err = await roomctl(gateway_url, sale["admin"], "set", event_id, "mode=sometimes")
    assert code == 1 and "VALIDATION_ERROR" in err
    code, _, err = await roomctl(gateway_url, sale["buyer_token"], "show", event_id)
    assert code == 1 and "403 FORBIDDEN" in err
