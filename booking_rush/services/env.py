"""Reading settings from the environment: explicit casts, an empty value meaning the default."""

from __future__ import annotations

import os


def env_str(name: str, default: str) -> str:
    return os.environ.get(name) or default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw in (None, "") else float(raw)


def env_ms(name: str, default_ms: int) -> int:
    """A duration given in seconds in the environment, in milliseconds."""
    return int(env_float(name, default_ms / 1000) * 1000)


def env_bool(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
