"""The Kafka topics, named in one place. Every deployment (and every test) has its own set under
its topic prefix (BR_TOPIC_PREFIX)."""

from __future__ import annotations

from dataclasses import dataclass

RESERVATIONS = "reservations"  # commands, keyed by show (an event's load: by event)
EVENTS = "booking.events"  # what happened, the durable log PostgreSQL is built from
DEAD_LETTER = "booking.events.dlq"  # events PostgreSQL refused, kept for review


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    @property
    def reservations(self) -> str:
        return f"{self.prefix}{RESERVATIONS}"

    @property
    def events(self) -> str:
        return f"{self.prefix}{EVENTS}"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}{DEAD_LETTER}"
