"""How long someone in line will wait: an estimate that is honest from the first second.

The line moves at the room's configured rate unless a limit binds (max active users, or
oversubscription x the seats left: lua/queue_admit.lua then admits fewer than the rate allows and
says so), and the head passes people who left without using a slot, so it moves through tickets
faster than admissions by a factor the room measures. Before anything is measured the configured
rate is the estimate; what is measured is smoothed over the time that has really passed (never
over a minute that has not), and the answer is a range that is wider while less is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Below this much measuring, the skip factor and a limit's pace are not trusted yet.
MIN_MEASURED_S = 10.0
# Until this much, the range is wider.
SETTLED_S = 30.0
# The line's speed through tickets, as a multiple of admissions, is kept within this.
MAX_SKIP_FACTOR = 3.0


@dataclass(frozen=True)
class Pace:
    """A room's pace as lua/queue_admit.lua keeps it in the bucket hash."""

    rate_per_min: int  # configured admissions per minute
    head_per_s: float = 0.0  # tickets the head passes per second (admitted or gone), smoothed
    admits_per_s: float = 0.0  # admissions per second, smoothed
    measured_s: float = 0.0  # how long admissions have been measured without a gap
    limited: bool = False  # the last tick admitted fewer than the rate allowed: a limit binds

    def tickets_per_s(self) -> float:
        """How fast the line moves through tickets, by what is known now."""
        configured = self.rate_per_min / 60
        if self.measured_s < MIN_MEASURED_S or self.admits_per_s <= 0:
            return configured
        skip = min(MAX_SKIP_FACTOR, max(1.0, self.head_per_s / self.admits_per_s))
        # A limit holds admissions under the rate: they go as fast as they have lately. Else the
        # configured rate, which an operator's change moves at once (the measure would lag).
        admits = min(configured, self.admits_per_s) if self.limited else configured
        return admits * skip

    def uncertainty(self) -> float:
        """The range's half-width, relative to the estimate."""
        u = 0.1
        if self.measured_s < SETTLED_S:
            u += 0.1
        if self.limited:
            u += 0.15
        return u

    def rule(self) -> Rule | None:
        """The estimate for any place in line (worked out once per tick for a whole room);
        None when the line cannot move."""
        speed = self.tickets_per_s()
        return Rule(speed, self.uncertainty()) if speed > 0 else None


@dataclass(frozen=True, slots=True)
class Eta:
    low_s: int
    high_s: int

    @property
    def seconds(self) -> int:
        return round((self.low_s + self.high_s) / 2)

    def as_range(self) -> list[int]:
        return [self.low_s, self.high_s]


@dataclass(frozen=True, slots=True)
class Rule:
    speed: float  # tickets per second
    uncertainty: float  # the range's half-width, relative

    def eta(self, ahead: int) -> Eta:
        """The wait of someone with `ahead` tickets before them."""
        middle = (ahead + 1) / self.speed
        spread = self.uncertainty * middle
        return Eta(max(0, math.floor(middle - spread)), max(1, math.ceil(middle + spread)))


def estimate(ahead: int, pace: Pace) -> Eta | None:
    rule = pace.rule()
    return None if rule is None else rule.eta(ahead)


# What a person in a line that does not move is told instead of a wait.
STATUS_OF_STATE = {"paused": "paused", "prequeue": "not_open", "sold_out": "sold_out", "closed": "closed"}


def eta_fields(state: str, eta: Eta | None) -> dict:
    """The wait as the API says it (the poll's answer and the stream's): eta_seconds (the
    middle), eta_range_seconds ([low, high]) and eta_status (estimate, paused, not_open,
    sold_out, closed; null when not in line)."""
    if state == "waiting" and eta is not None:
        return {"eta_seconds": eta.seconds, "eta_range_seconds": eta.as_range(), "eta_status": "estimate"}
    return {"eta_seconds": None, "eta_range_seconds": None, "eta_status": STATUS_OF_STATE.get(state)}
