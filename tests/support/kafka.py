"""Apache Kafka 3.9 in ZooKeeper mode, as child JVMs, for tests/compat/test_kafka.py.

The jars come from Maven Central through `tests/support/fetch_kafka.sh` (cached like the
ZooKeeper oracle's, under `ZKSERVER_TEST_CACHE`, default `~/.cache/zkserver-tests`). Everything
runs with `java -cp`: the broker (`kafka.Kafka server.properties`), the command-line tools by
class name (what kafka-topics.sh, kafka-configs.sh and kafka-acls.sh run) and the test's own
producer and consumer (tests/compat/kafka/KafkaStream.java, compiled here).

Heaps are small and the JIT stops at C1: three brokers, three ZooKeeper servers and the clients
share a 2-core machine with other test runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from support.realzk import CACHE

VERSION = "3.9.2"
FETCH = Path(__file__).with_name("fetch_kafka.sh")
JAVA_SOURCE = Path(__file__).parent.parent / "compat" / "kafka" / "KafkaStream.java"
JVM = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"]

# The broker's log: INFO to stdout (its out.log), without the per-request chatter.
_LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage=WARN
log4j.logger.kafka.log=WARN
"""

# The tools' and clients' log: warnings only, to stderr (their stdout is what the test reads).
_LOG4J_TOOLS = """log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


def lib() -> Path:
    return CACHE / f"kafka-{VERSION}" / "lib"


def available() -> bool:
    """True when the Kafka jars are there; fetched here on first use (idempotent)."""
    if not (lib() / f"kafka_2.13-{VERSION}.jar").exists():
        subprocess.run(["bash", str(FETCH), VERSION], check=False)
    return (lib() / f"kafka_2.13-{VERSION}.jar").exists()


def classpath(*extra: Path) -> str:
    return ":".join([str(lib() / "*"), *(str(p) for p in extra)])


def compile_stream(out: Path) -> list[str]:
    """Compile KafkaStream.java into `out`; returns the command prefix that runs it."""
    subprocess.run(["javac", "-nowarn", "-cp", classpath(), "-d", str(out), str(JAVA_SOURCE)],
                   check=True, capture_output=True, timeout=180)
    return java_command(out.parent, "KafkaStream", classes=out)


def java_command(work: Path, main: str, jaas: Path | None = None,
                 classes: Path | None = None, heap: str = "256m") -> list[str]:
    """A JVM running `main` from the Kafka jars (a tool or a client), logging warnings only."""
    conf = work / "tools-log4j.properties"
    if not conf.exists():
        conf.write_text(_LOG4J_TOOLS)
    cp = classpath(*([classes] if classes else []))
    flags = [f"-Xmx{heap}", *JVM, f"-Dlog4j.configuration=file:{conf}"]
    if jaas is not None:
        flags.append(f"-Djava.security.auth.login.config={jaas}")
    return ["java", *flags, "-cp", cp, main]


def jaas_files(base: Path, user: str = "kafka", password: str = "kafka-secret"
               ) -> tuple[Path, Path]:
    """(server, client) JAAS files: the ZooKeeper servers' `Server` section knows `user`; the
    brokers and tools log in as `user` with DIGEST-MD5 from their `Client` section, so that
    zookeeper.set.acl=true makes their znodes sasl:`user`-only for writes."""
    base.mkdir(parents=True, exist_ok=True)
    module = "org.apache.zookeeper.server.auth.DigestLoginModule"
    server = base / "zk-server-jaas.conf"
    server.write_text(f'Server {{\n  {module} required\n  user_{user}="{password}";\n}};\n')
    client = base / "kafka-client-jaas.conf"
    client.write_text(f'Client {{\n  {module} required\n  username="{user}"\n'
                      f'  password="{password}";\n}};\n')
    return server, client


class KafkaBroker:
    """One broker in its own process group (so kill() is a kill -9 of the whole JVM)."""

    def __init__(self, base: Path, broker_id: int, port: int, zk_connect: str,
                 jaas: Path | None = None, props: dict[str, str] | None = None,
                 heap: str = "384m") -> None:
        self.base = base
        self.broker_id = broker_id
        self.port = port
        self.zk_connect = zk_connect
        self.jaas = jaas
        self.props = dict(props or {})
        self.heap = heap
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.base / "out.log"

    def write_config(self) -> Path:
        self.base.mkdir(parents=True, exist_ok=True)
        props = {
            "broker.id": str(self.broker_id),
            "listeners": f"PLAINTEXT://{self.address}",
            "log.dirs": str(self.base / "data"),
            "zookeeper.connect": self.zk_connect,
            "zookeeper.session.timeout.ms": "6000",
            "zookeeper.connection.timeout.ms": "30000",
            "num.partitions": "3",
            "default.replication.factor": "3",
            "offsets.topic.replication.factor": "3",
            "transaction.state.log.replication.factor": "3",
            "transaction.state.log.min.isr": "2",
            "group.initial.rebalance.delay.ms": "0",
            "unclean.leader.election.enable": "false",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "log.cleaner.enable": "false",
            **self.props,
        }
        path = self.base / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.base / "log4j.properties").write_text(_LOG4J)
        return path

    def start(self) -> KafkaBroker:
        config = self.write_config()
        flags = [f"-Xmx{self.heap}", "-Xms64m", *JVM,
                 f"-Dlog4j.configuration=file:{self.base / 'log4j.properties'}",
                 f"-Dkafka.logs.dir={self.base}"]
        if self.jaas is not None:
            flags.append(f"-Djava.security.auth.login.config={self.jaas}")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["java", *flags, "-cp", classpath(), "kafka.Kafka",
                                          str(config)], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 120) -> int:
        """SIGTERM: Kafka's controlled shutdown (leadership moved away, then the ZooKeeper
        session closed, so its ephemerals go at once). Returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""
