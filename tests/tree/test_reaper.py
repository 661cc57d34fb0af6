"""Container and TTL node reaping rules, on the sans-IO tree and prep."""

from __future__ import annotations

from zkserver.prep import Prep, Session
from zkserver.proto import records as R
from zkserver.proto.codes import CreateMode, Err, Op
from zkserver.tree.datatree import DataTree
from zkserver.tree.reaper import due_for_reaping
from zkserver.txn import ErrorTxn

S = Session(0x1234, [])


class Harness:
    def __init__(self) -> None:
        self.tree = DataTree()
        self.prep = Prep(self.tree, extended_types=True)

    def write(self, op, req, now=1000):
        txn = self.prep.write(op, req, S, 0, now)
        result, _ = self.tree.apply(txn)
        self.prep.committed(txn.zxid)
        return txn, result

    def create(self, path, mode=CreateMode.PERSISTENT, op=Op.CREATE, ttl=None, now=1000):
        if ttl is not None:
            req = R.CreateTTLRequest(path, b"", R.OPEN_ACL_UNSAFE, mode, ttl)
        else:
            req = R.CreateRequest(path, b"", R.OPEN_ACL_UNSAFE, mode)
        txn, _ = self.write(op, req, now)
        assert not isinstance(txn.op, ErrorTxn), txn.op
        return txn

    def reap(self, now, never_used=0):
        deleted = []
        for path in due_for_reaping(self.tree, now, never_used):
            txn = self.prep.delete_container(path, now)
            if txn is not None:
                self.tree.apply(txn)
                self.prep.committed(txn.zxid)
                deleted.append(path)
        return deleted


def test_container_goes_once_its_last_child_is_gone():
    h = Harness()
    h.create("/c", op=Op.CREATE_CONTAINER)
    assert h.reap(10**9) == []  # never had a child: kept (default maxNeverUsedIntervalMs=0)
    h.create("/c/x")
    assert h.reap(10**9) == []  # has a child
    h.write(Op.DELETE, R.DeleteRequest("/c/x", -1))
    assert h.reap(10**9) == ["/c"]
    assert "/c" not in h.tree.nodes and "/c" not in h.tree.containers


def test_never_used_container_goes_after_the_interval_when_configured():
    h = Harness()
    h.create("/c", op=Op.CREATE_CONTAINER, now=1000)
    assert h.reap(1500, never_used=1000) == []
    assert h.reap(2001, never_used=1000) == ["/c"]


def test_container_flag_on_plain_create_makes_a_persistent_node():
    h = Harness()
    h.create("/p", mode=CreateMode.CONTAINER)  # opcode 1 with flags 4, as ZooKeeper allows
    assert "/p" not in h.tree.containers
    assert h.tree.nodes["/p"].stat()[7] == 0


def test_ttl_node_expires_when_unmodified_and_childless():
    h = Harness()
    h.create("/t", CreateMode.PERSISTENT_WITH_TTL, Op.CREATE_TTL, ttl=500, now=1000)
    assert h.tree.nodes["/t"].stat()[7] == 0  # ephemeralOwner shown as 0
    assert h.reap(1400) == []
    h.write(Op.SET_DATA, R.SetDataRequest("/t", b"x", -1), now=1400)
    assert h.reap(1800) == []  # modified at 1400: not yet 500 ms idle
    assert h.reap(1901) == ["/t"]


def test_ttl_needs_extended_types():
    h = Harness()
    h.prep.extended_types = False
    txn = h.prep.write(Op.CREATE_TTL, R.CreateTTLRequest("/t", b"", R.OPEN_ACL_UNSAFE,
                                                          CreateMode.PERSISTENT_WITH_TTL, 10),
                       S, 0, 0)
    assert txn.op == ErrorTxn(Err.UNIMPLEMENTED)


def test_reaper_skips_a_container_that_got_a_child_meanwhile():
    h = Harness()
    h.create("/c", op=Op.CREATE_CONTAINER)
    h.create("/c/x")
    h.write(Op.DELETE, R.DeleteRequest("/c/x", -1))
    due = due_for_reaping(h.tree, 10**9)
    h.create("/c/y")  # lands between the scan and the delete
    assert due == ["/c"]
    assert h.prep.delete_container("/c", 10**9) is None
