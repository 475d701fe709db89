"""The in-process limit of one queue pass: generous for a person, but one pass cannot flood
the reservations topic (it replaces the reserve rate limit; gateway/queue_pass.py)."""

from __future__ import annotations

from collections import OrderedDict


class PassLimiter:
    """A token bucket per pass id; past `max_passes` the longest idle is forgotten."""

    def __init__(self, rate_per_s: float, burst: int, max_passes: int = 100_000) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.max_passes = max_passes
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # pass id -> tokens, at

    def allow(self, pass_id: str, now: float) -> bool:
        tokens, at = self.buckets.pop(pass_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        allowed = tokens >= 1
        self.buckets[pass_id] = (tokens - 1 if allowed else tokens, now)
        if len(self.buckets) > self.max_passes:
            self.buckets.popitem(last=False)  # the longest idle
        return allowed
