"""How far the waits people were shown were from the waits they then had (issue 19's measure).

For every wait a person is shown: error = |shown − actual| / max(actual, 30 s), where a range
counts 0 when the actual wait falls inside it and else the distance to its nearer end, and the
actual wait runs from when it was shown to their admission. People who left the line before
their turn have no actual wait and are not counted; a wait read after one's turn had already
come (the answer was slow to arrive) is judged against a wait of 0.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

FLOOR_S = 30.0  # short waits are judged against 30 s: 5 s off a 10 s wait is not "50 % wrong"


@dataclass(frozen=True)
class Shown:
    at_s: float  # when it was shown, seconds from the room's opening
    low_s: int
    high_s: int


@dataclass
class Person:
    shown: list[Shown] = field(default_factory=list)
    admitted_at_s: float | None = None  # seconds from the room's opening
    left: bool = False  # left the line before their turn
    unanswered: int = 0  # answers in line that said no wait (neither paused nor unopened)


def record(person: Person, standing: dict, now_s: float, t0: float, pass_ttl_s: int) -> bool:
    """One answer a person had (the join's, a poll's, a stream event's), at `now_s` from the
    opening at epoch `t0`; True once they are let in or the line is over for them."""
    state = standing.get("state")
    if state == "admitted":
        if standing.get("pass_expires_at"):  # admitted at: the pass's expiry less its lifetime
            expires = datetime.fromisoformat(standing["pass_expires_at"].replace("Z", "+00:00"))
            person.admitted_at_s = expires.timestamp() - pass_ttl_s - t0
        return True
    if state == "waiting":
        if standing.get("eta_status") == "estimate":
            low, high = standing["eta_range_seconds"]
            person.shown.append(Shown(now_s, low, high))
        elif "eta_status" not in standing and standing.get("eta_seconds") is not None:
            # A gateway from before ranges (ops.bench_eta --tree): its single figure.
            person.shown.append(Shown(now_s, standing["eta_seconds"], standing["eta_seconds"]))
        else:
            person.unanswered += 1
    return state not in ("waiting", "paused", "prequeue")


def error(shown: Shown, admitted_at_s: float) -> float:
    # A wait read after one's turn had come (the answer was slow to arrive) was a wait of 0.
    actual = max(0.0, admitted_at_s - shown.at_s)
    if shown.low_s <= actual <= shown.high_s:
        off = 0.0
    else:
        off = min(abs(actual - shown.low_s), abs(actual - shown.high_s))
    return off / max(actual, FLOOR_S)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def by_phase(people: list[Person], phases: dict[str, tuple[float, float]]) -> dict[str, dict]:
    """Median and p90 of the errors of the waits shown in each phase ([start, end) seconds)."""
    out = {}
    for name, (start, end) in phases.items():
        errors = [
            error(shown, person.admitted_at_s)
            for person in people
            if person.admitted_at_s is not None and not person.left
            for shown in person.shown
            if start <= shown.at_s < end
        ]
        out[name] = {
            "shown": len(errors),
            "median": round(statistics.median(errors), 3) if errors else None,
            "p90": round(percentile(errors, 0.9), 3) if errors else None,
        }
    return out
