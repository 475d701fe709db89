"""The sale Redis stays bounded: refusals' records go after the redelivery window, ended unpaid
holds shrink to tombstones once PostgreSQL has them, and an event whose sale is over leaves
the sale Redis entirely. Each step is checked with a late command after it, answered right and
never re-creating anything.

The session's workers (commands, sweeper, persistence) apply and persist; the archiver runs
here, in the test, with its clock moved ahead (as the sweeper's is in test_expiry).
"""

from __future__ import annotations

import uuid

import orjson
import pytest

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from booking_rush.services.clients import idempotent_producer
from lua import keys
from ops.demo_pay import GOOD_CARD
from ops.rebuild import rebuild
from ops.reconcile import reconcile
from tests.support import book, call, reserve_body, wait_until
from workers.archiver import Archiver
from workers.command_scripts import queue_command
from workers.outcomes import outcomes
from workers.settings import WorkerSettings
from workers.sweeper import Sweeper

WINDOW_MS = WorkerSettings().redelivery_window_s * 1000
DAY_MS = 86_400_000


@pytest.fixture
def settings(schema, topics) -> WorkerSettings:
    return WorkerSettings(endpoints=schema.endpoints(topics.prefix))


@pytest.fixture
def archiver(sale_redis, scripts, pg, settings) -> Archiver:
    return Archiver(sale_redis, scripts, pg, settings)


async def _booked(http, gateway_url, make_event, make_users, token_for, seats=10, quantity=2):
    event = await make_event([("GA", seats)], shows=1)
    (user,) = await make_users(1)
    status, answer = await book(http, gateway_url, token_for(user), reserve_body(event, quantity=quantity))
    assert status == 201, answer
    return event, user, answer["data"]["booking_id"]


async def _persisted(pg, booking_id: str, status: str) -> None:
    async def there() -> bool:
        return await pg.fetchval("SELECT status FROM bookings WHERE public_id = $1", booking_id) == status

    await wait_until(there, 30, f"booking {status} in PostgreSQL")


