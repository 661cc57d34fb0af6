"""The `snapshot` and `restore` admin commands (ZooKeeper 3.9): a backup of the whole tree
over HTTP, and putting one back.

**What a snapshot is here.** ZooKeeper streams its own on-disk snapshot file (its jute
format). zkserver streams *its* on-disk snapshot format (`storage/snapshot.py`: a magic line
and CRC-checked cbor2 records), because that is what its storage writes and reads; a file
from `snapshot` is a valid `snapshot.<zxid>` for a zkserver data directory. `restore` takes
that format, and also a ZooKeeper snapshot (what ZooKeeper 3.9's `snapshot` command streams,
uncompressed, or any `version-2/snapshot.*` file), read by the migration reader: a running
ZooKeeper's tree can be moved into zkserver with one `curl | curl`.

**Consistent, off the event loop.** The tree is written the way the server's own snapshots
are, fuzzily, in a worker thread while the server keeps serving, from zxid Z0. If transactions
were applied meanwhile (up to Z1), that image is loaded back and the log's transactions
Z0+1..Z1 are replayed over it, in the thread too (applying is idempotent against a fuzzy
image, see `DataTree.apply`), and the result, the exact state at Z1, is what is streamed.

**Restore** (standalone servers; in an ensemble it would need the whole ensemble to agree
and is refused). The body is decoded and checked off the loop. Then, at a moment when no
write is prepared or being logged, the engine switches to the restored tree in one step and
an operation is queued at the head of the group committer: it writes the restored tree as
a snapshot (synced, named for a zxid no lower than anything already logged, so recovery
starts from it). Writes that arrive meanwhile are prepared against the restored tree and
logged only after that snapshot is durable, so a crash never mixes the old tree with new
writes. Sessions of the restored tree get fresh deadlines, as after a restart; the server's
own connected sessions are kept. Watches are not fired by a restore (ZooKeeper drops them).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from functools import partial
from typing import TYPE_CHECKING

import trio

from zkserver.storage import snapshot as snapmod
from zkserver.storage.framing import CorruptFile
from zkserver.storage.txnlog import read_segment, segments
from zkserver.tree.datatree import DataTree

if TYPE_CHECKING:
    from zkserver.server.server import Server

log = logging.getLogger(__name__)

ZK_SNAPSHOT_MAGIC = b"ZKSN"
QUIET_WAIT = 10.0  # seconds a restore waits for in-flight writes to be logged and applied


class SnapshotError(Exception):
    """The command could not be done; the message says why (shown as the JSON "error")."""


class RateLimiter:
    """ZooKeeper's RateLimiter with a rate of one: a request is allowed when none was in the
    last `interval` seconds (the first one always), on the monotonic clock."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.reset_at = time.monotonic()
        self.left = 1

    def allow(self) -> bool:
        now = time.monotonic()
        if now > self.reset_at + self.interval:
            self.left = 1
            self.reset_at = now
        if self.left > 0:
            self.left -= 1
            return True
        return False


class _Memory:
    """Just enough of a Disk for `snapshot.load` to read bytes held in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, path: str) -> bytes:
        return self.data


# -- snapshot -----------------------------------------------------------------------------------


async def take(server: Server) -> tuple[int, bytes]:
    """(zxid, bytes) of a consistent snapshot of the tree as of `zxid`."""
    engine = server.engine
    tree = engine.tree
    writer = snapmod.SnapshotWriter(tree, server.wall())  # on the loop: the list of paths
    start = writer.zxid
    fuzzy = await trio.to_thread.run_sync(lambda: b"".join(writer.chunks()))
    if engine.tree is not tree:
        raise SnapshotError("the tree was replaced while the snapshot was taken; try again")
    end = tree.last_zxid
    if end == start:
        return start, fuzzy  # nothing was applied meanwhile: the image is exact
    exact = await trio.to_thread.run_sync(
        _settle, server.disk, server.log_dir, fuzzy, start, end, server.wall())
    log.info("snapshot: the image from %#x was brought to %#x by replaying the log", start, end)
    return end, exact


def _settle(disk: object, log_dir: str, fuzzy: bytes, start: int, end: int, now: int) -> bytes:
    """The fuzzy image from `start`, with the log's transactions up to `end` replayed."""
    tree = snapmod.load(_Memory(fuzzy), "<snapshot>")  # type: ignore[arg-type]
    segs = segments(disk, log_dir)  # type: ignore[arg-type]
    first = 0
    for i, (zxid, _) in enumerate(segs):
        if zxid <= start + 1:
            first = i
    for _, path in segs[first:]:
        _, txns = read_segment(disk, path)  # type: ignore[arg-type]
        for txn in txns:
            if txn.zxid <= tree.last_zxid:
                continue
            if txn.zxid > end:
                break
            tree.apply(txn)
        if tree.last_zxid >= end:
            break
    if tree.last_zxid != end:
        raise SnapshotError(f"the log does not hold the transactions up to {end:#x} "
                            f"(found up to {tree.last_zxid:#x}); try again")
    return b"".join(snapmod.SnapshotWriter(tree, now).chunks())


