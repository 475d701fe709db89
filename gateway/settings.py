"""Gateway settings, read once from the environment (a missing or bad value fails at start-up)."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from booking_rush.contract.topics import Topics
from booking_rush.services.endpoints import Endpoints
from booking_rush.services.env import env_float, env_int, env_str
from booking_rush.services.mail import MailSettings
from booking_rush.services.web_push import PushSettings
from gateway.client_address import ProxyConfigError, ProxyTrust
from gateway.ratelimit import parse_policies
from gateway.secret_strength import secret_problem
from waiting_room.passes import PassKeys


class ConfigError(ValueError):
    """The environment does not describe a gateway that can start."""


@dataclass(frozen=True)
class GatewaySettings:
    jwt_secret: str
    endpoints: Endpoints
    # "name=rate/burst,..." over spec §8.4's defaults; load tests raise them (many users, one address).
    rate_limits: str = ""
    rate_limit_namespace: str = "rl"
    host: str = "127.0.0.1"
    port: int = 8080
    # Connections the kernel queues before a process accepts them. aiohttp's 128 overflowed under
    # a burst of new connections (a flash crowd, an open-loop load past capacity): the dropped
    # SYNs came back after 1, 3, 7 s, latency in seconds at a third of the CPU. Capped by
    # net.core.somaxconn.
    listen_backlog: int = 4096
    processes: int = 1
    # With several processes: how long after SIGTERM a child may take before it is killed (its
    # drain is bounded by aiohttp's 10 s shutdown timeout; cleanup takes seconds more).
    stop_deadline_s: float = 25.0
    jwt_issuer: str = "booking-rush"
    jwt_audience: str = "booking-rush"
    reply_timeout_s: float = 5.0
    # A command must reach Kafka within this window, or the worker refuses it (see bookings.py).
    accept_timeout_s: float = 3.0
    command_deadline_s: float = 30.0
    # How long a booking being paid for holds its seats (the workers' BR_PAYMENT_HOLD_SECONDS): a
    # voucher claimed for a reservation is held until it could no longer be paid.
    payment_hold_s: float = 900.0
    max_body_bytes: int = 16 * 1024
    token_cache_size: int = 100_000
    redis_max_connections: int = 64
    bcrypt_cost: int = 12  # spec §8.1; tests and load tests lower it
    # bcrypt runs in a pool of its own: this many at once, and as many waiting as those threads
    # get through in hash_max_wait_s; past that, 503 (gateway/password_hasher.py).
    hash_threads: int = 2
    hash_max_wait_s: float = 2.0
    mail: MailSettings = MailSettings()
    # Web Push: the key pages subscribe with (the admitter signs with its private half).
    push: PushSettings = PushSettings()
    # Signs and verifies X-Queue-Pass. None: a key pair made at start (one process, tests only);
    # from_env requires one, since every process of a deployment must share it.
    queue_pass_keys: PassKeys | None = None
    # The live-position stream's ticket: as long as a stream needs between reconnects; the
    # stream itself renews it (gateway/queue_stream.py), so it must outlast a few heartbeats.
    queue_ticket_ttl_s: int = 600
    # A valid pass replaces the reserve rate limit with this in-process one: rate/s, burst.
    pass_rate_per_s: float = 2.0
    pass_burst: int = 10
    # Live-position streams: heartbeat (and presence lease renewal) period, and how often and for
    # how many clients per room the exact places are re-read.
    stream_heartbeat_s: float = 15.0
    stream_correction_s: float = 5.0
    stream_correction_batch: int = 500
    # /metrics on a port of its own, not the API's (None: not served; 0: any free port).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # Live-position streams one user may hold open on one gateway process (past it: 429).
    streams_per_user: int = 4
    # Which proxies' X-Forwarded-For / Forwarded is believed (default: none; gateway/client_address.py).
    trusted_proxies: ProxyTrust = ProxyTrust()

    @classmethod
    def from_env(cls) -> GatewaySettings:
        secret = os.environ.get("BR_JWT_SECRET", "")
        problem = secret_problem(secret)
        if problem is not None:
            raise ConfigError(f"BR_JWT_SECRET is {problem}: set a random secret of at least 32 characters")
        try:
            pass_keys = PassKeys.from_env()
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        rate_limits = os.environ.get("BR_RATE_LIMITS", "")
        parse_policies(rate_limits)  # a bad value fails here, at start-up
        try:
            trusted_proxies = ProxyTrust.parse(
                env_str("BR_TRUSTED_PROXIES", ""), env_int("BR_TRUSTED_PROXY_HOPS", 1)
            )
        except ProxyConfigError as exc:
            raise ConfigError(str(exc)) from exc
        heartbeat_s = env_float("BR_STREAM_HEARTBEAT_SECONDS", 15.0)
        ticket_ttl_s = env_int("BR_QUEUE_TICKET_TTL_SECONDS", 600)
        if ticket_ttl_s < 4 * heartbeat_s:  # renewed at half life, on a heartbeat
            raise ConfigError("BR_QUEUE_TICKET_TTL_SECONDS must be at least four stream heartbeats")
        return cls(
            rate_limits=rate_limits,
            rate_limit_namespace=env_str("BR_RATE_LIMIT_NAMESPACE", "rl"),
            jwt_secret=secret,
            endpoints=Endpoints.from_env(),
            host=env_str("BR_GATEWAY_HOST", "127.0.0.1"),
            port=env_int("BR_GATEWAY_PORT", 8080),
            listen_backlog=env_int("BR_GATEWAY_LISTEN_BACKLOG", 4096),
            processes=env_int("BR_GATEWAY_PROCESSES", os.cpu_count() or 1),
            stop_deadline_s=env_float("BR_GATEWAY_STOP_DEADLINE_SECONDS", 25.0),
            reply_timeout_s=env_float("BR_REPLY_TIMEOUT_SECONDS", 5.0),
            accept_timeout_s=env_float("BR_ACCEPT_TIMEOUT_SECONDS", 3.0),
            command_deadline_s=env_float("BR_COMMAND_DEADLINE_SECONDS", 30.0),
            payment_hold_s=env_float("BR_PAYMENT_HOLD_SECONDS", 900.0),
            max_body_bytes=env_int("BR_MAX_BODY_BYTES", 16 * 1024),
            token_cache_size=env_int("BR_TOKEN_CACHE_SIZE", 100_000),
            redis_max_connections=env_int("BR_REDIS_MAX_CONNECTIONS", 64),
            bcrypt_cost=_bcrypt_cost(env_int("BR_BCRYPT_COST", 12)),
            hash_threads=max(1, env_int("BR_HASH_THREADS", 2)),
            hash_max_wait_s=max(0.0, env_float("BR_HASH_MAX_WAIT_SECONDS", 2.0)),
            queue_pass_keys=pass_keys,
            stream_heartbeat_s=heartbeat_s,
            queue_ticket_ttl_s=ticket_ttl_s,
            stream_correction_s=env_float("BR_STREAM_CORRECTION_SECONDS", 5.0),
            stream_correction_batch=env_int("BR_STREAM_CORRECTION_BATCH", 500),
            streams_per_user=max(1, env_int("BR_STREAMS_PER_USER", 4)),
            metrics_host=env_str("BR_GATEWAY_METRICS_HOST", "127.0.0.1"),
            metrics_port=(
                env_int("BR_GATEWAY_METRICS_PORT", 0) if os.environ.get("BR_GATEWAY_METRICS_PORT") else None
            ),
            mail=MailSettings.from_env(),
            push=PushSettings.from_env(),
            trusted_proxies=trusted_proxies,
        )

    @property
    def topics(self) -> Topics:
        return self.endpoints.topics


def _bcrypt_cost(cost: int) -> int:
    if not 4 <= cost <= 16:
        raise ConfigError("BR_BCRYPT_COST must be between 4 and 16")
    return cost


def new_gateway_id() -> str:
    """One per gateway process: names its reply channel."""
    return f"gw-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
