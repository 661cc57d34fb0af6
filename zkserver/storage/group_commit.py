"""Group commit: the one writer of transactions to the log, for both commit paths.

Each round takes *everything* queued since the last one and writes it with one write and one
sync: the event loop keeps reading and answering meanwhile, and the next round's batch grows
while this sync runs. Where Linux native AIO can sync (`kernel_sync`), a round that fits the
log segment's reserved space is handed to the kernel from the loop, with no thread to hand
over to: one direct synchronous write where the file system allows (storage/direct_tail.py),
else a buffered write into allocated space and its fdatasync; any other round (a new segment,
more space, another OS) is written and synced in the log's own thread (`log_thread`). After the
sync it reports the round as durable (`on_durable`): a standalone server then applies and
answers, an ensemble member tells ZAB what it has logged. Operations that rewrite the log (an
ensemble's truncation, a snapshot install) queue behind the appends before them (`then`), so
the disk sees everything in the order it was asked for. After each round the snapshot policy
may roll the log and start a snapshot; that runs in the background and never holds up the
next round.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

import outcome
import trio

from zkserver.storage.kernel_sync import KernelSync
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


def _nothing() -> None:
    pass


def _nothing_back(_: outcome.Outcome[None]) -> None:
    pass


class GroupCommitter(Generic[T]):
    """Makes queued records durable a round at a time.

    `T` is whatever the caller wants back with its transaction (the standalone server queues
    (txn, client, entry) so it can answer after the sync); `txn_of` finds the transaction.

    A round starts where records arrive (`append`) when none is under way, and ends in the
    callback the log thread's result comes back to, which starts the next one: no task wakes
    up in between, one scheduling pass per round instead of three. The task `run` owns the
    thread, the snapshots and the operations (`then`), which need to await.
    """

    def __init__(self, txnlog: TxnLog, snapshots: SnapshotPolicy,
                 on_durable: Callable[[list[T]], None], txn_of: Callable[[T], Txn]) -> None:
        self.log = txnlog
        self.snapshots = snapshots
        self.on_durable = on_durable
        self.txn_of = txn_of
        self.queue: deque[T | _Op] = deque()
        self.thread = LogThread()
        self._open = False  # `run` is up: rounds may start
        self._in_round = False  # a round's write is in the thread, or its callback runs
        self._in_op = False  # the task runs an operation
        self._wake = trio.Event()  # the task has something to do (an operation, a failure)
        self._failure: BaseException | None = None
        self._kernel: KernelSync | None = None  # while `run` is up, where AIO can sync
        self._syncing: list[T] | None = None  # the round the kernel is syncing
        self._sync_began = 0.0

    def append(self, records: Iterable[T]) -> None:
        """Queue records for the next round."""
        self.queue.extend(records)
        self._next()

    def then(self, op: Callable[[], Awaitable[None]]) -> None:
        """Run `op` once everything queued before it is durable, and before anything after."""
        self.queue.append(_Op(op))
        self._next()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        with self.thread.running():
            self._kernel = KernelSync.open()
            try:
                async with trio.open_nursery() as nursery:
                    self.snapshots.nursery = nursery
                    if self._kernel is not None:
                        nursery.start_soon(self._reap, self._kernel)
                    self._open = True
                    task_status.started()
                    self._next()  # what was queued before the start
                    while True:
                        await self._wake.wait()
                        self._wake = trio.Event()
                        if self._failure is not None:
                            raise self._failure
                        while not self._in_round and self.queue and type(self.queue[0]) is _Op:
                            op = self.queue.popleft()
                            self._in_op = True
                            try:
                                await op.run()  # type: ignore[union-attr]
                            finally:
                                self._in_op = False
                        self._next()
            finally:
                self._open = False
                with trio.CancelScope(shield=True):
                    if self._kernel is not None:
                        if self._syncing is not None:  # the round the kernel syncs still counts
                            await self._reaped(self._kernel)
                        self._kernel.close()
                        # io_destroy waits out an RCU grace period (32 ms measured here):
                        # off the loop, and nothing needs to wait for it
                        trio.lowlevel.start_thread_soon(self._kernel.destroy, _nothing_back)
                        self._kernel = None
                    # The thread runs jobs in order and their callbacks come back in order:
                    # once this no-op is back, a round that was under way has been reported.
                    await self.thread.call(_nothing)
                    await self.thread.call(self._flush_on_exit)

    def _next(self) -> None:
        """Start what the head of the queue asks for, unless something is under way: a round
        of the appends there, or (through the task) an operation."""
        if not self._open or self._in_round or self._in_op or not self.queue:
            return
        if type(self.queue[0]) is _Op:
            self._wake.set()
            return
        batch = self._appends()
        txns = [self.txn_of(r) for r in batch]
        data = encode_batch(txns)
        self._in_round = True
        if self._kernel is not None:
            try:
                job = self.log.write_unsynced(data)
                if job is not None:
                    self._kernel.submit(job)
            except OSError as e:  # as a failed append in the thread: the task raises it
                self._round_done(batch, outcome.Error(e))
                return
            if job is not None:
                self._syncing = batch
                self._sync_began = time.monotonic()
                return
        self.thread.submit(self.log.append, (txns[0].zxid, data),
                           lambda result: self._round_done(batch, result))

    async def _reap(self, kernel: KernelSync) -> None:
        """Report each round the kernel has synced (one at a time: a round starts only when
        the last one is done)."""
        while True:
            await self._reaped(kernel)

    async def _reaped(self, kernel: KernelSync) -> None:
        """Wait for the kernel's sync of the round under way, and finish that round."""
        result: outcome.Outcome[None]
        while True:
            await trio.lowlevel.wait_readable(kernel.fileno)
            try:
                if not kernel.done():
                    continue
                result = outcome.Value(None)
            except OSError as e:
                result = outcome.Error(e)
            break
        batch, self._syncing = self._syncing, None
        if batch is None:
            return
        self.log.synced((time.monotonic() - self._sync_began) * 1000)
        self._round_done(batch, result)

    def _round_done(self, batch: list[T], result: outcome.Outcome[None]) -> None:
        """The round's write came back (on the event loop, outside any task): report it
        durable, roll the log if the snapshot policy says so, and start the next round. A
        failure goes to the task, which raises it."""
        try:
            result.unwrap()
            for _ in batch:
                self.queue.popleft()
            self.on_durable(batch)  # may append more: they wait for the roll below
            if self.snapshots.logged(len(batch)):
                self.log.roll()
                self.snapshots.start()
        except BaseException as e:  # noqa: BLE001 (raised again in the task that owns us)
            self._failure = e
            self._wake.set()
            return
        finally:
            self._in_round = False
        self._next()

    def _appends(self) -> list[T]:
        """The records at the head of the queue, up to the first operation. They leave the
        queue only once written, so that a shutdown mid-round still logs them."""
        batch: list[T] = []
        for item in self.queue:
            if type(item) is _Op:
                break
            batch.append(item)  # type: ignore[arg-type]
        return batch

    def _flush_on_exit(self) -> None:
        """On shutdown, log the appends still queued; none of them was answered or acked."""
        batch = self._appends()
        if batch:
            txns = [self.txn_of(r) for r in batch]
            self.log.append(txns[0].zxid, encode_batch(txns))
        self.log.close()

