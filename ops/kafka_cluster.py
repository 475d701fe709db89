"""A 3-broker Kafka cluster on loopback (KRaft, every node broker and controller: one quorum of
three), for the failover test: the same jars as ops.stack's broker, small heaps, its own ports
and folder, Kafka's own topics replicated 3 with 2 in sync.

Each node costs a JVM (`BR_KAFKA_CLUSTER_HEAP`, default 192m of heap; about 0.4 GB resident) and
starts in a few seconds; `KafkaCluster.kill(node)` SIGKILLs one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from ops.config import StackConfig
from ops.processes import free_port
from ops.stack import kafka_libs, kraft_properties, new_cluster_id, port_open, run

NODES = (1, 2, 3)


# A test cluster: threads few, no log cleaning (its data is thrown away).
NODE_TUNING = """\
num.network.threads=1
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.enable=false
"""


def node_properties(node: int, ports: dict[int, tuple[int, int]], data: Path) -> str:
    return kraft_properties(node, ports, data, rf=3, isr=2, tuning=NODE_TUNING)


class KafkaCluster:
    def __init__(self, cfg: StackConfig, folder: Path) -> None:
        self.cfg, self.folder = cfg, folder
        self.ports = {n: (free_port(), free_port()) for n in NODES}
        self.procs: dict[int, subprocess.Popen] = {}

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{b}" for b, _ in self.ports.values())

    def broker_port(self, node: int) -> int:
        return self.ports[node][0]

    def start(self, timeout: float = 90) -> KafkaCluster:
        cp = f"{kafka_libs(self.cfg)}/*"
        cluster_id = new_cluster_id()
        heap = os.environ.get("BR_KAFKA_CLUSTER_HEAP", "192m")
        for node in NODES:
            home = self.folder / f"node{node}"
            (home / "data").mkdir(parents=True, exist_ok=True)
            props = home / "server.properties"
            props.write_text(node_properties(node, self.ports, home / "data"))
            run(["java", "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)])
            log = open(home / "kafka.log", "ab")  # noqa: SIM115 - the child keeps it
            self.procs[node] = subprocess.Popen(
                ["java", f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
                + ["-Djava.awt.headless=true", "-cp", cp, "kafka.Kafka", str(props)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not all(port_open(self.broker_port(n)) for n in NODES):
            for node, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"kafka node {node} exited; see {self.folder / f'node{node}' / 'kafka.log'}"
                    )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the 3-broker cluster did not answer in {timeout:.0f}s; logs in {self.folder}"
                )
            time.sleep(0.2)  # polling the ports while the JVMs start
        return self

    def kill(self, node: int) -> None:
        proc = self.procs[node]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)  # throwaway data: no clean shutdown needed
                proc.wait()
