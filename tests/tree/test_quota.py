"""Quotas under /zookeeper/quota: the stats the server keeps, and enforceQuota's hard limits.

The sans-IO part drives `Prep` + a `DataTree` that keeps its quota stats (as the engine's does)
and checks the `zookeeper_stats` text, the digest, and that a fresh count (what a restart does)
agrees with the kept one. The process part runs zkCli's `setquota`/`listquota`/`delquota`
against zkserver and, for the same script, against Apache ZooKeeper, and compares what zkCli
prints and what the quota znodes hold; then kazoo meets the hard limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from kazoo.exceptions import QuotaExceededError
from support import realzk
from support.clis import ZkCli
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerProcess, side_by_side
from support.realzk import RealZooKeeper, free_port

from zkserver.prep import Prep, Session
from zkserver.proto import records as R
from zkserver.proto.codes import Err, Op
from zkserver.tree import digest as digestmod
from zkserver.tree import quota
from zkserver.tree.datatree import DataTree
from zkserver.txn import ErrorTxn, MultiTxn

SID = 0x1000000000001
T0 = 1_700_000_000_000


# -- the StatsTrack text --------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    (b"count=10,bytes=-1", {"count": 10, "bytes": -1}),
    # ZooKeeper 3.7+'s own output (sic: "=;" before the hard limits)
    (b"count=3,bytes=-1=;byteHardLimit=100;countHardLimit=-1",
     {"count": 3, "bytes": -1, "byteHardLimit": 100, "countHardLimit": -1}),
    (b"count=-1,bytes=-1,countHardLimit=2,byteHardLimit=-1",
     {"count": -1, "bytes": -1, "countHardLimit": 2, "byteHardLimit": -1}),
    (b"count=,bytes=5", {"count": -1, "bytes": 5}),
    (b"", {}),
    (None, {}),
])
def test_parse_stats(text: bytes | None, expected: dict[str, int]) -> None:
    assert quota.parse_stats(text) == expected


# -- sans I/O: prep + tree ------------------------------------------------------------------------


class Core:
    def __init__(self, enforce: bool = True) -> None:
        self.tree = DataTree()
        self.tree.track_digest()
        self.tree.track_quotas()
        self.prep = Prep(self.tree, enforce_quota=enforce)
        self.now = T0

    def write(self, op: int, req: Any, sid: int = SID) -> Any:
        self.now += 1
        txn = self.prep.write(op, req, Session(sid, []), 1, self.now)
        result, _ = self.tree.apply(txn)
        self.prep.committed(txn.zxid)
        return result

    def create(self, path: str, data: bytes | None = b"", flags: int = 0) -> Any:
        return self.write(Op.CREATE, R.CreateRequest(path, data, R.OPEN_ACL_UNSAFE, flags))

    def set(self, path: str, data: bytes | None) -> Any:
        return self.write(Op.SET_DATA, R.SetDataRequest(path, data, -1))

    def delete(self, path: str) -> Any:
        return self.write(Op.DELETE, R.DeleteRequest(path, -1))

    def setquota(self, path: str, limits: bytes) -> None:
        """What zkCli's setquota writes: the parents, the limits, then an empty stats node."""
        parts = path.strip("/").split("/")
        for i in range(len(parts)):
            self.create("/zookeeper/quota/" + "/".join(parts[:i + 1]), None)
        self.create(quota.limit_path(path), limits)
        self.create(quota.stat_path(path), b"count=0,bytes=0")

    def stats(self, path: str) -> bytes | None:
        return self.tree.nodes[quota.stat_path(path)].data

    def check_digest(self) -> None:
        assert self.tree.digest == digestmod.full(self.tree)


def test_stats_counted_when_set_then_kept() -> None:
    c = Core()
    c.create("/app", b"abc")
    c.create("/app/x", b"12345")
    c.create("/apple", b"not under /app")
    c.setquota("/app", b"count=10,bytes=-1")
    assert c.stats("/app") == b"count=2,bytes=8"  # the root itself counts
    c.create("/app/y", b"q")
    c.create("/app/x/deep", b"zz")
    assert c.stats("/app") == b"count=4,bytes=11"
    c.set("/app/x", b"1")
    assert c.stats("/app") == b"count=4,bytes=7"
    c.set("/app/x", None)
    assert c.stats("/app") == b"count=4,bytes=6"
    c.delete("/app/x/deep")
    assert c.stats("/app") == b"count=3,bytes=4"
    c.check_digest()
    stat_node = c.tree.nodes[quota.stat_path("/app")]
    assert stat_node.version == 0 and stat_node.mzxid == stat_node.czxid  # changed in place


