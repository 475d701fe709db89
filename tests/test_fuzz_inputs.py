"""Every operation in the OpenAPI document, fed malformed path values, queries and bodies by every
kind of caller, answers in the spec's envelope with a documented 4xx: never a 500, never a 503
while the services are up; and the whole run changes nothing that matters.

The cases come from the document itself (its paths, parameters and request body schemas), so a
new route is fuzzed the day it is described. Each runs as a buyer, an organizer and an admin of
the fuzz's tenant, an admin of another tenant, and nobody. Path values are hostile strings, and
the real ids of a published event with a live booking (where the request cannot succeed: a read,
or a body the document calls invalid); bodies start from a valid one built on those ids and
break one field at a time (every JSON type, huge and negative numbers, over-long, unicode and
control characters, deep and wide values), keeping only what the document itself calls invalid;
raw bodies are broken JSON, deep and wide JSON, NaN and Infinity, duplicate keys, bad UTF-8 and
wrong content types. A worker runs behind the gateway, so a request that got through would act:
the last test checks that no seat counter, hold, per-user count, booking row or booking.events
record moved (a refusal decided by a worker leaves its idempotency record and result, and a
reserve counts toward the room's request rate: those are not state changes).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import jsonschema
import orjson
import pytest
import pytest_asyncio

from booking_rush.contract import messages
from gateway.auth import issue_access_token
from gateway.routes.openapi import DOCUMENT
from lua import keys
from ops.seed_data import ensure_tenant, ensure_users
from tests.support import (
    WorkerProcess,
    book,
    gateway_settings,
    published_event,
    running_gateway,
    topic_size,
    unique,
    wait_until,
    worker_env,
)

HOSTILE_PATH_VALUES = [
    "not-a-uuid",
    "' OR 1=1 --",
    "%00",
    "..%2F..%2Fetc%2Fpasswd",
    "x" * 2000,
    "%F0%9F%8E%AB",  # an emoji
    "%E2%80%AE%0D%0A",  # a right-to-left override, a CR LF
    str(uuid.uuid4()),  # well formed, unknown
    "00000000-0000-0000-0000-000000000000",
    "a" * 64,  # a booking id's shape, unknown
    "A" * 64,
]

HOSTILE_QUERIES = [
    "page=-1",
    "page=abc",
    "page=99999999999999999999",
    "per_page=0",
    "per_page=1e3",
    "status=%00",
    "category=%00",
    "page=%C2%B2",  # a superscript two: a digit to str.isdigit, not to int()
    "category=" + "c" * 5000,
    "page=1&page=2",
    "status[]=published",
    "event_id=00000000-0000-4000-8000-000000000000%0A",
    "event_id=%ED%A0%80",  # a lone surrogate, UTF-8 encoded
    "ticket=a.b.c&event_id=nope",
]

DEEP = b'{"a":' * 1200 + b"1" + b"}" * 1200
RAW_BODIES = [
    b"{nope",
    b"[]",
    b"null",
    b'"text"',
    b"42",
    b"{}",
    b"",
    b'{"a":' * 200 + b"1" + b"}" * 200,
    DEEP,
    b"[" * 5000 + b"]" * 5000,
    b'{"quantity": NaN}',
    b'{"quantity": Infinity, "seats": -Infinity}',
    b'{"quantity": 1, "quantity": "two"}',  # a duplicate key
    b'{"a": 1,}',  # a trailing comma
    b"\xef\xbb\xbf{}",  # a byte order mark
    b'{"title": "\xff\xfe"}',  # not UTF-8
    '{"title": "x"}'.encode("utf-16"),
    b'{"title": "\\ud800"}',  # a lone surrogate escape
    orjson.dumps({f"k{i}": i for i in range(1500)}),  # wide
]

# Values of every JSON type, and the edges of each, for any field.
ANY_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    -(2**63),
    2**63,
    10**30,
    -(10**30),
    1.5,
    -0.0,
    1e308,
    "",
    " ",
    "x" * 5000,
    "\u0000",
    "a\nb",
    "trailing\n",
    "\u202eevil",
    "\U0001f3ab" * 40,
    "\ud7ff\ue000\ufffd",
    "a1" * 40,  # a password of 80 bytes
    "\u20ac" * 30,  # 90 bytes of euro signs
    "9999-12-31T23:59:59-23:59",
    "1e3",
    [],
    [None],
    [1, "two", {}],
    {},
    {"nested": {"deeper": [1, 2, 3]}},
    [[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]],
    {f"w{i}": i for i in range(300)},  # wide
]

ANSWER_WITHIN = aiohttp.ClientTimeout(total=10)
CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "application/xml"]


@dataclass
class World:
    """The fuzz's target: a gateway, its callers and the real ids its requests may name."""

    url: str
    callers: dict[str, dict[str, str]]  # role -> headers
    ids: dict[str, str]  # path parameter name -> a real id
    bases: dict[tuple[str, str], dict]  # (method, path) -> a valid body on those ids
    events_topic: str = ""
    snapshot: dict = field(default_factory=dict)
    events_before: int = 0
    requests: int = 0


