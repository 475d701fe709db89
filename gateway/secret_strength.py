"""Whether an HS256 signing secret is fit to sign access tokens: long enough, not a template's
placeholder, not a pattern. Anyone who guesses it can mint an admin's token, so the gateway
refuses to start on one that is not (gateway/settings.py)."""

from __future__ import annotations

import math
from collections import Counter

MIN_SECRET_LENGTH = 32
# What the secret is estimated to hold, from its own character frequencies. A random hex secret of
# 32 characters measures about 115 bits; a passphrase of ordinary words about 4 bits a character.
MIN_ESTIMATED_BITS = 96
# Words that only a template or an example puts in a secret (ops/k8s/secret.example.yaml's own
# placeholder among them).
PLACEHOLDERS = (
    "replace_me",
    "replace-me",
    "replaceme",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "example",
    "your-secret",
    "your_secret",
    "yoursecret",
    "supersecret",
    "super-secret",
    "at-least-32",
)


def secret_problem(secret: str) -> str | None:
    """What is wrong with `secret`, or None if it will do."""
    if len(secret) < MIN_SECRET_LENGTH:
        return f"shorter than {MIN_SECRET_LENGTH} characters"
    folded = secret.lower()
    for word in PLACEHOLDERS:
        if word in folded:
            return f"a placeholder (it contains {word!r}), not a secret"
    if _period(secret) <= len(secret) // 2:
        return "a repeated pattern"
    if estimated_bits(secret) < MIN_ESTIMATED_BITS:
        return "too few distinct characters to be random (try: openssl rand -hex 32)"
    return None


def estimated_bits(secret: str) -> float:
    """The secret's length times the Shannon entropy of its characters' frequencies."""
    counts = Counter(secret)
    n = len(secret)
    return -n * sum(c / n * math.log2(c / n) for c in counts.values())


def _period(text: str) -> int:
    """The shortest p such that text is a prefix of its first p characters repeated."""
    for p in range(1, len(text) + 1):
        if all(text[i] == text[i % p] for i in range(p, len(text))):
            return p
    return len(text)
