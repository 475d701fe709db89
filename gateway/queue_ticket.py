"""Queue tickets: signed, per-user, per-event tokens for the live-position stream's URL (browsers'
EventSource cannot send an Authorization header). Issued with every join and status answer, and
renewed on the stream itself (gateway/queue_stream.py); they live `queue_ticket_ttl_s`, minutes."""

from __future__ import annotations

import base64
import hashlib
import hmac

import jwt
import orjson

from gateway import errors

TICKET_AUDIENCE = "booking-rush:queue-ticket"


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


_HEADER = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))


def issue_queue_ticket(secret: str, user_id: str, event_id: str, ttl_s: int, now: float) -> str:
    """An HS256 JWT, signed here rather than by PyJWT: every join and poll answer carries one,
    and PyJWT's general-purpose encoder costs several times the HMAC itself. PyJWT verifies it."""
    claims = {
        "sub": user_id,
        "evt": event_id,
        "aud": TICKET_AUDIENCE,
        "iat": int(now),
        "exp": int(now) + ttl_s,
    }
    signing_input = _HEADER + b"." + _b64(orjson.dumps(claims))
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _b64(signature)).decode()


def read_queue_ticket(secret: str, ticket: str, event_id: str) -> tuple[str, float]:
    """(the user id a queue ticket was issued to, when it expires), if it is genuine, current and
    for this event."""
    try:
        claims = jwt.decode(
            ticket,
            secret,
            algorithms=["HS256"],
            audience=TICKET_AUDIENCE,
            options={"require": ["sub", "evt", "exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise errors.QueueTicketInvalid("the queue ticket has expired; join again for a new one") from exc
    except jwt.PyJWTError as exc:
        raise errors.QueueTicketInvalid() from exc
    if claims["evt"] != event_id or not isinstance(claims["sub"], str):
        raise errors.QueueTicketInvalid("the queue ticket is for another event")
    return claims["sub"], float(claims["exp"])
