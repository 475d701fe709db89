"""Test helpers: worker processes, gateways on real services, reading Kafka, reserving."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from booking_rush.contract.topics import Topics
from booking_rush.services.endpoints import Endpoints
from gateway.app import create_app
from gateway.settings import GatewaySettings
from lua import keys
from ops.config import REPO_ROOT, StackConfig
from ops.inventory import load_event_inventory
from ops.processes import free_port as free_port  # throwaway servers, re-exported for the tests
from ops.processes import service_env
from ops.processes import start_redis as start_redis
from ops.processes import stop_redis as stop_redis
from ops.seed_data import CreatedEvent, ZoneSpec, create_event, ensure_tenant, ensure_users
from tests.contract import openapi_contract
from waiting_room.passes import PassKeys
from workers.admitter import tick_message


async def wait_until(
    predicate: Callable[[], Awaitable[Any]], timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll an observable condition until it holds (bounded), and return what it answered then;
    fail with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if seen := await predicate():
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


class WorkerProcess:
    """`python -m workers` (or another worker `module`) as a child process, with its own
    environment."""

    def __init__(self, env: dict[str, str], module: str = "workers") -> None:
        self.env = env
        self.module = module
        self.proc: asyncio.subprocess.Process | None = None
        self.output: list[str] = []
        self._reader: asyncio.Task | None = None
        self._awaited: list[tuple[str, asyncio.Future]] = []  # (text, resolved when a line has it)

    async def start(self) -> WorkerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        ready = self._line_future("ready")

        async def read() -> None:
            assert self.proc and self.proc.stdout
            async for line in self.proc.stdout:
                text = line.decode(errors="replace").rstrip()
                self.output.append(text)
                for needle, future in self._awaited:
                    if needle in text and not future.done():
                        future.set_result(text)
            for _, future in self._awaited:
                if not future.done():
                    future.set_exception(RuntimeError("worker exited:\n" + "\n".join(self.output)))

        self._reader = asyncio.create_task(read())
        await asyncio.wait_for(ready, 30)
        return self

    def _line_future(self, needle: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._awaited.append((needle, future))
        return future

    async def wait_for_line(self, needle: str, timeout: float = 30) -> str:
        """The first output line (already printed, or still to come) that contains `needle`."""
        for text in self.output:
            if needle in text:
                return text
        return await asyncio.wait_for(self._line_future(needle), timeout)

    async def metrics_port(self) -> int:
        """The port of the process's /metrics, as it printed it (BR_METRICS_PORT=0: any free one)."""
        return int((await self.wait_for_line("metrics on :")).rsplit(":", 1)[1])

    async def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader:
            await self._reader
        return code

    async def stop(self) -> int | None:
        """SIGTERM (drain, commit, close), SIGKILL if that takes over 30 s; the exit code."""
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await self.wait_exit(30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode if self.proc else None


def worker_env(cfg: StackConfig, topics: Topics, instance: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BR_")}
    env.update(cfg.service_env())
    env.update(
        {
            "BR_STATE_DIR": str(cfg.state_dir),
            "BR_TOPIC_PREFIX": topics.prefix,
            "BR_COMMAND_GROUP": f"{topics.prefix}commands",
            "BR_PERSISTENCE_GROUP": f"{topics.prefix}persistence",
            "BR_WORKER_ID": instance,
            # No admitter: waiting-room tests move a clock of their own; test_admitter starts one.
            "BR_WORKER_ROLES": "commands,sweeper,persistence",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


ENDPOINT_FIELDS = frozenset(f.name for f in dataclasses.fields(Endpoints))

# Every test gateway signs queue passes with this key, so tests can craft passes of their own.
TEST_PASS_KEYS = PassKeys.generate("test-key")


def gateway_settings(cfg: StackConfig, topics: Topics, secret: str, **overrides: Any) -> GatewaySettings:
    """A test gateway's settings; an override named like an Endpoints field moves that service."""
    moved = {k: overrides.pop(k) for k in list(overrides) if k in ENDPOINT_FIELDS}
    values: dict[str, Any] = dict(
        jwt_secret=secret,
        endpoints=dataclasses.replace(cfg.endpoints(topics.prefix), **moved),
        processes=1,
        rate_limit_namespace=unique("rl-"),  # each gateway its own buckets
        queue_pass_keys=TEST_PASS_KEYS,
    )
    values.update(overrides)
    return GatewaySettings(**values)


# Every account policy lifted, per account and per address (the tests' callers share 127.0.0.1).
ACCOUNT_LIMITS_LIFTED = (
    ",".join(
        f"{policy}=1000/1000"
        for policy in (
            "register",
            "login",
            "register_address",
            "login_address",
            "forgot_address",
            "reset_address",
            "verify_address",
        )
    )
    + ",reset_mail=1000/1000/60"
)


def accounts_gateway_settings(
    cfg: StackConfig, topics: Topics, secret: str, **overrides: Any
) -> GatewaySettings:
    """For account tests: cheap bcrypt (cost 4) and the register/login limits lifted; the spec's
    own limits are tested on their own."""
    values: dict[str, Any] = {"bcrypt_cost": 4, "rate_limits": ACCOUNT_LIMITS_LIFTED}
    values.update(overrides)
    return gateway_settings(cfg, topics, secret, **values)


@contextlib.asynccontextmanager
async def running_gateway(settings: GatewaySettings, **app_options: Any):
    """The real app (create_app) on a loopback port, every answer checked against the OpenAPI
    document (tests/contract.py); yields its base URL."""
    async with running_gateway_app(settings, **app_options) as (url, _):
        yield url


@contextlib.asynccontextmanager
async def running_gateway_app(settings: GatewaySettings, **app_options: Any):
    """As running_gateway, yielding (base URL, the running app) for tests that look inside."""
    app = create_app(settings, **app_options)
    app.middlewares.insert(0, openapi_contract)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), app
    finally:
        await server.close()


async def read_topic(bootstrap: str, topic: str, match: Callable[[dict], bool]) -> list[dict]:
    """Every message on `topic` (from the start up to its current end) that `match` accepts."""
    return [value for value, _ in await read_records(bootstrap, topic, match)]


async def read_records(
    bootstrap: str, topic: str, match: Callable[[dict], bool]
) -> list[tuple[dict, dict[str, bytes]]]:
    """(message, record headers) for every message on `topic`, up to its current end, that
    `match` accepts."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for p in consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found: list[tuple[dict, dict[str, bytes]]] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    if r.offset < end[TopicPartition(r.topic, r.partition)]:
                        value = messages.decode(r.value)
                        if match(value):
                            found.append((value, dict(r.headers or ())))
        return found
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - first use of the topic
    return consumer.partitions_for_topic(topic) or set()


async def topic_size(bootstrap: str, topic: str) -> int:
    """How many messages `topic` holds now (sum of end offsets; topics are never compacted)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await consumer.stop()


def reserve_command(
    event_id: str,
    show_id: str,
    zone_id: str,
    user_id: str,
    *,
    quantity: int,
    deadline_ms: int,
    accept_by_ms: int,
    reply_to: str,
) -> dict:
    """A reserve command as a gateway builds it, for tests that produce straight to Kafka."""
    return messages.reserve_command(
        request_id=messages.new_public_id(event_id),
        booking_id=messages.new_public_id(event_id),
        event_id=event_id,
        show_id=show_id,
        zone_id=zone_id,
        user_id=user_id,
        quantity=quantity,
        idempotency_key=None,
        body_hash="h",
        deadline_ms=deadline_ms,
        accept_by_ms=accept_by_ms,
        reply_to=reply_to,
    )


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str | None = None,
    body: dict | None = None,
    headers: dict | None = None,
    **request_options: Any,
) -> tuple[int, dict]:
    """One API call as a client makes it: (status, the decoded JSON answer)."""
    h = {"Authorization": f"Bearer {token}"} if token else {}
    h.update(headers or {})
    async with session.request(method, url, json=body, headers=h, **request_options) as r:
        return r.status, await r.json()


async def reserve(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    body: dict | bytes | str,
    headers: dict | None = None,
) -> tuple[int, dict]:
    url = f"{base}/api/v1/bookings/reserve"
    if isinstance(body, dict):
        return await call(session, "POST", url, token, body, headers)
    return await call(session, "POST", url, token, headers=headers, data=body)  # raw, possibly malformed


async def book(
    session: aiohttp.ClientSession, base: str, token: str, body: dict, headers: dict | None = None
) -> tuple[int, dict]:
    """Reserve, following a 202 to the final answer."""
    status, answer = await reserve(session, base, token, body, headers)
    return await final_answer(session, base, token, status, answer)


async def queue_call(session: aiohttp.ClientSession, base: str, token: str, verb: str, event_id: str):
    """POST /queue/join (verb "join"), POST /queue/leave ("leave") or GET /queue/status
    ("status") for `event_id`."""
    if verb in ("join", "leave"):
        return await call(session, "POST", f"{base}/api/v1/queue/{verb}", token, {"event_id": event_id})
    return await call(session, "GET", f"{base}/api/v1/queue/status", token, params={"event_id": event_id})


async def final_answer(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    status: int,
    body: dict,
    timeout: float = 60,
    created: bool = True,
) -> tuple[int, dict]:
    """Follow a 202 to its final answer by polling the request's result (bounded). `created`:
    a poll's 200 stands for the 201 a reserve would have answered."""
    if status != 202:
        return status, body
    url = f"{base}{body['data']['poll']}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
            if r.status == 429:  # a polite client: wait as told, then poll again
                await asyncio.sleep(int(r.headers["Retry-After"]))
                continue
            if r.status != 202:
                return (201 if created and r.status == 200 else r.status), await r.json()
        await asyncio.sleep(0.2)
    raise AssertionError(f"request {body['data']['request_id']} never got a final answer")


def reserve_body(
    event, zone: str = "GA", quantity: int = 1, show_index: int = 0, key: str | None = None
) -> dict:
    """A reserve request's body: `quantity` seats of `zone` in one of `event`'s shows."""
    show = list(event.shows)[show_index]
    body = {
        "event_id": event.event_id,
        "show_id": show,
        "zone_id": event.shows[show][zone],
        "quantity": quantity,
    }
    if key is not None:
        body["idempotency_key"] = key
    return body


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus text exposition: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class EventStream:
    """A Server-Sent Events client for tests: `await next_event()` -> (id, event, data as JSON);
    heartbeat events are counted, not returned."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.heartbeats = 0

    async def next_event(self, timeout: float = 15) -> tuple[str, str, dict]:
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.response.content.readline()).decode()
                if line == "":
                    raise EOFError("the stream ended")
                line = line.rstrip("\n")
                if line.startswith(":"):
                    continue
                elif line and ":" in line:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                elif not line and fields.get("event") == "heartbeat":
                    self.heartbeats += 1
                    fields = {}
                elif not line and "data" in fields:
                    return fields.get("id", ""), fields.get("event", "message"), json.loads(fields["data"])
                elif not line:
                    fields = {}

    async def ended(self, timeout: float = 15) -> bool:
        async with asyncio.timeout(timeout):
            return await self.response.content.read() == b""


@contextlib.asynccontextmanager
async def event_stream(session: aiohttp.ClientSession, base: str, event_id: str, ticket: str, last_id=None):
    headers = {"Last-Event-ID": last_id} if last_id else {}
    params = {"event_id": event_id, "ticket": ticket}
    async with session.get(f"{base}/api/v1/queue/stream", params=params, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        yield EventStream(response)


async def admission_tick(room, event_id: str, timeout: float) -> list[str]:
    """One admission tick as the admitter runs it (the script, then the broadcast every gateway
    process hears), repeated until the bucket has a token to spend; who it let in."""
    admitted: list[str] = []

    async def lets_one_in() -> bool:
        at = now_ms()
        tick = await room.admit(event_id, at)
        await room.broadcast(tick_message(event_id, at, tick))
        admitted.extend(user for user, _ in tick["admitted"])
        return bool(admitted)

    await wait_until(lets_one_in, timeout=timeout, what="an admission tick that lets someone in")
    return admitted


@contextlib.asynccontextmanager
async def gateway_process(cfg: StackConfig, topics: Topics, secret: str, session, **env_extra: str):
    """`python -m gateway` as real processes (BR_GATEWAY_PROCESSES and the rest from
    `env_extra`), ready; yields its base URL, and stops it after."""
    async with started_gateway(cfg, topics, secret, session, **env_extra) as (base, _):
        yield base


@contextlib.asynccontextmanager
async def started_gateway(cfg: StackConfig, topics: Topics, secret: str, session, **env_extra: str):
    """gateway_process, yielding (base URL, the process) for a test that signals it itself."""
    port = free_port()
    env = service_env(
        cfg.service_env(),
        BR_JWT_SECRET=secret,
        BR_TOPIC_PREFIX=topics.prefix,
        BR_GATEWAY_PORT=str(port),
        BR_RATE_LIMIT_NAMESPACE=unique("rl-"),
        **env_extra,
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the gateway makes its own
    # Its stderr in a file that outlives the run: what a gateway says as it stops (a child it had
    # to kill, with that child's stacks) is read there.
    log_dir = cfg.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr = os.open(log_dir / f"test-gateway-{port}.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    finally:
        os.close(stderr)  # the child has its own copy
    base = f"http://127.0.0.1:{port}"
    try:

        async def ready() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{base}/readyz") as r:
                    return r.status == 200
            return False

        await wait_until(ready, 60, "the gateway process ready")
        yield base, proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def published_event(
    pg,
    sale_redis,
    tenant: dict,
    zones: list[tuple[str, int]],
    shows: int = 2,
    max_per_user: int = 4,
    price: str = "100.00",
) -> CreatedEvent:
    """A published event of `tenant` (its tenant_id, organizer_id) with its inventory loaded into
    the sale Redis: `zones` (name, seats) in every one of `shows` shows."""
    async with pg.acquire() as conn:
        event = await create_event(
            conn,
            tenant_id=tenant["tenant_id"],
            organizer_id=tenant["organizer_id"],
            title=unique("Event "),
            shows=shows,
            max_per_user=max_per_user,
            zones=[ZoneSpec(name, Decimal(price), seats) for name, seats in zones],
        )
        await load_event_inventory(sale_redis, conn, event.event_id)
    return event


async def seats_add_up(
    sale_redis, pg, event_id: str, show: str, zone: str, total: int, booked: set[str]
) -> None:
    """The zone lost exactly the seats `booked` (one each) in Redis, and PostgreSQL has every one
    of those bookings and no other of the event: nothing a refusal answered was applied, nothing
    acknowledged was lost, nothing sold twice."""
    assert int(await sale_redis.hget(keys.zone(event_id, show, zone), "available")) == total - len(booked)

    async def all_persisted() -> bool:
        n = await pg.fetchval("SELECT count(*) FROM bookings WHERE public_id = ANY($1::text[])", list(booked))
        return n == len(booked)

    await wait_until(all_persisted, 90, "every acknowledged booking in PostgreSQL")
    assert await pg.fetchval("SELECT count(*) FROM bookings WHERE event_id = $1", event_id) == len(booked)


async def tenant_with_event(pg, sale_redis, prefix: str, zones: list[tuple[str, int]] | None = None) -> dict:
    """A tenant of its own (tenant_id, slug), its organizer and a published event of one show
    on sale (`event`)."""
    slug = unique(prefix)
    async with pg.acquire() as conn:
        tenant_id = await ensure_tenant(conn, slug, "A Tenant Of Its Own")
        (organizer,) = await ensure_users(conn, tenant_id, [f"{unique('o')}@{slug}.test"], "organizer")
    tenant = {"tenant_id": tenant_id, "organizer_id": organizer, "slug": slug}
    return {**tenant, "event": await published_event(pg, sale_redis, tenant, zones or [("GA", 5)], 1)}


async def run_module(module: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`python -m module args...` from the repository, as a user runs it: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()