def _operations():
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            yield pytest.param(method, path, operation, id=f"{method.upper()} {path}")


def _body_schema(operation: dict) -> dict | None:
    return operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")


def _doc_invalid(schema: dict, body) -> bool:
    try:
        jsonschema.validate(body, schema)
    except jsonschema.ValidationError:
        return True
    return False


def _raw_doc_invalid(schema: dict, raw: bytes) -> bool:
    """Not JSON at all, or JSON the document calls invalid."""
    try:
        return _doc_invalid(schema, json.loads(raw))
    except (ValueError, RecursionError):
        return True


def _properties(schema: dict) -> dict:
    """Every property an object schema (or any branch of its oneOf/anyOf) declares."""
    found = dict(schema.get("properties", {}))
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        found.update(_properties(branch))
    return found


def _wrong_bodies(schema: dict, base: dict) -> list:
    """The valid `base` with one field broken at a time (each value of every JSON type), one
    required field left out at a time, and whole-body mistakes, each one the document calls
    invalid (a value the document allows would be a request that may succeed)."""
    candidates: list = [{}, {"unknown": 1}, {**base, "\u0000": 1}]
    for name in _properties(schema):
        for value in ANY_VALUES:
            candidates.append({**base, name: value})
            candidates.append({name: value})
        candidates.append({k: v for k, v in base.items() if k != name})
    for name, value in base.items():  # inside a nested object (the payment's details)
        if isinstance(value, dict):
            for inner in value:
                for wrong in ANY_VALUES:
                    candidates.append({**base, name: {**value, inner: wrong}})
    unique_bodies = {json.dumps(c, sort_keys=True): c for c in candidates}
    return [b for b in unique_bodies.values() if _doc_invalid(schema, b)]


def _base_bodies(ids: dict[str, str], slug: str) -> dict[tuple[str, str], dict]:
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    return {
        ("post", "/api/v1/auth/register"): {
            "tenant": slug,
            "email": "fuzz@fuzz.test",
            "password": "fuzzpass1",
        },
        ("post", "/api/v1/auth/login"): {"tenant": slug, "email": "fuzz@fuzz.test", "password": "fuzzpass1"},
        ("post", "/api/v1/auth/refresh"): {"refresh_token": "r" * 40},
        ("post", "/api/v1/auth/logout"): {"refresh_token": "r" * 40},
        ("post", "/api/v1/auth/forgot-password"): {"tenant": slug, "email": "fuzz@fuzz.test"},
        ("post", "/api/v1/auth/reset-password"): {"token": "t" * 40, "password": "fuzzpass1"},
        ("post", "/api/v1/categories"): {"name": "Fuzz", "slug": "fuzz-category"},
        ("post", "/api/v1/events"): {
            "title": "Fuzz",
            "shows": [{"show_date": later, "zones": [{"name": "A", "price": "10.00", "seats": 5}]}],
        },
        ("put", "/api/v1/shows/{show_id}/zones/{zone_id}"): {"seats": 10},
        ("post", "/api/v1/admin/events/{event_id}/room/revocations"): {"user_id": ids["user_id"]},
        ("post", "/api/v1/queue/join"): {"event_id": ids["event_id"]},
        ("post", "/api/v1/bookings/reserve"): {
            "event_id": ids["event_id"],
            "show_id": ids["show_id"],
            "zone_id": ids["zone_id"],
            "quantity": 1,
        },
        ("post", "/api/v1/bookings/quote"): {
            "event_id": ids["event_id"],
            "show_id": ids["show_id"],
            "zone_id": ids["zone_id"],
            "quantity": 1,
        },
        ("post", "/api/v1/events/{event_id}/promo-codes"): {"kind": "percent", "percent": 10},
        ("patch", "/api/v1/events/{event_id}/promo-codes/{code}"): {"status": "paused"},
        ("put", "/api/v1/events/{event_id}/zones/{zone_id}/early-bird"): {
            "kind": "percent",
            "percent": 10,
            "seats": 5,
        },
        ("put", "/api/v1/events/{event_id}/bundles"): {"tiers": [{"min_quantity": 3, "percent": 5}]},
        ("post", "/api/v1/admin/payments/{payment_id}/refund/refuse"): {"reason": "no"},
        ("post", "/api/v1/bookings/{booking_id}/voucher"): {"code": "V-ABCDEFGHJKLM"},
        ("put", "/api/v1/admin/tenant"): {"cancellation_compensation_percent": 10},
        ("post", "/api/v1/payments"): {
            "booking_id": ids["booking_id"],
            "method": "bank_transfer",
            "details": {"account": "NL00BANK0001"},
        },
    }


