"""Start a real Apache ZooKeeper on loopback, for tests and benchmarks that use it as the oracle
and the baseline.

Which ZooKeeper: `ZKSERVER_ORACLE` in the environment. The default, `3.9.5`, is Apache's release
from Maven Central, fetched once by `tests/support/fetch_zookeeper.sh` into a cache directory
(`ZKSERVER_TEST_CACHE`, default `~/.cache/zkserver-tests`; `tests/run.sh` fetches it, and
`available()` does on first use). `debian` (or `3.8`) is Debian's `zookeeper` package (3.8.0).

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

MAVEN_VERSION = "3.9.5"
ORACLE = os.environ.get("ZKSERVER_ORACLE", MAVEN_VERSION)
DEBIAN = ORACLE in ("debian", "3.8", "3.8.0")
CACHE = Path(os.environ.get("ZKSERVER_TEST_CACHE", Path.home() / ".cache" / "zkserver-tests"))
FETCH = Path(__file__).with_name("fetch_zookeeper.sh")

# What the Maven release logs (logback, at INFO, to the JVM's stdout: each server's out.log).
_LOGBACK = """<configuration>
  <appender name="out" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%d{ISO8601} [myid:%X{myid}] - %-5level [%thread:%logger{1}] - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO"><appender-ref ref="out"/></root>
</configuration>
"""


def version() -> str:
    """The version of the ZooKeeper this module starts (for reports and version-gated tests)."""
    return "3.8.0" if DEBIAN else ORACLE


def _maven_lib() -> Path:
    return CACHE / f"zookeeper-{ORACLE}" / "lib"


def available() -> bool:
    """True when the chosen ZooKeeper and a java runtime are there; the Maven release is
    fetched here if it is missing (idempotent; Maven Central must be reachable)."""
    if _which("java") is None:
        return False
    if DEBIAN:
        return os.path.exists(os.path.join(ZK_JARS, "zookeeper.jar"))
    if not (_maven_lib() / f"zookeeper-{ORACLE}.jar").exists():
        subprocess.run(["bash", str(FETCH), ORACLE], check=False)
    return (_maven_lib() / f"zookeeper-{ORACLE}.jar").exists()


def log_args(log_dir: Path) -> list[str]:
    """JVM options that make the chosen ZooKeeper log to stdout (its out.log)."""
    if DEBIAN:
        return [f"-Dzookeeper.log.dir={log_dir}", f"-Dlog4j.configuration=file:{LOG4J}"]
    conf = CACHE / f"zookeeper-{ORACLE}" / "logback.xml"
    if not conf.exists():
        conf.write_text(_LOGBACK)
    return [f"-Dzookeeper.log.dir={log_dir}", f"-Dlogback.configurationFile={conf}"]


def _which(name: str) -> str | None:
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def classpath() -> str:
    if DEBIAN:
        return ":".join([ZK_CONF, *sorted(glob.glob(os.path.join(ZK_JARS, "*.jar")))])
    return ":".join(sorted(str(p) for p in _maven_lib().glob("*.jar")))


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


def srvr_mode(port: int, host: str = "127.0.0.1") -> str:
    """The `Mode:` a server's `srvr` shows; "down" if it doesn't answer, "not serving" if it
    answers without one."""
    try:
        text = four_letter(host, port, "srvr", timeout=1.0)
    except OSError:
        return "down"
    found = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Mode:")]
    return found[0] if found else "not serving"


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
                ["java", f"-Xmx{self.heap}", *log_args(d), "-cp", cp,
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
