"""`zkserver import-zookeeper`: a real Apache ZooKeeper's data directory, imported, served.

One real ZooKeeper makes a rich tree in two phases. Phase one runs with a tiny snapCount and
pipelined writes, so its snapshots are fuzzy (writes land while they are written). ZooKeeper
is then killed and restarted with snapshots off: at start-up it loads its own files and writes
a clean snapshot of what it loaded, which is the oracle for our replay of phase one's files.
Phase two then adds logged transactions of every kind after that snapshot. What clients see
(data, every Stat field, ACLs) is recorded through kazoo before the final kill, and compared
with what zkserver serves from the imported directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NodeExistsError
from kazoo.protocol.serialization import (
    Create,
    SetData,
    int_struct,
    long_struct,
    read_string,
    write_buffer,
    write_string,
)
from kazoo.security import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, make_acl, make_digest_acl
from support import realzk
from support.process import ZkServerProcess
from support.proxy import Proxy
from support.realzk import RealZooKeeper, four_letter, free_port

from zkserver.migrate import MigrationError, import_zookeeper, zkfiles
from zkserver.migrate.importer import build_tree
from zkserver.storage import snapshot as snapmod
from zkserver.storage.files import Disk

HOUR = 3_600_000
ZK_EXTRA = ["extendedTypesEnabled=true", "4lw.commands.whitelist=*"]


# -- raw requests kazoo has no call for --------------------------------------------------------


class CreateContainer(Create):
    type = 19  # flags 4: CONTAINER; the reply is a Create2Response, read up to its path


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = 21

    def serialize(self) -> bytearray:
        b = bytearray(Create(self.path, self.data, self.acl, self.flags).serialize())
        b.extend(long_struct.pack(self.ttl))
        return b

    @classmethod
    def deserialize(cls, data: bytes, offset: int) -> str:
        return read_string(data, offset)[0]


class CreateNull(Create):
    """Create with null data (kazoo's `create` insists on bytes)."""

    def serialize(self) -> bytearray:
        b = bytearray(write_string(self.path) + write_buffer(None))
        b.extend(int_struct.pack(len(self.acl)))
        for a in self.acl:
            b.extend(int_struct.pack(a.perms) + write_string(a.id.scheme) + write_string(a.id.id))
        b.extend(int_struct.pack(self.flags))
        return b


def raw(k: KazooClient, request: object) -> object:
    result = k.handler.async_result()
    k._call(request, result)
    return result.get(timeout=15)


# -- what a client sees, and what a tree holds --------------------------------------------------


def acl_rows(acl: list) -> tuple:
    return tuple((a.perms, a.id.scheme, a.id.id) for a in acl)


def client_view(k: KazooClient) -> dict[str, tuple]:
    """path -> (data, Stat as 11 fields, ACL) of every node, through the client API."""
    out = {}
    stack = ["/"]
    while stack:
        path = stack.pop()
        data, stat = k.get(path)
        acl, acl_stat = k.get_acls(path)
        assert tuple(acl_stat) == tuple(stat)
        out[path] = (data, tuple(stat), acl_rows(acl))
        stack += [f"{path.rstrip('/')}/{c}" for c in k.get_children(path)]
    return out


def tree_view(tree) -> dict[str, tuple]:
    """The same view computed from a DataTree (Stat as the server would send it)."""
    return {p: (n.data, n.stat(), n.acl) for p, n in tree.nodes.items()}


def stored_rows(nodes) -> dict[str, tuple]:
    """Every stored field, raw (cversion as the create count, ephemeralOwner encoded), from a
    DataTree's nodes (a NodeTable) or a ZooKeeper snapshot's (a list)."""
    pairs = ((n.path, n) for n in nodes) if isinstance(nodes, list) else nodes.items()
    return {p: (n.data, tuple(n.acl), n.czxid, n.mzxid, n.ctime, n.mtime, n.version,
                n.cversion, n.aversion, n.owner, n.pzxid) for p, n in pairs}


def copy_dir(src: Path, dst: Path) -> None:
    """Copy a ZooKeeper data directory keeping its 64 MiB preallocated logs sparse (a plain
    copy writes every zero)."""
    def sparse_copy(a: str, b: str) -> None:
        with open(b, "wb") as out:
            out.write(zkfiles.read_content(a))
            out.truncate(os.path.getsize(a))
    shutil.copytree(src, dst, copy_function=sparse_copy)


def v2(base: Path) -> Path:
    return base / "zk1" / "data" / "version-2"


def srvr_zxid(port: int) -> int:
    out = four_letter("127.0.0.1", port, "srvr")
    return int(re.search(r"Zxid: (0x[0-9a-f]+)", out).group(1), 16)


def wait_connected(*clients: KazooClient, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for k in clients:
        while k.state != KazooState.CONNECTED:
            assert time.monotonic() < deadline, "kazoo did not reconnect"
            time.sleep(0.05)
        k.exists("/")


def client(hosts: str, timeout: float = 10.0) -> KazooClient:
    k = KazooClient(hosts, timeout=timeout, connection_retry={"max_tries": -1, "delay": 0.05,
                                                              "max_delay": 0.2})
    k.start(timeout=15)
    return k


# -- the ZooKeeper run --------------------------------------------------------------------------


def phase_one(a: KazooClient, b: KazooClient, c: KazooClient, d: KazooClient) -> None:
    a.create("/app", b"application root")
    a.create("/app/cfg", b"v0")
    for i in range(25):
        a.set("/app/cfg", b"v%d" % (i + 1))
    a.create("/bin", bytes(range(256)))
    a.create("/empty", b"")
    raw(a, CreateNull("/null", None, OPEN_ACL_UNSAFE, 0))
    a.create("/setnull", b"not null yet")
    raw(a, SetData("/setnull", None, -1))
    a.create("/deep/a/b/c/d/e/f/g/h", b"deep", makepath=True)
    # pipelined writes: snapshots (snapCount=10) are written while these land
    a.create("/burst", b"")
    pending = [a.create_async(f"/burst/n{i:03d}", b"x" * (i % 50)) for i in range(200)]
    for p in pending:
        p.get(timeout=15)
    pending = [a.set_async(f"/burst/n{i:03d}", b"set %d" % i) for i in range(0, 200, 3)]
    pending += [a.delete_async(f"/burst/n{i:03d}") for i in range(1, 200, 4)]
    for p in pending:
        p.get(timeout=15)
    a.create("/seq", b"")
    seqs = [a.create("/seq/s-", b"%d" % i, sequence=True) for i in range(20)]
    for s in seqs[::3]:
        a.delete(s)
    a.create("/acl", b"")
    a.create("/acl/digest", b"secret", acl=[make_digest_acl("alice", "pw", all=True)])
    a.create("/acl/readonly", b"look, don't touch", acl=READ_ACL_UNSAFE)
    a.create("/acl/mixed", b"m", acl=[make_digest_acl("alice", "pw", all=True),
                                      make_acl("world", "anyone", read=True),
                                      make_acl("ip", "127.0.0.1", read=True, write=True)])
    a.create("/acl/changed", b"")
    a.set_acls("/acl/changed", [make_acl("world", "anyone", read=True, write=True,
                                         admin=True)])
    a.set_acls("/acl/changed", OPEN_ACL_UNSAFE)
    t = a.transaction()
    t.create("/multi", b"made in a multi")
    t.create("/multi/child", b"")
    t.set_data("/app/cfg", b"from multi")
    t.delete("/empty")
    t.check("/app", 0)
    assert all(r is not Exception and not isinstance(r, Exception) for r in t.commit())
    raw(a, CreateContainer("/ctr", b"container", OPEN_ACL_UNSAFE, 4))
    a.create("/ctr/kid", b"keeps it alive")
    raw(a, CreateContainer("/ctr-unused", b"", OPEN_ACL_UNSAFE, 4))
    raw(a, CreateTTL("/ttl", b"ttl", OPEN_ACL_UNSAFE, 5, HOUR))
    raw(a, CreateTTL("/ttlseq-", b"", OPEN_ACL_UNSAFE, 6, 2 * HOUR))
    a.create("/eph", b"")
    b.create("/eph/b1", b"b's", ephemeral=True)
    b.create("/eph/bseq-", b"", ephemeral=True, sequence=True)
    c.create("/eph/c1", b"c's", ephemeral=True)
    d.create("/eph/d1", b"d's", ephemeral=True)
    d.create("/app/d-ephemeral", b"", ephemeral=True)
    d.stop()  # a close-session that deletes two ephemerals
    d.close()
    with pytest.raises(NodeExistsError):
        a.create("/app")  # an error transaction, still a zxid
    for i in range(20):
        a.set("/app/cfg", b"tail %d" % i)


def phase_two(a: KazooClient, b: KazooClient, c: KazooClient) -> None:
    for i in range(5):
        a.set("/app/cfg", b"phase two %d" % i)
    a.create("/phase2", b"after the restart")
    raw(a, CreateNull("/phase2/null", None, OPEN_ACL_UNSAFE, 0))
    a.set("/null", b"no longer null")
    raw(a, SetData("/bin", None, -1))
    for i in range(0, 40, 2):
        if a.exists(f"/burst/n{i:03d}"):
            a.delete(f"/burst/n{i:03d}")
    a.create("/seq/s-", b"after", sequence=True)
    a.set_acls("/acl/mixed", [make_digest_acl("alice", "pw", all=True), READ_ACL_UNSAFE[0]])
    a.create("/acl/digest/kid", b"", acl=[make_digest_acl("alice", "pw", read=True,
                                                          write=True, admin=True)])
    t = a.transaction()
    t.check("/app/cfg", 12345)  # fails: the whole multi is an error transaction
    t.create("/never", b"")
    results = t.commit()
    assert any(isinstance(r, Exception) for r in results)
    t = a.transaction()
    t.create("/multi/two", b"")
    t.delete("/multi/child")
    t.set_data("/multi", b"changed in a multi")
    t.commit()
    raw(a, CreateTTL("/phase2/ttl", b"", OPEN_ACL_UNSAFE, 5, HOUR))
    raw(a, CreateContainer("/phase2/ctr", b"", OPEN_ACL_UNSAFE, 4))
    a.create("/phase2/ctr/x", b"")
    b.create("/eph/b2", b"b again", ephemeral=True)
    c.stop()  # close-session after the snapshot: /eph/c1 goes
    c.close()
    a.create("/eph/persistent", b"")
    a.delete("/deep/a/b/c/d/e/f/g/h")


@pytest.fixture(scope="module")
def zk_run(tmp_path_factory):
    """A real ZooKeeper's data directory after both phases, plus what clients saw."""
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper)")
    base = tmp_path_factory.mktemp("realzk")
    port = free_port()
    zk = RealZooKeeper(base, port, extra=["snapCount=10", *ZK_EXTRA]).start()
    # Clients reach ZooKeeper through a proxy that is cut while it restarts. ZooKeeper accepts
    # connections while it loads its data and leaves their ConnectRequest unanswered; kazoo
    # then waits out its whole session timeout for the answer (up to 28 s measured, one run in
    # about six with the CPU busy), long enough for a 10 s session to expire.
    front = Proxy(free_port(), port)
    hosts = f"127.0.0.1:{front.listen_port}"
    clients: list[KazooClient] = []
    try:
        a = client(hosts)
        a.add_auth("digest", "alice:pw")
        b = client(hosts, timeout=30)
        c = client(hosts, timeout=20)
        d = client(hosts)
        clients = [a, b, c]
        phase_one(a, b, c, d)
        front.cut()
        zk.stop()
        phase_one_copy = tmp_path_factory.mktemp("phase1") / "version-2"
        copy_dir(v2(base), phase_one_copy)
        zk = RealZooKeeper(base, port, extra=["snapCount=10000000", *ZK_EXTRA]).start()
        front.heal()
        wait_connected(a, b, c)
        phase_two(a, b, c)
        clients = [a, b]
        view = client_view(a)
        last_seen = a.last_zxid
        zxid = srvr_zxid(port)
        sessions = {"a": a._session_id, "b": b._session_id, "c": c._session_id}
    finally:
        zk.stop()
        for k in clients:
            k.stop()
            k.close()
        front.close()
    golden = tmp_path_factory.mktemp("golden") / "data"
    copy_dir(base / "zk1" / "data", golden)
    return {"data": golden, "phase1": phase_one_copy, "view": view, "last_seen": last_seen,
            "zxid": zxid, "sessions": sessions}


# -- the tests ----------------------------------------------------------------------------------


def test_zookeeper_files_are_what_we_think(zk_run):
    """The workload reached every path the importer has: fuzzy snapshots with a log after
    them, every transaction type, and a close-session that names its ephemerals."""
    snaps = zkfiles.snapshot_files(str(zk_run["phase1"]))
    assert len(snaps) >= 5
    kinds = set()
    closes = []
    for _, path in zkfiles.log_files(str(zk_run["data"] / "version-2")):
        for t in zkfiles.read_log(path).txns:
            kinds.add(type(t.op).__name__)
            if type(t.op).__name__ == "MultiTxn":
                kinds.update("multi:" + type(s).__name__ for s in t.op.txns)
            if type(t.op).__name__ == "CloseSessionTxn":
                closes.append(t.op.paths)
    assert {"CreateSessionTxn", "CreateTxn", "DeleteTxn", "SetDataTxn", "SetACLTxn",
            "MultiTxn", "ErrorTxn", "CloseSessionTxn", "multi:CheckTxn",
            "multi:ErrorTxn"} <= kinds
    assert ("/app/d-ephemeral", "/eph/d1") in [tuple(sorted(p)) for p in closes]


def test_replay_of_fuzzy_snapshots_matches_zookeepers_own_load(zk_run):
    """Phase one's files, replayed by us, give exactly the tree ZooKeeper itself loaded from
    them at restart (its clean start-up snapshot): every stored field and every session."""
    phase1 = str(zk_run["phase1"])
    tree, result = build_tree(phase1, phase1)
    assert result.replayed > 0 and result.snapshot_zxid > 0
    restart = [p for z, p in zkfiles.snapshot_files(str(zk_run["data"] / "version-2"))
               if z == tree.last_zxid]
    assert restart, "ZooKeeper's start-up snapshot is not named for our last zxid"
    oracle = zkfiles.read_snapshot(restart[0])
    assert stored_rows(tree.nodes) == stored_rows(oracle.nodes)
    assert tree.sessions == oracle.sessions


def test_import_matches_zookeepers_own_load_after_phase_two(zk_run, tmp_path):
    """Same check on the final files: ZooKeeper restarted on a copy writes what it loaded."""
    tree, result = build_tree(str(zk_run["data"] / "version-2"),
                              str(zk_run["data"] / "version-2"))
    assert result.replayed > 20
    copy = tmp_path / "zk"
    copy_dir(zk_run["data"], copy / "zk1" / "data")
    with RealZooKeeper(copy, free_port(), extra=["snapCount=10000000", *ZK_EXTRA]):
        pass
    newest = zkfiles.snapshot_files(str(v2(copy)))[0]
    assert newest[0] == tree.last_zxid == zk_run["zxid"]
    oracle = zkfiles.read_snapshot(newest[1])
    assert stored_rows(tree.nodes) == stored_rows(oracle.nodes)
    assert tree.sessions == oracle.sessions
    assert zk_run["sessions"]["a"] in tree.sessions and zk_run["sessions"]["b"] in tree.sessions
    assert zk_run["sessions"]["c"] not in tree.sessions


def test_zkserver_serves_the_imported_tree(zk_run, tmp_path):
    old = zk_run["view"]
    assert old["/null"][0] == b"no longer null" and old["/phase2/null"][0] is None
    assert old["/bin"][0] is None and old["/setnull"][0] is None and old["/seq"][0] == b""
    assert old["/eph/b1"][1][7] == zk_run["sessions"]["b"]
    # The documented flow: zkserver gets ZooKeeper's zoo.cfg, so the same dataDir.
    data = tmp_path / "zks" / "data"
    copy_dir(zk_run["data"], data)
    result = import_zookeeper(str(data), str(data))
    assert result.last_zxid == zk_run["zxid"]
    assert os.listdir(tmp_path / "zks" / "data" / "zkserver") == [os.path.basename(
        result.written)]
    loaded = snapmod.load(Disk(), result.written)
    assert zk_run["sessions"]["a"] in loaded.sessions
    assert zk_run["sessions"]["b"] in loaded.sessions
    with ZkServerProcess(tmp_path / "zks", free_port(), extra=["extendedTypesEnabled=true"]) as s:
        assert srvr_zxid(s.port) >= zk_run["zxid"]
        k = KazooClient(s.hosts)
        k.last_zxid = zk_run["last_seen"]  # a client that last talked to the old ZooKeeper
        k.start(timeout=15)
        try:
            k.add_auth("digest", "alice:pw")
            new = client_view(k)
            for path in sorted(set(old) | set(new)):
                assert new.get(path) == old.get(path), path
            stat = k.create("/after-import", b"", include_data=True)[1]
            assert stat.czxid > zk_run["zxid"]
            assert k.last_zxid > zk_run["last_seen"]
        finally:
            k.stop()
            k.close()


def newest_intact(snaps: list[tuple[int, str]]) -> str | None:
    """(A snapshot ZooKeeper was writing when it was killed is incomplete: skipped too.)"""
    for _, path in snaps:
        try:
            zkfiles.read_snapshot(path)
            return path
        except zkfiles.ZkFileError:
            continue
    return None


def test_a_damaged_newest_snapshot_falls_back_to_the_one_before(zk_run, tmp_path):
    good, _ = build_tree(str(zk_run["data"] / "version-2"), str(zk_run["data"] / "version-2"))
    for damage in ("flip", "truncate"):
        data = tmp_path / damage
        copy_dir(zk_run["data"], data)
        snaps = zkfiles.snapshot_files(str(data / "version-2"))
        newest = snaps[0][1]
        raw_bytes = bytearray(Path(newest).read_bytes())
        if damage == "flip":
            raw_bytes[len(raw_bytes) // 2] ^= 0x40
        else:
            del raw_bytes[-100:]
        Path(newest).write_bytes(raw_bytes)
        result = import_zookeeper(str(data), str(tmp_path / f"out-{damage}"))
        assert result.snapshot == newest_intact(snaps[1:]) != newest
        assert any(newest in w for w in result.warnings), result.warnings
        tree = snapmod.load(Disk(), result.written)
        assert stored_rows(tree.nodes) == stored_rows(good.nodes)
        assert tree.sessions == good.sessions and tree.last_zxid == good.last_zxid


def test_without_any_intact_snapshot_the_whole_log_is_replayed(zk_run, tmp_path):
    good, _ = build_tree(str(zk_run["data"] / "version-2"), str(zk_run["data"] / "version-2"))
    data = tmp_path / "zk"
    copy_dir(zk_run["data"], data)
    for _, path in zkfiles.snapshot_files(str(data / "version-2")):
        Path(path).write_bytes(Path(path).read_bytes()[:-7])
    tree, result = build_tree(str(data / "version-2"), str(data / "version-2"))
    assert result.snapshot is None and len(result.warnings) >= 5
    assert stored_rows(tree.nodes) == stored_rows(good.nodes)
    assert tree.sessions == good.sessions
    # ... and with the first log gone too, the import stops, naming the damaged snapshots.
    os.remove(data / "version-2" / "log.1")
    with pytest.raises(MigrationError) as e:
        import_zookeeper(str(data), str(tmp_path / "out"))
    assert "no intact ZooKeeper snapshot" in str(e.value)
    assert str(data / "version-2" / "snapshot.0") in str(e.value)
    assert not (tmp_path / "out" / "zkserver").exists()


def test_a_damaged_log_record_is_an_error_naming_file_and_offset(zk_run, tmp_path):
    data = tmp_path / "zk"
    copy_dir(zk_run["data"], data)
    logs = zkfiles.log_files(str(data / "version-2"))
    last_log = logs[-1][1]
    txns = zkfiles.read_log(last_log)
    assert len(txns.txns) > 5
    with open(last_log, "r+b") as f:
        f.seek(16 + 8 + 4 + 30)  # inside the first record's entry
        byte = f.read(1)[0]
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte ^ 0xFF]))
    with pytest.raises(MigrationError) as e:
        import_zookeeper(str(data), str(tmp_path / "out"))
    assert f"{last_log}: offset 16:" in str(e.value) and "checksum" in str(e.value)


