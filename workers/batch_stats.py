"""How many commands (or events) a consumer handled, in how many batches, logged now and then."""

from __future__ import annotations

import logging
import time


class BatchStats:
    """Commands and batches since the last report, logged at most every `every_s` seconds."""

    def __init__(self, logger: logging.Logger, what: str = "commands", every_s: float = 10.0) -> None:
        self.logger, self.what, self.every_s = logger, what, every_s
        self.commands = self.batches = 0
        self.since = time.monotonic()

    def add(self, commands: int) -> None:
        self.commands += commands
        self.batches += 1

    def maybe_log(self) -> None:
        elapsed = time.monotonic() - self.since
        if elapsed < self.every_s:
            return
        if self.batches:
            self.logger.info(
                "%d %s in %d batches (%.1f per batch, %.0f/s)",
                self.commands,
                self.what,
                self.batches,
                self.commands / self.batches,
                self.commands / elapsed,
            )
        self.commands = self.batches = 0
        self.since = time.monotonic()
