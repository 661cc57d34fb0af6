"""Apache Kafka 3.9 in ZooKeeper mode on zkserver, with Apache ZooKeeper 3.9.5 as the baseline.

Kafka up to 3.9 keeps its cluster metadata in ZooKeeper: broker registration (/brokers/ids,
ephemeral), the controller election (/controller, an ephemeral that the survivors race to create
when it goes), topic assignments and configs (/brokers/topics, /config, written with multi ops
guarded by the controller epoch's version) and the ACL authorizer's rules (/kafka-acl, pushed to
every broker through change-notification znodes and watches). With `zookeeper.set.acl=true`
every broker and tool logs in to ZooKeeper with SASL DIGEST-MD5 and creates its znodes
writable by that user only.

The long test (`-m slow`) runs the same scenario on a 3-server Apache ZooKeeper 3.9.5 ensemble
and on a 3-server zkserver ensemble: 3 brokers; a topic with replication factor 3 and
min.insync.replicas=2; kafka-topics, kafka-configs and kafka-acls; Kafka's own Java producer
(acks=all, idempotent) sending a numbered stream while (a) the controller broker is killed with
kill -9 and (b) the ZooKeeper ensemble's leader is killed; then a consumer reads the topic back.
No acknowledged number may be missing and none may be read twice. The figures (messages, the
time to a new controller, the producer's longest wait for an acknowledgement around each fault)
are printed for both; docs/compatibility.md quotes them.

The quick test (default suite) is one broker on one zkserver with SASL and secure ACLs: it
registers, a topic is created, written and read back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoAuthError
from support import kafka, realzk
from support.kafka import KafkaBroker
from support.process import ZkServerEnsemble, ZkServerProcess, free_port_base
from support.realzk import RealZooKeeper, four_letter, free_port
from support.waiting import wait_for

SASL_PROVIDER = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
TOPIC = "stream"


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The compiled producer/consumer program: the command prefix that runs it."""
    if not kafka.available():
        pytest.fail("Kafka's jars are missing and could not be fetched "
                    "(bash tests/support/fetch_kafka.sh)")
    return kafka.compile_stream(tmp_path_factory.mktemp("kafka-stream") / "classes")


# -- the ZooKeeper side -----------------------------------------------------------------------


class RealEnsemble:
    """Apache ZooKeeper's 3 servers with the two things the scenario needs: which one leads,
    and kill -9 of one."""

    def __init__(self, base: Path, jaas: Path) -> None:
        self.zk = RealZooKeeper(base, free_port_base(3), n=3, extra=[SASL_PROVIDER],
                                heap="256m",
                                env={"JAVA_TOOL_OPTIONS":
                                     f"-Djava.security.auth.login.config={jaas}"})

    @property
    def hosts(self) -> str:
        return self.zk.hosts

    def start(self) -> RealEnsemble:
        self.zk.start()
        wait_for(self.leader, 60, "a ZooKeeper leader")
        return self

    def leader(self) -> int | None:
        for i, port in enumerate(self.zk.client_ports, start=1):
            try:
                if "Mode: leader" in four_letter("127.0.0.1", port, "srvr", timeout=1.0):
                    return i
            except OSError:
                pass
        return None

    def kill(self, i: int) -> None:
        proc = self.zk.procs[i - 1]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        self.zk.stop()


def zkserver_ensemble(base: Path, jaas: Path) -> ZkServerEnsemble:
    # tickTime 2000 as the real ensemble's, so sessions (and so the controller's ephemeral)
    # expire on the same schedule on both.
    return ZkServerEnsemble(base, free_port_base(3), n=3, tick_time=2000,
                            extra=[SASL_PROVIDER, f"jaasConfigFile={jaas}"])


# -- Kafka ------------------------------------------------------------------------------------


