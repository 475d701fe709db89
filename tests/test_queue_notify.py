"""Told when it is your turn, even with the page closed: a notification subscription counts as
presence, so a person away is called at their turn (not skipped), told by Web Push (encrypted for
their browser, signed with our VAPID key: the test's push service decrypts and verifies it) or
by mail, and has the room's claim window to come back for the pass; unclaimed, the slot goes to
the next person and they are told. The sender posts only to https endpoints on public addresses."""

from __future__ import annotations

import asyncio
import pickle

import pytest
import pytest_asyncio
from aiohttp import web

from booking_rush.contract.messages import now_ms
from booking_rush.services.web_push import (
    PublicResolver,
    PushSender,
    PushSettings,
    Subscription,
    UnsafeAddress,
    VapidKey,
)
from lua import keys
from tests.push_service import start_push_service
from tests.support import (
    TEST_PASS_KEYS,
    WorkerProcess,
    call,
    gateway_settings,
    queue_call,
    running_gateway,
    wait_until,
    worker_env,
)
from waiting_room.notices import NoticeRecord
from workers.admitter import Admitter
from workers.settings import WorkerSettings
from workers.turn_notices import TurnNotices

VAPID = VapidKey.generate()
SUBJECT = "mailto:tests@booking-rush.invalid"


@pytest_asyncio.fixture(loop_scope="session")
async def push_service():
    service, runner = await start_push_service()
    yield service
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def push_gateway(schema, topics, jwt_secret, workers):
    """A gateway that offers Web Push (our VAPID key) and takes the test push service's
    http://127.0.0.1 endpoints (BR_PUSH_TEST_ENDPOINTS)."""
    push = PushSettings(vapid_private_key=VAPID, subject=SUBJECT, allow_test_endpoints=True)
    async with running_gateway(gateway_settings(schema, topics, jwt_secret, push=push)) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def sender():
    push = PushSender(VapidKey(VAPID), SUBJECT, allow_test_endpoints=True)
    await push.start()
    yield push
    await push.close()


def _admitter(room, schema, topics, notices) -> Admitter:
    return Admitter(room, WorkerSettings(endpoints=schema.endpoints(topics.prefix)), notices)


async def _subscribe(http, url, token, event_id, **how) -> tuple[int, dict]:
    return await call(http, "POST", f"{url}/api/v1/queue/notify", token, {"event_id": event_id, **how})


async def test_a_person_away_but_subscribed_is_called_told_and_gets_a_whole_pass_on_return(
    push_gateway, http, make_event, make_users, token_for, room, push_service, sender, schema, topics
):
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(event.event_id, {"mode": "paused", "grace_s": 5})
    gone, away = await make_users(2)
    for user in (gone, away):
        await queue_call(http, push_gateway, token_for(user), "join", event.event_id)
    browser = push_service.subscribe()
    status, subscribed = await _subscribe(
        http, push_gateway, token_for(away), event.event_id, push=browser.to_json()
    )
    assert status == 200, subscribed
    assert subscribed["data"] == {"event_id": event.event_id, "channel": "push", "claim_window_s": 180}

    # Both leave the page; only the subscriber is still counted as present at their turn.
    await room.configure(event.event_id, {"mode": "always"})
    notices = TurnNotices(room, sender, mailer=None)
    later = now_ms() + 10_000
    tick = (await _admitter(room, schema, topics, notices).tick(later))[event.event_id]
    await notices.drain()
    assert tick["abandoned"] == 1 and tick["admitted"] == []
    assert [user for user, *_ in tick["called"]] == [away]

    (got,) = await push_service.wait_for(1)
    assert got.vapid_key == VapidKey(VAPID).public_key and got.vapid_claims["sub"] == SUBJECT
    assert got.headers["TTL"] == "180" and got.headers["Content-Encoding"] == "aes128gcm"
    assert got.message["kind"] == "called" and got.message["title"] == "It's your turn"
    assert "3 minutes" in got.message["body"]
    assert got.message["url"] == f"/waiting-room/{event.event_id}"  # the page, never the pass
    assert "pass" not in got.message and b"eyJ" not in got.body

    status, standing = await queue_call(http, push_gateway, token_for(away), "status", event.event_id)
    assert standing["data"]["state"] == "admitted" and standing["data"]["pass"]
    # The pass starts when it is claimed: whole, not the claim window's rest.
    expires = standing["data"]["pass_expires_at"]
    status, again = await queue_call(http, push_gateway, token_for(away), "status", event.event_id)
    assert again["data"]["pass_expires_at"] == expires  # claimed once
    assert (await queue_call(http, push_gateway, token_for(gone), "status", event.event_id))[1]["data"][
        "state"
    ] == "not_joined"


