"""Every cleanup context of the gateway's app: one per external client (create, check, yield,
close), and the waiting rooms' view and live-position streams that run on them."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from booking_rush.services.clients import new_idempotent_producer, stop_producer
from booking_rush.services.job_queue import JobQueue
from booking_rush.services.periodic import run_every
from booking_rush.telemetry.metrics import bound_port, metrics_handler, record_db_connections, serve_metrics
from gateway import appkeys
from gateway.listing_cache import ListingCache
from gateway.loop_batch import LoopBatch
from gateway.password_hasher import PasswordHasher
from gateway.queue_stream import StreamHub
from gateway.ratelimit import RateLimiter, parse_policies
from gateway.revocations import CHANNEL as REVOCATION_CHANNEL
from gateway.room_view import RoomView
from gateway.roundtrip.batcher import CommandBatcher
from gateway.roundtrip.pubsub import listen, listening
from gateway.roundtrip.replies import ReplyRouter
from lua import keys, load_aux_scripts, load_scripts
from waiting_room.room import WaitingRoom

log = logging.getLogger("gateway")


async def sale_redis_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    # A blocking pool: a burst of polls waits briefly for a connection instead of failing.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.endpoints.sale_redis_url,
        max_connections=settings.redis_max_connections,
        timeout=2,
        socket_connect_timeout=2,
        health_check_interval=15,
    )
    client = aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it too
    await client.ping()
    app[appkeys.SALE_REDIS] = client
    app[appkeys.SCRIPTS] = await load_scripts(client)
    yield
    await client.aclose()


async def aux_redis_ctx(app: web.Application):
    """Caches and the rate limiter. Not needed to sell seats: the limiter fails open without it."""
    settings = app[appkeys.SETTINGS]
    client = aioredis.from_url(
        settings.endpoints.aux_redis_url, decode_responses=False, socket_connect_timeout=2, socket_timeout=2
    )
    await client.ping()
    app[appkeys.AUX_REDIS] = client
    scripts = await load_aux_scripts(client)
    app[appkeys.REVOCATIONS].attach(client, scripts.revoke_access)
    app[appkeys.LIMITER] = RateLimiter(
        client,
        scripts,
        parse_policies(settings.rate_limits),
        settings.rate_limit_namespace,
        app[appkeys.CLOCK],
    )
    yield
    await client.aclose()


async def producer_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    # Idempotent, acks=all: an acknowledged command is on every in-sync replica exactly once.
    # linger 0: CommandBatcher already batches a loop iteration per show.
    producer = new_idempotent_producer(
        settings.endpoints.kafka_bootstrap, linger_ms=0, request_timeout_ms=5000
    )
    await producer.start()
    app[appkeys.PRODUCER] = producer
    app[appkeys.BATCHER] = CommandBatcher(producer, settings.topics.reservations)
    yield
    await stop_producer(producer)


async def pg_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    pool = await asyncpg.create_pool(settings.endpoints.database_url, min_size=1, max_size=4)
    app[appkeys.PG_POOL] = pool
    app[appkeys.LISTING_CACHE] = ListingCache(app[appkeys.AUX_REDIS], pool)
    shows = app[appkeys.SHOW_INDEX]
    await shows.load(pool)
    listener = await asyncpg.connect(settings.endpoints.database_url)
    await listener.add_listener("catalog_changed", lambda *_: shows.request_reload(pool))
    yield
    await listener.close()
    await pool.close()


async def replies_ctx(app: web.Application):
    router = ReplyRouter(app[appkeys.SALE_REDIS], keys.reply_channel(app[appkeys.GATEWAY_ID]))
    app[appkeys.REPLIES] = router
    # Subscribed before the first request is accepted, so no answer can be missed.
    async with listening("reply-listener", router.run(), router.connected):
        yield


async def jobs_ctx(app: web.Application):
    """Hands payment and refund jobs to the payment workers (Dramatiq on the aux Redis)."""
    settings = app[appkeys.SETTINGS]
    app[appkeys.JOBS] = queue = JobQueue(settings.endpoints.aux_redis_url, settings.endpoints.topic_prefix)
    yield
    queue.close()


async def revocations_ctx(app: web.Application):
    """Every revocation still in force, in memory, kept current from the aux Redis's channel,
    and read in full on every (re)subscription and once a minute (a net under pub/sub, which
    may drop a message without dropping the connection)."""
    revocations = app[appkeys.REVOCATIONS]
    # A connection of its own: the aux client's 2 s socket timeout would end an idle subscription.
    subscriber = aioredis.from_url(
        app[appkeys.SETTINGS].endpoints.aux_redis_url,
        socket_connect_timeout=2,
        health_check_interval=15,
        client_name=f"revocations-{app[appkeys.GATEWAY_ID]}",  # so an operator can tell it apart
    )
    pending: set[asyncio.Task] = set()

    def reread() -> None:
        task = asyncio.create_task(revocations.reload())
        pending.add(task)
        task.add_done_callback(pending.discard)

    feed = listen(subscriber, REVOCATION_CHANNEL, revocations.deliver, revocations.connected, reread)
    stop = asyncio.Event()
    try:
        async with listening("revocations", feed, revocations.connected):
            await asyncio.gather(*pending)  # in force before the first request is served
            rereads = asyncio.create_task(run_every(stop, 60.0, 5.0, revocations.reload, "revocations"))
            yield
            stop.set()
            await rereads
    finally:
        for task in pending:
            task.cancel()
        await subscriber.aclose()


async def metrics_ctx(app: web.Application):
    """/metrics on its own internal port (settings.metrics_port), never the API's."""
    settings = app[appkeys.SETTINGS]
    if settings.metrics_port is None:
        yield
        return

    async def metrics(request: web.Request) -> web.Response:
        if appkeys.PG_POOL in app:
            record_db_connections("gateway", app[appkeys.PG_POOL])
        return await metrics_handler(request)

    # Several processes of one pod share the port (they sum each other's metrics anyway).
    runner = await serve_metrics(settings.metrics_host, settings.metrics_port, metrics, reuse_port=True)
    app[appkeys.METRICS_PORT] = bound_port(runner)
    yield
    await runner.cleanup()


