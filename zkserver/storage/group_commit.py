"""Group commit: the one task that writes transactions to the log, for both commit paths.

Each round takes *everything* queued since the last one and writes it with one write and one
sync in the log's own thread (`log_thread`): the event loop keeps reading and answering
meanwhile, and the next round's batch grows while this sync runs. After the sync it reports
the round as durable (`on_durable`): a standalone server then applies and answers, an ensemble
member tells ZAB what it has logged. Operations that rewrite the log (an ensemble's truncation,
a snapshot install) queue behind the appends before them (`then`), so the disk sees everything
in the order it was asked for. After each round the snapshot policy may roll the log and start a
snapshot; that runs in the background and never holds up the next round.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

import trio

from zkserver.storage.log_thread import LogThread
from zkserver.storage.snapshot_policy import SnapshotPolicy
from zkserver.storage.txnlog import TxnLog, encode_batch
from zkserver.txn import Txn

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Op:
    """An ordered operation on the log's files, run between two rounds of appends."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[[], Awaitable[None]]) -> None:
        self.run = run


class GroupCommitter(Generic[T]):
    """Makes queued records durable a round at a time.

    `T` is whatever the caller wants back with its transaction (the standalone server queues
    (txn, client, entry) so it can answer after the sync); `txn_of` finds the transaction.
    """

    def __init__(self, txnlog: TxnLog, snapshots: SnapshotPolicy,
                 on_durable: Callable[[list[T]], None], txn_of: Callable[[T], Txn]) -> None:
        self.log = txnlog
        self.snapshots = snapshots
        self.on_durable = on_durable
        self.txn_of = txn_of
        self.queue: deque[T | _Op] = deque()
        self._wake = trio.Event()
        self.thread = LogThread()

    def append(self, records: Iterable[T]) -> None:
        """Queue records for the next round."""
        self.queue.extend(records)
        self._wake.set()

    def then(self, op: Callable[[], Awaitable[None]]) -> None:
        """Run `op` once everything queued before it is durable, and before anything after."""
        self.queue.append(_Op(op))
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        with self.thread.running():
            try:
                async with trio.open_nursery() as nursery:
                    self.snapshots.nursery = nursery
                    task_status.started()
                    while True:
                        await self._wake.wait()
                        self._wake = trio.Event()
                        while self.queue:
                            head = self.queue[0]
                            if type(head) is _Op:
                                self.queue.popleft()
                                await head.run()
                                continue
                            await self._round()
            finally:
                with trio.CancelScope(shield=True):
                    await self.thread.call(self._flush_on_exit)

    def _appends(self) -> list[T]:
        """The records at the head of the queue, up to the first operation. They leave the
        queue only once written, so that a shutdown mid-round still logs them."""
        batch: list[T] = []
        for item in self.queue:
            if type(item) is _Op:
                break
            batch.append(item)  # type: ignore[arg-type]
        return batch

    async def _round(self) -> None:
        batch = self._appends()
        txns = [self.txn_of(r) for r in batch]
        data = encode_batch(txns)
        await self.thread.call(self.log.append, txns[0].zxid, data)
        for _ in batch:
            self.queue.popleft()
        self.on_durable(batch)
        if self.snapshots.logged(len(txns)):
            self.log.roll()
            self.snapshots.start()

    def _flush_on_exit(self) -> None:
        """On shutdown, log the appends still queued; none of them was answered or acked."""
        batch = self._appends()
        if batch:
            txns = [self.txn_of(r) for r in batch]
            self.log.append(txns[0].zxid, encode_batch(txns))
        self.log.close()