async def test_an_unclaimed_turn_goes_to_the_next_person_and_the_one_who_missed_it_is_told(
    push_gateway, http, make_event, make_users, token_for, room, push_service, sender, schema, topics
):
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(
        event.event_id, {"mode": "paused", "grace_s": 5, "max_active": 1, "claim_window_s": 30}
    )
    away, next_one = await make_users(2)
    for user in (away, next_one):
        await queue_call(http, push_gateway, token_for(user), "join", event.event_id)
    browser = push_service.subscribe()
    await _subscribe(http, push_gateway, token_for(away), event.event_id, push=browser.to_json(), lang="th")
    await room.configure(event.event_id, {"mode": "always"})
    notices = TurnNotices(room, sender, mailer=None)
    admitter = _admitter(room, schema, topics, notices)

    t1 = now_ms() + 10_000
    await room.enter(event.event_id, next_one, t1, "status")  # on the page, polling
    tick = (await admitter.tick(t1))[event.event_id]
    assert [u for u, *_ in tick["called"]] == [away] and tick["admitted"] == []  # max_active 1: theirs
    await room.enter(event.event_id, next_one, t1 + 29_000, "status")
    assert (await admitter.tick(t1 + 29_000))[event.event_id]["admitted"] == []  # still their window

    t2 = t1 + 31_000
    await room.enter(event.event_id, next_one, t2, "status")
    tick = (await admitter.tick(t2))[event.event_id]
    await notices.drain()
    assert [u for u, _ in tick["missed"]] == [away]
    assert [u for u, _ in tick["admitted"]] == [next_one]  # the slot came back at once

    called, missed = (r.message for r in push_service.to(browser))
    assert called["title"] == "ถึงคิวของคุณแล้ว" and missed["kind"] == "missed"  # asked in Thai
    assert missed["title"] == "เลยคิวของคุณแล้ว"
    _, standing = await queue_call(http, push_gateway, token_for(away), "status", event.event_id)
    assert standing["data"]["state"] == "not_joined"
    assert not await room.redis.hexists(keys.room(event.event_id, "notify"), away)
    _, rejoined = await queue_call(http, push_gateway, token_for(away), "join", event.event_id)
    assert rejoined["data"]["state"] == "waiting"  # at the back, as anyone who joins now


async def test_a_subscription_the_push_service_dropped_is_forgotten(
    push_gateway, http, make_event, make_users, token_for, room, push_service, sender, schema, topics
):
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(event.event_id, {"mode": "paused", "grace_s": 5})
    (user,) = await make_users(1)
    await queue_call(http, push_gateway, token_for(user), "join", event.event_id)
    browser = push_service.subscribe()
    push_service.answers[browser.endpoint.rsplit("/", 1)[-1]] = 410
    await _subscribe(http, push_gateway, token_for(user), event.event_id, push=browser.to_json())
    await room.configure(event.event_id, {"mode": "always"})
    notices = TurnNotices(room, sender, mailer=None)
    tick = (await _admitter(room, schema, topics, notices).tick(now_ms() + 10_000))[event.event_id]
    await notices.drain()
    assert [u for u, *_ in tick["called"]] == [user] and len(push_service.to(browser)) == 1
    assert not await room.redis.hexists(keys.room(event.event_id, "notify"), user)


async def test_one_subscription_per_person_per_room_dropped_on_request_and_on_leaving(
    push_gateway, http, make_event, make_users, token_for, room, push_service
):
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(event.event_id, {"mode": "paused"})
    (user,) = await make_users(1)
    token = token_for(user)
    status, refused = await _subscribe(
        http, push_gateway, token, event.event_id, push=push_service.subscribe().to_json()
    )
    assert status == 409 and refused["error"]["code"] == "NOT_IN_LINE"
    await queue_call(http, push_gateway, token, "join", event.event_id)
    first, second = push_service.subscribe(), push_service.subscribe()
    for browser in (first, second):
        assert (await _subscribe(http, push_gateway, token, event.event_id, push=browser.to_json()))[0] == 200
    stored = await room.redis.hgetall(keys.room(event.event_id, "notify"))
    assert list(stored) == [user.encode()]
    assert NoticeRecord.from_json(stored[user.encode()]).push.endpoint == second.endpoint

    url = f"{push_gateway}/api/v1/queue/notify"
    status, removed = await call(http, "DELETE", url, token, params={"event_id": event.event_id})
    assert status == 200 and removed["data"]["removed"] is True
    assert (await call(http, "DELETE", url, token, params={"event_id": event.event_id}))[1]["data"][
        "removed"
    ] is False

    await _subscribe(http, push_gateway, token, event.event_id, push=first.to_json())
    await queue_call(http, push_gateway, token, "leave", event.event_id)
    assert not await room.redis.exists(keys.room(event.event_id, "notify"))


