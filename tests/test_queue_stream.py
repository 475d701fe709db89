"""The live-position stream: a waiting user's place falls tick by tick and the pass arrives the
moment they are admitted; Last-Event-ID resumes without repeating; an SSE-only user counts as
present; bad tickets are refused; a sold-out room tells everyone at once.

Admission ticks are driven by the test, exactly as an admitter runs them (admit, then broadcast
the tick), with a clock that moves one second per tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import jwt
import pytest_asyncio

from booking_rush.contract.messages import now_ms
from gateway.queue_stream import StreamClient, StreamHub
from gateway.queue_ticket import TICKET_AUDIENCE, issue_queue_ticket
from lua import keys
from tests.support import (
    TEST_PASS_KEYS,
    event_stream,
    gateway_settings,
    queue_call,
    running_gateway,
    started_gateway,
    wait_until,
)
from waiting_room.passes import QueuePasses
from workers.admitter import tick_message

PASSES = QueuePasses(TEST_PASS_KEYS)


class Ticks:
    """Admission ticks one simulated second apart, broadcast as the admitter does."""

    def __init__(self, room, event_id: str) -> None:
        self.room, self.event_id = room, event_id
        # Starts in the past, so the passes' issued-at never lies ahead of the verifier's clock.
        self.now_ms = now_ms() - 30_000

    async def tick(self) -> dict:
        self.now_ms += 1000
        tick = await self.room.admit(self.event_id, self.now_ms)
        await self.room.broadcast(tick_message(self.event_id, self.now_ms, tick))
        return tick


@pytest_asyncio.fixture(loop_scope="session")
async def line(make_event, make_users, token_for, room, gateway_url, http):
    """An engaged room admitting one user per simulated second, and three users in line."""
    event = await make_event([("GA", 50)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "rate_per_min": 60, "grace_s": 600})
    users = await make_users(3)
    tokens = [token_for(u) for u in users]
    tickets = []
    for token in tokens:
        status, joined = await queue_call(http, gateway_url, token, "join", event.event_id)
        assert status == 200 and joined["data"]["state"] == "waiting", joined
        tickets.append(joined["data"]["queue_ticket"])
    ticks = Ticks(room, event.event_id)
    return {"event_id": event.event_id, "users": users, "tokens": tokens, "tickets": tickets, "ticks": ticks}


async def test_position_falls_each_tick_and_the_pass_arrives_on_admission(gateway_url, http, line):
    event_id, last = line["event_id"], line["users"][2]
    async with event_stream(http, gateway_url, event_id, line["tickets"][2]) as stream:
        _, kind, standing = await stream.next_event()
        assert (kind, standing["state"], standing["position"], standing["ahead"]) == (
            "standing",
            "waiting",
            3,
            2,
        )
        for expected_position in (2, 1):
            tick = await line["ticks"].tick()
            assert len(tick["admitted"]) == 1
            _, kind, standing = await stream.next_event()
            assert (kind, standing["position"], standing["waiting"]) == (
                "standing",
                expected_position,
                expected_position,
            )
            assert standing["eta_status"] == "estimate" and standing["eta_seconds"] is not None
        tick = await line["ticks"].tick()
        assert tick["admitted"] == [(last, tick["head"])]
        _, kind, admitted = await stream.next_event()
        assert kind == "admitted" and admitted["state"] == "admitted"
        issued = PASSES.verify(admitted["pass"], event_id, last, time.time())
        assert issued.expires_at_ms > time.time() * 1000
        assert await stream.ended()  # the stream's work is done
    # The pass pushed is the one a poll gives: same admission, same pass.
    _, polled = await queue_call(http, gateway_url, line["tokens"][2], "status", event_id)
    assert polled["data"]["pass"] == admitted["pass"]


async def test_last_event_id_resumes_without_repeating(gateway_url, http, line):
    event_id, ticket = line["event_id"], line["tickets"][2]
    async with event_stream(http, gateway_url, event_id, ticket) as stream:
        first_id, _, first = await stream.next_event()
    assert first["position"] == 3
    async with event_stream(http, gateway_url, event_id, ticket, last_id=first_id) as stream:
        await line["ticks"].tick()
        # Nothing changed between the two connections, so the first event after resuming is
        # the next change, not the standing the client already had.
        _, _, next_standing = await stream.next_event()
        assert next_standing["position"] == 2
    async with event_stream(http, gateway_url, event_id, ticket, last_id=first_id) as stream:
        _, _, current = await stream.next_event()  # the client missed a change: sent at once
        assert current["position"] == 2


async def test_a_user_with_only_an_open_stream_is_not_taken_for_gone(
    gateway_url, http, make_event, make_users, token_for, room
):
    event = await make_event([("GA", 50)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "rate_per_min": 600, "grace_s": 5})
    streaming, silent = await make_users(2)
    tickets = {}
    for user in (streaming, silent):
        _, joined = await queue_call(http, gateway_url, token_for(user), "join", event.event_id)
        tickets[user] = joined["data"]["queue_ticket"]
    ticks = Ticks(room, event.event_id)
    async with event_stream(http, gateway_url, event.event_id, tickets[streaming]) as stream:
        await stream.next_event()  # the stream is open (and this process's lease written)
        ticks.now_ms += 40_000  # both last polled 10 s before this tick: past the 5 s grace
        tick = await ticks.tick()
        assert [user for user, _ in tick["admitted"]] == [streaming]
        assert tick["abandoned"] == 1  # the silent one, without using a slot
        _, kind, _ = await stream.next_event()
        assert kind == "admitted"


async def test_bad_tickets_are_refused(gateway_url, http, line, jwt_secret):
    event_id, user = line["event_id"], line["users"][0]
    now = time.time()
    cases = {
        "forged": issue_queue_ticket("x" * 40, user, event_id, 600, now),
        "expired": issue_queue_ticket(jwt_secret, user, event_id, 600, now - 3600),
        "other event": issue_queue_ticket(jwt_secret, user, line["users"][1], 600, now),
        "an access token": jwt.encode({"sub": user, "exp": int(now) + 60}, jwt_secret, "HS256"),
        "garbage": "not-a-ticket",
        "missing": None,
    }
    for case, ticket in cases.items():
        params = {"event_id": event_id, **({"ticket": ticket} if ticket else {})}
        async with http.get(f"{gateway_url}/api/v1/queue/stream", params=params) as response:
            body = await response.json()
            assert (response.status, body["error"]["code"]) == (401, "QUEUE_TICKET_INVALID"), case


async def test_a_sold_out_room_tells_every_stream_at_once(gateway_url, http, line, sale_redis):
    event_id = line["event_id"]
    async with event_stream(http, gateway_url, event_id, line["tickets"][1]) as first:
        async with event_stream(http, gateway_url, event_id, line["tickets"][2]) as second:
            streams = [first, second]
            for stream in streams:
                await stream.next_event()
            for zone_key in await sale_redis.smembers(keys.zone_index(event_id)):
                await sale_redis.hset(zone_key, "available", 0)  # every seat sold, none held
            tick = await line["ticks"].tick()
            assert tick["state"] == "sold_out"
            for stream in streams:
                _, _, told = await stream.next_event()
                assert told["state"] == "sold_out"
                assert await stream.ended()


async def test_stream_opens_count_against_the_tickets_user_not_the_shared_address(
    schema, topics, jwt_secret, http, make_event, make_users, room
):
    """Many people in line may share one address (a campus, a mobile carrier): each stream open
    is limited per user, by the ticket's subject."""
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "grace_s": 600})
    users = await make_users(4)
    now = time.time()
    for user in users:
        await room.enter(event.event_id, user, int(now * 1000), "join")
    tickets = [issue_queue_ticket(jwt_secret, u, event.event_id, 600, now) for u in users]
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits="general=2/2")
    async with running_gateway(settings) as url:
        for ticket in tickets:  # four users, one address, a limit of two: all let in
            async with event_stream(http, url, event.event_id, ticket) as stream:
                await stream.next_event()
        statuses = []
        for _ in range(3):  # one user, three opens: the third is over that user's limit
            params = {"event_id": event.event_id, "ticket": tickets[0]}
            async with http.get(f"{url}/api/v1/queue/stream", params=params) as response:
                statuses.append(response.status)
        assert statuses[-1] == 429


