"""Starting and stopping gateway, worker and throwaway Redis processes for the demo, the
benchmarks and the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from ops.config import REPO_ROOT
from waiting_room.passes import PassKeys


class Managed:
    """A child process with its output in a log file."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        log_dir: Path,
        cpus: str | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        prefix = ["taskset", "-c", cpus] if cpus else []
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*prefix, *args],
            cwd=cwd,  # another checkout runs its own code (python -m finds it first)
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_for_line(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not say {needle!r}; see {self.log_path}")

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def service_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment for the project's processes; a queue-pass key is made for this run when
    the caller's environment has none (every gateway process of the run shares it)."""
    env = {**os.environ, **base, "PYTHONUNBUFFERED": "1"}
    if not env.get("BR_QUEUE_PASS_KEY"):
        env.update(PassKeys.generate().env())
    env.update(extra)
    return env


def start_worker(
    name: str, env: dict[str, str], log_dir: Path, cpus: str | None = None, cwd: Path = REPO_ROOT
) -> Managed:
    worker = Managed(
        name, [sys.executable, "-m", "workers"], {**env, "BR_WORKER_ID": name}, log_dir, cpus, cwd
    )
    worker.wait_for_line("ready")
    return worker


def start_payment_worker(name: str, env: dict[str, str], log_dir: Path) -> Managed:
    """`python -m workers.payment_worker`: Dramatiq actors for payments, refunds and mail."""
    args = [sys.executable, "-m", "workers.payment_worker"]
    worker = Managed(name, args, {**env, "BR_WORKER_ID": name}, log_dir)
    worker.wait_for_line("ready")
    return worker


def start_gateway(
    env: dict[str, str], log_dir: Path, port: int, cpus: str | None = None, cwd: Path = REPO_ROOT
) -> Managed:
    gateway = Managed(
        "gateway",
        [sys.executable, "-m", "gateway"],
        {**env, "BR_GATEWAY_PORT": str(port)},
        log_dir,
        cpus,
        cwd,
    )
    wait_ready(f"http://127.0.0.1:{port}/readyz", gateway)
    return gateway


def wait_ready(url: str, owner: Managed, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if owner.proc.poll() is not None:
            raise RuntimeError(f"{owner.name} exited; see {owner.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready in {timeout}s; see {owner.log_path}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_REDIS_SERVERS: dict[int, subprocess.Popen] = {}
_REDIS_READY = "Ready to accept connections"


def start_redis(port: int, folder: Path, *options: str, timeout: float = 30) -> subprocess.Popen:
    """A throwaway redis-server in the foreground, with its files in `folder`; returns once
    Redis itself says it is ready (after loading any append-only file), read from its log."""
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
        + ["--save", "", "--logfile", "", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()
    log_path = folder / f"redis-{port}.log"

    def follow_log() -> None:  # also keeps the pipe drained for as long as the server runs
        with open(log_path, "a") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if _REDIS_READY in line:
                    ready.set()

    threading.Thread(target=follow_log, daemon=True).start()
    if not ready.wait(timeout):
        proc.kill()
        raise RuntimeError(f"redis on :{port} did not become ready; see {log_path}")
    _REDIS_SERVERS[port] = proc
    return proc


def stop_redis(port: int, *how: str, timeout: float = 30) -> None:
    """SHUTDOWN the Redis on `port`; for one started here, return once its process has exited."""
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", *how], capture_output=True)
    proc = _REDIS_SERVERS.pop(port, None)
    if proc is not None:
        proc.wait(timeout)