def test_ephemerals_closed_with_the_session_leave_the_stats() -> None:
    c = Core()
    c.create("/app")
    c.setquota("/app", b"count=-1,bytes=-1")
    c.create("/app/e1", b"1234", flags=1)
    c.create("/app/e2", b"5", flags=1)
    assert c.stats("/app") == b"count=3,bytes=5"
    c.now += 1
    txn = c.prep.close_session(SID, 0, c.now)
    c.tree.apply(txn)
    c.prep.committed(txn.zxid)
    assert c.stats("/app") == b"count=1,bytes=0"
    c.check_digest()


def test_innermost_quota_only_and_removal() -> None:
    c = Core()
    c.create("/a")
    c.create("/a/b")
    c.setquota("/a", b"count=100,bytes=-1")
    c.setquota("/a/b", b"count=100,bytes=-1")
    c.create("/a/b/c", b"xy")
    assert c.stats("/a/b") == b"count=2,bytes=2"
    assert c.stats("/a") == b"count=2,bytes=0"  # counted when set, not since: innermost only
    c.delete(quota.stat_path("/a/b"))
    c.delete(quota.limit_path("/a/b"))  # delquota: /a is the innermost quota again
    c.create("/a/b/d", b"abc")
    assert c.stats("/a") == b"count=3,bytes=3"
    c.check_digest()


