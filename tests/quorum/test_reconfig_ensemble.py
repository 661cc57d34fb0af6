"""Reconfiguring a running zkserver ensemble with kazoo's `reconfig`.

Under a write load, three servers with reconfigEnabled grow to four (the fourth started with
the configuration plus itself, as ZooKeeper's administrators start a joiner), then the leader
is removed: a member of the new configuration leads, the removed server stops serving, and
every write the load had acknowledged is there at the end. `/zookeeper/config` watchers hear
NodeDataChanged and every member shows the same configuration, which each keeps in
zoo.cfg.dynamic.<version>. Also kazoo's own TestReconfig cases, an observer promoted to
participant and back, and zkCli.sh's `reconfig` and `config`.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import BadArgumentsError, BadVersionError, NoAuthError
from support.clis import run_zkcli, zkcli_output
from support.process import ZkServerEnsemble, ZkServerProcess, free_port_base
from support.realzk import srvr_mode
from support.waiting import wait_for

EXTRA = ["reconfigEnabled=true", "skipACL=yes"]


class Load:
    """Sequential creates from one client until stopped; remembers what was acknowledged."""

    def __init__(self, hosts: str) -> None:
        self.client = KazooClient(hosts, timeout=15)
        self.client.start(timeout=60)
        self.client.ensure_path("/load")
        self.acked: list[str] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while not self.stopped.is_set():
            try:
                self.acked.append(self.client.create(f"/load/n{i:06d}", b"x"))
            except Exception:  # a connection moving to another server: the write may be lost
                pass
            i += 1

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(30)
        self.client.stop()
        self.client.close()

    def assert_none_lost(self, hosts: str) -> None:
        """Every write acknowledged to the load is on `hosts` (read after a sync)."""
        check = KazooClient(hosts, timeout=15)
        check.start(timeout=60)
        try:
            check.sync("/load")
            present = set(check.get_children("/load"))
        finally:
            check.stop()
            check.close()
        lost = [p for p in self.acked if p.rsplit("/", 1)[1] not in present]
        assert not lost, f"acknowledged writes lost: {lost[:5]}"


def test_grow_then_remove_the_leader_under_load(tmp_path: Path) -> None:
    base = free_port_base(4)
    with ZkServerEnsemble(tmp_path, base, n=3, extra=EXTRA) as ens:
        load = Load(ens.hosts)
        joiner = None
        try:
            leader = ens.leader()
            assert leader is not None
            follower = next(i for i in ens.ids if i != leader)
            admin = KazooClient(f"127.0.0.1:{base + follower}", timeout=15)
            admin.start(timeout=60)
            events: list = []
            admin.get("/zookeeper/config", watch=events.append)

            # The joiner: the ensemble's servers plus itself, with its client port.
            four = (f"server.4=127.0.0.1:{ens.quorum_port(4)}:{ens.election_port(4)}"
                    f":participant;127.0.0.1:{base + 4}")
            lines = [f"server.{j}=127.0.0.1:{ens.quorum_port(j)}:{ens.election_port(j)}"
                     for j in ens.ids] + [four]
            joiner = ZkServerProcess(tmp_path / "s4", base + 4, extra=[
                "tickTime=300", "initLimit=20", "syncLimit=10", *lines, *EXTRA])
            (joiner.base / "data").mkdir(parents=True)
            (joiner.base / "data" / "myid").write_text("4\n")
            joiner.start_process()

            data, stat = admin.reconfig(joining=four, leaving=None, new_members=None)
            text = data.decode()
            assert four.split(";")[0] in text and f"version={stat.mzxid:x}" in text
            assert stat.version == -1
            wait_for(lambda: events, 10, "NodeDataChanged on /zookeeper/config")
            assert events[0].type == "CHANGED" and events[0].path == "/zookeeper/config"
            wait_for(lambda: srvr_mode(base + 4) == "follower", 60, "the joiner following")

            # Remove the leader: one of the other three leads, the old one stops serving.
            data, stat = admin.reconfig(joining=None, leaving=str(leader), new_members=None)
            assert f"server.{leader}=" not in data.decode()
            rest = [i for i in (1, 2, 3, 4) if i != leader]
            wait_for(lambda: [srvr_mode(base + i) for i in rest].count("leader") == 1, 60,
                     "a leader among the remaining servers")
            wait_for(lambda: srvr_mode(base + leader) not in ("leader", "follower"), 30,
                     "the removed leader to stop serving")
            wait_for(lambda: len({_config(base + i) for i in rest}) == 1, 30,
                     "one configuration on every member")
            assert _config(base + rest[0]) == data
            count = len(load.acked)
            wait_for(lambda: len(load.acked) > count + 20, 30, "writes after the change")
            admin.stop()
            admin.close()
        finally:
            load.stop()
            if joiner is not None:
                joiner.kill()
        load.assert_none_lost(f"127.0.0.1:{base + rest[0]}")
        version = f"{stat.mzxid:x}"
        for i in rest:
            d = tmp_path / f"s{i}" if i != 4 else tmp_path / "s4"
            assert (d / f"zoo.cfg.dynamic.{version}").exists()


def _config(port: int) -> bytes:
    k = KazooClient(f"127.0.0.1:{port}", timeout=10)
    k.start(timeout=30)
    try:
        return k.get("/zookeeper/config")[0]
    finally:
        k.stop()
        k.close()


def _super_extra() -> list[str]:
    sha = hashlib.sha1(b"super:test").digest()
    return ["reconfigEnabled=true",
            f"DigestAuthenticationProvider.superDigest=super:{base64.b64encode(sha).decode()}"]


def test_kazoo_reconfig_as_its_own_tests_use_it(tmp_path: Path) -> None:
    """kazoo's TestReconfig: no super user is refused, bad input is BadArguments, and an
    observer that is not even running is added (from the current version) and removed."""
    base = free_port_base(3)
    with ZkServerEnsemble(tmp_path, base, n=3, extra=_super_extra()) as ens:
        plain = KazooClient(ens.hosts, timeout=15)
        admin = KazooClient(ens.hosts, timeout=15, auth_data=[("digest", "super:test")])
        plain.start(timeout=60)
        admin.start(timeout=60)
        try:
            with pytest.raises(NoAuthError):
                plain.reconfig(joining="server.999=0.0.0.0:1234:2345:observer;3456",
                               leaving=None, new_members=None)
            with pytest.raises(BadArgumentsError):
                admin.reconfig(joining="some thing", leaving=None, new_members=None)
            data, _ = admin.get("/zookeeper/config")
            current = int(data.decode().split("\n")[-1].split("=")[1], 16)
            joining = (f"server.100=127.0.0.1:{base + 150}:{base + 250}:observer;"
                       f"127.0.0.1:{base + 50}")
            data, _ = admin.reconfig(joining=joining, leaving=None, new_members=None,
                                     from_config=current)
            assert joining.encode() in data
            with pytest.raises(BadVersionError):  # that version is gone now
                admin.reconfig(joining=None, leaving="100", new_members=None,
                               from_config=current)
            data, _ = admin.reconfig(joining=None, leaving="100", new_members=None)
            assert joining.encode() not in data
        finally:
            plain.stop()
            admin.stop()


def test_an_observer_becomes_a_participant_and_back(tmp_path: Path) -> None:
    base = free_port_base(4)
    with ZkServerEnsemble(tmp_path, base, n=4, observers=1, extra=EXTRA) as ens:
        assert srvr_mode(base + 4) == "observer"
        admin = KazooClient(ens.hosts, timeout=15)
        admin.start(timeout=60)
        try:
            spec = f"server.4=127.0.0.1:{ens.quorum_port(4)}:{ens.election_port(4)}"
            data, _ = admin.reconfig(joining=f"{spec}:participant;127.0.0.1:{base + 4}",
                                     leaving=None, new_members=None)
            assert f"{spec}:participant;".encode() in data
            # The leader stays a voter, so it keeps leading: server 4 rejoins it as a
            # follower (not an observer that merely acknowledges, issue #11's bug).
            wait_for(lambda: srvr_mode(base + 4) == "follower", 60, "server 4 following")
            admin.create("/after-promotion", b"x")
            data, _ = admin.reconfig(joining=f"{spec}:observer;127.0.0.1:{base + 4}",
                                     leaving=None, new_members=None)
            assert f"{spec}:observer;".encode() in data
            wait_for(lambda: srvr_mode(base + 4) == "observer", 60, "server 4 observing again")
            wait_for(lambda: sorted(srvr_mode(base + i) for i in ens.ids).count("leader") == 1, 60,
                     "one leader")
            assert admin.exists("/after-promotion") is not None
        finally:
            admin.stop()


def test_zkcli_reconfig_and_config(tmp_path: Path) -> None:
    """zkCli.sh's `reconfig -add/-remove` and `config` against a zkserver ensemble."""
    base = free_port_base(3)
    with ZkServerEnsemble(tmp_path, base, n=3, extra=EXTRA) as ens:
        server = f"127.0.0.1:{base + 1}"
        joining = (f"server.100=127.0.0.1:{base + 150}:{base + 250}:observer;"
                   f"127.0.0.1:{base + 50}")
        out = zkcli_output(run_zkcli(server, "reconfig", "-add", joining))
        assert out[0] == "Committed new configuration:", out
        assert joining in out and out[-1].startswith("version=")
        config = zkcli_output(run_zkcli(server, "config"))
        assert config == out[1:]
        out = zkcli_output(run_zkcli(server, "reconfig", "-remove", "100"))
        assert joining not in out and len(out) == 1 + len(ens.ids) + 1, out


