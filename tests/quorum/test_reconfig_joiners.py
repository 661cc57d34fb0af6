"""A server joins before it is added: one server with standaloneEnabled=false grows to three.

ZooKeeper's documented way to grow an ensemble of one: servers 2 and 3 start with a
configuration naming servers 1, 2 and 3, connect to the leader although its configuration does
not name them, and sync with it; then `reconfig -add` makes them members. The new configuration
needs two of the three to acknowledge it, so the reconfiguration commits only because the
joiners, synced as learners, acknowledge it: before they run, the leader refuses it with
NEWCONFIGNOQUORUM. Afterwards the three are an ensemble: server 1 killed, the other two elect a
leader and still hold every write. The same scenario runs on Apache ZooKeeper 3.9.5 (the
oracle), and both must behave alike.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NewConfigNoQuorumError
from support import realzk
from support.process import ZkServerProcess, free_port_base
from support.realzk import srvr_mode
from support.waiting import wait_for

COMMON = ["tickTime=500", "initLimit=20", "syncLimit=10", "standaloneEnabled=false",
          "reconfigEnabled=true", "skipACL=yes"]


class Servers:
    """Servers 1..3 of one kind, each started with its own server lines."""

    def __init__(self, kind: str, root: Path, base: int) -> None:
        self.kind, self.root, self.base = kind, root, base
        self.ours: dict[int, ZkServerProcess] = {}
        self.java: dict[int, subprocess.Popen] = {}

    def line(self, i: int, client: bool = True) -> str:
        text = f"server.{i}=127.0.0.1:{self.base + 100 + i}:{self.base + 200 + i}"
        return text + (f":participant;127.0.0.1:{self.base + i}" if client else "")

    def start(self, i: int, servers: list[str]) -> None:
        d = self.root / f"s{i}"
        (d / "data").mkdir(parents=True)
        (d / "data" / "myid").write_text(f"{i}\n")
        if self.kind == "ours":
            self.ours[i] = ZkServerProcess(d, self.base + i, extra=[*COMMON, *servers])
            self.ours[i].start_process()
            return
        cfg = d / "zoo.cfg"
        cfg.write_text("\n".join([
            f"dataDir={d / 'data'}", f"clientPort={self.base + i}",
            "clientPortAddress=127.0.0.1", "admin.enableServer=false",
            "4lw.commands.whitelist=*", *COMMON, *servers]) + "\n")
        with open(d / "out.log", "wb") as out:
            self.java[i] = subprocess.Popen(
                ["java", "-Xmx256m", *realzk.log_args(d), "-cp", realzk.classpath(),
                 "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, i: int) -> None:
        if i in self.ours:
            self.ours[i].kill()
        elif i in self.java and self.java[i].poll() is None:
            os.killpg(self.java[i].pid, signal.SIGKILL)
            self.java[i].wait()

    def stop(self) -> None:
        for i in (1, 2, 3):
            self.kill(i)


def client(port: int) -> KazooClient:
    k = KazooClient(f"127.0.0.1:{port}", timeout=15)
    k.start(timeout=60)
    return k


def grow_one_to_three(servers: Servers) -> dict:
    """The scenario; what it saw, with ports as roles (C2 = server 2's client port)."""
    base = servers.base

    def symbolic(text: str) -> str:
        text = re.sub(r"version=[0-9a-f]+", "version=V", text)
        for i in (1, 2, 3):
            for off, tag in ((0, "C"), (100, "Q"), (200, "E")):
                text = text.replace(f":{base + off + i}", f":{tag}{i}")
        return text

    seen: dict = {}
    servers.start(1, [servers.line(1, client=False)])
    wait_for(lambda: srvr_mode(base + 1) == "leader", 60, f"{servers.kind}: server 1 leading")
    admin = client(base + 1)
    try:
        for n in range(20):
            admin.create(f"/before{n}", b"x")
        joining = ",".join(servers.line(i) for i in (2, 3))
        with pytest.raises(NewConfigNoQuorumError):  # the joiners are not running yet
            admin.reconfig(joining=joining, leaving=None, new_members=None)

        every = [servers.line(1, client=False), servers.line(2), servers.line(3)]
        servers.start(2, every)
        servers.start(3, every)

        def add() -> tuple[bytes, object] | None:
            try:
                return admin.reconfig(joining=joining, leaving=None, new_members=None)
            except NewConfigNoQuorumError:
                return None  # not synced yet

        data, stat = wait_for(add, 90, f"{servers.kind}: the reconfig to commit", poll=0.5)
        seen["reply"] = symbolic(data.decode())
        admin.create("/after", b"y")
        wait_for(lambda: sorted(srvr_mode(base + i) for i in (1, 2, 3))
                 == ["follower", "follower", "leader"], 60,
                 f"{servers.kind}: a leader and two followers")
        configs = []
        for i in (1, 2, 3):
            k = client(base + i)
            try:
                k.sync("/")
                configs.append(symbolic(k.get("/zookeeper/config")[0].decode()))
                assert k.exists("/after") and k.exists("/before19")
            finally:
                k.stop()
                k.close()
        seen["configs"] = configs
    finally:
        admin.stop()
        admin.close()

    # Now an ensemble of three: without server 1, the other two still make a quorum.
    servers.kill(1)
    wait_for(lambda: sorted(srvr_mode(base + i) for i in (2, 3)) == ["follower", "leader"], 60,
             f"{servers.kind}: servers 2 and 3 electing without server 1")
    k = client(base + 2)
    try:
        k.sync("/")
        seen["kept"] = sorted(c for c in k.get_children("/") if c != "zookeeper")
        k.create("/without-1", b"z")
    finally:
        k.stop()
        k.close()
    return seen


def test_one_server_grows_to_three_through_joiners_that_sync_first(tmp_path: Path) -> None:
    servers = Servers("ours", tmp_path / "ours", free_port_base(3))
    try:
        seen = grow_one_to_three(servers)
    finally:
        servers.stop()
    want = "\n".join([f"server.{i}=127.0.0.1:Q{i}:E{i}:participant;127.0.0.1:C{i}"
                      for i in (2, 3)])
    assert want in seen["reply"] and "server.1=127.0.0.1:Q1:E1:participant" in seen["reply"]
    assert seen["configs"] == [seen["reply"]] * 3
    assert seen["kept"] == sorted(["after", *(f"before{n}" for n in range(20))])


def test_growing_one_to_three_as_zookeeper(tmp_path: Path) -> None:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed; run the README's test command, which "
                    "fetches it")
    results = []
    for kind in ("zk", "ours"):
        servers = Servers(kind, tmp_path / kind, free_port_base(3))
        try:
            results.append(grow_one_to_three(servers))
        finally:
            servers.stop()
    assert results[0] == results[1]
