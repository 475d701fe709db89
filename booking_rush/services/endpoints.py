"""Where the services are: their URLs and the topic prefix, read from the environment.

Without BR_*_URL settings, the defaults are the local stack's services on loopback (`ops.stack`
runs them on these non-default ports), so a process started on a developer machine finds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from booking_rush.contract.topics import Topics
from booking_rush.services.env import env_int, env_str


@dataclass(frozen=True)
class LoopbackServices:
    """Ports and credentials of the services on loopback, as the local stack runs them."""

    sale_redis_port: int = 16379
    aux_redis_port: int = 16380
    postgres_port: int = 15432
    kafka_port: int = 19092
    postgres_user: str = "booking"
    postgres_password: str = "booking"
    postgres_db: str = "booking_rush"

    @classmethod
    def from_env(cls) -> LoopbackServices:
        return cls(**cls.fields_from_env())

    @classmethod
    def fields_from_env(cls) -> dict:
        defaults = LoopbackServices()
        return {
            "sale_redis_port": env_int("BR_SALE_REDIS_PORT", defaults.sale_redis_port),
            "aux_redis_port": env_int("BR_AUX_REDIS_PORT", defaults.aux_redis_port),
            "postgres_port": env_int("BR_POSTGRES_PORT", defaults.postgres_port),
            "kafka_port": env_int("BR_KAFKA_PORT", defaults.kafka_port),
            "postgres_password": env_str("BR_POSTGRES_PASSWORD", defaults.postgres_password),
        }

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

    def endpoints(self, topic_prefix: str = "") -> Endpoints:
        return Endpoints(
            self.sale_redis_url, self.aux_redis_url, self.database_url, self.kafka_bootstrap, topic_prefix
        )

    def service_env(self) -> dict[str, str]:
        """The variables gateway and worker processes read to find these services."""
        return self.endpoints().env()


@dataclass(frozen=True)
class Endpoints:
    """The services a gateway or worker process talks to, and its deployment's topic prefix."""

    sale_redis_url: str
    aux_redis_url: str
    database_url: str
    kafka_bootstrap: str
    # Each deployment (and each test) has its own topics, groups and job queues under it.
    topic_prefix: str = ""

    @classmethod
    def from_env(cls) -> Endpoints:
        local = LoopbackServices.from_env()
        return cls(
            sale_redis_url=env_str("BR_SALE_REDIS_URL", local.sale_redis_url),
            aux_redis_url=env_str("BR_AUX_REDIS_URL", local.aux_redis_url),
            database_url=env_str("BR_DATABASE_URL", local.database_url),
            kafka_bootstrap=env_str("BR_KAFKA_BOOTSTRAP", local.kafka_bootstrap),
            topic_prefix=env_str("BR_TOPIC_PREFIX", ""),
        )

    @classmethod
    def local(cls, topic_prefix: str = "") -> Endpoints:
        """The local stack's services (their ports may be moved by BR_*_PORT)."""
        return LoopbackServices.from_env().endpoints(topic_prefix)

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def env(self) -> dict[str, str]:
        """These endpoints as the variables `from_env` reads (the prefix only when set)."""
        env = {
            "BR_SALE_REDIS_URL": self.sale_redis_url,
            "BR_AUX_REDIS_URL": self.aux_redis_url,
            "BR_DATABASE_URL": self.database_url,
            "BR_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
        }
        if self.topic_prefix:
            env["BR_TOPIC_PREFIX"] = self.topic_prefix
        return env