def test_a_torn_last_record_is_cut_off_with_a_warning(zk_run, tmp_path):
    data = tmp_path / "zk"
    copy_dir(zk_run["data"], data)
    last_log = zkfiles.log_files(str(data / "version-2"))[-1][1]
    log = zkfiles.read_log(last_log)
    with open(last_log, "r+b") as f:
        f.seek(log.end - 3)  # the last record loses its tail: a crash in the middle of a write
        f.write(b"\0" * 3)
    result = import_zookeeper(str(data), str(tmp_path / "out"))
    assert result.last_zxid == log.txns[-1].zxid - 1
    assert any(last_log in w and "never acknowledged" in w for w in result.warnings)
    # A log ZooKeeper preallocated but died before writing its header holds nothing.
    empty = data / "version-2" / f"log.{result.last_zxid + 1:x}"
    with open(empty, "wb") as f:
        f.truncate(64 << 20)
    again = import_zookeeper(str(data), str(tmp_path / "out2"))
    assert again.last_zxid == result.last_zxid
    assert any(str(empty) in w and "only zeros" in w for w in again.warnings)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zkserver", "import-zookeeper", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_refuses_to_overwrite_without_force(zk_run, tmp_path):
    target = tmp_path / "data"
    first = run_cli(str(zk_run["data"]), str(target))
    assert first.returncode == 0, first.stderr
    assert f"last zxid {zk_run['zxid']:#x}" in first.stdout
    again = run_cli(str(zk_run["data"]), str(target))
    assert again.returncode == 1 and "--force" in again.stderr
    # a zkserver log segment in the target is also existing state
    seg = target / "zkserver" / "log.00000000000000ff"
    seg.write_bytes(b"x")
    forced = run_cli(str(zk_run["data"] / "version-2"), str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(os.listdir(target / "zkserver")) == [f"snapshot.{zk_run['zxid']:016x}"]
    missing = run_cli(str(tmp_path / "nowhere"), str(tmp_path / "t2"))
    assert missing.returncode == 1 and "nowhere" in missing.stderr


@pytest.mark.parametrize("method", ["gz", "snappy"])
def test_compressed_snapshots(tmp_path, method):
    """snapshot.compression.method=gz|snappy (zoo.cfg sets zookeeper.* properties)."""
    extra = ["snapCount=6", f"snapshot.compression.method={method}", *ZK_EXTRA]
    with RealZooKeeper(tmp_path / "zk", free_port(), extra=extra) as zk:
        k = client(zk.hosts)
        for i in range(30):
            k.create(f"/n{i}", b"%d" % i * i)
            if i % 3 == 0:
                k.set(f"/n{i}", b"changed")
        view = client_view(k)
        k.stop()
        k.close()
    snaps = zkfiles.snapshot_files(str(v2(tmp_path / "zk")))
    assert all(p.endswith("." + method) for _, p in snaps) and len(snaps) > 2
    tree, result = build_tree(str(v2(tmp_path / "zk")), str(v2(tmp_path / "zk")))
    assert result.snapshot == newest_intact(snaps) is not None
    ours = tree_view(tree)
    assert {p: (d, s, tuple(a)) for p, (d, s, a) in ours.items()} == view


def test_snappy_block_decoder():
    # literal "abcd", then a copy of length 8 at offset 4 (overlapping): "abcdabcdabcd"
    block = bytes([12, 3 << 2]) + b"abcd" + bytes([((8 - 4) << 2) | 1, 4])
    assert zkfiles.snappy_decompress(block) == b"abcdabcdabcd"
    with pytest.raises(ValueError):
        zkfiles.snappy_decompress(bytes([5, 1 << 2, 0x61, 0x62]))
