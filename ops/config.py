"""Where the local stack lives: its services' ports (booking_rush.services.endpoints), folders,
the Kafka version and the topics' partition counts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from booking_rush.services.endpoints import LoopbackServices
from booking_rush.services.env import env_int

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_VERSION = "4.1.2"


@dataclass(frozen=True, kw_only=True)
class StackConfig(LoopbackServices):
    """The services the project runs on loopback (non-default ports), and where their state is."""

    state_dir: Path
    kafka_cache: Path
    kafka_controller_port: int = 19093
    reservations_partitions: int = 12
    events_partitions: int = 12

    @classmethod
    def from_env(cls) -> StackConfig:
        cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return cls(
            **cls.fields_from_env(),
            state_dir=Path(os.environ.get("BR_STATE_DIR", REPO_ROOT / ".state")).resolve(),
            kafka_cache=Path(
                os.environ.get("BR_KAFKA_CACHE", cache_home / "booking-rush" / f"kafka-{KAFKA_VERSION}")
            ),
            kafka_controller_port=env_int("BR_KAFKA_CONTROLLER_PORT", 19093),
            reservations_partitions=env_int("BR_RESERVATIONS_PARTITIONS", 12),
        )