async def test_mail_when_it_is_my_turn(
    push_gateway, http, make_event, make_users, token_for, room, pg, smtp_sink, schema, topics
):
    from booking_rush.services.mail import Mailer, MailSettings

    inbox, port = smtp_sink
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(event.event_id, {"mode": "paused", "grace_s": 5})
    (user,) = await make_users(1)
    await queue_call(http, push_gateway, token_for(user), "join", event.event_id)
    status, subscribed = await _subscribe(http, push_gateway, token_for(user), event.event_id, email=True)
    assert status == 200 and subscribed["data"]["channel"] == "email"
    await room.configure(event.event_id, {"mode": "always"})
    notices = TurnNotices(room, None, Mailer(MailSettings(port=port)))
    await _admitter(room, schema, topics, notices).tick(now_ms() + 10_000)
    await notices.drain()
    email = await pg.fetchval("SELECT email FROM users WHERE id = $1", user)
    (mail,) = [m for m in inbox.messages if m["To"] == email]
    assert mail["Subject"] == "It's your turn"
    assert f"{push_gateway}/waiting-room/{event.event_id}" in mail.get_payload(decode=True).decode()


@pytest.mark.parametrize(
    "how, problem",
    [
        ({"push": {"endpoint": "http://push.example.com/x", "keys": {}}}, "push"),
        ({}, "push"),
        ({"email": True, "push": {}}, "push"),
        ({"email": "yes"}, "email"),
        ({"email": True, "lang": "fr"}, "lang"),
    ],
)
async def test_a_subscription_that_is_not_one_is_refused_400(
    push_gateway, http, make_event, make_users, token_for, room, how, problem
):
    gateway_url = push_gateway
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(event.event_id, {"mode": "paused"})
    (user,) = await make_users(1)
    await queue_call(http, gateway_url, token_for(user), "join", event.event_id)
    status, refused = await _subscribe(http, gateway_url, token_for(user), event.event_id, **how)
    assert status == 400 and refused["error"]["code"] == "VALIDATION_ERROR"
    assert problem in refused["error"]["details"]


def _keys() -> dict:
    from tests.push_service import PushService

    return PushService(base="https://push.example.com").subscribe().to_json()["keys"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.com/x",  # not https
        "https://127.0.0.1/x",
        "https://10.0.0.8/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[::ffff:192.168.1.1]/x",
        "https://user:pw@push.example.com/x",
        "ftp://push.example.com/x",
        "https://push.example.com/" + "x" * 1100,
    ],
)
def test_an_endpoint_that_is_not_https_on_a_public_address_is_refused(endpoint):
    with pytest.raises(ValueError):
        Subscription.parse({"endpoint": endpoint, "keys": _keys()})


async def test_a_site_without_a_vapid_key_offers_mail_only(
    gateway_url, http, make_event, make_users, token_for, room
):
    status, key = await call(http, "GET", f"{gateway_url}/api/v1/queue/notify/key")
    assert status == 200 and key["data"] == {"vapid_public_key": None}
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(event.event_id, {"mode": "paused"})
    (user,) = await make_users(1)
    await queue_call(http, gateway_url, token_for(user), "join", event.event_id)
    status, refused = await _subscribe(
        http, gateway_url, token_for(user), event.event_id, push={"endpoint": "x"}
    )
    assert status == 400 and "push" in refused["error"]["details"]


async def test_the_push_key_is_the_public_half_of_ours(push_gateway, http):
    status, key = await call(http, "GET", f"{push_gateway}/api/v1/queue/notify/key")
    assert key["data"]["vapid_public_key"] == VapidKey(VAPID).public_key


def test_settings_with_a_vapid_key_still_go_to_each_gateway_process(monkeypatch, jwt_secret):
    """BR_GATEWAY_PROCESSES > 1 pickles the settings to every child process."""
    from gateway.settings import GatewaySettings

    for name, value in {
        **TEST_PASS_KEYS.env(),
        "BR_JWT_SECRET": jwt_secret,
        "BR_VAPID_PRIVATE_KEY": VAPID,
    }.items():
        monkeypatch.setenv(name, value)
    settings = GatewaySettings.from_env()
    assert settings.push.vapid_key.public_key == VapidKey(VAPID).public_key
    assert pickle.loads(pickle.dumps(settings)).push.vapid_key.public_key == VapidKey(VAPID).public_key