async def _sale_state(sale_redis, pg, event_id: str) -> dict:
    """What the sale is: every key of the event in the sale Redis (but idempotency records,
    stored results and the room's request counts, which a refusal may leave), and its bookings
    and payments in PostgreSQL."""
    state: dict = {}
    async for raw in sale_redis.scan_iter(match=f"{keys.tag(event_id)}:*", count=1000):
        key = raw.decode()
        if re.search(r":(idem|result):|:room:hits$", key):
            continue
        kind = (await sale_redis.type(key)).decode()
        reader = {
            "hash": sale_redis.hgetall,
            "string": sale_redis.get,
            "set": sale_redis.smembers,
            "zset": lambda k: sale_redis.zrange(k, 0, -1, withscores=True),
        }[kind]
        state[key] = await reader(key)
    rows = await pg.fetch(
        "SELECT public_id, status, version, quantity FROM bookings WHERE event_id = $1 ORDER BY public_id",
        event_id,
    )
    state["pg bookings"] = [tuple(r) for r in rows]
    payments = await pg.fetch("SELECT public_id, status, version FROM payments WHERE event_id = $1", event_id)
    state["pg payments"] = sorted(tuple(r) for r in payments)
    return state


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(schema, pg, sale_redis, new_topics, jwt_secret, http, tenant):
    """A gateway with a worker behind it (limits lifted: every request here counts), callers of
    every role, and a published event of the fuzz's tenant with a live booking."""
    topics = await new_topics("fuzz")
    async with pg.acquire() as conn:
        other = await ensure_tenant(conn, unique("fuzz-other-"), "Another Tenant")
        (other_admin,) = await ensure_users(conn, other, [f"{unique('admin')}@other.test"], "admin")
        people = {}
        for role in ("user", "organizer", "admin"):
            (people[role],) = await ensure_users(
                conn, tenant["tenant_id"], [f"{unique(role)}@fuzz.test"], role
            )
        slug = await conn.fetchval("SELECT slug FROM tenants WHERE id = $1", tenant["tenant_id"])

    def headers(user: str, tenant_id: str, role: str) -> dict[str, str]:
        token = issue_access_token(jwt_secret, user_id=user, tenant_id=tenant_id, role=role)
        return {"Authorization": f"Bearer {token}"}

    callers = {
        "buyer": headers(people["user"], tenant["tenant_id"], "user"),
        "organizer": headers(people["organizer"], tenant["tenant_id"], "organizer"),
        "admin": headers(people["admin"], tenant["tenant_id"], "admin"),
        "another tenant's admin": headers(other_admin, other, "admin"),
        "nobody": {},
    }
    event = await published_event(pg, sale_redis, tenant, [("GA", 20)], shows=1)
    show_id = next(iter(event.shows))
    zone_id = event.shows[show_id]["GA"]
    worker = await WorkerProcess(
        worker_env(schema, topics, f"{topics.prefix}w", BR_WORKER_ROLES="commands,persistence")
    ).start()
    limits = ",".join(f"{p}=10000000/1000000" for p in ("general", "reserve", "login", "register"))
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits=limits, bcrypt_cost=4)
    try:
        async with running_gateway(settings) as url:
            body = {"event_id": event.event_id, "show_id": show_id, "zone_id": zone_id, "quantity": 2}
            status, answer = await book(http, url, callers["buyer"]["Authorization"].split()[1], body)
            assert status == 201, answer
            booking_id = answer["data"]["booking_id"]

            async def persisted() -> bool:
                return (
                    await pg.fetchval("SELECT count(*) FROM bookings WHERE public_id = $1", booking_id) == 1
                )

            await wait_until(persisted, 30, "the fuzz's booking in PostgreSQL")
            ids = {
                "event_id": event.event_id,
                "show_id": show_id,
                "zone_id": zone_id,
                "user_id": people["user"],
                "booking_id": booking_id,
                "payment_id": messages.payment_id_of(booking_id),
                "request_id": messages.new_request_id(event.event_id),
                "tenant_id": other,  # the system routes': nobody here may act on it (not a system admin)
                "code": "FUZZ-NO-SUCH-CODE",  # a promo code's shape; the event has none
            }
            found = World(url, callers, ids, _base_bodies(ids, slug), topics.events)
            found.snapshot = await _sale_state(sale_redis, pg, event.event_id)
            found.events_before = await topic_size(schema.kafka_bootstrap, topics.events)
            yield found
    finally:
        await worker.stop()


