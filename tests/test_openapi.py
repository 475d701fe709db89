"""The OpenAPI document stays true: every route is in it, and real answers match its schemas."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import jsonschema
import pytest
from openapi_spec_validator import validate

from booking_rush.services.endpoints import Endpoints
from booking_rush.services.web_push import PushSettings, VapidKey
from gateway.app import create_app
from gateway.auth import issue_access_token
from gateway.routes.openapi import DOCUMENT
from gateway.settings import GatewaySettings
from ops.config import REPO_ROOT
from ops.seed_data import ensure_tenant, ensure_users
from tests.support import (
    WorkerProcess,
    call,
    final_answer,
    gateway_settings,
    running_gateway,
    unique,
    worker_env,
)


def _check(method: str, path: str, status: int, body: dict) -> None:
    operation = DOCUMENT["paths"][path][method]
    assert str(status) in operation["responses"], f"{method.upper()} {path} -> {status} undocumented"
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.validate(body, schema)


def test_every_route_is_described():
    # Built, not started: routes exist from construction; no service is contacted.
    app = create_app(
        GatewaySettings(
            jwt_secret="x" * 40,
            endpoints=Endpoints("redis://unused", "redis://unused", "postgresql://unused", "unused"),
        )
    )
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        # browser pages and operational endpoints (/metrics): not API
        if r.method != "HEAD" and not (r.name or "").startswith(("page:", "ops:"))
    }
    described = {(m, p) for p, ops in DOCUMENT["paths"].items() for m in ops}
    assert routes == described, (routes - described, described - routes)


async def test_the_app_serves_its_document(gateway_url, http):
    status, body = await call(http, "GET", f"{gateway_url}/api/v1/openapi.json")
    # The bare document, as tools load it (the envelope is for API answers).
    assert status == 200 and body["openapi"].startswith("3.")
    assert body["paths"].keys() == DOCUMENT["paths"].keys()


def test_the_document_is_valid_openapi():
    validate(DOCUMENT)  # openapi-spec-validator: the OpenAPI 3.1 schema, $refs and parameters


async def test_schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_describe(
    schema, new_topics, jwt_secret, pg, make_event, tmp_path
):
    """schemathesis (positive and negative data) against a gateway with a worker behind it, as
    an admin of a tenant of its own: no 5xx, no status or body the document does not describe,
    and no 400 for a request the document calls valid. A bounded budget (examples per
    operation, a fixed seed), so the run takes a minute or two."""
    topics = await new_topics("schemathesis")
    async with pg.acquire() as conn:
        tenant = await ensure_tenant(conn, unique("st-"), "Schemathesis")
        (admin,) = await ensure_users(conn, tenant, [f"{unique('admin')}@st.test"], "admin")
    token = issue_access_token(jwt_secret, user_id=admin, tenant_id=tenant, role="admin")
    await make_event([("GA", 50)], shows=1)  # a published event: some generated ids hit something
    worker = await WorkerProcess(worker_env(schema, topics, f"{topics.prefix}w")).start()
    config = tmp_path / "schemathesis.toml"
    # BR_SCHEMATHESIS_SEED: another seed explores other cases (the suite's is fixed: repeatable).
    config.write_text(
        SCHEMATHESIS_CONFIG.replace("20261205", os.environ.get("BR_SCHEMATHESIS_SEED", "20261205"))
    )
    push = PushSettings(vapid_private_key=VapidKey.generate())  # so that a push subscription is taken
    settings = gateway_settings(schema, topics, jwt_secret, rate_limits=NO_LIMITS, bcrypt_cost=4, push=push)
    try:
        async with running_gateway(settings) as url:
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("st")),
                "--config-file",
                str(config),
                "run",
                f"{url}/api/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=tmp_path,
                # The rules JSON Schema cannot say, told to the generator (their module's docstring).
                env={
                    **os.environ,
                    "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
                    "PYTHONPATH": str(REPO_ROOT),
                },
            )
            out, _ = await proc.communicate()
    finally:
        await worker.stop()
    report = out.decode(errors="replace")
    (tmp_path / "schemathesis.out").write_text(report)
    assert proc.returncode == 0, f"the whole report: {tmp_path / 'schemathesis.out'}\n" + report[-20_000:]


HOOKS = "tests.schemathesis_hooks"
NO_LIMITS = ",".join(f"{p}=1000000/100000" for p in ("general", "reserve", "login", "register"))
SCHEMATHESIS_CONFIG = """
seed = 20261205
max-stream-events = 1

