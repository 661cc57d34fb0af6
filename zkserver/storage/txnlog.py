"""The transaction log: append-only segment files of checked, cbor-encoded transactions.

A segment is named for the first zxid it holds (`log.<zxid as 16 hex digits>`) and starts with a
magic line. The server appends a whole group of transactions with one write and one sync
(`append`), from a worker thread, while the event loop goes on serving. Space is reserved ahead
(`preAllocSize`), so a sync (fdatasync) need not touch the file's metadata.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from zkserver import txn as txnmod
from zkserver.storage.files import Disk, LogFile, SimDisk
from zkserver.storage.framing import CorruptFile, Scan, frame
from zkserver.storage.kernel_sync import Job, Sync

MAGIC = b"ZKSLOG1\n"
PREFIX = "log."


def segment_name(first_zxid: int) -> str:
    return f"{PREFIX}{first_zxid:016x}"


def segments(disk: Disk | SimDisk, log_dir: str) -> list[tuple[int, str]]:
    """(first zxid, path) of every segment, oldest first."""
    out = []
    for name in disk.listdir(log_dir):
        if name.startswith(PREFIX) and not name.endswith(".tmp"):
            try:
                out.append((int(name[len(PREFIX):], 16), os.path.join(log_dir, name)))
            except ValueError:
                continue
    return sorted(out)


def encode_batch(txns: Iterable[txnmod.Txn]) -> bytes:
    return b"".join(frame(txnmod.encode(t)) for t in txns)


class TxnLog:
    """The writing end. Not thread-safe: one owner (the committer) calls it."""

    def __init__(self, disk: Disk | SimDisk, log_dir: str, pre_alloc: int = 64 << 20,
                 force_sync: bool = True) -> None:
        self.disk = disk
        self.dir = log_dir
        self.pre_alloc = pre_alloc
        self.force_sync = force_sync
        self.file: LogFile | None = None
        self.pos = 0
        self.allocated = 0
        disk.makedirs(log_dir)

    def append(self, first_zxid: int, data: bytes) -> None:
        """Write a batch (starting at `first_zxid`) and make it durable. Blocking."""
        if self.file is None:
            path = os.path.join(self.dir, segment_name(first_zxid))
            self.file = self.disk.open_log(path)
            self.file.truncate(0)  # a leftover with this name holds nothing recovery kept
            self.file.write(MAGIC)
            self.pos = len(MAGIC)
            self.allocated = 0
            self.disk.sync_dir(self.dir)
        end = self.pos + len(data)
        if self.pre_alloc and end > self.allocated:
            while self.allocated < end:
                self.allocated += self.pre_alloc
            self.file.allocate(self.allocated)
        self.file.write(data)
        self.pos = end
        if self.force_sync:
            self.file.sync()

    def write_unsynced(self, data: bytes) -> Job | None:
        """Stage a batch in the open segment's reserved space and return what the kernel is
        to do to make it durable (storage/kernel_sync.py), if that is all it takes: nothing
        here waits on the disk, so the committer may call this on the event loop. Where the
        file system takes direct I/O, the batch is staged as one O_DIRECT|O_DSYNC write
        (`Write`, storage/direct_tail.py); elsewhere it is written, buffered, into space
        already allocated, and the job is its fdatasync (`Sync`). None, having written
        nothing, when the batch needs a new segment or more space, the log is not synced
        (forceSync=no) or the file is not a real one: `append` (in the log thread) does
        those."""
        fd = getattr(self.file, "fd", None)
        end = self.pos + len(data)
        if fd is None or not self.force_sync or (self.pre_alloc and end > self.allocated):
            return None
        job: Job | None = self.file.stage_direct(data)  # type: ignore[union-attr]
        if job is None:
            self.file.write(data)  # type: ignore[union-attr]
            job = Sync(fd)
        self.pos = end
        return job

    def synced(self, ms: float) -> None:
        """A sync of what `write_unsynced` wrote took `ms` (the kernel did it, so nothing here
        timed it). Kept by the metrics wrapper (`fsynctime`); nothing to do here."""

    def roll(self) -> None:
        """The next append starts a new segment (after a snapshot, so old ones can be purged)."""
        if self.file is not None:
            self.file.truncate(self.pos)
            if self.force_sync:
                self.file.sync()
            self.file.close()
            self.file = None

    close = roll


def read_segment(disk: Disk | SimDisk, path: str) -> tuple[Scan, Iterator[txnmod.Txn]]:
    """A scan of one segment and the transactions in it (decoded lazily, in order)."""
    data = disk.read(path)
    if not data.startswith(MAGIC):
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            scan = Scan(path, data, len(data))  # torn in its first write
            scan.torn = True
            return scan, iter(())
        raise CorruptFile(path, 0, "not a zkserver transaction log (bad magic)")
    scan = Scan(path, data, len(MAGIC))

    def txns() -> Iterator[txnmod.Txn]:
        for off, payload in scan:
            try:
                yield txnmod.decode(payload)
            except Exception as e:  # a checksummed record that does not decode
                raise CorruptFile(path, off, f"undecodable transaction: {e}") from e

    return scan, txns()
