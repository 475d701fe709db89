"""compose.yaml starts, as far as can be told without a Docker engine: it is a valid Compose file
(the specification's own JSON schema, vendored in tests/schemas/), every process gets what its
settings require at start-up (asked of the settings code itself: each `from_env()` run with the
service's environment, so a new required variable fails here), its services are where the
file says, every `depends_on` names a service, and topics and migrations finish first."""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from jsonschema import Draft202012Validator

from booking_rush.services.mail import MailSettings
from gateway.settings import GatewaySettings
from ops.config import REPO_ROOT
from waiting_room.passes import PassKeys
from workers.payments.jobs import PaymentSettings
from workers.settings import WorkerSettings

SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
# What a user puts in .env, as compose.yaml's header says (ops.passkeys, a random secret).
USER_ENV = {"BR_JWT_SECRET": secrets.token_hex(32), **PassKeys.generate().env()}
# Each process and the settings its start-up reads (gateway/__main__.py, workers/__main__.py,
# workers/payments/worker.py, ops/topics.py and ops/migrate.py read the environment directly).
STARTUP = {
    "gateway": (GatewaySettings.from_env,),
    "worker": (WorkerSettings.from_env,),
    "payment-worker": (WorkerSettings.from_env, PaymentSettings.from_env, MailSettings.from_env),
}
SETUP = ("topics", "migrate")  # run once, to completion, before the processes above


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())


def _interpolated(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against `env`."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise LookupError(f"{name}: {arg}")
        return arg or ""

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def _environment(service: dict, env: dict[str, str]) -> dict[str, str]:
    return {k: _interpolated(str(v), env) for k, v in (service.get("environment") or {}).items()}


def _run_with(monkeypatch, environment: dict[str, str], readers) -> list:
    for name in [k for k in os.environ if k.startswith("BR_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return [read() for read in readers]


def test_compose_yaml_is_valid_by_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_every_process_starts_with_the_environment_the_file_gives_it(compose, monkeypatch):
    services = compose["services"]
    for name, readers in STARTUP.items():
        environment = _environment(services[name], USER_ENV)
        settings = _run_with(monkeypatch, environment, readers)
        endpoints = settings[0].endpoints
        # Not the loopback defaults: the services the file runs, by their names.
        for url in (endpoints.sale_redis_url, endpoints.aux_redis_url, endpoints.database_url):
            assert urlparse(url).hostname in services, (name, url)
        assert endpoints.kafka_bootstrap.split(":")[0] in services, name
    assert _environment(services["topics"], USER_ENV)["BR_KAFKA_BOOTSTRAP"].split(":")[0] in services
    assert urlparse(_environment(services["migrate"], USER_ENV)["BR_DATABASE_URL"]).hostname in services


def test_a_variable_the_user_leaves_out_stops_compose_with_what_to_do(compose):
    for missing in USER_ENV:
        env = {k: v for k, v in USER_ENV.items() if k != missing}
        with pytest.raises(LookupError, match=missing):
            _environment(compose["services"]["gateway"], env)


def test_a_required_setting_missing_from_a_service_is_caught(compose, monkeypatch):
    """The check above would see a new required variable: the gateway without its pass key."""
    environment = _environment(compose["services"]["gateway"], USER_ENV)
    del environment["BR_QUEUE_PASS_KEY"]
    with pytest.raises(Exception, match="BR_QUEUE_PASS_KEY"):
        _run_with(monkeypatch, environment, STARTUP["gateway"])


def test_dependencies_name_services_and_setup_finishes_before_anything_serves(compose):
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert set(depends) <= set(services), (name, depends)
    for name in STARTUP:
        depends = services[name]["depends_on"]
        for setup in SETUP:
            assert depends[setup]["condition"] == "service_completed_successfully", (name, setup)
    assert services["topics"]["command"] == "python -m ops.topics"
    assert services["migrate"]["command"] == "python -m ops.migrate"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