async def test_a_stopping_gateway_ends_its_streams_at_once(schema, topics, jwt_secret, http, line):
    """SIGTERM ends the streams first (browsers reconnect, to another gateway, with their
    Last-Event-ID), rather than holding the gateway up until its 10 s shutdown timeout."""
    async with started_gateway(schema, topics, jwt_secret, http, BR_GATEWAY_PROCESSES="1") as (base, proc):
        async with event_stream(http, base, line["event_id"], line["tickets"][0]) as stream:
            _, name, _ = await stream.next_event()
            assert name == "standing"
            proc.terminate()
            assert await stream.ended(timeout=5)
        assert await asyncio.wait_for(proc.wait(), 5) == 0


async def test_the_stream_renews_its_ticket_before_it_runs_out(
    schema, topics, jwt_secret, http, make_event, make_users, room
):
    """A ticket lives minutes: once the one a stream opened with is half spent, the stream sends
    a fresh one, and a stream reopened after the first ran out opens with it."""
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "grace_s": 600})
    (user,) = await make_users(1)
    await room.enter(event.event_id, user, now_ms(), "join")
    ttl_s = 4
    settings = gateway_settings(
        schema,
        topics,
        jwt_secret,
        rate_limits="general=6000/1000",
        queue_ticket_ttl_s=ttl_s,
        stream_heartbeat_s=0.3,
    )
    first = issue_queue_ticket(jwt_secret, user, event.event_id, ttl_s, time.time())
    async with running_gateway(settings) as url:
        async with event_stream(http, url, event.event_id, first) as stream:
            kind, told = "", {}
            while kind != "ticket":
                _, kind, told = await stream.next_event(timeout=5)
        fresh = told["queue_ticket"]
        assert _ticket_claims(jwt_secret, fresh)["exp"] > _ticket_claims(jwt_secret, first)["exp"]

        async def refused(ticket: str) -> bool:
            params = {"event_id": event.event_id, "ticket": ticket}
            async with http.get(f"{url}/api/v1/queue/stream", params=params) as response:
                return response.status == 401

        await wait_until(lambda: refused(first), 10, "the first ticket to run out")
        async with event_stream(http, url, event.event_id, fresh) as stream:
            assert (await stream.next_event())[1] == "standing"