async def _send(http, method, url, headers, body=None, raw=None, content_type="application/json"):
    # The standard json module: orjson refuses integers beyond 64 bits, which is one of the cases.
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    send_headers = {**headers, "Content-Type": content_type} if data is not None else headers
    try:
        async with http.request(method, url, data=data, headers=send_headers, timeout=ANSWER_WITHIN) as r:
            return r.status, await r.read(), r.headers.get("Content-Type", "")
    except TimeoutError:
        return 599, b"no answer within 10 s", "text/plain"


def _problem(method, url, status, text, content_type, sent) -> str | None:
    if status >= 500:
        return f"{method.upper()} {url} {sent!r:.600} -> {status} {text[:200]!r}"
    if status == 400 and content_type.startswith("text/plain"):
        return None  # refused by HTTP itself, before any route (documented for every operation)
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        return f"{method.upper()} {url} -> {status}: not JSON"
    if status >= 400 and not (answer.get("success") is False and answer.get("error", {}).get("code")):
        return f"{method.upper()} {url} -> {status}: not the error envelope: {answer}"
    if status < 400 and method != "get":  # a read of a real id may well succeed
        return f"{method.upper()} {url} {sent!r:.600} -> {status}: a broken request was accepted"
    return None


def _path_values(path: str, method: str, operation: dict, ids: dict[str, str]) -> list[str]:
    """URLs with each parameter hostile (the others real), each real id with a newline after it,
    and all ids real when the request cannot succeed (a read, or a broken body to follow)."""
    names = re.findall(r"{(\w+)}", path)
    if not names:
        return [path]
    real = {n: ids[n] for n in names}

    def fill(values: dict[str, str]) -> str:
        return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)

    urls = [fill({**real, n: v}) for n in names for v in HOSTILE_PATH_VALUES]
    urls += [fill({**real, n: real[n] + "%0A"}) for n in names]
    if method == "get" or _body_schema(operation) is not None:
        urls.append(fill(real))
    return urls


async def _fuzz_one(http, world: World, method: str, path: str, operation: dict) -> list[str | None]:
    problems: list[str | None] = []
    schema = _body_schema(operation)
    urls = _path_values(path, method, operation, world.ids)
    real_url = urls[-1] if (method == "get" or schema is not None) else urls[0]
    base = world.bases.get((method, path), {})
    for role, headers in world.callers.items():
        cases: list[tuple[str, dict]] = [(url, {}) for url in urls]
        if method == "get":
            cases += [(f"{real_url}?{q}", {}) for q in HOSTILE_QUERIES]
        if schema is not None:
            cases += [(real_url, {"raw": raw}) for raw in RAW_BODIES if _raw_doc_invalid(schema, raw)]
            cases += [(real_url, {"body": body}) for body in _wrong_bodies(schema, base)]
            broken = {**base, "\u0000": 1} if base else {"unknown": "\u0000"}
            cases += [(real_url, {"body": broken, "content_type": ct}) for ct in CONTENT_TYPES]
            cases.append((real_url, {"raw": b"a=1&b=2", "content_type": "application/x-www-form-urlencoded"}))
            cases.append((real_url, {"body": {"padding": "p" * 40_000}}))  # past the body limit
        for start in range(0, len(cases), 16):  # a few at a time: the gateway serves them together
            batch = cases[start : start + 16]
            answers = await asyncio.gather(
                *(_send(http, method, world.url + url, headers, **options) for url, options in batch)
            )
            for (url, options), (status, text, content_type) in zip(batch, answers, strict=True):
                sent = options.get("body", options.get("raw"))
                problem = _problem(method, url, status, text, content_type, sent)
                problems.append(problem and f"[{role}] {problem}")
        world.requests += len(cases)
    return problems


@pytest.mark.parametrize(("method", "path", "operation"), list(_operations()))
async def test_malformed_input_never_breaks_an_operation(world, http, method, path, operation):
    problems = [p for p in await _fuzz_one(http, world, method, path, operation) if p]
    assert problems == [], "\n".join(problems)


async def test_the_fuzz_changed_nothing_that_matters(world, schema, sale_redis, pg):
    """Runs after every operation was fuzzed (tests run in the order they are written)."""
    print(f"{world.requests} fuzz requests")  # shown with -s
    assert world.requests >= 10_000, world.requests
    assert await _sale_state(sale_redis, pg, world.ids["event_id"]) == world.snapshot
    assert await topic_size(schema.kafka_bootstrap, world.events_topic) == world.events_before
