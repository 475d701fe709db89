"""Worker settings, read once from the environment (a missing or bad value fails at start-up)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from booking_rush.contract.topics import Topics
from booking_rush.services.endpoints import Endpoints
from booking_rush.services.env import env_bool, env_float, env_int, env_ms, env_str
from booking_rush.services.mail import MailSettings
from booking_rush.services.web_push import PushSettings

ALL_ROLES = ("commands", "sweeper", "persistence", "admitter", "archiver")


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker process needs: services, topics, business timings and batch sizes."""

    endpoints: Endpoints = field(default_factory=Endpoints.local)
    command_group: str = "booking-workers"
    persistence_group: str = "booking-persistence"
    instance_id: str = field(default_factory=lambda: f"worker-{socket.gethostname()}-{os.getpid()}")
    roles: tuple[str, ...] = ALL_ROLES
    hold_ms: int = 600_000
    # A hold being paid for lasts this long from the moment payment begins (spec §10.4: extend,
    # don't drop); past it the sweeper asks the provider instead of releasing the seats.
    payment_hold_ms: int = 900_000
    # A reservation's idempotency record: as long as a client may retry under the same key
    # (spec: 24 h). After it, a retry is judged afresh (a new booking if seats and the per-user
    # limit allow); a redelivered command is still answered from the booking it made.
    idempotency_ttl_s: int = 86_400
    # The longest a command can sit unconsumed in Kafka or be redelivered after it was applied:
    # the 30 s client deadline plus a consumer group's lag alert (2 min) and someone acting on
    # it. A refusal's idempotency record lives this long (and at least until its command's
    # deadline), and an ended hold is trimmed only this long after it ended.
    redelivery_window_s: int = 300
    result_ttl_s: int = 900
    default_max_per_user: int = 4
    batch_size: int = 500
    sweep_interval_s: float = 1.0
    admit_tick_s: float = 1.0  # DESIGN.md: a tick is 1 second unless configured otherwise
    sweep_reissue_ms: int = 30_000
    shutdown_timeout_s: float = 10.0
    # One bound per pipeline instead of a socket timeout per reply (redis-py's per-read timer
    # was a tenth of the worker's CPU).
    redis_timeout_s: float = 10.0
    session_timeout_ms: int = 10_000
    # The command consumer commits answered offsets at most this often (the ones answered
    # meanwhile ride on the next commit; a crash replays them, idempotently): a commit per
    # batch was a broker request and an offsets-log write per booking at a moderate rate.
    commit_interval_ms: int = 100
    # The persistence consumer waits for this much data or this long per fetch: PostgreSQL
    # is not on a client's path, and one transaction per tiny batch cost more than the rows.
    persistence_fetch_wait_ms: int = 100
    persistence_fetch_min_bytes: int = 64 * 1024
    # The command consumer's fetches: answered at once (min 1 byte) by default.
    command_fetch_wait_ms: int = 500
    command_fetch_min_bytes: int = 1
    # Group membership (booking_rush/services/clients.py group_consumer): static members keep
    # their partitions across a quick restart; the assignor is Kafka's range by default
    # (ops/bench_rebalance.py measures the choices).
    static_membership: bool = True
    assignor: str = "range"
    # /metrics of this worker process (None: not served; 0: any free port, printed at start).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # The archiver: how often it trims ended holds and looks for events to archive, and how
    # long after an event's last show starts it counts as over.
    archive_interval_s: float = 10.0
    archive_after_last_show_s: int = 6 * 3600
    # A role failing this many times in a row (no healthy minute between) ends the process.
    role_max_failures: int = 5
    # A persisted event PostgreSQL refuses this many times goes to the dead-letter topic.
    dead_letter_after: int = 3
    # Test hooks for the crash scenarios: SIGKILL this process right after a Lua batch ran, or
    # right after a persistence batch committed (before its offsets are).
    crash_after_lua: bool = False
    crash_after_persist: bool = False
    # The admitter tells people called while away (workers/turn_notices.py), by push or mail.
    push: PushSettings = PushSettings()
    mail: MailSettings = MailSettings()

    @classmethod
    def from_env(cls) -> WorkerSettings:
        roles = tuple(r for r in env_str("BR_WORKER_ROLES", ",".join(ALL_ROLES)).split(",") if r)
        unknown = set(roles) - set(ALL_ROLES)
        if unknown:
            raise ValueError(f"BR_WORKER_ROLES has unknown roles: {sorted(unknown)}")
        if env_str("BR_KAFKA_ASSIGNOR", "range") not in ("range", "roundrobin", "sticky"):
            raise ValueError("BR_KAFKA_ASSIGNOR must be range, roundrobin or sticky")
        defaults = cls(endpoints=Endpoints.local())
        return cls(
            endpoints=Endpoints.from_env(),
            command_group=env_str("BR_COMMAND_GROUP", defaults.command_group),
            persistence_group=env_str("BR_PERSISTENCE_GROUP", defaults.persistence_group),
            instance_id=env_str("BR_WORKER_ID", defaults.instance_id),
            roles=roles,
            hold_ms=env_ms("BR_HOLD_SECONDS", defaults.hold_ms),
            payment_hold_ms=env_ms("BR_PAYMENT_HOLD_SECONDS", defaults.payment_hold_ms),
            idempotency_ttl_s=env_int("BR_IDEMPOTENCY_TTL_SECONDS", defaults.idempotency_ttl_s),
            redelivery_window_s=env_int("BR_REDELIVERY_WINDOW_SECONDS", defaults.redelivery_window_s),
            archive_interval_s=env_float("BR_ARCHIVE_INTERVAL_SECONDS", defaults.archive_interval_s),
            archive_after_last_show_s=env_int(
                "BR_ARCHIVE_AFTER_LAST_SHOW_SECONDS", defaults.archive_after_last_show_s
            ),
            result_ttl_s=env_int("BR_RESULT_TTL_SECONDS", defaults.result_ttl_s),
            default_max_per_user=env_int("BR_DEFAULT_MAX_PER_USER", defaults.default_max_per_user),
            batch_size=env_int("BR_WORKER_BATCH_SIZE", defaults.batch_size),
            sweep_interval_s=env_float("BR_SWEEP_INTERVAL_SECONDS", defaults.sweep_interval_s),
            commit_interval_ms=env_ms("BR_COMMIT_INTERVAL_SECONDS", defaults.commit_interval_ms),
            persistence_fetch_wait_ms=env_ms(
                "BR_PERSISTENCE_FETCH_WAIT_SECONDS", defaults.persistence_fetch_wait_ms
            ),
            persistence_fetch_min_bytes=env_int(
                "BR_PERSISTENCE_FETCH_MIN_BYTES", defaults.persistence_fetch_min_bytes
            ),
            command_fetch_wait_ms=env_ms("BR_COMMAND_FETCH_WAIT_SECONDS", defaults.command_fetch_wait_ms),
            command_fetch_min_bytes=env_int("BR_COMMAND_FETCH_MIN_BYTES", defaults.command_fetch_min_bytes),
            sweep_reissue_ms=env_ms("BR_SWEEP_REISSUE_SECONDS", defaults.sweep_reissue_ms),
            admit_tick_s=env_float("BR_ADMIT_TICK_SECONDS", defaults.admit_tick_s),
            shutdown_timeout_s=env_float("BR_SHUTDOWN_TIMEOUT_SECONDS", defaults.shutdown_timeout_s),
            redis_timeout_s=env_float("BR_REDIS_TIMEOUT_SECONDS", defaults.redis_timeout_s),
            metrics_host=env_str("BR_METRICS_HOST", defaults.metrics_host),
            metrics_port=None if not os.environ.get("BR_METRICS_PORT") else env_int("BR_METRICS_PORT", 0),
            dead_letter_after=env_int("BR_DEAD_LETTER_AFTER", defaults.dead_letter_after),
            role_max_failures=env_int("BR_ROLE_MAX_FAILURES", defaults.role_max_failures),
            session_timeout_ms=env_int("BR_KAFKA_SESSION_TIMEOUT_MS", defaults.session_timeout_ms),
            static_membership=os.environ.get("BR_KAFKA_STATIC_MEMBERSHIP", "1").lower()
            not in ("0", "false", "no"),
            assignor=env_str("BR_KAFKA_ASSIGNOR", defaults.assignor),
            crash_after_lua=env_bool("BR_FAULT_CRASH_AFTER_LUA"),
            crash_after_persist=env_bool("BR_FAULT_CRASH_AFTER_PERSIST"),
            push=PushSettings.from_env(),
            mail=MailSettings.from_env(),
        )

    @property
    def topics(self) -> Topics:
        return self.endpoints.topics
