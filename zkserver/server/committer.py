"""Group commit: the one task that makes prepared transactions durable, then applies them.

Each round takes *every* transaction prepared since the last one, writes them with one write
and one sync in a worker thread (the event loop keeps reading and answering meanwhile, and
the next round's batch grows while this sync runs), and only then lets the engine apply them and
answer their writers. Every `snapCount` transactions (randomised as ZooKeeper does, so the
servers of an ensemble don't all snapshot at once) it rolls the log and writes a snapshot in the
background.
"""

from __future__ import annotations

import logging
import os
import random
from typing import TYPE_CHECKING

import trio

from zkserver.storage import snapshot as snapmod
from zkserver.storage.txnlog import TxnLog, encode_batch

if TYPE_CHECKING:
    from zkserver.server.server import Server
    from zkserver.storage.files import Disk

log = logging.getLogger(__name__)


class Committer:
    def __init__(self, server: Server, disk: Disk, txnlog: TxnLog, snap_dir: str,
                 snap_count: int) -> None:
        self.server = server
        self.disk = disk
        self.log = txnlog
        self.snap_dir = snap_dir
        self.snap_count = snap_count
        self.since_snapshot = 0
        self.next_snapshot = self._roll_threshold()
        self.snapshotting = False
        self.last_snapshot_zxid = 0
        self._wake = trio.Event()
        self.fsync_ms_total = 0.0
        self.rounds = 0

    def _roll_threshold(self) -> int:
        half = max(self.snap_count // 2, 1)
        return half + 1 + random.randrange(half)

    def kick(self) -> None:
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        engine = self.server.engine
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    await self._wake.wait()
                    self._wake = trio.Event()
                    while engine.to_commit:
                        batch = engine.take_commits()
                        data = encode_batch(t for t, _, _ in batch)
                        start = trio.current_time()
                        await trio.to_thread.run_sync(self.log.append, batch[0][0].zxid, data)
                        self.fsync_ms_total += (trio.current_time() - start) * 1000
                        self.rounds += 1
                        engine.apply_committed(batch, self.server.now())
                        self.since_snapshot += len(batch)
                        if self.since_snapshot >= self.next_snapshot and not self.snapshotting:
                            self.since_snapshot = 0
                            self.next_snapshot = self._roll_threshold()
                            self.log.roll()
                            self.snapshotting = True
                            nursery.start_soon(self.snapshot)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._flush_on_exit)

    def _flush_on_exit(self) -> None:
        """On shutdown, log what was prepared but not yet written; none of it was answered."""
        engine = self.server.engine
        batch = engine.take_commits()
        if batch:
            self.log.append(batch[0][0].zxid, encode_batch(t for t, _, _ in batch))
        self.log.close()

    async def snapshot(self) -> None:
        """A fuzzy snapshot, a chunk per step, so requests keep flowing between chunks."""
        self.snapshotting = True
        try:
            writer = snapmod.SnapshotWriter(self.server.engine.tree, self.server.wall())
            path = os.path.join(self.snap_dir, snapmod.snapshot_name(writer.zxid))
            f = await trio.to_thread.run_sync(self.disk.open_log, path + ".tmp")
            for chunk in writer.chunks():
                await trio.to_thread.run_sync(f.write, chunk)
            await trio.to_thread.run_sync(snapmod.finish, self.disk, f, path)
            self.last_snapshot_zxid = writer.zxid
            log.info("snapshot %s written", path)
        finally:
            self.snapshotting = False