async def test_a_user_holds_a_few_streams_at_most(schema, topics, jwt_secret, http, line):
    """Each open stream holds memory in its gateway process: past the cap, 429; closing one
    makes room for another."""
    event_id, ticket = line["event_id"], line["tickets"][0]
    limits = "general=6000/1000"
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits=limits, streams_per_user=2)
    async with running_gateway(settings) as url, contextlib.AsyncExitStack() as held:
        for _ in range(2):
            stream = await held.enter_async_context(event_stream(http, url, event_id, ticket))
            await stream.next_event()
        params = {"event_id": event_id, "ticket": ticket}
        async with http.get(f"{url}/api/v1/queue/stream", params=params) as refused:
            assert (refused.status, (await refused.json())["error"]["code"]) == (429, "RATE_LIMITED")
            assert refused.headers["Retry-After"] == "3"
        await held.aclose()  # both closed: the process lets go of them

        async def opens_again() -> bool:
            async with http.get(f"{url}/api/v1/queue/stream", params=params) as answer:
                return answer.status == 200

        await wait_until(opens_again, 10, "a stream to open once the others closed")


async def test_leaving_frees_the_place_at_once_and_ends_the_stream(gateway_url, http, line):
    event_id, tokens, users = line["event_id"], line["tokens"], line["users"]
    async with event_stream(http, gateway_url, event_id, line["tickets"][1]) as stream:
        _, kind, standing = await stream.next_event()
        assert (kind, standing["ahead"]) == ("standing", 1)
        status, left = await queue_call(http, gateway_url, tokens[1], "leave", event_id)
        assert status == 200 and left["data"] == {"event_id": event_id, "state": "not_joined", "left": True}
        _, kind, standing = await stream.next_event()
        assert (kind, standing["state"]) == ("standing", "not_joined")
        assert await stream.ended()
    _, behind = await queue_call(http, gateway_url, tokens[2], "status", event_id)
    assert (behind["data"]["position"], behind["data"]["ahead"]) == (2, 1)  # was 3rd, 2 ahead
    _, gone = await queue_call(http, gateway_url, tokens[1], "status", event_id)
    assert gone["data"]["state"] == "not_joined"
    status, again = await queue_call(http, gateway_url, tokens[1], "leave", event_id)
    assert status == 200 and again["data"]["left"] is False  # leaving twice changes nothing
    admitted = [user for _ in range(2) for user, _ticket in (await line["ticks"].tick())["admitted"]]
    assert admitted == [users[0], users[2]]  # one a second, and the place left is not waited on


