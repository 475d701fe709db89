"""Start, stop and report the real services on loopback: two Redis, PostgreSQL and Kafka (KRaft).

Usage: python -m ops.stack up|down|status|packages [--for-tests]

Redis and PostgreSQL come from Debian packages (installed with apt-get when missing); Kafka is
assembled from Maven Central jars. Everything keeps its data under one state folder. `up` is
idempotent: a service already answering is left alone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from booking_rush.services.env import env_int
from ops.config import KAFKA_VERSION, REPO_ROOT, StackConfig
from ops.topics import create_topics

# command that must exist -> Debian package that brings it
APT_PACKAGES = {
    "redis-server": "redis-server",
    "initdb": "postgresql",
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
}
# Only the tests need these: the browser tests drive Debian's Chromium through its chromedriver;
# the alert rules are checked and unit-tested by promtool, and the dashboards' queries run on a
# real Prometheus (Debian's `prometheus` package brings both).
TEST_PACKAGES = {"chromium": "chromium", "chromedriver": "chromium-driver", "promtool": "prometheus"}


class StackError(RuntimeError):
    """A service could not be installed or started; the message says which and where its log is."""


def log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_for(
    check: Callable[[], bool], what: str, timeout: float, log_path: Path | None, waiting: str | None = None
) -> None:
    started = time.monotonic()
    deadline = started + timeout
    next_note = started + 10
    while time.monotonic() < deadline:
        if check():
            return
        if waiting and time.monotonic() > next_note:
            log(f"still waiting: {waiting} ({time.monotonic() - started:.0f}s)")
            next_note += 10
        time.sleep(0.2)
    where = f"; its log is {log_path}" if log_path else ""
    raise StackError(f"{what} did not become ready within {timeout:.0f}s{where}")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


# --- packages -------------------------------------------------------------------------------


def pg_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


def _has(command: str) -> bool:
    if command == "initdb":  # not on PATH: Debian keeps it under the versioned folder
        return pg_bin() is not None
    return shutil.which(command) is not None


def ensure_packages(extra: dict[str, str] | None = None) -> None:
    """apt-get install whatever is missing (the Debian package also starts its own default
    instances; ours run on other ports and folders)."""
    wanted = {**APT_PACKAGES, **(extra or {})}
    missing = sorted({pkg for command, pkg in wanted.items() if not _has(command)})
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    log(f"installing Debian packages: {' '.join(missing)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env
    )


# --- Redis ------------------------------------------------------------------------------------


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(cfg: StackConfig, role: str, port: int) -> None:
    if redis_ping(port):
        log(f"redis-{role} already answering on :{port}")
        return
    data = cfg.state_dir / f"redis-{role}"
    data.mkdir(parents=True, exist_ok=True)
    logfile = cfg.state_dir / f"redis-{role}.log"
    # AOF + noeviction on both roles: neither a hold nor a queued payment job may vanish.
    run(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--daemonize",
            "yes",
            "--pidfile",
            str(cfg.state_dir / f"redis-{role}.pid"),
            "--logfile",
            str(logfile),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--maxmemory-policy",
            "noeviction",
            "--save",
            "",
            "--maxclients",
            "10000",
        ]
    )
    # A large append-only file takes a while to load (PING answers -LOADING meanwhile).
    wait_for(
        lambda: redis_ping(port),
        f"redis-{role} on :{port}",
        300,
        logfile,
        waiting=f"redis-{role} loading its data",
    )
    log(f"redis-{role} started on :{port}")


def stop_redis(cfg: StackConfig, role: str, port: int) -> None:
    if redis_ping(port):
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)
        log(f"redis-{role} stopped")


# --- PostgreSQL -------------------------------------------------------------------------------


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: use the system user the Debian package creates.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def pg_dir(cfg: StackConfig) -> Path:
    """The cluster lives in the state folder, unless the postgres user cannot reach it there."""
    preferred = cfg.state_dir / "postgres"
    if os.geteuid() != 0:
        return preferred
    probe = subprocess.run(_as_postgres(["test", "-x", str(cfg.state_dir)]), capture_output=True)
    if probe.returncode == 0:
        return preferred
    digest = hashlib.sha1(str(cfg.state_dir).encode()).hexdigest()[:10]
    return Path(f"/var/tmp/booking-rush-{digest}/postgres")


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def start_postgres(cfg: StackConfig) -> None:
    bindir = pg_bin()
    assert bindir is not None
    data = pg_dir(cfg)
    sock = data.parent / "postgres-run"
    logfile = data.parent / "postgres.log"
    if port_open(cfg.postgres_port):
        log(f"postgres already answering on :{cfg.postgres_port}")
        if not sock.exists():  # another checkout's server (its own state folder): ours to use?
            _check_database_over_tcp(cfg, bindir)
            return
    else:
        for d in (data.parent, sock):
            d.mkdir(parents=True, exist_ok=True)
        _chown_postgres(sock)
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            _chown_postgres(data)
            log(f"initialising PostgreSQL cluster in {data}")
            run(
                _as_postgres(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        "postgres",
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "-E",
                        "UTF8",
                    ]
                )
            )
        if not logfile.exists():
            logfile.touch()
        _chown_postgres(logfile)
        opts = (
            f"-p {cfg.postgres_port} -k {sock} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=128MB -c fsync=on"
        )
        proc = subprocess.run(
            _as_postgres(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(logfile),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise StackError(f"postgres failed to start: {proc.stderr.strip()}; its log is {logfile}")
        log(f"postgres started on :{cfg.postgres_port}")
    _ensure_database(cfg, bindir, sock)


def _psql(bindir: Path, sock: Path, port: int, sql: str, db: str = "postgres") -> str:
    out = run(
        _as_postgres(
            [str(bindir / "psql"), "-h", str(sock), "-p", str(port), "-U", "postgres", "-d", db, "-tAc", sql]
        )
    )
    return out.stdout.strip()


def _check_database_over_tcp(cfg: StackConfig, bindir: Path) -> None:
    """The database answers our credentials over TCP (the server is not ours to administer)."""
    probe = subprocess.run(
        [str(bindir / "psql"), cfg.database_url, "-tAc", "SELECT 1"], capture_output=True, text=True
    )
    if probe.returncode != 0 or probe.stdout.strip() != "1":
        raise StackError(
            f"postgres on :{cfg.postgres_port} belongs to another state folder and does not take "
            f"{cfg.postgres_user}@{cfg.postgres_db}: {probe.stderr.strip()}"
        )


def _ensure_database(cfg: StackConfig, bindir: Path, sock: Path) -> None:
    port = cfg.postgres_port
    user, pw, db = cfg.postgres_user, cfg.postgres_password, cfg.postgres_db
    if _psql(bindir, sock, port, f"SELECT 1 FROM pg_roles WHERE rolname='{user}'") != "1":
        _psql(bindir, sock, port, f"CREATE ROLE {user} LOGIN PASSWORD '{pw}'")
    if _psql(bindir, sock, port, f"SELECT 1 FROM pg_database WHERE datname='{db}'") != "1":
        _psql(bindir, sock, port, f"CREATE DATABASE {db} OWNER {user}")
        log(f"created database {db}")


def stop_postgres(cfg: StackConfig) -> None:
    bindir = pg_bin()
    data = pg_dir(cfg)
    if bindir and (data / "postmaster.pid").exists():
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        log("postgres stopped")


# --- Kafka ------------------------------------------------------------------------------------


def kafka_libs(cfg: StackConfig) -> Path:
    libs = cfg.kafka_cache / "libs"
    marker = cfg.kafka_cache / ".complete"
    if marker.exists():
        return libs
    log(f"resolving Apache Kafka {KAFKA_VERSION} from Maven Central into {libs} (first run only)")
    tmp = cfg.kafka_cache / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    cfg.kafka_cache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(REPO_ROOT / "ops" / "kafka" / "pom.xml"),
            "dependency:copy-dependencies",
            f"-Dkafka.version={KAFKA_VERSION}",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ],
        text=True,
        capture_output=True,
    )
    if proc.returncode != 0:
        raise StackError(f"maven could not resolve Kafka:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.touch()
    log(f"kafka jars ready ({len(list(libs.glob('*.jar')))} jars)")
    return libs


def new_cluster_id() -> str:
    """Kafka's cluster id: 16 random bytes, url-safe base64. Never one starting with '-', which
    StorageTool's command line would take for an option (1 id in 64 did)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kraft_properties(
    node: int, ports: dict[int, tuple[int, int]], data: Path, rf: int, isr: int, tuning: str
) -> str:
    """server.properties of KRaft node `node` (broker and controller) of a quorum of `ports`
    (node -> (broker port, controller port)) on loopback; Kafka's own topics replicated `rf`
    with `isr` in sync; `tuning` (thread counts, cleaner) appended."""
    broker, controller = ports[node]
    voters = ",".join(f"{n}@127.0.0.1:{c}" for n, (_, c) in ports.items())
    return f"""\
process.roles=broker,controller
node.id={node}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{broker}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor={rf}
min.insync.replicas={isr}
auto.create.topics.enable=false
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=4
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={isr}
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={isr}
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
{tuning}"""


