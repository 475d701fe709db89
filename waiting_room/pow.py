"""Proof of work at join: a room may ask each new place in line for a small hash puzzle.

The gateway hands out a challenge signed with its secret, bound to the user, the room and a
validity window (stateless: nothing is stored until it is used). The page finds a nonce such that
SHA-256("<challenge>:<nonce>") starts with the room's number of zero bits, in a Web Worker; the
gateway checks it with one HMAC and one hash. Single use is decided in lua/queue_join.lua, which
records the challenge's id until it expires, in the same step that takes the place.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

CHALLENGE_TTL_MS = 120_000  # long enough for a slow phone at the highest difficulty allowed
MAX_CHALLENGE_CHARS = 256
MAX_NONCE_CHARS = 64


@dataclass(frozen=True)
class Proof:
    bits: int  # leading zero bits of the hash: what the work is worth
    challenge_id: str
    expires_ms: int


NO_PROOF = Proof(0, "", 0)


def _mac(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), b"pow:" + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue_challenge(secret: str, user_id: str, event_id: str, bits: int, now_ms: int) -> str:
    body = f"{event_id}.{user_id}.{bits}.{now_ms + CHALLENGE_TTL_MS}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(secret, body)}"


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def well_formed(pow_field: object) -> bool:
    """Whether a join's `pow` has the API document's shape: {challenge, nonce}, each a text of
    1..its limit characters without NUL."""
    limits = {"challenge": MAX_CHALLENGE_CHARS, "nonce": MAX_NONCE_CHARS}
    return isinstance(pow_field, dict) and all(
        isinstance(pow_field.get(k), str) and 0 < len(pow_field[k]) <= n and "\0" not in pow_field[k]
        for k, n in limits.items()
    )


def check_proof(secret: str, pow_field: object, user_id: str, event_id: str, now_ms: int) -> Proof:
    """What a join's `pow` ({challenge, nonce}) proves: NO_PROOF unless it is well formed and the
    challenge is this gateway's, this user's and this room's, and current."""
    if not well_formed(pow_field):
        return NO_PROOF
    challenge, nonce = pow_field["challenge"], pow_field["nonce"]
    body, _, mac = challenge.rpartition(".")
    parts = body.split(".")
    if len(parts) != 5 or not hmac.compare_digest(mac, _mac(secret, body)):
        return NO_PROOF
    for_event, for_user, _bits, expires, challenge_id = parts
    if for_event != event_id or for_user != user_id or not expires.isdigit() or int(expires) <= now_ms:
        return NO_PROOF
    digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
    return Proof(leading_zero_bits(digest), challenge_id, int(expires))


def solve(challenge: str, bits: int) -> str:
    """A nonce for `challenge` (what the page's worker does; tests and tools use this one)."""
    n = 0
    while leading_zero_bits(hashlib.sha256(f"{challenge}:{n}".encode()).digest()) < bits:
        n += 1
    return str(n)