async def _hold(sale_redis, event_id: str, booking_id: str) -> dict[str, str]:
    raw = await sale_redis.hgetall(keys.hold(event_id, booking_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def _run(sale_redis, scripts, settings, command: dict) -> tuple[list, object]:
    """One command through its script, as the command consumer runs it: (output, outcomes)."""
    async with sale_redis.pipeline(transaction=False) as pipe:
        queue_command(pipe, scripts, command, now_ms(), settings)
        outputs = await pipe.execute()
    return outputs[0], outcomes([command], outputs)


async def _event_keys(sale_redis, event_id: str) -> list[bytes]:
    """The event's keys that would stay forever: a gateway may still add the last second's
    reserve count to the room's hits after the archive, a key that lives a minute."""
    found = [k async for k in sale_redis.scan_iter(match=f"{keys.tag(event_id)}:*", count=1000)]
    return [k for k in found if await sale_redis.ttl(k) < 0]


async def test_a_cancelled_hold_becomes_a_tombstone_once_persisted_and_late_commands_find_it_ended(
    http, gateway_url, make_event, make_users, token_for, pg, sale_redis, scripts, archiver, settings
):
    event, user, booking_id = await _booked(http, gateway_url, make_event, make_users, token_for)
    ev, token = event.event_id, token_for(user)
    status, answer = await call(http, "POST", f"{gateway_url}/api/v1/bookings/{booking_id}/cancel", token)
    assert status == 200, answer
    await _persisted(pg, booking_id, "cancelled")
    whole = await _hold(sale_redis, ev, booking_id)

    # Within the redelivery window nothing is trimmed: the cancel could still come again.
    assert await archiver.trim_once(as_of_ms=now_ms(), event_ids=[ev]) == 0
    assert await _hold(sale_redis, ev, booking_id) == whole
    assert await archiver.trim_once(as_of_ms=now_ms() + WINDOW_MS + 1000, event_ids=[ev]) == 1

    assert await _hold(sale_redis, ev, booking_id) == {"status": "cancelled", "version": whole["version"]}
    assert await sale_redis.zcard(keys.user_bookings(ev, user)) == 0
    assert await sale_redis.zcard(keys.ended_index(ev)) == 0

    # The API still shows it (from PostgreSQL) and refuses what an ended booking cannot do.
    status, shown = await call(http, "GET", f"{gateway_url}/api/v1/bookings/{booking_id}", token)
    assert (status, shown["data"]["status"]) == (200, "cancelled"), shown
    status, listed = await call(http, "GET", f"{gateway_url}/api/v1/bookings", token)
    assert [b["status"] for b in listed["data"] if b["booking_id"] == booking_id] == ["cancelled"]
    status, again = await call(http, "POST", f"{gateway_url}/api/v1/bookings/{booking_id}/cancel", token)
    assert (status, again["error"]["code"]) == (409, "INVALID_STATUS_TRANSITION"), again
    body = {"booking_id": booking_id, "method": "card", "details": GOOD_CARD}
    status, paid = await call(http, "POST", f"{gateway_url}/api/v1/payments", token, body)
    assert (status, paid["error"]["code"]) == (409, "INVALID_STATUS_TRANSITION"), paid
    (stranger,) = await make_users(1)
    status, _ = await call(
        http, "POST", f"{gateway_url}/api/v1/bookings/{booking_id}/cancel", token_for(stranger)
    )
    assert status == 404

    # Late commands straight into the scripts: nothing comes back to life, no event is emitted.
    ids = dict(
        event_id=ev, booking_id=booking_id, user_id=user, show_id=whole["show_id"], zone_id=whole["zone_id"]
    )
    expire = messages.expire_command(**ids)
    out, done = await _run(sale_redis, scripts, settings, expire)
    assert int(out[0]) == 0 and done.events == []
    cancel = messages.cancel_command(request_id=messages.new_request_id(ev), reply_to="", **ids)
    out, done = await _run(sale_redis, scripts, settings, cancel)
    assert orjson.loads(out[0])["status"] == "not_cancellable" and done.events == []
    assert await _hold(sale_redis, ev, booking_id) == {"status": "cancelled", "version": whole["version"]}
    zone = keys.zone(ev, whole["show_id"], whole["zone_id"])
    assert int(await sale_redis.hget(zone, "available")) == 10

    # And reconcile sees nothing wrong with the tombstone.
    report = await reconcile(sale_redis, pg, settings, [ev])
    assert report.differences == [], report.differences


async def test_an_expired_hold_is_trimmed_and_its_redelivered_reserve_answers_ended_not_a_new_hold(
    http, gateway_url, make_event, make_users, token_for, pg, sale_redis, scripts, archiver, settings, schema
):
    event, user, booking_id = await _booked(http, gateway_url, make_event, make_users, token_for)
    ev = event.event_id
    hold = await _hold(sale_redis, ev, booking_id)
    # The reserve command as it was sent (its booking id is its own), to redeliver later.
    reserve = {
        "type": messages.RESERVE,
        "event_id": ev,
        "user_id": user,
        "show_id": hold["show_id"],
        "zone_id": hold["zone_id"],
        "quantity": 2,
        "booking_id": booking_id,
        "request_id": hold["request_id"],
        "body_hash": hold["body_hash"],
        "deadline_ms": int(hold["created_at"]) + 30_000,
    }
    scope = messages.idempotency_scope(None, hold["request_id"])
    async with idempotent_producer(schema.kafka_bootstrap) as producer:
        await Sweeper(sale_redis, producer, settings).sweep_once(
            as_of_ms=int(hold["expires_at"]) + 1, event_ids=[ev]
        )
    await _persisted(pg, booking_id, "expired")

    # The success record has expired (24 h by default): a redelivery is answered from the hold,
    # the first answer again, never "expired" and never a second hold.
    await sale_redis.delete(keys.idempotency(ev, user, scope))
    out, _ = await _run(sale_redis, scripts, settings, reserve)
    first = orjson.loads(out[0])
    assert (first["status"], first["booking_id"], int(out[1])) == ("reserved", booking_id, 1)

    assert await archiver.trim_once(as_of_ms=now_ms() + DAY_MS, event_ids=[ev]) == 1
    out, done = await _run(sale_redis, scripts, settings, reserve)
    assert orjson.loads(out[0]) == {"status": "booking_ended", "booking_id": booking_id, "current": "expired"}
    assert done.events == []
    assert await _hold(sale_redis, ev, booking_id) == {"status": "expired", "version": "2"}
    zone = keys.zone(ev, hold["show_id"], hold["zone_id"])
    assert int(await sale_redis.hget(zone, "available")) == 10
    assert await sale_redis.get(keys.user_count(ev, user)) is None


async def test_trimming_waits_for_postgresql_and_never_touches_a_hold_that_had_a_payment(sale_redis, scripts):
    ev, user = str(uuid.uuid4()), str(uuid.uuid4())
    booking, paid = messages.new_public_id(ev), messages.new_public_id(ev)
    now = now_ms()
    await sale_redis.hset(
        keys.hold(ev, booking), mapping={"status": "expired", "user_id": user, "version": 2}
    )
    await sale_redis.hset(
        keys.hold(ev, paid),
        mapping={"status": "cancelled", "user_id": user, "version": 3, "payment_id": "p"},
    )
    await sale_redis.zadd(keys.ended_index(ev), {booking: now, paid: now})
    await sale_redis.zadd(keys.user_bookings(ev, user), {booking: now, paid: now})

    # PostgreSQL has an older version: left whole, still indexed.
    assert await scripts.trim_hold(keys=keys.trim_keys(ev, booking, user), args=[booking, user, 1]) == -1
    assert await sale_redis.hget(keys.hold(ev, booking), "user_id") == user.encode()
    assert await scripts.trim_hold(keys=keys.trim_keys(ev, booking, user), args=[booking, user, 2]) == 1
    # A hold that had a payment stays whole until the event is archived (late money finds it).
    assert await scripts.trim_hold(keys=keys.trim_keys(ev, paid, user), args=[paid, user, 3]) == 0
    assert await sale_redis.hget(keys.hold(ev, paid), "payment_id") == b"p"
    assert await sale_redis.zrange(keys.user_bookings(ev, user), 0, -1) == [paid.encode()]
    assert await sale_redis.zcard(keys.ended_index(ev)) == 0
    await sale_redis.delete(keys.hold(ev, booking), keys.hold(ev, paid), keys.user_bookings(ev, user))


async def test_a_refusal_record_outlives_its_deadline_and_the_window_but_not_a_day(
    http, gateway_url, make_event, make_users, token_for, sale_redis
):
    event, user, _ = await _booked(http, gateway_url, make_event, make_users, token_for, seats=2)
    (bot,) = await make_users(1)
    key = "bot-retry-1"
    status, refused = await book(
        http, gateway_url, token_for(bot), reserve_body(event, quantity=1), {"Idempotency-Key": key}
    )
    assert (status, refused["error"]["code"]) == (409, "INSUFFICIENT_STOCK"), refused
    refusal_ttl = await sale_redis.ttl(keys.idempotency(event.event_id, bot, f"k:{key}"))
    assert 30 < refusal_ttl <= WorkerSettings().redelivery_window_s
    hold = await _hold(sale_redis, event.event_id, _)
    success_ttl = await sale_redis.ttl(keys.idempotency(event.event_id, user, f"r:{hold['request_id']}"))
    assert success_ttl > 3600


async def test_an_event_that_is_over_is_archived_once_and_rebuild_never_brings_it_back(
    http, gateway_url, make_event, make_users, token_for, pg, sale_redis, scripts, archiver, settings
):
    event = await make_event([("GA", 10)], shows=1)
    ev = event.event_id
    ((show, zones),) = event.shows.items()
    zone = zones["GA"]
    users = await make_users(2)
    booked = []
    for user in users:
        status, answer = await book(http, gateway_url, token_for(user), reserve_body(event, quantity=1))
        assert status == 201, answer
        booked.append(answer["data"]["booking_id"])
    over = now_ms() + 365 * DAY_MS  # its show long over

    # The first booking cancelled, and trimmed: its owner is in PostgreSQL only. The second is
    # live: not archived yet, nothing removed.
    status, _ = await call(
        http, "POST", f"{gateway_url}/api/v1/bookings/{booked[0]}/cancel", token_for(users[0])
    )
    assert status == 200
    await _persisted(pg, booked[0], "cancelled")
    assert await archiver.trim_once(as_of_ms=now_ms() + DAY_MS, event_ids=[ev]) == 1
    [waiting] = await archiver.archive_once(as_of_ms=over, event_ids=[ev])
    assert waiting.waiting_for == "1 live holds"
    assert await _event_keys(sale_redis, ev)

    status, _ = await call(
        http, "POST", f"{gateway_url}/api/v1/bookings/{booked[1]}/cancel", token_for(users[1])
    )
    assert status == 200
    await _persisted(pg, booked[1], "cancelled")
    # PostgreSQL lacks the newest record of one booking (say its event was dead-lettered).
    await pg.execute("UPDATE bookings SET status = 'expired', version = 1 WHERE public_id = $1", booked[1])

    [done] = await archiver.archive_once(as_of_ms=over, event_ids=[ev])
    assert (done.waiting_for, done.written, done.users) == (None, 1, 2)
    assert await _event_keys(sale_redis, ev) == []
    for user in users:
        assert ev.encode() not in await sale_redis.smembers(keys.user_events(user))
    assert not await sale_redis.sismember(keys.LIVE_EVENTS, ev)
    rows = await pg.fetch("SELECT status FROM bookings WHERE event_id = $1", ev)
    assert [r["status"] for r in rows] == ["cancelled", "cancelled"]
    assert await pg.fetchval("SELECT written FROM event_archives WHERE event_id = $1", ev) == 1

    # A second pass writes nothing (at most a room's last hit count goes, a key with a TTL);
    # the bookings are still there for their owners.
    [again] = await archiver.archive_once(as_of_ms=over, event_ids=[ev])
    assert (again.waiting_for, again.written) == (None, 0) and again.removed_keys <= 1
    assert await _event_keys(sale_redis, ev) == []
    status, shown = await call(http, "GET", f"{gateway_url}/api/v1/bookings/{booked[1]}", token_for(users[1]))
    assert (status, shown["data"]["status"]) == (200, "cancelled")

    # Late commands after the archive find nothing, and leave nothing behind.
    hold_ids = dict(event_id=ev, booking_id=booked[1], user_id=users[1], show_id=show, zone_id=zone)
    out, done = await _run(sale_redis, scripts, settings, messages.expire_command(**hold_ids))
    assert (int(out[0]), done.events) == (0, [])
    cancel = messages.cancel_command(request_id=messages.new_request_id(ev), reply_to="", **hold_ids)
    out, done = await _run(sale_redis, scripts, settings, cancel)
    assert (orjson.loads(out[0])["status"], done.events) == ("not_found", [])
    assert await _event_keys(sale_redis, ev) == []

    summary = await rebuild(sale_redis, pg, settings, [ev])
    assert summary.ok and summary.archived == [ev] and summary.events == []
    assert await _event_keys(sale_redis, ev) == []
    report = await reconcile(sale_redis, pg, settings, [ev])
    assert report.ok and report.archived == [ev]


async def test_an_archiver_that_crashed_after_marking_finishes_removing(
    http, gateway_url, make_event, make_users, token_for, pg, sale_redis, archiver
):
    event, user, booking_id = await _booked(http, gateway_url, make_event, make_users, token_for)
    ev = event.event_id
    # Marked archived, then the process died before removing anything (a hold still live: a
    # mark is only ever written after the checks, so the resumed run does not check again).
    await pg.execute(
        "INSERT INTO event_archives (event_id, bookings, payments, written) VALUES ($1, 1, 0, 0)", ev
    )
    [done] = await archiver.archive_once(as_of_ms=now_ms() + 365 * DAY_MS, event_ids=[ev])
    assert done.waiting_for is None and done.removed_keys > 0
    assert await _event_keys(sale_redis, ev) == []
    assert not await sale_redis.sismember(keys.user_events(user), ev)


async def test_rebuild_and_reconcile_pass_on_an_event_whose_ended_holds_were_trimmed(
    http, gateway_url, make_event, make_users, token_for, pg, sale_redis, archiver, settings
):
    event = await make_event([("GA", 10)], shows=1)
    ev = event.event_id
    (user,) = await make_users(1)
    booked = []
    for _ in range(2):
        status, answer = await book(http, gateway_url, token_for(user), reserve_body(event, quantity=1))
        assert status == 201, answer
        booked.append(answer["data"]["booking_id"])
    ended, live = booked
    status, _ = await call(http, "POST", f"{gateway_url}/api/v1/bookings/{ended}/cancel", token_for(user))
    assert status == 200
    await _persisted(pg, ended, "cancelled")
    await _persisted(pg, live, "reserved")
    assert await archiver.trim_once(as_of_ms=now_ms() + DAY_MS, event_ids=[ev]) == 1
    assert (await reconcile(sale_redis, pg, settings, [ev])).differences == []

    # The sale Redis loses the event; rebuilt, the tombstone comes back whole, to be trimmed again.
    await sale_redis.delete(*[k async for k in sale_redis.scan_iter(match=f"{keys.tag(ev)}:*")])
    summary = await rebuild(sale_redis, pg, settings, [ev])
    assert summary.ok, summary.summary()
    assert (await _hold(sale_redis, ev, ended))["user_id"] == user
    assert await sale_redis.zrange(keys.ended_index(ev), 0, -1) == [ended.encode()]
    assert (await reconcile(sale_redis, pg, settings, [ev])).differences == []
    assert await archiver.trim_once(as_of_ms=now_ms() + DAY_MS, event_ids=[ev]) == 1
    assert (await _hold(sale_redis, ev, live))["status"] == "reserved"
    assert (await reconcile(sale_redis, pg, settings, [ev])).differences == []