def run_tool(work: Path, main: str, *args: str, jaas: Path | None = None) -> str:
    """One of Kafka's command-line tools by class name; fails the test on a non-zero exit."""
    done = subprocess.run([*kafka.java_command(work, main, jaas=jaas), *args],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{main} {args}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


def controller(zk: KazooClient) -> int | None:
    try:
        data, _ = zk.get("/controller")
    except KazooException:  # no node, or the connection moving between servers
        return None
    return int(json.loads(data)["brokerid"])


def registered(zk: KazooClient) -> list[int]:
    try:
        return sorted(int(b) for b in zk.get_children("/brokers/ids"))
    except KazooException:
        return []


def acl_strings(zk: KazooClient, path: str) -> list[str]:
    acls, _ = zk.get_acls(path)
    return sorted(f"{a.id.scheme}:{a.id.id}:{a.perms}" for a in acls)


SECURE = ["sasl:kafka:31", "world:anyone:1"]  # what zookeeper.set.acl=true gives a znode
SENSITIVE = ["sasl:kafka:31"]  # and a znode holding credentials (/config/users/...)


def observer(hosts: str) -> KazooClient:
    """The test's own view of ZooKeeper, logged in as the brokers are (credentials' znodes
    are readable by that user only)."""
    zk = KazooClient(hosts, sasl_options={"mechanism": "DIGEST-MD5", "username": "kafka",
                                          "password": "kafka-secret"})
    zk.start(timeout=30)
    return zk


class Producer:
    """KafkaStream's producer in the background; its acknowledgements are read from its log."""

    def __init__(self, stream: list[str], work: Path, bootstrap: str, pause_ms: int = 5) -> None:
        self.stop_file = work / "producer.stop"
        self.out = work / "producer.out"
        with open(self.out, "wb") as out, open(work / "producer.err", "wb") as err:
            self.proc = subprocess.Popen([*stream, "produce", bootstrap, TOPIC,
                                          str(self.stop_file), str(pause_ms)],
                                         stdout=out, stderr=err, start_new_session=True)

    def lines(self) -> list[list[str]]:
        return [ln.split(" ", 3) for ln in self.out.read_text().splitlines() if ln]

    def acks(self) -> list[tuple[int, int]]:
        """(number, ms since the producer started) per acknowledgement, in order."""
        return [(int(p[1]), int(p[2])) for p in self.lines() if p[0] == "A" and len(p) == 3]

    def acked(self) -> int:
        return sum(1 for p in self.lines() if p[0] == "A")

    def finish(self, timeout: float = 200) -> tuple[int, int, int]:
        """Stop sending, wait for the last acknowledgements; (sent, acked, failed)."""
        self.stop_file.touch()
        self.proc.wait(timeout)
        done = [p for p in self.lines() if p[0] == "DONE"]
        assert done, f"producer ended without DONE: {self.out.read_text()[-2000:]}"
        sent, acked, failed = map(int, done[0][1:])
        return sent, acked, failed

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def consume(stream: list[str], bootstrap: str) -> list[int]:
    done = subprocess.run([*stream, "consume", bootstrap, TOPIC], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines and lines[-1].startswith("END"), done.stdout[-2000:] + done.stderr[-2000:]
    return [int(ln[2:]) for ln in lines if ln.startswith("R ")]


def longest_gap(acks: list[tuple[int, int]], after_ms: int) -> int:
    """The producer's longest wait between acknowledgements from `after_ms` on (ms)."""
    times = sorted(t for _, t in acks if t >= after_ms)
    return max((b - a for a, b in pairwise(times)), default=0)


# -- the quick check ----------------------------------------------------------------------------


def test_one_broker_registers_and_streams_on_zkserver(tmp_path: Path, stream: list[str]) -> None:
    """One broker on one zkserver with SASL and zookeeper.set.acl=true: it registers, its
    znodes carry the secure ACL, and a topic is created, written (acks=all, idempotent) and
    read back whole."""
    server_jaas, client_jaas = kafka.jaas_files(tmp_path)
    zk_port = free_port()
    with ZkServerProcess(tmp_path / "zk", zk_port,
                         extra=[SASL_PROVIDER, f"jaasConfigFile={server_jaas}"]) as server:
        broker = KafkaBroker(tmp_path / "broker", 1, free_port(), server.hosts, jaas=client_jaas,
                             props={"zookeeper.set.acl": "true",
                                    "offsets.topic.replication.factor": "1",
                                    "default.replication.factor": "1",
                                    "transaction.state.log.replication.factor": "1",
                                    "transaction.state.log.min.isr": "1"}).start()
        zk = KazooClient(server.hosts)
        zk.start()
        try:
            wait_for(lambda: registered(zk) == [1] or not broker.alive(), 90,
                     "the broker's registration")
            assert broker.alive(), broker.log_tail()
            assert acl_strings(zk, "/brokers/ids/1") == SECURE
            wait_for(lambda: controller(zk) == 1, 30, "broker 1 as controller")
            run_tool(tmp_path, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server",
                     broker.address, "--create", "--topic", TOPIC, "--partitions", "2",
                     "--replication-factor", "1")
            assert acl_strings(zk, f"/brokers/topics/{TOPIC}") == SECURE
            with pytest.raises(NoAuthError):  # this client has not logged in as "kafka"
                zk.set(f"/brokers/topics/{TOPIC}", b"{}")
            producer = Producer(stream, tmp_path, broker.address, pause_ms=2)
            try:
                wait_for(lambda: producer.acked() >= 200, 60, "200 acknowledgements")
                sent, acked, failed = producer.finish()
            finally:
                producer.kill()
            read = consume(stream, broker.address)
            assert failed == 0 and acked == sent
            assert sorted(read) == list(range(sent))
        finally:
            zk.stop()
            zk.close()
            broker.kill()


# -- the scenario on three brokers ---------------------------------------------------------------


@dataclass
class Outcome:
    """What one run of the scenario measured."""

    backend: str
    sent: int = 0
    acked: int = 0
    failed: int = 0
    read: int = 0
    lost: list[int] = field(default_factory=list)  # acknowledged, never read
    duplicated: list[int] = field(default_factory=list)  # read more than once
    controller_failover_s: float = 0.0  # kill -9 of the controller to another in /controller
    controller_gap_ms: int = 0  # the producer's longest wait for an ack after that kill
    zk_leader_failover_s: float = 0.0  # kill -9 of the ensemble's leader to a new leader
    zk_gap_ms: int = 0  # the producer's longest wait for an ack after that kill
    controller_after_zk_kill: str = ""
    graceful_failover_s: float = 0.0  # SIGTERM of the controller to another in /controller
    tools: list[str] = field(default_factory=list)  # the tool checks that passed

    def line(self) -> str:
        return (f"{self.backend}: sent {self.sent}, acked {self.acked}, failed {self.failed}, "
                f"read {self.read}, lost {len(self.lost)}, duplicated {len(self.duplicated)}; "
                f"new controller {self.controller_failover_s:.1f} s after kill -9 "
                f"(producer's longest ack wait {self.controller_gap_ms} ms); new ZooKeeper "
                f"leader {self.zk_leader_failover_s:.1f} s after kill -9 (longest ack wait "
                f"{self.zk_gap_ms} ms, controller {self.controller_after_zk_kill}); "
                f"new controller {self.graceful_failover_s:.1f} s after SIGTERM; "
                f"tools: {', '.join(self.tools)}")


def full_isr(work: Path, bootstrap: str, text: str | None = None) -> bool:
    """Whether kafka-topics describes each of the topic's 3 partitions with 3 in-sync
    replicas."""
    if text is None:
        text = run_tool(work, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server",
                        bootstrap, "--describe", "--topic", TOPIC)
    parts = [ln for ln in text.splitlines() if "Partition:" in ln and "Isr:" in ln]
    return len(parts) == 3 and all(len(ln.split("Isr:")[1].split()[0].split(",")) == 3
                                   for ln in parts)


def check_tools(work: Path, zk: KazooClient, hosts: str, bootstrap: str, jaas: Path,
                out: Outcome) -> None:
    """kafka-topics, kafka-configs and kafka-acls, through the brokers and straight to
    ZooKeeper (logged in with SASL, so they write secure ACLs too)."""
    topics = "org.apache.kafka.tools.TopicCommand"
    configs = "kafka.admin.ConfigCommand"
    acls = "kafka.admin.AclCommand"
    run_tool(work, topics, "--bootstrap-server", bootstrap, "--create", "--topic", TOPIC,
             "--partitions", "3", "--replication-factor", "3",
             "--config", "min.insync.replicas=2")
    assert acl_strings(zk, f"/brokers/topics/{TOPIC}") == SECURE

    def described() -> bool:
        text = run_tool(work, topics, "--bootstrap-server", bootstrap, "--describe",
                        "--topic", TOPIC)
        return ("ReplicationFactor: 3" in text and "min.insync.replicas=2" in text
                and full_isr(work, bootstrap, text))
    wait_for(described, 90, "the topic described with 3 in-sync replicas each", poll=1)
    out.tools.append("kafka-topics create/describe")

    run_tool(work, configs, "--bootstrap-server", bootstrap, "--entity-type", "topics",
             "--entity-name", TOPIC, "--alter", "--add-config", "retention.ms=604800000")
    stored = json.loads(zk.get(f"/config/topics/{TOPIC}")[0])["config"]
    assert stored == {"min.insync.replicas": "2", "retention.ms": "604800000"}, stored
    text = run_tool(work, configs, "--bootstrap-server", bootstrap, "--entity-type", "topics",
                    "--entity-name", TOPIC, "--describe")
    assert "retention.ms=604800000" in text and "min.insync.replicas=2" in text, text
    run_tool(work, configs, "--zookeeper", hosts, "--entity-type", "users", "--entity-name",
             "alice", "--alter", "--add-config",
             "SCRAM-SHA-256=[iterations=4096,password=alice-secret]", jaas=jaas)
    assert "SCRAM-SHA-256" in json.loads(zk.get("/config/users/alice")[0])["config"]
    assert acl_strings(zk, "/config/users/alice") == SENSITIVE
    out.tools.append("kafka-configs (brokers, and SCRAM users in ZooKeeper)")

    run_tool(work, acls, "--authorizer-properties", f"zookeeper.connect={hosts}", "--add",
             "--allow-principal", "User:alice", "--operation", "Read", "--topic", "audit",
             jaas=jaas)
    assert acl_strings(zk, "/kafka-acl/Topic/audit") == SECURE
    text = run_tool(work, acls, "--authorizer-properties", f"zookeeper.connect={hosts}",
                    "--list", "--topic", "audit", jaas=jaas)
    assert "User:alice" in text and "READ" in text.upper(), text
    # The brokers learn of it through /kafka-acl-changes and their watches.
    wait_for(lambda: "User:alice" in run_tool(work, acls, "--bootstrap-server", bootstrap,
                                              "--list", "--topic", "audit"),
             60, "the brokers' authorizer to see the new ACL", poll=1)
    out.tools.append("kafka-acls (ZooKeeper and brokers)")


def scenario(backend: str, base: Path, stream: list[str]) -> Outcome:
    out = Outcome(backend)
    server_jaas, client_jaas = kafka.jaas_files(base)
    ensemble = (RealEnsemble(base / "zk", server_jaas) if backend == "zookeeper"
                else zkserver_ensemble(base / "zk", server_jaas))
    ensemble.start()
    brokers: list[KafkaBroker] = []
    zk = observer(ensemble.hosts)
    producer: Producer | None = None
    try:
        for i in (1, 2, 3):
            brokers.append(KafkaBroker(base / f"broker{i}", i, free_port(), ensemble.hosts,
                                       jaas=client_jaas, props={
                                           "zookeeper.set.acl": "true",
                                           "min.insync.replicas": "2",
                                           "authorizer.class.name":
                                               "kafka.security.authorizer.AclAuthorizer",
                                           "allow.everyone.if.no.acl.found": "true"}).start())
        wait_for(lambda: registered(zk) == [1, 2, 3]
                 or not all(b.alive() for b in brokers), 180, "3 brokers registered", poll=0.2)
        assert all(b.alive() for b in brokers), [b.log_tail() for b in brokers]
        assert all(acl_strings(zk, f"/brokers/ids/{i}") == SECURE for i in (1, 2, 3))
        wait_for(lambda: controller(zk), 60, "a controller")
        bootstrap = ",".join(b.address for b in brokers)
        check_tools(base, zk, ensemble.hosts, bootstrap, client_jaas, out)

        producer = Producer(stream, base, bootstrap)
        wait_for(lambda: producer.acked() >= 1000, 120, "1000 acknowledgements", poll=0.2)

        # (a) kill -9 the controller broker
        old = controller(zk)
        assert old is not None
        before = producer.acks()[-1][1]
        killed_at = time.monotonic()
        brokers[old - 1].kill()
        wait_for(lambda: controller(zk) not in (None, old), 120, "a new controller", poll=0.02)
        out.controller_failover_s = time.monotonic() - killed_at
        n = producer.acked()
        wait_for(lambda: producer.acked() >= n + 1000, 180, "acks after the controller kill",
                 poll=0.2)
        out.controller_gap_ms = longest_gap(producer.acks(), before)

        # (b) kill -9 the ZooKeeper ensemble's leader
        leader = ensemble.leader()
        assert leader is not None
        ctl = controller(zk)
        before = producer.acks()[-1][1]
        killed_at = time.monotonic()
        ensemble.kill(leader)
        wait_for(lambda: ensemble.leader() not in (None, leader), 120, "a new ZooKeeper leader",
                 poll=0.02)
        out.zk_leader_failover_s = time.monotonic() - killed_at
        n = producer.acked()
        wait_for(lambda: producer.acked() >= n + 1000, 180, "acks after the leader kill",
                 poll=0.2)
        out.zk_gap_ms = longest_gap(producer.acks(), before)
        wait_for(lambda: controller(zk), 60, "a controller after the leader kill")
        now = controller(zk)
        out.controller_after_zk_kill = ("unchanged" if now == ctl else f"moved {ctl} -> {now}")
        survivors = sorted(b.broker_id for b in brokers if b.alive())
        assert registered(zk) == survivors

        # Metadata writes through the new leader: a topic on the two survivors, then the
        # killed broker back, caught up into every partition's ISR (ISR changes go through
        # ZooKeeper: the partition leaders write them, the controller is told by a znode).
        run_tool(base, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bootstrap,
                 "--create", "--topic", "after-failover", "--partitions", "1",
                 "--replication-factor", "2")
        assert acl_strings(zk, "/brokers/topics/after-failover") == SECURE
        brokers[old - 1].start()
        wait_for(lambda: registered(zk) == [1, 2, 3], 120, "the killed broker back", poll=0.2)
        wait_for(lambda: full_isr(base, bootstrap), 180, "3 in-sync replicas again", poll=1)
        out.tools.append("kafka-topics after both kills, the killed broker back in the ISR")

        out.sent, out.acked, out.failed = producer.finish()
        acked = {n for n, _ in producer.acks()}
        read = consume(stream, bootstrap)
        out.read = len(read)
        out.lost = sorted(acked - set(read))
        out.duplicated = sorted(n for n, c in Counter(read).items() if c > 1)

        # A controlled shutdown of the controller closes its session: its ephemerals go at
        # once, and another broker takes over without waiting for an expiry.
        old = controller(zk)
        assert old is not None
        stopped_at = time.monotonic()
        brokers[old - 1].terminate()
        wait_for(lambda: controller(zk) not in (None, old), 60, "a controller after SIGTERM",
                 poll=0.02)
        out.graceful_failover_s = time.monotonic() - stopped_at
        assert old not in registered(zk)
        return out
    finally:
        if producer is not None:
            producer.kill()
        zk.stop()
        zk.close()
        for b in brokers:
            b.kill()
        ensemble.stop()


@pytest.mark.slow
def test_kafka_keeps_every_acknowledged_message_through_controller_and_leader_kills(
        tmp_path: Path, stream: list[str]) -> None:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper 3.9.5 is not available (tests/support/fetch_zookeeper.sh)")
    outcomes: dict[str, Outcome | str] = {}
    for backend in ("zookeeper", "zkserver"):
        try:
            outcomes[backend] = scenario(backend, tmp_path / backend, stream)
        except Exception:  # report the other backend's figures too, then fail below
            outcomes[backend] = f"{backend}: FAILED {traceback.format_exc(limit=-3)}"
    for o in outcomes.values():
        print(o.line() if isinstance(o, Outcome) else o)
    for o in outcomes.values():
        assert isinstance(o, Outcome), o
        assert o.failed == 0 and o.acked == o.sent, o.line()
        assert o.lost == [] and o.duplicated == [], o.line()
        assert len(o.tools) == 4, o.line()