def _joiner(tmp_path: Path, ens: ZkServerEnsemble, base: int, sid: int,
            members: list[int]) -> tuple[ZkServerProcess, str]:
    """Server `sid`, configured with `members` and itself, started; and its `server.N` line."""
    line = (f"server.{sid}=127.0.0.1:{ens.quorum_port(sid)}:{ens.election_port(sid)}"
            f":participant;127.0.0.1:{base + sid}")
    lines = [f"server.{j}=127.0.0.1:{ens.quorum_port(j)}:{ens.election_port(j)}"
             for j in members] + [line]
    node = ZkServerProcess(tmp_path / f"s{sid}", base + sid, extra=[
        "tickTime=300", "initLimit=20", "syncLimit=10", *lines, *EXTRA])
    (node.base / "data").mkdir(parents=True)
    (node.base / "data" / "myid").write_text(f"{sid}\n")
    node.start_process()
    return node, line


def test_grow_three_to_five_and_back_under_load_with_a_member_killed(tmp_path: Path) -> None:
    """3 -> 4 -> 5 -> 3 servers under a write load; a follower is killed -9 just before the
    change to five and restarted after it (it comes back into the new configuration). No
    acknowledged write is lost, and the three left agree on the configuration."""
    base = free_port_base(5)
    joiners: list[ZkServerProcess] = []
    with ZkServerEnsemble(tmp_path, base, n=3, extra=EXTRA) as ens:
        load = Load(ens.hosts)
        try:
            leader = ens.leader()
            assert leader is not None
            others = [i for i in ens.ids if i != leader]
            admin = KazooClient(f"127.0.0.1:{base + others[0]}", timeout=15)
            admin.start(timeout=60)
            node, four = _joiner(tmp_path, ens, base, 4, [1, 2, 3])
            joiners.append(node)
            admin.reconfig(joining=four, leaving=None, new_members=None)
            wait_for(lambda: srvr_mode(base + 4) == "follower", 60, "server 4 following")
            node, five = _joiner(tmp_path, ens, base, 5, [1, 2, 3, 4])
            joiners.append(node)
            victim = others[1]
            ens.kill(victim)
            data, _ = admin.reconfig(joining=five, leaving=None, new_members=None)
            assert five.split(";")[0].encode() in data
            ens.restart(victim)
            wait_for(lambda: all(srvr_mode(base + i) in ("follower", "leader")
                                 for i in (1, 2, 3, 4, 5)), 60, "five servers serving")
            count = len(load.acked)
            wait_for(lambda: len(load.acked) > count + 20, 30, "writes with five servers")
            data, stat = admin.reconfig(joining=None, leaving="4,5", new_members=None)
            assert b"server.4=" not in data and b"server.5=" not in data
            wait_for(lambda: all(srvr_mode(base + i) not in ("follower", "leader") for i in (4, 5)),
                     30, "servers 4 and 5 to stop serving")
            wait_for(lambda: len({_config(base + i) for i in ens.ids}) == 1, 30,
                     "one configuration on the three")
            assert _config(base + 1) == data
            count = len(load.acked)
            wait_for(lambda: len(load.acked) > count + 20, 30, "writes with three servers")
            admin.stop()
            admin.close()
        finally:
            load.stop()
            for node in joiners:
                node.kill()
        load.assert_none_lost(ens.hosts)
    assert len(load.acked) > 60