[generation]
mode = "all"
max-examples = 40
# The document says no string may hold NUL (its description; payloads.py refuses them).
allow-x00 = false

[phases]
examples.enabled = true
coverage.enabled = true
fuzzing.enabled = true
stateful.enabled = true
stateful.max-steps = 8

[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true
positive_data_acceptance.enabled = true
# A well-formed request may still meet a state: unknown ids (404), sold out or a transition not
# allowed (409), a payment needed (402) or expired (410), an idempotency key reused (422).
# 413: a body past the size limit (16 KiB), which JSON Schema cannot bound, is too large, not bad.
positive_data_acceptance.expected-statuses = [
    "2xx", "401", "402", "403", "404", "409", "410", "413", "422", "429"
]

# The coverage phase's boundary values do not pass through the hooks, and these operations have
# rules the hooks keep (a show date in the future, unique zone names, a birth date not ahead).
[[operations]]
include-path = "/api/v1/events"
include-method = "POST"
phases.coverage.enabled = false

[[operations]]
include-path = "/api/v1/auth/me"
include-method = "PUT"
phases.coverage.enabled = false
"""


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/v1/events", "/api/v1/categories"])
async def test_public_answers_match(gateway_url, http, path):
    status, body = await call(http, "GET", f"{gateway_url}{path}")
    _check("get", path, status, body)


async def test_booking_answers_match(gateway_url, http, make_event, make_users, token_for):
    event = await make_event([("VIP", 2)], shows=1)
    show = next(iter(event.shows))
    zone = event.shows[show]["VIP"]
    (user,) = await make_users(1)
    body = {"event_id": event.event_id, "show_id": show, "zone_id": zone, "quantity": 2}
    status, answer = await call(http, "POST", f"{gateway_url}/api/v1/bookings/reserve", token_for(user), body)
    _check("post", "/api/v1/bookings/reserve", status, answer)
    status, answer = await final_answer(http, gateway_url, token_for(user), status, answer)
    _check("post", "/api/v1/bookings/reserve", status, answer)
    status, answer = await call(http, "POST", f"{gateway_url}/api/v1/bookings/reserve", token_for(user), body)
    answer = (await final_answer(http, gateway_url, token_for(user), status, answer))[1]
    _check("post", "/api/v1/bookings/reserve", 409, answer)  # sold out
    for bad in ({}, {**body, "quantity": 0}):
        status, answer = await call(
            http, "POST", f"{gateway_url}/api/v1/bookings/reserve", token_for(user), bad
        )
        _check("post", "/api/v1/bookings/reserve", status, answer)
    status, answer = await call(http, "POST", f"{gateway_url}/api/v1/bookings/reserve", None, body)
    _check("post", "/api/v1/bookings/reserve", status, answer)

    status, answer = await call(http, "GET", f"{gateway_url}/api/v1/events/{event.event_id}")
    _check("get", "/api/v1/events/{event_id}", status, answer)
    status, answer = await call(http, "GET", f"{gateway_url}/api/v1/events/{event.event_id}/shows")
    _check("get", "/api/v1/events/{event_id}/shows", status, answer)
    status, answer = await call(http, "GET", f"{gateway_url}/api/v1/shows/{show}/zones")
    _check("get", "/api/v1/shows/{show_id}/zones", status, answer)
    status, answer = await call(http, "GET", f"{gateway_url}/api/v1/events/{event.event_id}/availability")
    _check("get", "/api/v1/events/{event_id}/availability", status, answer)
