"""Structured JSON logs (spec §9.1): one JSON object per line with timestamp, level, service,
logger, message, request_id, user_id, trace_id and span_id; secrets, tokens and personal data
masked before anything is written.

The request id and user id travel in context variables the gateway sets per request, so every
line logged while serving it carries them; trace and span ids come from the current
OpenTelemetry span, when there is one. BR_LOG_FORMAT=text keeps the plain format for a person at
a terminal.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
USER_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|api[_-]?key|cvc|card", re.IGNORECASE)

# What is masked in any text written, in this order (a JWT before the digits inside it).
_MASKS: list[tuple[re.Pattern, Any]] = [
    # A JWT (access token, queue pass, queue ticket): three base64url parts.
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*"), "[jwt]"),
    (re.compile(r"(?i)\b(bearer)\s+[\w.~+/=-]+"), r"\1 [masked]"),
    # key=value or "key": "value" for secret-looking keys.
    (
        re.compile(
            r"""(?i)("?\b(?:password|secret|token|refresh_token|api_key|cvc)"?\s*[:=]\s*"?)[^"\s,}&]+"""
        ),
        r"\1[masked]",
    ),
    # A card number (12-19 digits, spaces or dashes allowed, passing the Luhn check, so that a
    # timestamp in milliseconds stays readable in most lines): keep the last four.
    (re.compile(r"\b\d(?:[ -]?\d){11,18}\b"), lambda m: _card(m.group(0))),
    # An email address: the first letter and the domain.
    (re.compile(r"\b([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b"), r"\1***@\2"),
]


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _card(found: str) -> str:
    digits = re.sub(r"[ -]", "", found)
    return f"****{digits[-4:]}" if _luhn(digits) else found


def mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


def _masked_value(key: str, value: Any) -> Any:
    if SECRET_KEYS.search(key):
        return "[masked]"
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _masked_value(str(k), v) for k, v in value.items()}
    return value


# Attributes every LogRecord has: anything else was passed in `extra=` and is logged too.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": mask(record.getMessage()),
            "request_id": REQUEST_ID.get(),
            "user_id": USER_ID.get(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = format(span.trace_id, "032x")
            line["span_id"] = format(span.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = _masked_value(key, value)
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
        return orjson.dumps(line, default=str).decode()


def configure(service: str, level: int = logging.INFO) -> None:
    """The process's logging: JSON lines on stderr (BR_LOG_FORMAT=text: the plain format)."""
    handler = logging.StreamHandler()
    if os.environ.get("BR_LOG_FORMAT", "json").lower() == "text":
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    else:
        handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
