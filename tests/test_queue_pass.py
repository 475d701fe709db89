"""Reserve behind an engaged waiting room: join, get admitted, poll for the pass, reserve with it;
every kind of bad pass refused with its code; a pass replaces the reserve rate limit."""

from __future__ import annotations

import pickle
import time
import uuid

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from booking_rush.contract.messages import now_ms
from gateway import appkeys
from lua import keys
from tests.support import (
    TEST_PASS_KEYS,
    book,
    gateway_settings,
    queue_call,
    reserve,
    running_gateway,
    running_gateway_app,
    wait_until,
)
from waiting_room.passes import AUDIENCE, ISSUER, PassKeys, QueuePasses

PASSES = QueuePasses(TEST_PASS_KEYS)


@pytest_asyncio.fixture(loop_scope="session")
async def engaged_sale(make_event, make_users, token_for, room):
    """An event whose waiting room is always engaged, and a buyer."""
    event = await make_event([("GA", 50)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "grace_s": 600, "rate_per_min": 60_000})
    (user,) = await make_users(1)
    show = next(iter(event.shows))
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["GA"], "quantity": 1}
    return {"room": room, "event_id": event.event_id, "user": user, "token": token_for(user), "body": body}


async def _admitted_pass(http, url, sale) -> str:
    status, joined = await queue_call(http, url, sale["token"], "join", sale["event_id"])
    assert status == 200 and joined["data"]["state"] == "waiting", joined
    await sale["room"].admit(sale["event_id"], now_ms())  # what an admitter does each tick
    status, standing = await queue_call(http, url, sale["token"], "status", sale["event_id"])
    assert standing["data"]["state"] == "admitted" and standing["data"]["pass"], standing
    return standing["data"]["pass"]


async def test_join_admit_and_reserve_with_the_pass(gateway_url, http, engaged_sale):
    sale = engaged_sale
    status, refused = await reserve(http, gateway_url, sale["token"], sale["body"])
    assert (status, refused["error"]["code"]) == (403, "QUEUE_PASS_REQUIRED")
    queue_pass = await _admitted_pass(http, gateway_url, sale)
    status, answer = await book(http, gateway_url, sale["token"], sale["body"], {"X-Queue-Pass": queue_pass})
    assert status == 201, answer
    # The same admission gives the same pass on every poll (and from every gateway process).
    _, again = await queue_call(http, gateway_url, sale["token"], "status", sale["event_id"])
    assert again["data"]["pass"] == queue_pass


def _claims(sale, **override) -> dict:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sale["user"],
        "evt": sale["event_id"],
        "jti": str(uuid.uuid4()),
    }
    claims.update({"iat": now, "exp": now + 300, **override})
    return claims


def _bad_pass(case: str, sale: dict) -> str:
    key = TEST_PASS_KEYS.signing
    if case == "forged signature":
        return jwt.encode(_claims(sale), Ed25519PrivateKey.generate(), "EdDSA", headers={"kid": "test-key"})
    if case == "alg none":
        return jwt.encode(_claims(sale), None, "none", headers={"kid": "test-key"})
    if case == "HS256 with the public key":
        return jwt.encode(_claims(sale), TEST_PASS_KEYS.public_b64(), "HS256", headers={"kid": "test-key"})
    if case == "unknown kid":
        return jwt.encode(_claims(sale), key, "EdDSA", headers={"kid": "other"})
    if case == "expired":
        return jwt.encode(
            _claims(sale, iat=0, exp=int(time.time()) - 1), key, "EdDSA", headers={"kid": "test-key"}
        )
    if case == "other event":
        return jwt.encode(_claims(sale, evt=str(uuid.uuid4())), key, "EdDSA", headers={"kid": "test-key"})
    if case == "other user":
        return jwt.encode(_claims(sale, sub=str(uuid.uuid4())), key, "EdDSA", headers={"kid": "test-key"})
    if case == "garbage":
        return "not-a-pass"
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("forged signature", "QUEUE_PASS_INVALID"),
        ("alg none", "QUEUE_PASS_INVALID"),
        ("HS256 with the public key", "QUEUE_PASS_INVALID"),
        ("unknown kid", "QUEUE_PASS_INVALID"),
        ("expired", "QUEUE_PASS_EXPIRED"),
        ("other event", "QUEUE_PASS_INVALID"),
        ("other user", "QUEUE_PASS_INVALID"),
        ("garbage", "QUEUE_PASS_INVALID"),
    ],
)
async def test_bad_passes_are_refused(gateway_url, http, engaged_sale, case, code):
    sale = engaged_sale
    headers = {"X-Queue-Pass": _bad_pass(case, sale)}
    status, answer = await reserve(http, gateway_url, sale["token"], sale["body"], headers)
    assert (status, answer["error"]["code"]) == (403, code), answer


async def test_a_revoked_pass_is_refused_by_every_gateway_process(gateway_url, http, engaged_sale):
    sale = engaged_sale
    queue_pass = await _admitted_pass(http, gateway_url, sale)
    checked = PASSES.verify(queue_pass, sale["event_id"], sale["user"], time.time())
    entry = await sale["room"].admission_of(sale["event_id"], sale["user"])
    assert (
        await sale["room"].revoke(
            sale["event_id"], sale["user"], checked.pass_id, checked.expires_at_ms, entry
        )
        == 1
    )

    async def refused() -> bool:
        status, answer = await reserve(
            http, gateway_url, sale["token"], sale["body"], {"X-Queue-Pass": queue_pass}
        )
        return status == 403 and answer["error"]["code"] == "QUEUE_PASS_INVALID"

    await wait_until(refused, timeout=5, what="the revocation to reach the gateway")  # pushed, not polled