# -- restore ------------------------------------------------------------------------------------


def decode(body: bytes) -> DataTree:
    """A tree from a zkserver snapshot or an (uncompressed) ZooKeeper one; SnapshotError when
    it is neither, is damaged, or does not add up to a tree."""
    if body.startswith(snapmod.MAGIC):
        try:
            tree = snapmod.load(_Memory(body), "<request body>")  # type: ignore[arg-type]
        except CorruptFile as e:
            raise SnapshotError(f"damaged snapshot: {e}") from None
    elif body.startswith(ZK_SNAPSHOT_MAGIC):
        tree = _zookeeper_tree(body)
    else:
        raise SnapshotError("the body is not a snapshot (neither zkserver's nor ZooKeeper's)")
    if "/" not in tree.nodes:
        raise SnapshotError("the snapshot has no root node")
    for path in tree.nodes:
        if path != "/" and (path[:path.rfind("/")] or "/") not in tree.nodes:
            raise SnapshotError(f"the snapshot's {path} has no parent")
    return tree


def _zookeeper_tree(body: bytes) -> DataTree:
    from zkserver.migrate import importer, zkfiles

    with tempfile.TemporaryDirectory(prefix="zkserver-restore-") as d:
        path = os.path.join(d, "snapshot.0")  # the reader takes the zxid from the name
        with open(path, "wb") as f:
            f.write(body)
        try:
            snap = zkfiles.read_snapshot(path)
        except zkfiles.ZkFileError as e:
            raise SnapshotError(f"damaged ZooKeeper snapshot: {e.why} at offset {e.offset}"
                                ) from None
    tree = importer.tree_from_snapshot(snap)
    # A streamed snapshot has no file name to carry its zxid: the newest one in the tree.
    tree.last_zxid = max((max(n.czxid, n.mzxid, n.pzxid) for n in tree.nodes.values()),
                         default=0)
    return tree


async def restore(server: Server, body: bytes) -> int:
    """Replace the tree with the snapshot in `body`; the zxid the server is at afterwards."""
    from zkserver.server.commit_path import LocalLog

    path = server.commit_path
    if not isinstance(path, LocalLog):
        raise SnapshotError("restore is only supported on a standalone server")
    tree = await trio.to_thread.run_sync(decode, body)
    engine = server.engine
    with trio.move_on_after(QUIET_WAIT):
        while True:
            if path.snapshots.running:
                await path.snapshots.stop()  # it would describe the tree being replaced
                continue
            if path.quiet:
                break
            await trio.sleep(0.002)
    if not path.quiet:
        raise SnapshotError("the server stayed busy with writes; try again")
    # From here to queueing the write of the snapshot, nothing awaits: one step of the loop.
    old = engine.tree
    tree.last_zxid = max(tree.last_zxid, old.last_zxid)
    for sid, timeout in old.sessions.items():
        tree.sessions.setdefault(sid, timeout)  # connected clients keep their sessions
    if old.digest is not None:
        tree.track_digest()
    engine.reset_to(tree)
    engine.restore_sessions(server.now())
    path.snapshots.reset()
    done = trio.Event()
    failure: list[Exception] = []

    async def write_snapshot() -> None:
        try:
            written = await trio.to_thread.run_sync(
                partial(snapmod.write, frozen=False),
                server.disk, server.snap_dir, tree, server.wall())
            log.info("restore: the restored tree (%d nodes, zxid %#x) is %s",
                     len(tree.nodes), tree.last_zxid, written)
        except Exception as e:
            failure.append(e)
            log.critical("restore: the restored tree could not be written (%s); stopping, "
                         "so that no write is acknowledged on a tree a restart would not "
                         "find", e)
            raise
        finally:
            done.set()

    path.committer.then(write_snapshot)
    await done.wait()
    if failure:
        raise SnapshotError(f"the restored tree could not be written: {failure[0]}")
    return tree.last_zxid
