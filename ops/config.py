"""Where the local stack lives: ports, folders and the connection URLs every process reads."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_VERSION = "4.1.2"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


@dataclass(frozen=True)
class StackConfig:
    """Ports and folders of the services the project runs on loopback (non-default ports)."""

    state_dir: Path
    kafka_cache: Path
    sale_redis_port: int = 16379
    aux_redis_port: int = 16380
    postgres_port: int = 15432
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    postgres_user: str = "booking"
    postgres_password: str = "booking"
    postgres_db: str = "booking_rush"
    reservations_partitions: int = 12
    events_partitions: int = 12

    @classmethod
    def from_env(cls) -> StackConfig:
        cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return cls(
            state_dir=Path(os.environ.get("BR_STATE_DIR", REPO_ROOT / ".state")).resolve(),
            kafka_cache=Path(
                os.environ.get("BR_KAFKA_CACHE", cache_home / "booking-rush" / f"kafka-{KAFKA_VERSION}")
            ),
            sale_redis_port=_int("BR_SALE_REDIS_PORT", 16379),
            aux_redis_port=_int("BR_AUX_REDIS_PORT", 16380),
            postgres_port=_int("BR_POSTGRES_PORT", 15432),
            kafka_port=_int("BR_KAFKA_PORT", 19092),
            kafka_controller_port=_int("BR_KAFKA_CONTROLLER_PORT", 19093),
            postgres_password=os.environ.get("BR_POSTGRES_PASSWORD", "booking"),
            reservations_partitions=_int("BR_RESERVATIONS_PARTITIONS", 12),
        )

    @property
    def sale_redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.sale_redis_port}/0"

    @property
    def aux_redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.aux_redis_port}/0"

    @property
    def database_url(self) -> str:
        return (
            f"postgresql://{self.postgres_user}:{self.postgres_password}"
            f"@127.0.0.1:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def service_env(self) -> dict[str, str]:
        """The variables gateway and worker processes read to find these services."""
        return {
            "BR_SALE_REDIS_URL": self.sale_redis_url,
            "BR_AUX_REDIS_URL": self.aux_redis_url,
            "BR_DATABASE_URL": self.database_url,
            "BR_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
        }
