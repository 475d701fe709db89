"""The gateway refuses to start on a JWT secret anyone could guess: the manifests' template
placeholder, a short one, a pattern, or one with too few distinct characters."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.secret_strength import secret_problem

TEMPLATE = Path(__file__).resolve().parents[1] / "ops" / "k8s" / "secret.example.yaml"


def template_secret() -> str:
    return yaml.safe_load(TEMPLATE.read_text())["stringData"]["BR_JWT_SECRET"]


@pytest.mark.parametrize(
    "secret",
    [
        template_secret(),
        "changeme-changeme-changeme-changeme-1",
        "this is an example secret for the docs only",
        "x" * 64,
        "abc123" * 8,
        "aaaaaaaabbbbbbbbccccccccddddddddeeeeeeee",
        secrets.token_hex(8),  # random, but 16 characters
    ],
)
def test_guessable_secrets_are_refused(secret):
    assert secret_problem(secret) is not None


@pytest.mark.parametrize(
    "secret",
    [
        secrets.token_hex(16),  # what `openssl rand -hex 16` makes: the shortest that will do
        secrets.token_hex(32),
        secrets.token_urlsafe(32),
        "Tr0ub4dor&3 correct horse battery staple 1987!",
    ],
)
def test_random_secrets_are_accepted(secret):
    assert secret_problem(secret) is None


def test_the_gateway_does_not_start_on_the_templates_placeholder():
    env = {"BR_JWT_SECRET": template_secret(), "PATH": "/usr/bin:/bin"}  # checked first of all
    started = subprocess.run(
        [sys.executable, "-m", "gateway"], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 2
    assert "BR_JWT_SECRET is a placeholder" in started.stderr
