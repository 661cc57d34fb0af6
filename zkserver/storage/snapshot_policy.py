"""When to snapshot, and the background task that writes one.

ZooKeeper's rule, for both a standalone server and an ensemble member: after a randomised
number of logged transactions (between snapCount/2 and snapCount, so the members of an
ensemble don't all snapshot at once) roll the log and snapshot the tree. On Linux a forked
child writes it (`storage.snapshot_fork`); elsewhere, and on a simulated disk, it is fuzzy and
written a chunk per step in worker threads (`storage.snapshot`). Either way appends, syncs and
ACKs go on meanwhile. An operation that rewrites the files (a truncation, an installed
snapshot) first `stop()`s a snapshot still being written: it would describe a tree that is
about to be replaced.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable

import trio

from zkserver.storage import snapshot as snapmod
from zkserver.storage import snapshot_fork
from zkserver.storage.files import Disk
from zkserver.tree.datatree import DataTree

log = logging.getLogger(__name__)


class SnapshotPolicy:
    def __init__(self, disk: Disk, snap_dir: str, snap_count: int,
                 tree: Callable[[], DataTree], wall: Callable[[], int]) -> None:
        self.disk = disk
        self.snap_dir = snap_dir
        self.snap_count = snap_count
        self.tree = tree  # the tree as it is when a snapshot starts (it may be replaced)
        self.wall = wall
        self.since = 0
        self.threshold = self._threshold()
        self.last_zxid = 0  # of the last snapshot written here
        self.nursery: trio.Nursery | None = None  # set by the task that runs the snapshots
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()
        self._done.set()

    def _threshold(self) -> int:
        half = max(self.snap_count // 2, 1)
        return half + 1 + random.randrange(half)

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def logged(self, n: int) -> bool:
        """Count `n` more logged transactions; True when a snapshot is due now (the caller
        rolls the log, then `start()`s it)."""
        self.since += n
        if self.since < self.threshold or self.running:
            return False
        self.since = 0
        self.threshold = self._threshold()
        return True

    def reset(self) -> None:
        """The files were replaced (a leader's snapshot installed): count afresh."""
        self.since = 0

    def start(self) -> None:
        assert self.nursery is not None, "snapshots run in the group committer's nursery"
        self._done = trio.Event()
        self._scope = trio.CancelScope()
        self.nursery.start_soon(self._write, self._scope, self._done)

    async def stop(self) -> None:
        """Abandon a snapshot being written (its .tmp file stays, as after a crash)."""
        if self._scope is not None:
            self._scope.cancel()
        await self._done.wait()

    async def _write(self, scope: trio.CancelScope, done: trio.Event) -> None:
        try:
            with scope:
                if snapshot_fork.available(self.disk):
                    await self._write_forked()
                    return
                writer = snapmod.SnapshotWriter(self.tree(), self.wall())
                path = os.path.join(self.snap_dir, snapmod.snapshot_name(writer.zxid))
                f = await trio.to_thread.run_sync(snapmod.open_tmp, self.disk, path)
                try:
                    for chunk in writer.chunks():
                        await trio.to_thread.run_sync(f.write, chunk)
                except trio.Cancelled:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(f.close)
                    raise
                await trio.to_thread.run_sync(snapmod.finish, self.disk, f, path)
                self.last_zxid = writer.zxid
                log.info("snapshot %s written", path)
        finally:
            done.set()

    async def _write_forked(self) -> None:
        tree = self.tree()
        path = os.path.join(self.snap_dir, snapmod.snapshot_name(tree.last_zxid))
        zxid = await snapshot_fork.write(tree, self.wall(), path)
        await trio.to_thread.run_sync(snapmod.publish, self.disk, path)
        self.last_zxid = zxid
        log.info("snapshot %s written", path)
