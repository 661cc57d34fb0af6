"""Three-member ensembles of zkserver and of Apache ZooKeeper with readonlymode on, members
killed and started again by id: what the read-only tests (tests/quorum/test_read_only_mode.py,
tests/client/test_client_readonly_ensemble.py) run side by side.

Both take kazoo's TestReadOnlyMode configuration: readonlymode on (`-Dreadonlymode.enabled=true`
for the JVM, given through JAVA_TOOL_OPTIONS since realzk starts `java` itself; the zoo.cfg key
for zkserver), tickTime=2000, and localSessionsEnabled plus localSessionsUpgradingEnabled.
ZooKeeper 3.9.5 needs the last two: without local sessions its read-only server answers a new
session's ConnectRequest with a NOTREADONLY reply header, which no client can decode. zkserver
accepts them and keeps every session global, its read-only sessions excepted.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from support import realzk
from support.process import ZkServerEnsemble, free_port_base
from support.realzk import RealZooKeeper

# kazoo/testing/harness.py with ZOOKEEPER_LOCAL_SESSION_RO
KAZOO_CONFIG = ["localSessionsEnabled=true", "localSessionsUpgradingEnabled=true"]
JVM_FLAGS = {"JAVA_TOOL_OPTIONS": "-Dreadonlymode.enabled=true"}
TICK_MS = 2000
GRACE_S = max(2000, TICK_MS) / 1000  # QuorumPeer's wait before it starts a read-only server


class OursRO:
    """A zkserver ensemble of three, members stopped and started by id."""

    name = "zkserver"

    def __init__(self, base: Path, proxied: bool = False) -> None:
        """With `proxied`, members talk through proxies, so that one can be cut off."""
        self.ens = ZkServerEnsemble(base, free_port_base(3, proxied=proxied), n=3,
                                    tick_time=TICK_MS, proxied=proxied,
                                    extra=["readonlymode.enabled=true", *KAZOO_CONFIG])

    def __enter__(self) -> OursRO:
        self.ens.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ens.stop()

    def port(self, i: int) -> int:
        return self.ens.port + i

    def kill(self, i: int) -> None:
        self.ens.kill(i)

    def restart(self, i: int) -> None:
        self.ens.restart(i)

    def isolate(self, i: int) -> None:
        """Cut member i off from the others (a proxied ensemble only)."""
        self.ens.partition({i})

    def hosts(self) -> str:
        return self.ens.hosts


class TheirsRO:
    """Apache ZooKeeper's three, members stopped and started by id (the same JVM command line
    as support/realzk.py's)."""

    name = "zookeeper"

    def __init__(self, base: Path) -> None:
        self.zk = RealZooKeeper(base, free_port_base(3), n=3, extra=KAZOO_CONFIG,
                                heap="256m", env=JVM_FLAGS)

    def __enter__(self) -> TheirsRO:
        self.zk.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.zk.stop()

    def port(self, i: int) -> int:
        return self.zk.client_ports[i - 1]

    def hosts(self) -> str:
        return self.zk.hosts

    def kill(self, i: int) -> None:
        proc = self.zk.procs[i - 1]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart(self, i: int) -> None:
        d = self.zk.base / f"zk{i}"
        with open(d / "out.log", "ab") as log:
            self.zk.procs[i - 1] = subprocess.Popen(
                ["java", f"-Xmx{self.zk.heap}", *realzk.log_args(d), "-cp", realzk.classpath(),
                 "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(d / "zoo.cfg")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **JVM_FLAGS})


Side = OursRO | TheirsRO
