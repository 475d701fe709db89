"""Bearer JWT access tokens: issuing (for ops and, later, /auth) and verifying with a cache.

Verified tokens are cached per process, keyed by the token string and bounded in size; expiry and
revocation (gateway/revocations.py) are still checked on every use, so a cached token never
outlives its `exp` nor a logout.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import jwt
from aiohttp import web

from booking_rush.telemetry import logs
from gateway.errors import Unauthorized

ALGORITHM = "HS256"
ACCESS_TOKEN_TTL_S = 15 * 60


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str
    tenant_id: str | None
    exp: float
    birth_date: date | None = None  # from the token: age rules need no database round trip
    issued_at_ms: int = 0
    session_id: str | None = None  # the refresh-token family the token was issued under
    email_verified: bool = True  # False: a registered buyer who has not used the mailed link yet

    def is_at_least(self, years: int, today: date) -> bool:
        if self.birth_date is None:
            return False
        b = self.birth_date
        return (today.year - b.year - ((today.month, today.day) < (b.month, b.day))) >= years


def issue_access_token(
    secret: str,
    *,
    user_id: str,
    role: str = "user",
    tenant_id: str | None = None,
    email: str | None = None,
    ttl_s: int = ACCESS_TOKEN_TTL_S,
    birth_date: date | None = None,
    issuer: str = "booking-rush",
    audience: str = "booking-rush",
    session_id: str | None = None,
    email_verified: bool = True,
) -> str:
    now = time.time()
    claims = {
        "sub": user_id,
        "role": role,
        "tenant_id": tenant_id,
        "email": email,
        # In ms (a JWT NumericDate may have a fraction): a token issued in the same second as a
        # revocation, but after it, is not taken back with the ones before.
        "iat": round(now, 3),
        "exp": int(now) + ttl_s,
        "iss": issuer,
        "aud": audience,
        "jti": uuid.uuid4().hex,
    }
    if birth_date is not None:
        claims["birth_date"] = birth_date.isoformat()
    if session_id is not None:
        claims["sid"] = session_id
    if not email_verified:  # said only when not: every token issued before the claim was verified
        claims["unverified"] = True
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class TokenVerifier:
    """Verifies signature, issuer, audience, subject, expiry and revocation; caches what it
    verified. `revoked` says whether a verified token has since been taken back."""

    def __init__(
        self,
        secret: str,
        issuer: str,
        audience: str,
        cache_size: int,
        revoked: Callable[[Principal], bool] = lambda principal: False,
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._cache_size = cache_size
        self._cache: dict[str, Principal] = {}
        self._revoked = revoked

    def verify(self, token: str) -> Principal:
        principal = self._cache.get(token)
        if principal is None:
            principal = self._decode(token)
            if len(self._cache) >= self._cache_size:
                # Insertion-ordered dict: dropping the oldest entry is O(1).
                del self._cache[next(iter(self._cache))]
            self._cache[token] = principal
        if principal.exp <= time.time():
            self._cache.pop(token, None)
            raise Unauthorized("token expired")
        if self._revoked(principal):
            raise Unauthorized("token revoked: sign in again")
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("invalid token") from exc
        try:
            user_id = str(uuid.UUID(claims["sub"]))
        except (ValueError, TypeError, AttributeError) as exc:
            raise Unauthorized("invalid token subject") from exc
        try:
            birth = date.fromisoformat(claims["birth_date"]) if claims.get("birth_date") else None
        except (TypeError, ValueError) as exc:
            raise Unauthorized("invalid token birth date") from exc
        session_id, issued_at = claims.get("sid"), claims["iat"]
        if (session_id is not None and not isinstance(session_id, str)) or not isinstance(
            issued_at, int | float
        ):
            raise Unauthorized("invalid token session")
        return Principal(
            user_id=user_id,
            role=str(claims.get("role", "user")),
            tenant_id=claims.get("tenant_id"),
            exp=float(claims["exp"]),
            birth_date=birth,
            issued_at_ms=int(issued_at * 1000),
            session_id=session_id,
            email_verified=claims.get("unverified") is not True,
        )


TOKENS = web.AppKey("tokens", TokenVerifier)
PRINCIPAL = web.RequestKey("principal", Principal)


def current_principal(request: web.Request) -> Principal:
    """The caller, verified once per request (the rate limiter may have done it already)."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        principal = request[PRINCIPAL] = request.app[TOKENS].verify(bearer_token(request))
        logs.USER_ID.set(principal.user_id)  # and the user, in the lines logged after this
    return principal


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()
