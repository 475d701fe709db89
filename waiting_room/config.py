"""A waiting room's configuration: what operators set, validated, and its form in the sale Redis."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

MODES = ("off", "auto", "always", "paused", "closed")


class ConfigError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# field -> (low, high) for the integer settings an operator may change.
_INT_BOUNDS = {
    "rate_per_min": (1, 1_000_000),
    "max_active": (1, 10_000_000),
    "pass_ttl_s": (30, 3600),
    "grace_s": (5, 3600),
    "auto_active": (1, 10_000_000),
    "auto_rps": (1, 10_000_000),
    # Proof of work a new place needs: zero bits of SHA-256 (0: none; 20 is ~a million hashes,
    # seconds on a slow phone, where the page's cost table in the README stops).
    "pow_bits": (0, 24),
    "claim_window_s": (30, 3600),
}


@dataclass(frozen=True)
class RoomConfig:
    mode: str = "off"
    rate_per_min: int = 600  # admissions per minute
    max_active: int = 1000  # admitted users whose pass or hold is live, at most
    pass_ttl_s: int = 300
    grace_s: int = 60  # not seen (no poll, no open stream) for this long: skipped at admission
    oversubscription: float = 1.5  # active users at most this many times the seats available
    opens_at_ms: int = 0  # scheduled opening; joins before it are shuffled at opening
    auto_active: int = 1000  # mode auto engages at this many holds + active users ...
    auto_rps: int = 200  # ... or this many reserve requests per second
    shuffle_seed: int = 0  # drawn when an opening is scheduled; recorded for audit
    pow_bits: int = 0  # proof of work asked of a new place (waiting_room/pow.py); 0: none
    # Called at their turn while away (subscribed to notifications): how long the slot waits
    # for them to come back and take the pass before it goes to the next person.
    claim_window_s: int = 180

    def to_redis(self) -> dict[str, str]:
        return {
            **{
                k: str(v)
                for k, v in asdict(self).items()
                if k not in ("pass_ttl_s", "grace_s", "claim_window_s")
            },
            "pass_ttl_ms": str(self.pass_ttl_s * 1000),
            "grace_ms": str(self.grace_s * 1000),
            "claim_ms": str(self.claim_window_s * 1000),
        }

    @classmethod
    def from_redis(cls, raw: dict) -> RoomConfig:
        values = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        if "mode" not in values:
            return cls()
        return cls(
            mode=values["mode"],
            rate_per_min=int(values["rate_per_min"]),
            max_active=int(values["max_active"]),
            pass_ttl_s=int(values["pass_ttl_ms"]) // 1000,
            grace_s=int(values["grace_ms"]) // 1000,
            oversubscription=float(values["oversubscription"]),
            opens_at_ms=int(values["opens_at_ms"]),
            auto_active=int(values["auto_active"]),
            auto_rps=int(values["auto_rps"]),
            shuffle_seed=int(values["shuffle_seed"]),
            pow_bits=int(values.get("pow_bits", 0)),  # rooms configured before it: none
            claim_window_s=int(values.get("claim_ms", 180_000)) // 1000,
        )

    def engaged_by_mode(self) -> bool:
        """Whether reserve needs a pass in this mode (auto: decided by the admission tick)."""
        return self.mode in ("always", "paused", "closed")

    def updated(self, changes: dict[str, Any]) -> RoomConfig:
        """A new config with an operator's changes, each validated; raises ConfigError."""
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "mode":
                if value not in MODES:
                    raise ConfigError("mode", f"one of {', '.join(MODES)}")
                values["mode"] = value
            elif name in _INT_BOUNDS:
                low, high = _INT_BOUNDS[name]
                if type(value) is float and value.is_integer():  # 1.0 is an integer to JSON Schema
                    value = int(value)
                if type(value) is not int or not low <= value <= high:
                    raise ConfigError(name, f"an integer in {low}..{high}")
                values[name] = value
            elif name == "oversubscription":
                if type(value) not in (int, float) or not 1.0 <= value <= 10.0:
                    raise ConfigError(name, "a number in 1..10")
                values[name] = float(value)
            elif name == "opens_at":
                values["opens_at_ms"] = _opening_ms(value)
            else:
                raise ConfigError(name, "not a room setting")
        new = replace(self, **values)
        if "opens_at_ms" in values and new.opens_at_ms and new.opens_at_ms != self.opens_at_ms:
            # A fresh seed for each scheduled opening; Park-Miller wants 1..2^31-2.
            new = replace(new, shuffle_seed=secrets.randbelow(2**31 - 2) + 1)
        return new


def _opening_ms(value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, str) or len(value) > 40:
        raise ConfigError("opens_at", "an ISO 8601 date-time with a time zone, or null")
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError("opens_at", "an ISO 8601 date-time with a time zone, or null") from exc
    if when.tzinfo is None:
        raise ConfigError("opens_at", "needs a time zone (e.g. Z or +07:00)")
    return int(when.timestamp() * 1000)