def test_keys_that_are_not_a_p256_point_and_a_16_byte_secret_are_refused():
    good = _keys()
    endpoint = "https://push.example.com/x"
    assert Subscription.parse({"endpoint": endpoint, "keys": good}).endpoint == endpoint
    for keys_ in (
        {**good, "auth": "AAAA"},
        {**good, "p256dh": "BAAA"},
        {**good, "p256dh": good["p256dh"][:-4] + "AAAA"},
    ):
        with pytest.raises(ValueError):
            Subscription.parse({"endpoint": endpoint, "keys": keys_})


async def test_the_sender_refuses_names_that_resolve_to_private_addresses_and_follows_no_redirect(
    push_service,
):
    with pytest.raises(UnsafeAddress):
        await PublicResolver().resolve("localhost", 443)
    strict = PushSender(VapidKey(VAPID), SUBJECT)
    await strict.start()
    try:
        keys_ = _keys()
        for endpoint in ("https://localhost:9/x", "https://127.0.0.1:9/x", "http://push.example.com/x"):
            outcome = await strict.send(Subscription(endpoint, keys_["p256dh"], keys_["auth"]), {"t": 1}, 60)
            assert outcome.result == "refused", (endpoint, outcome)
    finally:
        await strict.close()

    # A redirect is an answer, not an instruction: the target is never asked.
    app = web.Application()
    app.router.add_post("/r", lambda request: web.HTTPTemporaryRedirect(push_service.subscribe().endpoint))
    released = asyncio.Event()

    async def never_in_time(request: web.Request) -> web.Response:
        await released.wait()  # answers only once the test is over: the sender gives up at 0.5 s
        return web.Response(status=201)

    app.router.add_post("/slow", never_in_time)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    lenient = PushSender(VapidKey(VAPID), SUBJECT, allow_test_endpoints=True, timeout_s=0.5)
    await lenient.start()
    try:
        before = len(push_service.received)
        outcome = await lenient.send(Subscription(f"{base}/r", keys_["p256dh"], keys_["auth"]), {"t": 1}, 60)
        assert outcome.result == "failed" and "307" in outcome.detail
        assert len(push_service.received) == before
        outcome = await lenient.send(
            Subscription(f"{base}/slow", keys_["p256dh"], keys_["auth"]), {"t": 1}, 60
        )
        assert outcome.result == "failed"  # timed out
        big = {"body": "x" * 5000}
        outcome = await lenient.send(Subscription(f"{base}/r", keys_["p256dh"], keys_["auth"]), big, 60)
        assert outcome.result == "refused"
    finally:
        released.set()
        await lenient.close()
        await runner.cleanup()


async def test_an_admitter_process_tells_a_subscriber_their_turn(
    push_gateway, http, make_event, make_users, token_for, room, push_service, schema, topics
):
    """The worker process's own wiring: BR_VAPID_PRIVATE_KEY set, the admitter role sends."""
    event = await make_event([("GA", 10)], shows=1)
    await room.configure(event.event_id, {"mode": "paused", "grace_s": 5})
    (user,) = await make_users(1)
    await queue_call(http, push_gateway, token_for(user), "join", event.event_id)
    browser = push_service.subscribe()
    await _subscribe(http, push_gateway, token_for(user), event.event_id, push=browser.to_json())
    # Last seen a minute ago: away (rather than waiting out the grace period).
    await room.redis.zadd(keys.room(event.event_id, "presence"), {user: now_ms() - 60_000})
    env = worker_env(
        schema,
        topics,
        f"{topics.prefix}notify-admitter",
        BR_WORKER_ROLES="admitter",
        BR_ADMIT_TICK_SECONDS="0.2",
        BR_VAPID_PRIVATE_KEY=VAPID,
        BR_VAPID_SUBJECT=SUBJECT,
        BR_PUSH_TEST_ENDPOINTS="1",
    )
    proc = await WorkerProcess(env).start()
    try:
        await room.configure(event.event_id, {"mode": "always"})
        await wait_until(lambda: _told(push_service, browser), timeout=15, what="the turn notice")
    finally:
        await proc.stop()
    (got,) = push_service.to(browser)
    assert got.message["kind"] == "called"


async def _told(service, browser) -> bool:
    return bool(service.to(browser))
