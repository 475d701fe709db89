"""X-Queue-Pass: the signed proof that the waiting room admitted a user to an event's sale.

An EdDSA (Ed25519) JWT with a `kid` header; claims sub (user), evt (event), jti, iat, exp, iss,
aud. Ed25519 signatures are deterministic, and the claims come from the admission record, so
every gateway process issues the same pass for the same admission. Rotation: a new signing key
gets a new kid; the old public key stays in the verify set (and in the JWKS) until its passes
have expired.

Keys come from the environment (see `PassKeys.from_env`); `ops.passkeys` makes a pair.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ISSUER = "booking-rush"
AUDIENCE = "booking-rush:queue-pass"
_PASS_NAMESPACE = uuid.UUID("6f1c7c1e-8f0a-4a51-9a5e-3c2b8a0f0b11")


class PassError(Exception):
    """Why a pass is refused: code is QUEUE_PASS_INVALID or QUEUE_PASS_EXPIRED."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class PassKeys:
    kid: str
    signing: Ed25519PrivateKey
    verifying: dict[str, Ed25519PublicKey]  # kid -> key, the signing key's own public half included

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PassKeys:
        """BR_QUEUE_PASS_KEY: base64url raw 32-byte Ed25519 private key; BR_QUEUE_PASS_KID: its id;
        BR_QUEUE_PASS_OLD_KEYS: "kid=base64url public key,..." still accepted (rotation)."""
        env = os.environ if env is None else env
        secret, kid = env.get("BR_QUEUE_PASS_KEY"), env.get("BR_QUEUE_PASS_KID")
        if not secret or not kid:
            raise ValueError("BR_QUEUE_PASS_KEY and BR_QUEUE_PASS_KID must be set (ops.passkeys makes them)")
        return cls.from_parts(kid, secret, env.get("BR_QUEUE_PASS_OLD_KEYS", ""))

    @classmethod
    def from_parts(cls, kid: str, private_b64: str, old_keys: str = "") -> PassKeys:
        signing = Ed25519PrivateKey.from_private_bytes(_unb64(private_b64))
        verifying = {kid: signing.public_key()}
        for item in filter(None, (part.strip() for part in old_keys.split(","))):
            old_kid, _, public_b64 = item.partition("=")
            if not old_kid or not public_b64 or old_kid == kid:
                raise ValueError(f"BR_QUEUE_PASS_OLD_KEYS entry {item!r}: expected kid=base64url-public-key")
            verifying[old_kid] = Ed25519PublicKey.from_public_bytes(_unb64(public_b64))
        return cls(kid, signing, verifying)

    @classmethod
    def generate(cls, kid: str | None = None) -> PassKeys:
        signing = Ed25519PrivateKey.generate()
        kid = kid or uuid.uuid4().hex[:12]
        return cls(kid, signing, {kid: signing.public_key()})

    def __reduce__(self):
        # Gateway processes are spawned with their settings pickled; key objects do not pickle.
        old = ",".join(
            f"{kid}={_b64url(_raw_public(k))}" for kid, k in self.verifying.items() if kid != self.kid
        )
        return (PassKeys.from_parts, (self.kid, self.private_b64(), old))

    def private_b64(self) -> str:
        return _b64url(
            self.signing.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
        )

    def public_b64(self) -> str:
        return _b64url(_raw_public(self.signing.public_key()))

    def env(self) -> dict[str, str]:
        return {"BR_QUEUE_PASS_KEY": self.private_b64(), "BR_QUEUE_PASS_KID": self.kid}

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": kid,
                    "x": _b64url(_raw_public(key)),
                }
                for kid, key in self.verifying.items()
            ]
        }


CLOCK_SKEW_S = 30


def pass_id(event_id: str, user_id: str, admitted_at_ms: int) -> str:
    """The jti: one per admission, computable by every process from the admission record."""
    return str(uuid.uuid5(_PASS_NAMESPACE, f"{event_id}:{user_id}:{admitted_at_ms}"))


@dataclass(frozen=True)
class QueuePass:
    token: str
    pass_id: str
    user_id: str
    event_id: str
    expires_at_ms: int


class QueuePasses:
    """Issues passes and verifies them, with a bounded per-process cache of verified ones (the
    signature is checked once per pass; expiry, event, user and revocation on every use)."""

    def __init__(self, keys: PassKeys, cache_size: int = 50_000) -> None:
        self.keys = keys
        self._verified: OrderedDict[str, QueuePass] = OrderedDict()
        self._cache_size = cache_size
        self.revoked: dict[str, int] = {}  # pass id -> its expiry (ms), pushed by the room broadcast

    def issue(self, event_id: str, user_id: str, admitted_at_ms: int, ttl_s: int) -> QueuePass:
        expires_at_ms = admitted_at_ms + ttl_s * 1000
        jti = pass_id(event_id, user_id, admitted_at_ms)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "evt": event_id,
            "jti": jti,
            "iat": admitted_at_ms // 1000,
            "exp": expires_at_ms // 1000,
        }
        token = jwt.encode(claims, self.keys.signing, algorithm="EdDSA", headers={"kid": self.keys.kid})
        return QueuePass(token, jti, user_id, event_id, (expires_at_ms // 1000) * 1000)

    def verify(self, token: str, event_id: str, user_id: str, now_s: float) -> QueuePass:
        checked = self.held_by(token, user_id, now_s)
        if checked.event_id != event_id:
            raise PassError("QUEUE_PASS_INVALID", "the queue pass is for another event")
        return checked

    def held_by(self, token: str, user_id: str, now_s: float) -> QueuePass:
        """The pass, if genuine, current, unrevoked and `user_id`'s, whichever event it is for."""
        checked = self._verified.get(token)
        if checked is None:
            checked = self._check_signature(token)
            self._verified[token] = checked
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        if now_s >= checked.expires_at_ms / 1000:
            raise PassError("QUEUE_PASS_EXPIRED", "the queue pass has expired; join the waiting room again")
        if checked.user_id != user_id:
            raise PassError("QUEUE_PASS_INVALID", "the queue pass belongs to another user")
        if checked.pass_id in self.revoked:
            raise PassError("QUEUE_PASS_INVALID", "the queue pass was revoked")
        return checked

    def _check_signature(self, token: str) -> QueuePass:
        try:
            header = jwt.get_unverified_header(token)
            key = self.keys.verifying.get(header.get("kid"))
            if key is None or header.get("alg") != "EdDSA":
                raise PassError("QUEUE_PASS_INVALID", "the queue pass is not signed by a known key")
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["sub", "evt", "jti", "iat", "exp"], "verify_exp": False},
                # The admitter's clock stamps iat; a gateway's may run a little behind it.
                leeway=CLOCK_SKEW_S,
            )
        except jwt.PyJWTError as exc:
            raise PassError("QUEUE_PASS_INVALID", "the queue pass is not valid") from exc
        if not all(isinstance(claims[k], str) for k in ("sub", "evt", "jti")) or not isinstance(
            claims["exp"], int
        ):
            raise PassError("QUEUE_PASS_INVALID", "the queue pass is not valid")
        return QueuePass(token, claims["jti"], claims["sub"], claims["evt"], claims["exp"] * 1000)

    def forget_expired_revocations(self, now_ms: int) -> None:
        for jti in [j for j, exp in self.revoked.items() if exp <= now_ms]:
            del self.revoked[jti]
