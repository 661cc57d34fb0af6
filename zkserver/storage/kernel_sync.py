"""fdatasync without a thread: Linux native AIO (`IOCB_CMD_FDSYNC`), completion on an eventfd.

Why: the group committer's sync ran in the log thread, and every round paid for handing the
interpreter lock back and forth. Measured on the 2-core CI machine with three ensemble members
and a client: the thread took a median 60–225 µs to start a round after it was queued and
another 60–90 µs to get its result back to the event loop, and each member spent about 110 µs
of CPU per round in that thread, against 160 µs for the fdatasync itself. Handed to the kernel
instead, the sync runs in a kernel worker; the event loop only submits it and reads an eventfd
when it is done: a write plus sync round trip went from 173–211 µs to 117–131 µs, and the
process's CPU per round from 112–130 µs to 64–68 µs (`IOCB_CMD_FDSYNC` exists since Linux
4.18).

Where the file system takes direct I/O, the round is not a buffered write plus this sync at
all but one O_DIRECT|O_DSYNC write, submitted here the same way (`Write`; the log stages it,
storage/direct_tail.py): durable when it completes, with no page to write back.

The calls go through `ctypes` to the raw syscalls (the standard library has no binding);
`open()` returns None wherever that is not possible (another OS or architecture, no AIO
quota), and the committer keeps using the log thread.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import NamedTuple

# io_setup, io_destroy, io_getevents, io_submit
_SYSCALLS = {"x86_64": (206, 207, 208, 209), "aarch64": (0, 1, 4, 2)}
_IOCB_CMD_PWRITE = 1
_IOCB_CMD_FDSYNC = 3
_IOCB_FLAG_RESFD = 1  # signal completion on `aio_resfd` (an eventfd)
_MAX_EVENTS = 4


class _IOCB(ctypes.Structure):
    """`struct iocb` of <linux/aio_abi.h> (little-endian layout: key, then rw_flags)."""

    _fields_ = [("aio_data", ctypes.c_uint64), ("aio_key", ctypes.c_uint32),
                ("aio_rw_flags", ctypes.c_int32), ("aio_lio_opcode", ctypes.c_uint16),
                ("aio_reqprio", ctypes.c_int16), ("aio_fildes", ctypes.c_uint32),
                ("aio_buf", ctypes.c_uint64), ("aio_nbytes", ctypes.c_uint64),
                ("aio_offset", ctypes.c_int64), ("aio_reserved2", ctypes.c_uint64),
                ("aio_flags", ctypes.c_uint32), ("aio_resfd", ctypes.c_uint32)]


class _Event(ctypes.Structure):
    """`struct io_event`: `res` is what fdatasync returned (0, or minus an errno)."""

    _fields_ = [("data", ctypes.c_uint64), ("obj", ctypes.c_uint64),
                ("res", ctypes.c_int64), ("res2", ctypes.c_int64)]


class Sync(NamedTuple):
    """fdatasync `fd` (what was written to it, buffered, is then durable)."""

    fd: int


class Write(NamedTuple):
    """Write `length` bytes at `address` to `fd` at `offset`; `fd` is O_DIRECT|O_DSYNC, so
    the write is durable when it completes. All three aligned as direct I/O requires."""

    fd: int
    address: int
    length: int
    offset: int


Job = Sync | Write


class KernelSync:
    """One AIO context and its eventfd; one job in flight at a time (the committer's round)."""

    def __init__(self, libc: ctypes.CDLL, numbers: tuple[int, int, int, int]) -> None:
        self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long
        self._setup, self._destroy, self._getevents, self._submit = numbers
        self._ctx = ctypes.c_ulong(0)
        if self._syscall(self._setup, ctypes.c_uint(_MAX_EVENTS), ctypes.byref(self._ctx)) < 0:
            raise OSError(ctypes.get_errno(), "io_setup")
        try:
            self.fileno = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        except OSError:
            self._syscall(self._destroy, self._ctx)
            raise
        self._iocb = _IOCB()
        self._iocbs = (ctypes.POINTER(_IOCB) * 1)(ctypes.pointer(self._iocb))
        self._events = (_Event * _MAX_EVENTS)()
        self._length = 0  # bytes the submitted job writes (0: a sync, which returns 0)

    @classmethod
    def open(cls) -> KernelSync | None:
        """A KernelSync, or None where native AIO cannot sync (the log thread then does)."""
        numbers = _SYSCALLS.get(platform.machine())
        if numbers is None or not hasattr(os, "eventfd"):
            return None
        try:
            return cls(ctypes.CDLL(None, use_errno=True), numbers)
        except OSError:
            return None

    def submit(self, job: Job) -> None:
        """Start `job` (an fdatasync, or a direct synchronous write); `fileno` turns readable
        when it is done."""
        cb = self._iocb
        ctypes.memset(ctypes.addressof(cb), 0, ctypes.sizeof(cb))
        cb.aio_fildes = job.fd
        cb.aio_flags = _IOCB_FLAG_RESFD
        cb.aio_resfd = self.fileno
        if type(job) is Write:
            cb.aio_lio_opcode = _IOCB_CMD_PWRITE
            cb.aio_buf = job.address
            cb.aio_nbytes = self._length = job.length
            cb.aio_offset = job.offset
        else:
            cb.aio_lio_opcode = _IOCB_CMD_FDSYNC
            self._length = 0
        if self._syscall(self._submit, self._ctx, ctypes.c_long(1), self._iocbs) != 1:
            raise OSError(ctypes.get_errno(), f"io_submit ({type(job).__name__.lower()})")

    def done(self) -> bool:
        """Whether the submitted job finished: True (durable), False (not yet), or raises the
        OSError it failed with. Call when `fileno` is readable."""
        try:
            os.eventfd_read(self.fileno)
        except BlockingIOError:
            return False
        n = self._syscall(self._getevents, self._ctx, ctypes.c_long(1),
                          ctypes.c_long(_MAX_EVENTS), self._events, None)
        if n < 0:
            raise OSError(ctypes.get_errno(), "io_getevents")
        res = self._events[0].res
        if res < 0:
            raise OSError(-res, os.strerror(-res))
        if res != self._length:  # a write that stopped short (a full disk): not durable
            raise OSError(5, f"log write: {res} of {self._length} bytes written")
        return True

    def close(self) -> None:
        """Close the eventfd now (the caller's thread: a descriptor closed later from another
        thread could by then be someone else's, reused) and give back the AIO context, which
        waits for a sync still in flight and for an RCU grace period (about 30 ms): the
        committer does that in a thread of its own (`destroy`)."""
        os.close(self.fileno)

    def destroy(self) -> None:
        """io_destroy: blocks for about 30 ms. After `close`, from any thread."""
        self._syscall(self._destroy, self._ctx)