def test_hard_limits_fail_writes_soft_limits_do_not() -> None:
    c = Core()
    c.create("/app")
    c.setquota("/app", b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3")
    c.create("/app/a", b"12345")
    c.create("/app/b")
    assert c.stats("/app") == b"count=3,bytes=5"
    assert c.create("/app/c") == ErrorTxn(Err.QUOTAEXCEEDED)
    assert c.set("/app/a", b"x" * 11) == ErrorTxn(Err.QUOTAEXCEEDED)
    c.set("/app/a", b"x" * 10)  # exactly at the limit is fine
    c.set("/app/a", b"")  # shrinking always is
    # a multi whose create would pass the limit fails as a whole, with QUOTAEXCEEDED
    ops = [(Op.SET_DATA, R.SetDataRequest("/app/b", b"ok", -1)),
           (Op.CREATE, R.CreateRequest("/app/c", b"", R.OPEN_ACL_UNSAFE, 0))]
    c.now += 1
    txn = c.prep.write(Op.MULTI, ops, Session(SID, []), 1, c.now)
    assert isinstance(txn.op, MultiTxn)
    assert [t.err for t in txn.op.txns] == [Err.OK, Err.QUOTAEXCEEDED]
    soft = Core()
    soft.create("/s")
    soft.setquota("/s", b"count=1,bytes=1")
    assert soft.create("/s/over", b"more than a byte") == ("/s/over", soft.tree.nodes["/s/over"])
    off = Core(enforce=False)
    off.create("/h")
    off.setquota("/h", b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=1")
    assert off.create("/h/fine")[0] == "/h/fine"  # enforceQuota=false: limits are advisory


def test_a_fresh_count_agrees_with_the_kept_stats() -> None:
    c = Core()
    c.create("/app", b"1")
    c.setquota("/app", b"count=50,bytes=-1")
    for i in range(20):
        c.create(f"/app/n{i}", b"x" * i)
    for i in range(0, 20, 3):
        c.delete(f"/app/n{i}")
    for i in range(1, 20, 4):
        c.set(f"/app/n{i}", b"y")
    kept = c.stats("/app")
    c.tree.nodes[quota.stat_path("/app")].data = b"count=0,bytes=0"  # a stale snapshot
    fresh = quota.Quotas(c.tree)
    fresh.rebuild()  # what a restart (or an installed snapshot) does
    assert fresh.roots == {"/app"}
    assert c.stats("/app") == kept
    assert quota.format_stats(*fresh.count("/app")) == kept


def test_each_tree_keeps_its_own_quotas_once_it_tracks_them() -> None:
    """A tree being replayed keeps no stats; `track_quotas` counts them (a restart's load)."""
    c = Core()
    c.create("/app", b"1")
    c.setquota("/app", b"count=50,bytes=-1")
    replayed = DataTree()  # what recovery builds: transactions applied, stats not kept
    other = Core()
    other.tree = replayed
    other.prep = Prep(replayed)
    other.create("/app", b"1")
    other.setquota("/app", b"count=50,bytes=-1")
    other.create("/app/x", b"12")
    assert not replayed.quotas.tracking and replayed.quotas.roots == set()
    assert other.stats("/app") == b"count=0,bytes=0"  # as zkCli wrote it: nobody counted
    replayed.track_quotas()
    assert replayed.quotas.roots == {"/app"}
    assert other.stats("/app") == b"count=2,bytes=3"
    other.create("/app/y", b"3")
    assert other.stats("/app") == b"count=3,bytes=4"  # and kept from then on
    assert c.stats("/app") == b"count=1,bytes=1"  # the first tree's quotas are its own


def test_missing_limit_or_stat_node_is_no_limit() -> None:
    c = Core()
    c.create("/app")
    c.create("/zookeeper/quota/app", None)
    c.create(quota.limit_path("/app"), b"count=-1,bytes=-1=;countHardLimit=1")
    assert c.create("/app/x")[0] == "/app/x"  # no zookeeper_stats yet: nothing to check


# -- against Apache ZooKeeper, with zkCli --------------------------------------------------------


_NUMBERS = re.compile(r"(zxid|time|Zxid|Time) = .*")


def _script(cli: ZkCli, hosts: str) -> list[Any]:
    """The same quota session on either server; what zkCli printed and what the nodes hold."""
    zk = kazoo_client(hosts)
    try:
        zk.create("/app", b"abc")
        zk.create("/app/x", b"12345")
        out: list[Any] = []
        for cmd in ("setquota -n 3 /app", "listquota /app", "setquota -B 100 /app",
                    "listquota /app", "setquota -N 4 /app", "listquota /app"):
            out.append((cmd, cli.run(cmd)))
        for name in ("y", "z", "w"):
            try:
                zk.create(f"/app/{name}", b"q")
                out.append(("create", name, "ok"))
            except QuotaExceededError:
                out.append(("create", name, "QuotaExceeded"))
        try:
            zk.set("/app", b"x" * 200)
            out.append(("set", "ok"))
        except QuotaExceededError:
            out.append(("set", "QuotaExceeded"))
        for p in ("/zookeeper/quota/app/zookeeper_limits", "/zookeeper/quota/app/zookeeper_stats"):
            data, stat = zk.get(p)
            out.append((p, data, stat.version, stat.dataLength))
        out.append(("delquota -n", cli.run("delquota -n /app")))
        out.append(("limits", zk.get("/zookeeper/quota/app/zookeeper_limits")[0]))
        out.append(("delquota", cli.run("delquota /app")))
        out.append(("quota children", sorted(zk.get_children("/zookeeper/quota"))))
        zk.create("/app/after", b"")  # no quota any more
        return out
    finally:
        stop_kazoo(zk)


@pytest.fixture(scope="module")
def both(tmp_path_factory: Any) -> Iterator[tuple[ZkServerProcess, RealZooKeeper]]:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper)")
    base = tmp_path_factory.mktemp("quota")
    ours = ZkServerProcess(base / "zks", free_port(), extra=["enforceQuota=true"])
    real = RealZooKeeper(base / "real", free_port(), extra=["enforceQuota=true"])
    with side_by_side(ours, real):
        yield ours, real


def test_zkcli_quotas_like_zookeeper(both: tuple[ZkServerProcess, RealZooKeeper]) -> None:
    ours, real = both
    with ZkCli(ours.hosts) as cli:
        got = _script(cli, ours.hosts)
    with ZkCli(real.hosts) as cli:
        want = _script(cli, real.hosts)
    assert got == want
    assert ("create", "w", "QuotaExceeded") in got  # -N 4: /app, x, y and z
    assert ("set", "QuotaExceeded") in got  # -B 100
    assert "Quota exceeded: /app" in ours.log_path.read_text()  # -n 3 passed: logged only


def test_stats_survive_a_restart(tmp_path: Any) -> None:
    server = ZkServerProcess(tmp_path / "zks", free_port(), extra=["enforceQuota=true"])
    with server:
        zk = kazoo_client(server.hosts)
        try:
            zk.create("/q", b"12")
            zk.create("/zookeeper/quota/q", None)
            zk.create("/zookeeper/quota/q/zookeeper_limits",
                      b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3")
            zk.create("/zookeeper/quota/q/zookeeper_stats", b"count=0,bytes=0")
            zk.create("/q/a", b"345")
            before = zk.get("/zookeeper/quota/q/zookeeper_stats")[0]
        finally:
            stop_kazoo(zk)
        assert before == b"count=2,bytes=5"
        server.kill()
        server.start()
        zk = kazoo_client(server.hosts)
        try:
            assert zk.get("/zookeeper/quota/q/zookeeper_stats")[0] == before
            zk.create("/q/b")
            with pytest.raises(QuotaExceededError):
                zk.create("/q/c")
        finally:
            stop_kazoo(zk)