async def test_the_jwks_publishes_the_pass_key(gateway_url, http):
    async with http.get(f"{gateway_url}/.well-known/jwks.json") as r:
        document = await r.json()
    (key,) = document["keys"]
    assert key["kid"] == "test-key" and key["x"] == TEST_PASS_KEYS.public_b64() and key["crv"] == "Ed25519"


async def test_a_pass_replaces_the_reserve_rate_limit(
    schema, topics, jwt_secret, workers, http, engaged_sale
):
    sale = engaged_sale
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits="general=6000/1000,reserve=1/1")
    async with running_gateway(settings) as url:
        queue_pass = await _admitted_pass(http, url, sale)
        with_pass = {"X-Queue-Pass": queue_pass}
        statuses = []
        for _ in range(3):  # three reserves where the ordinary limit allows one
            statuses.append((await book(http, url, sale["token"], sale["body"], with_pass))[0])
        assert statuses == [201, 201, 201]
        # A junk pass pays the ordinary limit (already spent by nobody yet: one, then 429).
        junk = {"X-Queue-Pass": "junk"}
        first = (await reserve(http, url, sale["token"], sale["body"], junk))[0]
        second = (await reserve(http, url, sale["token"], sale["body"], junk))[0]
        assert (first, second) == (403, 429)


def test_rotation_keeps_old_passes_valid_until_they_expire():
    old = PassKeys.generate("old")
    old_pass = QueuePasses(old).issue("e", "u", now_ms(), 300)
    rotated = PassKeys.from_parts("new", PassKeys.generate().private_b64(), f"old={old.public_b64()}")
    verifier = QueuePasses(rotated)
    assert verifier.verify(old_pass.token, "e", "u", time.time()).user_id == "u"
    assert {k["kid"] for k in rotated.jwks()["keys"]} == {"new", "old"}
    new_pass = verifier.issue("e", "u", now_ms(), 300)
    assert jwt.get_unverified_header(new_pass.token)["kid"] == "new"


def test_keys_survive_the_trip_to_a_spawned_gateway_process():
    rotated = PassKeys.from_parts(
        "new", PassKeys.generate().private_b64(), f"old={PassKeys.generate().public_b64()}"
    )
    copy = pickle.loads(pickle.dumps(rotated))
    assert copy.jwks() == rotated.jwks() and copy.private_b64() == rotated.private_b64()


@pytest.mark.parametrize("case", ["garbage", "forged signature", "other user", "expired"])
async def test_a_bad_pass_pays_the_reserve_limit_before_anything_else(
    schema, topics, jwt_secret, http, engaged_sale, case
):
    """A request with a junk pass and a body naming no show used to be answered 404 for free,
    as often as sent: it now pays the ordinary reserve limit first, like one with no pass."""
    sale = engaged_sale
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits="general=6000/1000,reserve=2/2")
    nowhere = {**sale["body"], "show_id": str(uuid.uuid4())}
    headers = {"X-Queue-Pass": _bad_pass(case, sale)}
    async with running_gateway(settings) as url:
        statuses = [(await reserve(http, url, sale["token"], nowhere, headers))[0] for _ in range(3)]
    assert statuses == [404, 404, 429]


async def test_only_reserves_let_through_count_toward_mode_auto(
    schema, topics, jwt_secret, http, make_event, make_users, token_for, room, sale_redis, workers
):
    """Mode auto engages on the reserve request rate: refused requests (over the limit with a
    junk pass, without a pass while engaged) must not count, or anyone could engage a room."""
    auto, engaged = [await make_event([("GA", 50)], shows=1) for _ in range(2)]
    await room.configure(auto.event_id, {"mode": "auto", "auto_rps": 1000, "auto_active": 10_000})
    await room.configure(engaged.event_id, {"mode": "always"})
    (user,) = await make_users(1)
    token = token_for(user)
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits="general=6000/1000,reserve=2/2")
    async with running_gateway_app(settings) as (url, app):

        async def counted(event) -> int:
            """This gateway's reserves for the event: not yet flushed, and flushed to the room."""
            hits = await sale_redis.hgetall(keys.room(event.event_id, "hits"))
            return app[appkeys.ROOMS].reserves[event.event_id] + sum(int(n) for n in hits.values())

        junk = {"X-Queue-Pass": "junk"}
        statuses = [(await book(http, url, token, _body(auto), junk))[0] for _ in range(5)]
        assert statuses == [201, 201, 429, 429, 429]  # a junk pass is no pass: the limit applies
        status, refused = await reserve(http, url, token_for((await make_users(1))[0]), _body(engaged))
        assert (status, refused["error"]["code"]) == (403, "QUEUE_PASS_REQUIRED")

        async def only_the_two_let_through() -> bool:
            return await counted(auto) == 2 and await counted(engaged) == 0

        await wait_until(only_the_two_let_through, 5, "the count of reserves let through")


def _body(event) -> dict:
    show = next(iter(event.shows))
    return {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["GA"], "quantity": 1}
