"""A snapshot written by a forked child process, so the server's event loop pays only the fork.

Serialising the tree is CPU work under the GIL: written a chunk at a time on the event loop
(the fuzzy way, `SnapshotWriter`), it took 13% of a standalone server's CPU under a create
load, time no request was served. A forked child gets a copy-on-write image of the tree as it
is at the fork and serialises it on another core: the snapshot is exact (no longer fuzzy), and
the parent goes on serving. Redis takes its RDB snapshots the same way.

What it costs, and how the child stays out of the parent's way:

- **The fork** copies the page tables, once per snapshot: 4-9 ms for a 270 MB process here.
- **Memory.** Reading an object in Python writes its reference count, so the pages the child
  walks are copied as it goes: while a snapshot is written the two processes together hold up
  to twice the tree. The copies go when the child exits.
- **Descriptors.** The child closes every inherited descriptor but stdin, stdout and stderr
  first: a client's socket the parent closes must close for the client at once, not when the
  child exits.
- **Signals and orphans.** The child takes SIGINT and SIGTERM as the default (it dies), no
  longer writes Trio's wake-up descriptor, and asks the kernel to kill it if the server dies
  (`PR_SET_PDEATHSIG`), so a server killed with -9 leaves no child writing behind it.
- **Nothing shared is touched.** The child only reads the tree, encodes, writes and syncs its
  own file, then leaves with `os._exit` (no finalizers, no atexit hooks, no logging, whose locks
  another thread may have held at the fork). Its failure reaches the parent as its exit status,
  with a traceback on stderr.

Linux only (pidfd, prctl); elsewhere, and on a simulated disk, snapshots are written the fuzzy
way.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
import traceback

import trio

from zkserver.storage import snapshot as snapmod
from zkserver.storage.files import Disk
from zkserver.tree.datatree import DataTree

_PR_SET_PDEATHSIG = 1
CHUNK = 10_000  # nodes per record: nothing else runs in the child, so fewer, larger records


def available(disk: object) -> bool:
    """True when a snapshot onto `disk` can be written by a forked child."""
    return type(disk) is Disk and sys.platform == "linux" and hasattr(os, "pidfd_open")


async def write(tree: DataTree, now: int, path: str) -> int:
    """Write a complete, synced snapshot of `tree` as it is now to `path`.tmp; its zxid.

    Cancelled, the child is killed and reaped before this returns (its file is left behind, as
    after a crash). A child that fails raises OSError naming the file."""
    zxid = tree.last_zxid
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (runs in the child, which leaves with os._exit)
        _child(tree, now, path, parent)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # out of descriptors, say: the child must not outlive this call
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    try:
        try:
            await trio.lowlevel.wait_readable(pidfd)
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            with trio.CancelScope(shield=True):
                await trio.lowlevel.wait_readable(pidfd)
            raise
        finally:
            _, status = os.waitpid(pid, 0)  # it has exited: this only reaps it
    finally:
        os.close(pidfd)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise OSError(f"snapshot {path}.tmp: the writing child exited with status {code}")
    return zxid


def _child(tree: DataTree, now: int, path: str, parent: int) -> None:  # pragma: no cover
    code = 1
    try:
        gc.disable()  # a collection would walk (and so copy) every object in the heap
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the server died before the prctl
            os._exit(1)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        f = snapmod.open_tmp(Disk(), path)
        for chunk in snapmod.SnapshotWriter(tree, now, CHUNK, frozen=True).chunks():
            f.write(chunk)
        f.sync()
        f.close()
        code = 0
    except BaseException:  # noqa: BLE001 (reported through the exit status)
        os.write(2, f"snapshot {path}.tmp: {traceback.format_exc()}".encode())
    finally:
        os._exit(code)
