"""The forked snapshot writer: an exact image, a child that holds nothing of the parent's, and
one that never outlives a cancelled write."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import trio
import trio.testing

from tests.support.waiting import wait_for
from zkserver.storage import snapshot as snapmod
from zkserver.storage import snapshot_fork
from zkserver.storage.files import Disk
from zkserver.tree.datatree import DataTree
from zkserver.txn import CreateTxn, SetDataTxn, Txn

OPEN = ((31, "world", "anyone"),)


def tree_of(n: int) -> DataTree:
    tree = DataTree()
    for zxid in range(1, n + 1):
        tree.apply(Txn(zxid, 1, 0, zxid, CreateTxn(f"/n{zxid}", b"v%d" % zxid, OPEN, 0, zxid)))
    tree.sessions[0x101] = 6000
    return tree


def children() -> set[int]:
    me = os.getpid()
    with open(f"/proc/{me}/task/{me}/children") as f:
        return {int(pid) for pid in f.read().split()}


@pytest.fixture
def spawned() -> Callable[[], set[int]]:
    """This process's children that the test started: others may outlive earlier tests by
    design (multiprocessing's resource tracker, which the Jepsen tests' spawned clients
    start, stays for the life of the process)."""
    before = children()
    return lambda: children() - before


pytestmark = pytest.mark.skipif(not snapshot_fork.available(Disk()), reason="Linux only")


async def test_the_snapshot_is_the_tree_at_the_fork(tmp_path, spawned):
    tree = tree_of(25_000)  # more than two of the child's records
    path = str(tmp_path / "snapshot.x")
    zxid = await snapshot_fork.write(tree, 7, path)
    # The parent's tree moves on; the file holds the tree as it was.
    tree.apply(Txn(25_001, 1, 0, 25_001, SetDataTxn("/n1", b"later", 1)))
    loaded = snapmod.load(Disk(), path + ".tmp")
    assert zxid == loaded.last_zxid == 25_000
    assert len(loaded.nodes) == len(tree.nodes)
    assert loaded.nodes["/n1"].data == b"v1" and loaded.nodes["/n25000"].data == b"v25000"
    assert loaded.sessions == {0x101: 6000}
    assert not spawned()


async def test_the_child_holds_no_descriptor_and_dies_with_a_cancelled_write(tmp_path, spawned):
    """A FIFO as the file: the child blocks opening it, after it has closed what it inherited."""
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo + ".tmp")
    r, w = os.pipe()  # descriptors the child inherits, whatever else this process has open
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(snapshot_fork.write, tree_of(10), 0, fifo)
            await trio.testing.wait_all_tasks_blocked()  # it has forked, and waits for the child
            # (blocking waits: the child runs whether or not the loop does)
            (pid,) = wait_for(spawned, 10, "the child forked")
            wait_for(lambda: sorted(map(int, os.listdir(f"/proc/{pid}/fd"))) == [0, 1, 2], 10,
                     "the child to close what it inherited")
            nursery.cancel_scope.cancel()
        assert not spawned() and not os.path.exists(f"/proc/{pid}")
    finally:
        os.close(r)
        os.close(w)


async def test_a_failing_child_is_an_error_naming_the_file(tmp_path, spawned):
    path = str(tmp_path / "missing" / "snapshot.x")
    with pytest.raises(OSError, match="snapshot .*missing/snapshot.x.tmp.*status 1"):
        await snapshot_fork.write(tree_of(3), 0, path)
    assert not spawned()
