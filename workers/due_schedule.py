"""When to look at an event's index again: work that follows what can be due, not the number of
events on sale.

A role that scans a per-event sorted set by time (the sweeper's expiry index, the archiver's
ended index) remembers, per event, when the index's earliest entry falls due, and looks again
only then, or after `horizon_ms` at the latest, the shortest time after a look within which no
entry added since can fall due. The set of events is re-read every horizon too: an event that
went on sale after a read can have nothing due before the next one.
"""

from __future__ import annotations

import random


class DueSchedule:
    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
        self._next_look: dict[str, int] = {}  # event id -> when to look at its index again
        self._events_read_at: int | None = None

    def wants_events(self, as_of: int) -> bool:
        """Whether the set of events is due to be read again (then call `events`)."""
        return self._events_read_at is None or as_of - self._events_read_at >= self.horizon_ms

    def events(self, live: set[str], as_of: int) -> None:
        """The events there are now: a new one is looked at at once; a gone one forgotten."""
        self._next_look = {e: self._next_look.get(e, as_of) for e in live}
        self._events_read_at = as_of

    def due(self, as_of: int) -> list[str]:
        return [e for e, at in self._next_look.items() if at <= as_of]

    def looked(self, event_id: str, as_of: int, earliest_due: int | None) -> None:
        """`event_id`'s index was looked at, as of `as_of`: its earliest entry is due at
        `earliest_due` (None: the index is empty; as_of or earlier: look again next time).
        The horizon is drawn between half and all of it: events first looked at together do
        not all come due again in the same tick (a burst that was the p99 of every booking)."""
        horizon = as_of + int(self.horizon_ms * random.uniform(0.5, 1.0))
        self._next_look[event_id] = horizon if earliest_due is None else min(earliest_due, horizon)