def kafka_properties(cfg: StackConfig, data: Path) -> str:
    # Kafka's own topics (group offsets, transactions): one node, one replica; a cluster sets
    # these to 3 and 2 (ops/kafka_cluster.py; README "Kafka: what an acknowledgement means").
    rf = env_int("BR_KAFKA_INTERNAL_REPLICATION_FACTOR", 1)
    isr = env_int("BR_KAFKA_INTERNAL_MIN_INSYNC_REPLICAS", 1)
    tuning = """\
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=2097152
log.cleaner.threads=1
log.retention.hours=168
"""
    return kraft_properties(1, {1: (cfg.kafka_port, cfg.kafka_controller_port)}, data, rf, isr, tuning)


def start_kafka(cfg: StackConfig) -> None:
    if port_open(cfg.kafka_port):
        log(f"kafka already answering on :{cfg.kafka_port}")
    else:
        libs = kafka_libs(cfg)
        home = cfg.state_dir / "kafka"
        data = home / "data"
        data.mkdir(parents=True, exist_ok=True)
        props = home / "server.properties"
        props.write_text(kafka_properties(cfg, data))
        cp = f"{libs}/*"
        if not (data / "meta.properties").exists():
            cluster_id_file = home / "cluster.id"
            if not cluster_id_file.exists():
                cluster_id_file.write_text(new_cluster_id())
            # Static voters: format without --standalone.
            run(
                [
                    "java",
                    "-cp",
                    cp,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id_file.read_text().strip(),
                    "-c",
                    str(props),
                    "--ignore-formatted",
                ]
            )
        logfile = home / "kafka.log"
        heap = os.environ.get("BR_KAFKA_HEAP", "512m")
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(
                [
                    "java",
                    f"-Xmx{heap}",
                    f"-Xms{heap}",
                    "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                    "-cp",
                    cp,
                    "kafka.Kafka",
                    str(props),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (home / "kafka.pid").write_text(str(proc.pid))
        log(f"kafka starting (pid {proc.pid}), waiting for :{cfg.kafka_port}")

        def ready() -> bool:
            if proc.poll() is not None:
                raise StackError(f"kafka exited with {proc.returncode}; its log is {logfile}")
            return port_open(cfg.kafka_port)

        wait_for(ready, f"kafka on :{cfg.kafka_port}", 90, logfile)
        log(f"kafka started on :{cfg.kafka_port}")


async def ensure_topics(cfg: StackConfig, prefix: str = "", partitions: int | None = None) -> None:
    """Create the reservation and event topics if they are missing (idempotent).

    `partitions` overrides the configured counts (tests and benchmarks make many small sets).
    """
    try:
        await create_topics(
            cfg.kafka_bootstrap,
            prefix,
            reservations=partitions or cfg.reservations_partitions,
            events=partitions or cfg.events_partitions,
            say=log,
        )
    except RuntimeError as exc:
        raise StackError(str(exc)) from exc


async def delete_topics(cfg: StackConfig, prefix: str) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a test's or a benchmark's set):
    each partition holds open files in the broker, and they add up run after run."""
    from aiokafka.admin import AIOKafkaAdminClient

    if not prefix:
        raise ValueError("refusing to delete every topic")
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.kafka_bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()


def stop_kafka(cfg: StackConfig, grace_s: float = 20) -> None:
    """SIGTERM, then SIGKILL after `grace_s` (0: kill at once, as a crash would)."""
    pidfile = cfg.state_dir / "kafka" / "kafka.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, signal.SIGTERM if grace_s > 0 else signal.SIGKILL)
    except ProcessLookupError:
        pidfile.unlink()
        return
    deadline = time.monotonic() + grace_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
    pidfile.unlink(missing_ok=True)
    log("kafka stopped")


def _alive(pid: int) -> bool:
    try:  # our own child (a test started it): reap it, or it lingers as a zombie
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- entry points -----------------------------------------------------------------------------


def up(cfg: StackConfig | None = None) -> StackConfig:
    cfg = cfg or StackConfig.from_env()
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    ensure_packages()
    start_redis(cfg, "sale", cfg.sale_redis_port)
    start_redis(cfg, "aux", cfg.aux_redis_port)
    start_postgres(cfg)
    start_kafka(cfg)
    asyncio.run(ensure_topics(cfg))
    log(f"stack up in {time.monotonic() - started:.1f}s (state in {cfg.state_dir})")
    return cfg


def down(cfg: StackConfig | None = None) -> None:
    cfg = cfg or StackConfig.from_env()
    stop_kafka(cfg)
    stop_postgres(cfg)
    stop_redis(cfg, "sale", cfg.sale_redis_port)
    stop_redis(cfg, "aux", cfg.aux_redis_port)
    log("stack down")


def status(cfg: StackConfig | None = None) -> bool:
    cfg = cfg or StackConfig.from_env()
    checks = {
        f"redis-sale :{cfg.sale_redis_port}": redis_ping(cfg.sale_redis_port),
        f"redis-aux  :{cfg.aux_redis_port}": redis_ping(cfg.aux_redis_port),
        f"postgres   :{cfg.postgres_port}": port_open(cfg.postgres_port),
        f"kafka      :{cfg.kafka_port}": port_open(cfg.kafka_port),
    }
    for name, ok in checks.items():
        print(f"{name}  {'up' if ok else 'down'}")
    return all(checks.values())


def main(argv: list[str]) -> int:
    verb = argv[0] if argv else "status"
    try:
        if verb == "packages":
            ensure_packages(TEST_PACKAGES if "--for-tests" in argv[1:] else None)
        elif verb == "up":
            up()
        elif verb == "down":
            down()
        elif verb == "status":
            return 0 if status() else 1
        else:
            print(__doc__)
            return 2
    except StackError as exc:
        print(f"[stack] FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