async def password_hasher_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    hasher = PasswordHasher(settings.bcrypt_cost, settings.hash_threads, settings.hash_max_wait_s)
    app[appkeys.PASSWORD_HASHER] = hasher
    yield
    hasher.close()


async def room_view_ctx(app: web.Application):
    room = WaitingRoom(app[appkeys.SALE_REDIS], app[appkeys.SCRIPTS])
    app[appkeys.WAITING_ROOM] = room
    app[appkeys.ROOM_ENTRIES] = LoopBatch(room.enter_many)
    view = app[appkeys.ROOMS] = RoomView(room, app[appkeys.QUEUE_PASSES])
    stop = asyncio.Event()
    flusher = asyncio.create_task(run_every(stop, 1.0, 5.0, view.flush_reserve_counts, "reserve counts"))
    async with listening("room-broadcast", view.run(), view.connected):
        yield
    stop.set()
    await flusher


async def streams_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    hub = app[appkeys.STREAMS] = StreamHub(
        app[appkeys.WAITING_ROOM], app[appkeys.QUEUE_PASSES], app[appkeys.GATEWAY_ID], settings
    )
    app[appkeys.ROOMS].tick_listeners.append(hub.on_tick)
    stop = asyncio.Event()
    # Two loops: corrections (several round trips) never hold up the lease renewal.
    upkeep = [
        asyncio.create_task(
            run_every(stop, hub.heartbeat_s, hub.heartbeat_s, hub.heartbeat, "stream heartbeat")
        ),
        asyncio.create_task(run_every(stop, hub.correction_s, 30.0, hub.correct, "stream corrections")),
    ]
    yield
    stop.set()
    hub.close_all()
    await asyncio.gather(*upkeep)
