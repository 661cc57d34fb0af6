"""Start a real Apache ZooKeeper (Debian's `zookeeper` package) on loopback, for tests and
benchmarks that use it as the oracle and the baseline.

    with RealZooKeeper(tmp_path, port=free_port()) as zk:
        KazooClient(zk.hosts)...

An ensemble of n servers gets client ports port+1..port+n (standalone: `port`). Every server is a
child JVM that this object owns; `stop()` (or leaving the `with`) kills them all.
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ZK_JARS = "/usr/share/java"
ZK_CONF = "/etc/zookeeper/conf"
LOG4J = "/etc/zookeeper/conf_example/log4j.properties"


def available() -> bool:
    """True when Debian's zookeeper package and a java runtime are installed."""
    return os.path.exists(os.path.join(ZK_JARS, "zookeeper.jar")) and _which("java") is not None


def _which(name: str) -> str | None:
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def classpath() -> str:
    return ":".join([ZK_CONF, *sorted(glob.glob(os.path.join(ZK_JARS, "*.jar")))])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(host: str, port: int, cmd: str | bytes, timeout: float = 2.0) -> str:
    """Send a four-letter word (plus any extra bytes) and read the answer until EOF."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cmd.encode() if isinstance(cmd, str) else cmd)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode(errors="replace")


class RealZooKeeper:
    def __init__(self, base_dir: str | os.PathLike, port: int, n: int = 1,
                 extra: list[str] | None = None, heap: str = "1g",
                 env: dict[str, str] | None = None) -> None:
        self.base = Path(base_dir)
        self.env = dict(env or {})  # added to the inherited environment of every JVM
        self.port = port
        self.n = n
        self.extra = list(extra or [])
        self.heap = heap
        self.procs: list[subprocess.Popen] = []

    @property
    def client_ports(self) -> list[int]:
        return [self.port] if self.n == 1 else [self.port + i for i in range(1, self.n + 1)]

    @property
    def hosts(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def config_lines(self, i: int, data: Path, client_port: int) -> list[str]:
        lines = [
            "tickTime=2000", "initLimit=10", "syncLimit=5", f"dataDir={data}",
            f"clientPort={client_port}", "clientPortAddress=127.0.0.1",
            "admin.enableServer=false", "4lw.commands.whitelist=*", "maxClientCnxns=0",
            *self.extra,
        ]
        if self.n > 1:
            lines += [f"server.{j}=127.0.0.1:{self.port + 100 + j}:{self.port + 200 + j}"
                      for j in range(1, self.n + 1)]
        return lines

    def start(self, timeout: float = 60.0) -> RealZooKeeper:
        cp = classpath()
        for i, client_port in enumerate(self.client_ports, start=1):
            d = self.base / f"zk{i}"
            data = d / "data"
            data.mkdir(parents=True, exist_ok=True)
            (data / "myid").write_text(f"{i}\n")
            cfg = d / "zoo.cfg"
            cfg.write_text("\n".join(self.config_lines(i, data, client_port)) + "\n")
            log = open(d / "out.log", "wb")
            self.procs.append(subprocess.Popen(
                ["java", f"-Xmx{self.heap}", f"-Dzookeeper.log.dir={d}",
                 f"-Dlog4j.configuration=file:{LOG4J}", "-cp", cp,
                 "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **self.env} if self.env else None))
            log.close()
        deadline = time.monotonic() + timeout
        for client_port in self.client_ports:
            while True:
                try:
                    if "Mode:" in four_letter("127.0.0.1", client_port, "srvr"):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"real ZooKeeper did not start on port {client_port}")
                if any(p.poll() is not None for p in self.procs):
                    self.stop()
                    raise RuntimeError(f"real ZooKeeper exited; see {self.base}/zk*/out.log")
                time.sleep(0.1)
        return self

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        for p in self.procs:
            p.wait()
        self.procs.clear()

    def __enter__(self) -> RealZooKeeper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