def _ticket_claims(secret: str, ticket: str) -> dict:
    return jwt.decode(
        ticket, secret, algorithms=["HS256"], audience=TICKET_AUDIENCE, options={"verify_exp": False}
    )


class HubSettings:
    stream_heartbeat_s, stream_correction_s, stream_correction_batch = 15.0, 5.0, 500
    jwt_secret, queue_ticket_ttl_s, streams_per_user = "hub-test-secret-" * 3, 600, 4


def test_a_derived_standing_is_one_plain_json_object():
    """The tick's fast path encodes what clients share once and adds each one's place: the
    result must be the same JSON object a client would get from the slow path."""
    hub = StreamHub(None, PASSES, "gw-test", HubSettings())
    client = StreamClient("u1", 10)
    hub.add("e1", client)
    tick = {"event_id": "e1", "state": "admitting", "head": 6, "waiting": 40, "recent": 30, "admitted": []}
    pace = {"rate_per_min": 30, "head_per_s": 0.0, "admits_per_s": 0.0, "since": 0, "limited": 0}
    hub.on_tick({**tick, "at_ms": 0, "pass_ttl_ms": 0, "pace": pace})
    chunk = client.take().decode()
    data = next(line[len("data: ") :] for line in chunk.splitlines() if line.startswith("data: "))
    assert data.count('"ahead"') == 1
    assert json.loads(data) == {
        "event_id": "e1",
        "state": "waiting",
        "waiting": 40,
        "admission_rate_per_min": 30,
        "position": 4,
        "ahead": 3,
        "eta_seconds": 8,  # 4 at 30 a minute, nothing measured yet: 8 s give or take a fifth
        "eta_range_seconds": [6, 10],
        "eta_status": "estimate",
    }
    # The slow path (a place read from Redis) says the same.
    rule = hub.rooms["e1"].rule
    assert hub._payload("e1", "waiting", 3, 40, 30, rule) == {**json.loads(data), "position": 4}


def test_a_paused_room_streams_paused_not_a_wait():
    hub = StreamHub(None, PASSES, "gw-test", HubSettings())
    client = StreamClient("u1", 10)
    hub.add("e1", client)
    pace = {"rate_per_min": 30, "head_per_s": 0.0, "admits_per_s": 0.0, "since": 0, "limited": 0}
    tick = {"event_id": "e1", "head": 6, "waiting": 40, "recent": 30, "admitted": []}
    tick.update(at_ms=0, pass_ttl_ms=0)
    hub.on_tick({**tick, "state": "admitting", "pace": pace})
    client.take()
    hub.on_tick({**tick, "state": "paused", "pace": None})
    chunk = client.take().decode()
    data = json.loads(next(line[len("data: ") :] for line in chunk.splitlines() if line.startswith("data: ")))
    assert (data["state"], data["ahead"]) == ("paused", 3)
    assert (data["eta_seconds"], data["eta_range_seconds"], data["eta_status"]) == (None, None, "paused")


async def test_a_stream_opening_while_the_gateway_stops_ends_at_once():
    hub = StreamHub(None, PASSES, "gw-test", HubSettings())
    open_before = StreamClient("u1", 10)
    hub.add("e1", open_before)
    hub.close_all()
    opening_after = StreamClient("u2", 11)
    hub.add("e1", opening_after)
    for client in (open_before, opening_after):
        assert client.ended
        await asyncio.wait_for(client.news(), 1)  # the handler is woken, to write and end
