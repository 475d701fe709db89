"""Every operation in the OpenAPI document, fed malformed path values, queries and bodies, answers
in the spec's envelope with a documented 4xx: never a 500, never a 503 while the services are up.

The cases come from the document itself (its paths, parameters and request body schemas), so a
new route is fuzzed the day it is described. The caller is an admin of a tenant of its own, so
requests get past authentication and role checks to the input validation behind them; the
contract middleware (tests/contract.py) checks each answer's shape as well.
"""

from __future__ import annotations

import json
import re
import uuid

import orjson
import pytest
import pytest_asyncio

from gateway.auth import issue_access_token
from gateway.routes.openapi import DOCUMENT
from ops.seed_data import ensure_tenant, ensure_users
from tests.support import gateway_settings, running_gateway, unique

HOSTILE_PATH_VALUES = [
    "not-a-uuid",
    "' OR 1=1 --",
    "%00",
    "..%2F..%2Fetc%2Fpasswd",
    "x" * 2000,
    "%F0%9F%8E%AB",  # an emoji
    str(uuid.uuid4()),  # well formed, unknown
    "00000000-0000-0000-0000-000000000000",
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
]

RAW_BODIES = [b"{nope", b"[]", b"null", b'"text"', b"42", b"{}", b'{"a":' * 200 + b"1" + b"}" * 200]

WRONG_VALUES = {
    "string": [123, None, True, [], {"nested": "object"}, "x" * 5000, "\u0000"],
    "integer": ["12", 1.5, None, True, -1, 10**30, []],
    "boolean": ["yes", 1, None],
    "array": ["not a list", {}, [None], [1, 2, 3]],
    None: [None, 10**30, "\u0000", []],
}


def _operations():
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            yield pytest.param(method, path, operation, id=f"{method.upper()} {path}")


def _wrong_bodies(schema: dict) -> list:
    """Each declared property given each wrong value, the others left out, plus a few whole-body
    mistakes: a request body as a careless or hostile client would send it."""
    bodies: list = [{}, {"unknown": 1}]
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type")
        kind = kind if isinstance(kind, str) else None
        for value in WRONG_VALUES.get(kind, WRONG_VALUES[None]):
            bodies.append({name: value})
            bodies.append({**{n: "x" for n in schema.get("required", [])}, name: value})
    return bodies


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_target(schema, pg, new_topics, jwt_secret):
    """A gateway whose topics nobody reads, with the limits lifted (every request here counts),
    and an admin's token for a tenant of the fuzz's own."""
    async with pg.acquire() as conn:
        tenant = await ensure_tenant(conn, unique("fuzz-"), "Fuzz Tenant")
        (admin,) = await ensure_users(conn, tenant, [f"{unique('admin')}@fuzz.test"], "admin")
    settings = gateway_settings(
        schema,
        await new_topics("fuzz"),
        jwt_secret,
        rate_limits="general=1000000/100000,reserve=1000000/100000,login=1000000/100000,register=1000000/100000",
        bcrypt_cost=4,
    )
    token = issue_access_token(jwt_secret, user_id=admin, tenant_id=tenant, role="admin")
    async with running_gateway(settings) as url:
        yield url, {"Authorization": f"Bearer {token}"}


async def _send(http, method, url, headers, body=None, raw=None):
    # The standard json module: orjson refuses integers beyond 64 bits, which is one of the cases.
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    send_headers = {**headers, "Content-Type": "application/json"} if data is not None else headers
    async with http.request(method, url, data=data, headers=send_headers) as r:
        text = await r.read()
        return r.status, text


def _problem(method, url, status, text, sent) -> str | None:
    if status >= 500:
        return f"{method.upper()} {url} {sent!r:.120} -> {status} {text[:200]!r}"
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        return f"{method.upper()} {url} -> {status}: not JSON"
    if status >= 400 and not (answer.get("success") is False and answer.get("error", {}).get("code")):
        return f"{method.upper()} {url} -> {status}: not the error envelope: {answer}"
    return None


@pytest.mark.parametrize(("method", "path", "operation"), list(_operations()))
async def test_malformed_input_never_breaks_an_operation(fuzz_target, http, method, path, operation):
    base, headers = fuzz_target
    params = re.findall(r"{(\w+)}", path)
    problems = []

    def url_with(value: str) -> str:
        return base + re.sub(r"{\w+}", value, path)

    sample = url_with(str(uuid.uuid4()))
    for value in HOSTILE_PATH_VALUES if params else []:
        url = url_with(value)
        status, text = await _send(http, method, url, headers)
        problems.append(_problem(method, url, status, text, None))
    if method == "get":
        for query in HOSTILE_QUERIES:
            status, text = await _send(http, method, f"{sample}?{query}", headers)
            problems.append(_problem(method, f"{path}?{query}", status, text, None))
    body_schema = (
        operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    if body_schema is not None:
        for raw in RAW_BODIES:
            status, text = await _send(http, method, sample, headers, raw=raw)
            problems.append(_problem(method, path, status, text, raw))
        for body in _wrong_bodies(body_schema):
            status, text = await _send(http, method, sample, headers, body=body)
            problems.append(_problem(method, path, status, text, body))
        status, text = await _send(http, method, sample, headers, body={"padding": "p" * 40_000})
        problems.append(_problem(method, path, status, text, "oversized"))
    assert [p for p in problems if p] == []
