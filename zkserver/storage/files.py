"""The only place zkserver touches files, so tests can put a faulty disk underneath.

`Disk` is the real thing (os calls; blocking, so the server calls it from a worker thread, but
for a log append into reserved space, which the group committer has the kernel write directly:
`RealLogFile.stage_direct`, storage/direct_tail.py).
`SimDisk` is an in-memory disk that remembers which bytes of each file are durable (fsynced)
and can *crash*: unsynced data is lost, or survives only in part (a torn write), exactly the
failures a transaction log must survive. A `fault` hook lets a test fail any step (before or
after a write, before or after a sync) to simulate a crash at that point.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Protocol

from zkserver.storage.direct_tail import DirectTail
from zkserver.storage.kernel_sync import Write
from zkserver.storage.write_behind import WriteBehind


class Crash(Exception):
    """Raised by a fault hook: the process 'dies' at this point."""


class LogFile(Protocol):
    """A file opened for appending."""

    def write(self, data: bytes) -> None: ...
    def sync(self) -> None: ...
    def allocate(self, size: int) -> None: ...
    def truncate(self, size: int) -> None: ...
    def close(self) -> None: ...
    def stream(self) -> None: ...


class Disk:
    """The real file system."""

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def listdir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except FileNotFoundError:
            return []

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def remove(self, path: str) -> None:
        os.remove(path)

    def truncate(self, path: str, size: int) -> None:
        with open(path, "r+b") as f:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())

    def open_log(self, path: str) -> RealLogFile:
        return RealLogFile(path)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def sync_dir(self, path: str) -> None:
        fd = os.open(path or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class RealLogFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.pos = os.lseek(self.fd, 0, os.SEEK_END)
        self.direct: DirectTail | None = None  # opened by the first `stage_direct`
        self.no_direct = False  # direct I/O was refused here: don't ask again
        self.behind: WriteBehind | None = None  # see `stream`

    def stream(self) -> None:
        """This file is written front to back in one go (a snapshot): have the kernel write
        it back as it grows (storage/write_behind.py)."""
        self.behind = WriteBehind.open(self.fd, self.pos)

    def stage_direct(self, data: bytes) -> Write | None:
        """Stage an append of `data` as a direct, synchronous write (storage/direct_tail.py)
        and count it written; the caller has the kernel do it (AIO). None where the file
        system refuses direct I/O."""
        if self.direct is None:
            if self.no_direct:
                return None
            self.direct = DirectTail.open(self.path)
            if self.direct is None:
                self.no_direct = True
                return None
        job = self.direct.stage(self.pos, data)
        self.pos += len(data)
        return job

    def write(self, data: bytes) -> None:
        if self.direct is not None:
            self.direct.forget()
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, self.pos)
            self.pos += n
            view = view[n:]
        if self.behind is not None:
            self.behind.written(self.pos)

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def allocate(self, size: int) -> None:
        """Extend the file to `size` ahead of the writes, so that a sync need not update its
        size. The extension is a hole, as ZooKeeper's padding makes it (on an idle ext4 disk
        fdatasync after a 120-byte append costs the same, 0.08 ms, into a hole as into
        posix_fallocate'd blocks)."""
        if os.fstat(self.fd).st_size < size:
            os.ftruncate(self.fd, size)

    def truncate(self, size: int) -> None:
        if self.direct is not None:
            self.direct.forget()
        os.ftruncate(self.fd, size)
        self.pos = min(self.pos, size)
        if self.behind is not None:
            self.stream()  # a fresh start at the new end

    def close(self) -> None:
        if self.direct is not None:
            self.direct.close()
            self.direct = None
        os.close(self.fd)


class _SimFile:
    """`durable` is what a crash leaves; `pending` the writes since the last sync, in order."""

    __slots__ = ("data", "durable", "pending")

    def __init__(self) -> None:
        self.data = bytearray()
        self.durable = bytearray()
        self.pending: list[tuple[int, bytes]] = []

    def synced(self) -> None:
        self.durable = bytearray(self.data)
        self.pending.clear()

    def cut(self, size: int) -> None:
        """A truncate: the new size is durable at once; unsynced writes past it are gone."""
        del self.data[size:]
        del self.durable[size:]
        self.pending = [(o, c[:size - o]) for o, c in self.pending if o < size]


class SimDisk:
    """An in-memory disk with crashes. Directory operations are atomic and durable."""

    def __init__(self, seed: int = 0) -> None:
        self.files: dict[str, _SimFile] = {}
        self.fault: Callable[[str, str], None] = lambda step, path: None
        self.rng = random.Random(seed)

    def _hook(self, step: str, path: str) -> None:
        self.fault(step, path)

    def makedirs(self, path: str) -> None:
        pass

    def listdir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted(p[len(prefix):] for p in self.files
                      if p.startswith(prefix) and "/" not in p[len(prefix):])

    def exists(self, path: str) -> bool:
        return path in self.files

    def read(self, path: str) -> bytes:
        if path not in self.files:
            raise FileNotFoundError(path)
        return bytes(self.files[path].data)

    def size(self, path: str) -> int:
        return len(self.files[path].data)

    def remove(self, path: str) -> None:
        del self.files[path]

    def truncate(self, path: str, size: int) -> None:
        self.files[path].cut(size)

    def open_log(self, path: str) -> SimLogFile:
        f = self.files.setdefault(path, _SimFile())
        return SimLogFile(self, path, f)

    def rename(self, src: str, dst: str) -> None:
        self._hook("before-rename", dst)
        self.files[dst] = self.files.pop(src)

    def sync_dir(self, path: str) -> None:
        pass

    def crash(self, torn: bool = False) -> None:
        """Lose every unsynced write; with `torn`, a random prefix of them survives, the last
        of those possibly only in part (a torn write)."""
        for f in self.files.values():
            data = bytearray(f.durable)
            if torn and f.pending:
                keep = self.rng.randrange(len(f.pending) + 1)
                for i, (off, chunk) in enumerate(f.pending[:keep]):
                    if i == keep - 1:
                        chunk = chunk[:self.rng.randrange(len(chunk) + 1)]
                    end = off + len(chunk)
                    if len(data) < end:
                        data.extend(b"\0" * (end - len(data)))
                    data[off:end] = chunk
            f.data = data
            f.synced()


class SimLogFile:
    def __init__(self, disk: SimDisk, path: str, f: _SimFile) -> None:
        self.disk = disk
        self.path = path
        self.f = f
        self.pos = len(f.data)

    def write(self, data: bytes) -> None:
        self.disk._hook("before-write", self.path)
        d = self.f.data
        end = self.pos + len(data)
        if len(d) < end:
            d.extend(b"\0" * (end - len(d)))
        d[self.pos:end] = data
        self.f.pending.append((self.pos, bytes(data)))
        self.pos = end
        self.disk._hook("after-write", self.path)

    def sync(self) -> None:
        self.disk._hook("before-sync", self.path)
        self.f.synced()
        self.disk._hook("after-sync", self.path)

    def allocate(self, size: int) -> None:
        if len(self.f.data) < size:
            self.f.data.extend(b"\0" * (size - len(self.f.data)))

    def truncate(self, size: int) -> None:
        self.f.cut(size)
        self.pos = min(self.pos, size)

    def close(self) -> None:
        pass

    def stream(self) -> None:
        pass
