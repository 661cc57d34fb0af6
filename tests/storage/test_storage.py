"""The transaction log, snapshots and recovery, on a simulated disk that crashes.

A seeded workload of real transactions (made by `Prep`, applied by `DataTree`) is logged in
group-commit batches; the disk crashes at every kind of point; recovery must bring back every
transaction whose batch was synced (acknowledged), and may or may not bring back the rest,
but must never fail or invent anything.
"""

from __future__ import annotations

import random

import pytest

from zkserver.prep import Prep, Session
from zkserver.proto import records as R
from zkserver.proto.codes import Op
from zkserver.storage import snapshot as snapmod
from zkserver.storage.files import Crash, SimDisk
from zkserver.storage.framing import CorruptFile
from zkserver.storage.purge import purge
from zkserver.storage.recovery import recover
from zkserver.storage.txnlog import TxnLog, encode_batch, segments
from zkserver.tree.datatree import CONTAINER_OWNER, DataTree, ttl_owner
from zkserver.txn import CreateTxn, Txn

SNAP = "/data/zkserver"
LOG = "/log/zkserver"


def state(tree: DataTree) -> dict:
    return {p: (n.data, n.acl, n.stat()) for p, n in tree.nodes.items()}, dict(tree.sessions)


class Workload:
    """Random writes against a live tree, as the server would make them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tree = DataTree()
        self.prep = Prep(self.tree)
        self.sessions = [0x100 + i for i in range(3)]
        self.t = 1_000

    def txn(self):
        rng = self.rng
        self.t += 1
        sid = rng.choice(self.sessions)
        s = Session(sid, [])
        paths = [p for p in self.tree.nodes if not p.startswith("/zookeeper") and p != "/"]
        roll = rng.random()
        if roll < 0.05:
            return self.prep.create_session(sid, 10_000, self.t)
        if roll < 0.08:
            return self.prep.close_session(sid, 0, self.t)
        if roll < 0.45 or not paths:
            parent = rng.choice(["/", *paths[:20]])
            name = f"{'' if parent == '/' else parent}/n{rng.randrange(50)}"
            flags = rng.choice([0, 0, 1, 2, 3])
            req = R.CreateRequest(name, rng.randbytes(rng.randrange(20)), R.OPEN_ACL_UNSAFE, flags)
            return self.prep.write(Op.CREATE, req, s, 0, self.t)
        if roll < 0.75:
            req = R.SetDataRequest(rng.choice(paths), rng.randbytes(8), -1)
            return self.prep.write(Op.SET_DATA, req, s, 0, self.t)
        if roll < 0.9:
            return self.prep.write(Op.DELETE, R.DeleteRequest(rng.choice(paths), -1), s, 0, self.t)
        ops = [(Op.CREATE, R.CreateRequest(f"/m{rng.randrange(30)}", b"m", R.OPEN_ACL_UNSAFE, 0)),
               (Op.SET_DATA, R.SetDataRequest(rng.choice(paths), b"x", -1))]
        return self.prep.write(Op.MULTI, ops, s, 0, self.t)

    def batch(self, n: int) -> list:
        txns = []
        for _ in range(n):
            t = self.txn()
            txns.append(t)
        return txns

    def apply(self, txns: list) -> None:
        for t in txns:
            self.tree.apply(t)
            self.prep.committed(t.zxid)


def run_until_crash(disk: SimDisk, seed: int, batches: int, snapshot_every: int = 0):
    """Log batches as the committer does until the disk 'crashes'.

    Returns the workload, the state after every transaction (recovery may stop at any of them:
    a torn write can keep part of a batch), and the last zxid whose batch was synced.
    """
    w = Workload(seed)
    log = TxnLog(disk, LOG, pre_alloc=4096)
    states = {0: state(w.tree)}
    acked = 0
    try:
        for i in range(batches):
            txns = w.batch(w.rng.randrange(1, 6))
            for t in txns:
                w.apply([t])
                states[t.zxid] = state(w.tree)
            log.append(txns[0].zxid, encode_batch(txns))
            acked = txns[-1].zxid
            if snapshot_every and i % snapshot_every == snapshot_every - 1:
                log.roll()
                snapmod.write(disk, SNAP, w.tree, w.t)
    except Crash:
        pass
    return w, states, acked


@pytest.mark.parametrize("step", ["before-write", "after-write", "before-sync", "after-sync"])
@pytest.mark.parametrize("seed", range(6))
def test_crash_at_each_step_loses_nothing_acknowledged(step, seed):
    disk = SimDisk(seed)
    rng = random.Random(seed)
    target = rng.randrange(5, 60)
    calls = {"n": 0}

    def fault(s: str, path: str) -> None:
        if s == step and path.startswith(LOG):
            calls["n"] += 1
            if calls["n"] == target:
                raise Crash

    disk.fault = fault
    w, states, acked = run_until_crash(disk, seed, 80, snapshot_every=17)
    disk.fault = lambda s, p: None
    disk.crash(torn=bool(seed % 2))
    rec = recover(disk, SNAP, LOG)
    # Everything acknowledged is there, and what came back is exactly the state after some
    # transaction: never a mixture, never anything invented.
    assert rec.tree.last_zxid >= acked
    assert state(rec.tree) == states[rec.tree.last_zxid]


def test_torn_tail_is_cut_with_a_warning():
    disk = SimDisk(1)
    w, states, acked = run_until_crash(disk, 1, 30)
    (_, path), = segments(disk, LOG)
    f = disk.files[path]
    f.data += b"\x00\x00\x00\x30\x12\x34"  # a record header whose body never made it
    f.synced()
    rec = recover(disk, SNAP, LOG)
    assert state(rec.tree) == states[acked]
    assert any("torn" in m for m in rec.warnings)
    assert recover(disk, SNAP, LOG).warnings == []  # it was cut off for good


def test_corrupt_record_before_the_tail_names_file_and_offset():
    disk = SimDisk(2)
    run_until_crash(disk, 2, 30)
    (_, path), = segments(disk, LOG)
    f = disk.files[path]
    f.data[40] ^= 0xFF
    with pytest.raises(CorruptFile) as e:
        recover(disk, SNAP, LOG)
    assert path in str(e.value) and "offset" in str(e.value)


@pytest.mark.parametrize("seed", range(20))
def test_fuzzy_snapshot_plus_log_replays_exactly(seed):
    """Writes keep landing between the chunks of a snapshot; recovery is still exact."""
    w = Workload(seed)
    disk = SimDisk()
    log = TxnLog(disk, LOG, pre_alloc=0)
    for _ in range(60):
        txns = w.batch(5)
        log.append(txns[0].zxid, encode_batch(txns))
        w.apply(txns)
    log.roll()
    writer = snapmod.SnapshotWriter(w.tree, w.t, chunk=1 + seed % 4)
    f = disk.open_log(f"{SNAP}/{snapmod.snapshot_name(writer.zxid)}.tmp")
    for chunk in writer.chunks():
        f.write(chunk)
        txns = w.batch(2)
        log.append(txns[0].zxid, encode_batch(txns))
        w.apply(txns)
    snapmod.finish(disk, f, f"{SNAP}/{snapmod.snapshot_name(writer.zxid)}")
    rec = recover(disk, SNAP, LOG)
    assert rec.snapshot_zxid == writer.zxid
    assert state(rec.tree) == state(w.tree)
    assert rec.tree.ephemerals == w.tree.ephemerals


def test_a_loaded_snapshot_has_every_index_back():
    """Children, ephemerals, containers and TTL nodes come back from the nodes alone, whatever
    order siblings were created in (the index rebuild tries the last parent first)."""
    tree = DataTree()
    open_acl = ((31, "world", "anyone"),)
    owners = [0, 0x101, CONTAINER_OWNER, ttl_owner(5000), 0x102]
    zxid = 0
    for name in ("a", "b", "c"):
        zxid += 1
        tree.apply(Txn(zxid, 1, 0, zxid, CreateTxn(f"/{name}", b"", open_acl, 0, zxid)))
    for i in range(40):  # siblings interleaved across parents and depths
        parent = ("/a", "/b", "/c", "/a/n0", "/b/n1")[i % 5]
        if parent not in tree.nodes:
            continue
        zxid += 1
        tree.apply(Txn(zxid, 1, 0, zxid, CreateTxn(f"{parent}/n{i}", b"x", open_acl,
                                                    owners[i % len(owners)], zxid)))
    disk = SimDisk()
    path = snapmod.write(disk, SNAP, tree, 7)
    loaded = snapmod.load(disk, path)
    assert state(loaded) == state(tree)
    assert {p: set(n.child_paths()) for p, n in loaded.nodes.items()} == \
        {p: set(n.child_paths()) for p, n in tree.nodes.items()}
    assert loaded.ephemerals == tree.ephemerals and loaded.ephemerals
    assert loaded.containers == tree.containers and loaded.containers
    assert loaded.ttls == tree.ttls and loaded.ttls


def test_a_node_without_its_parent_is_named():
    tree = DataTree()
    open_acl = ((31, "world", "anyone"),)
    for zxid, path in enumerate(("/a", "/a/b", "/c"), 1):
        tree.apply(Txn(zxid, 1, 0, zxid, CreateTxn(path, b"", open_acl, 0, zxid)))
    tree.nodes.remove("/a", tree.nodes["/"])  # what no sequence of transactions makes
    disk = SimDisk()
    snapmod.write(disk, SNAP, tree, 7)
    with pytest.raises(CorruptFile, match="/a/b has no parent"):
        recover(disk, SNAP, LOG)


def test_damaged_snapshot_falls_back_to_older_one():
    disk = SimDisk(3)
    w, states, acked = run_until_crash(disk, 3, 40, snapshot_every=10)
    newest = snapmod.snapshots(disk, SNAP)[0][1]
    disk.files[newest].data[30] ^= 0x55
    rec = recover(disk, SNAP, LOG)
    assert state(rec.tree) == states[acked]
    assert any("damaged snapshot" in m for m in rec.warnings)


def test_missing_history_is_an_error_not_an_empty_tree():
    disk = SimDisk(4)
    run_until_crash(disk, 4, 40, snapshot_every=10)
    for _, path in snapmod.snapshots(disk, SNAP):
        disk.remove(path)
    first = segments(disk, LOG)[0][1]
    disk.remove(first)
    with pytest.raises(CorruptFile, match="missing"):
        recover(disk, SNAP, LOG)


def test_purge_keeps_what_recovery_needs():
    disk = SimDisk(5)
    w, states, acked = run_until_crash(disk, 5, 60, snapshot_every=8)
    removed = purge(disk, SNAP, LOG, retain=3)
    assert removed
    assert len(snapmod.snapshots(disk, SNAP)) == 3
    rec = recover(disk, SNAP, LOG)
    assert state(rec.tree) == states[acked]


def test_a_whole_snapshot_is_written_over_a_stopped_one_of_the_same_zxid():
    tree = DataTree()
    open_acl = ((31, "world", "anyone"),)
    for zxid, path in enumerate(("/a", "/a/b"), 1):
        tree.apply(Txn(zxid, 1, 0, zxid, CreateTxn(path, b"v", open_acl, 0, zxid)))
    disk = SimDisk()
    stale = disk.open_log(f"{SNAP}/{snapmod.snapshot_name(tree.last_zxid)}.tmp")
    stale.write(b"half of a snapshot a crash cut short")
    stale.sync()
    stale.close()
    path = snapmod.write(disk, SNAP, tree, 7)
    assert state(snapmod.load(disk, path)) == state(tree)
