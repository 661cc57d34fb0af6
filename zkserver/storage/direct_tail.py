"""Appends written with O_DIRECT|O_DSYNC: the write itself is the sync.

Why: the group committer's round on the event loop was a buffered write followed by an AIO
fdatasync (storage/kernel_sync.py), which a kernel worker runs: it finds the dirty page, writes
it back and flushes the device cache. Written directly, with O_DSYNC, the block goes to the
device from the submitting call and completes durable, and no page cache is involved. Measured
on the 2-core CI machine (ext4, a 150-byte append per round, the file extended as a hole as
the log does): one writer, p50 113-133 -> 94 µs per round and 92-105 -> 70-72 µs of machine
CPU (the kernel workers included); three writers at once (an ensemble on one machine), p50
149-162 -> 116-120 µs. In a server: a standalone one's sequential write latency p50 0.288
-> 0.270 ms (median of three alternating runs); in a 3-server ensemble the kernel workers' CPU
per replicated write fell from 155 to 61-70 µs while the members' own system time rose by
about as much (the submitting call now does the block I/O), 2-3% less CPU in all and the same
p50 (bench/member_cpu.py).

Direct I/O moves whole blocks from aligned memory, so this keeps the segment's last, partly
written block in a page-aligned buffer (an anonymous mmap) and writes it again, with the new
records after its old ones, at each append: what a buffered write does to the page too. The
bytes after the records in that block are zeros, as the hole the log reserved reads.

A `DirectTail` belongs to one open segment (`RealLogFile`), which tells it when anything else
wrote or cut the file (`forget`): the next append then reads the block back first.
"""

from __future__ import annotations

import ctypes
import mmap
import os

from zkserver.storage.kernel_sync import Write

BLOCK = 4096  # a multiple of every logical block size direct I/O asks alignment to


class DirectTail:
    """The aligned buffer and the O_DIRECT|O_DSYNC descriptor of one segment's appends."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = mmap.mmap(-1, 1 << 16)
        self._anchor = ctypes.c_char.from_buffer(self._buf)  # pins the buffer's address
        self._base = -1  # the file offset of the buffer's first byte; -1: nothing loaded
        self._end = 0  # the file offset the buffer's data ends at

    @classmethod
    def open(cls, path: str) -> DirectTail | None:
        """A DirectTail for the file at `path`, or None where direct I/O is refused (tmpfs,
        some other file systems and platforms): appends then take the buffered path."""
        flags = getattr(os, "O_DIRECT", 0)
        if not flags:
            return None
        try:
            return cls(os.open(path, os.O_RDWR | flags | os.O_DSYNC))
        except OSError:
            return None

    def forget(self) -> None:
        """The file changed behind us (a buffered write, a truncation): read the tail again."""
        self._base = -1

    def stage(self, pos: int, data: bytes) -> Write:
        """Put `data` at file offset `pos` in the buffer, after the block's earlier bytes, and
        return the aligned write for the kernel to do (`kernel_sync.Write`). The
        buffer must stay as it is until that write completes: the committer stages the next
        append only after the last one is durable."""
        block = pos - pos % BLOCK
        head = pos - block
        end = head + len(data)
        size = end + (-end) % BLOCK
        if 0 <= self._base <= block and pos == self._end:
            if block > self._base:  # the last write's final block comes to the front
                at = block - self._base
                self._buf[:head] = self._buf[at:at + head]
        else:
            self._load(block, head)
        if size > len(self._buf):
            self._grow(size, head)
        buf = self._buf
        buf[head:end] = data
        buf[end:size] = bytes(size - end)
        self._base, self._end = block, pos + len(data)
        return Write(self.fd, ctypes.addressof(self._anchor), size, block)

    def _load(self, block: int, head: int) -> None:
        """Read the block at `block` (its first `head` bytes are the file's) into the buffer."""
        self._base = -1
        if head:
            got = os.preadv(self.fd, [memoryview(self._buf)[:BLOCK]], block)
            if got < head:
                raise OSError(5, f"log tail: read {got} of {head} bytes at offset {block}")

    def _grow(self, size: int, head: int) -> None:
        """A buffer for a batch of `size` bytes (whole blocks), the first `head` kept."""
        bigger = mmap.mmap(-1, size + (-size) % mmap.PAGESIZE)
        bigger[:head] = self._buf[:head]
        del self._anchor
        self._buf.close()
        self._buf = bigger
        self._anchor = ctypes.c_char.from_buffer(bigger)

    def close(self) -> None:
        os.close(self.fd)
        del self._anchor
        self._buf.close()
