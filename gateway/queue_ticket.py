"""Queue tickets: signed, per-user, per-event tokens for the live-position stream's URL (browsers'
EventSource cannot send an Authorization header). Issued with every join and status answer."""

from __future__ import annotations

import jwt

from gateway import errors

TICKET_AUDIENCE = "booking-rush:queue-ticket"


def issue_queue_ticket(secret: str, user_id: str, event_id: str, ttl_s: int, now: float) -> str:
    claims = {
        "sub": user_id,
        "evt": event_id,
        "aud": TICKET_AUDIENCE,
        "iat": int(now),
        "exp": int(now) + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def read_queue_ticket(secret: str, ticket: str, event_id: str) -> str:
    """The user id a queue ticket was issued to, if it is genuine, current and for this event."""
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
    return claims["sub"]
