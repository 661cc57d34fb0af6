"""Write-behind for a big file written front to back (a snapshot): each window's writeback
starts as soon as it is written, and the writer waits for the window before last, so the page
cache holds a few windows of the file at most and the closing fsync has little left to do.

Why: a snapshot written into the page cache and fsynced at the end reaches the disk in bursts
(the kernel's own writeback, then the fsync), and the log's small synchronous writes, each a
device cache flush, queue behind them. Measured on the 2-core CI machine (ext4 on a virtio
disk), 512 MB written in 1 MiB writes while another process made 4 KiB O_DIRECT|O_DSYNC
writes as the log does, 700 a second: written plainly, the log writes stalled up to 85-112
ms, with a 0.3 s fsync at the end in which the file's size no longer changes; written behind
in 16 MiB windows, up to 54 ms, with a per-second p99 of 24 ms (each flush waits for a whole
window); in 1 MiB windows, a p99 of 1.6-1.9 ms (7.3-7.5 plainly). The file was durable in
0.3-0.4 s either way. In a server with 10,000,000 znodes (1.5 GB snapshots, 16 MiB
windows) the mixed load's p99 outside snapshots went from 395 to 60 ms: the slow replies had
come during the closing fsync. PostgreSQL (checkpoint_flush_after) and RocksDB
(bytes_per_sync) do the same.

`sync_file_range` has no binding in the standard library: the call goes through `ctypes`,
and where it is missing (not Linux) `WriteBehind.open` returns None and writes are left to
the kernel, as they are from the first call a file system refuses (`_REFUSED`). Any other
failure (EIO, ENOSPC) is the file's, and raises as the write or the fsync would.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable

WINDOW = 1 << 20
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4
_REFUSED = {errno.EINVAL, errno.ESPIPE, errno.EOPNOTSUPP, errno.ENOSYS}


def _libc_call() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    call.restype = ctypes.c_int
    return call


_sync_file_range = _libc_call()


class WriteBehind:
    """Follows one file descriptor's writes (`written(upto)`: the file holds its bytes up to
    `upto`, written in order from `start`)."""

    def __init__(self, fd: int, start: int, window: int) -> None:
        self.fd = fd
        self.window = window
        self.started = start  # writeback asked for up to here
        self.waited = start  # and waited for up to here
        self.refused = False  # the file system does not do it: leave it to the kernel

    @classmethod
    def open(cls, fd: int, start: int = 0, window: int = WINDOW) -> WriteBehind | None:
        return None if _sync_file_range is None else cls(fd, start, window)

    def written(self, upto: int) -> None:
        window = self.window
        while upto - self.started >= window and not self.refused:
            self._call(self.started, window, _WRITE)
            self.started += window
            if self.started - self.waited > 2 * window:
                self._call(self.waited, window, _WAIT_BEFORE | _WRITE | _WAIT_AFTER)
                self.waited += window

    def _call(self, offset: int, length: int, flags: int) -> None:
        assert _sync_file_range is not None
        if _sync_file_range(self.fd, offset, length, flags) != 0:
            err = ctypes.get_errno()
            if err in _REFUSED:
                self.refused = True
                return
            raise OSError(err, f"sync_file_range: {os.strerror(err)}")
