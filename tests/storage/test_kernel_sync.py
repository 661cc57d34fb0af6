"""fdatasync by the kernel (native AIO) and the group committer's rounds through it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from tests.storage.test_group_commit import committer_for, create, durable_zxids, wait_for
from zkserver.storage import kernel_sync
from zkserver.storage.files import Disk
from zkserver.storage.group_commit import GroupCommitter
from zkserver.storage.recovery import recover
from zkserver.storage.txnlog import TxnLog
from zkserver.txn import Txn


def _kernel() -> kernel_sync.KernelSync:
    k = kernel_sync.KernelSync.open()
    assert k is not None, "Linux native AIO is what the CI machine has: it must be usable"
    return k


async def test_a_sync_is_reported_on_the_eventfd(tmp_path: Path) -> None:
    k = _kernel()
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        assert k.done() is False  # nothing submitted, nothing done
        os.write(fd, b"x" * 100)
        k.submit(kernel_sync.Sync(fd))
        with trio.fail_after(10):
            await trio.lowlevel.wait_readable(k.fileno)
        assert k.done() is True
        assert k.done() is False  # read once
    finally:
        os.close(fd)
        k.close()
        k.destroy()


def test_what_cannot_be_synced_is_refused_at_submission() -> None:
    k = _kernel()
    r, w = os.pipe()
    try:
        with pytest.raises(OSError):
            k.submit(kernel_sync.Sync(r))  # a pipe has no fsync
    finally:
        os.close(r)
        os.close(w)
        k.close()
        k.destroy()


def test_elsewhere_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_sync.platform, "machine", lambda: "sparc64")
    assert kernel_sync.KernelSync.open() is None


class WatchedLog(TxnLog):
    """Counts the rounds that went through the thread (`append`) and the kernel."""

    def __init__(self, disk: Disk, log_dir: str) -> None:
        super().__init__(disk, log_dir, 1 << 12)  # 4 KiB reserved at a time: some rounds grow it
        self.threaded = 0
        self.kernel = 0
        self.sync_ms: list[float] = []

    def append(self, first_zxid: int, data: bytes) -> None:
        self.threaded += 1
        super().append(first_zxid, data)

    def write_unsynced(self, data: bytes) -> kernel_sync.Job | None:
        fd = super().write_unsynced(data)
        self.kernel += fd is not None
        return fd

    def synced(self, ms: float) -> None:
        self.sync_ms.append(ms)


def _committer(tmp_path: Path, kind: type[WatchedLog] = WatchedLog
               ) -> tuple[GroupCommitter[Txn], WatchedLog, list[list[int]]]:
    disk = Disk()
    log = kind(disk, str(tmp_path / "log"))
    committer, _, rounds = committer_for(tmp_path, log, disk)
    return committer, log, rounds


async def test_rounds_that_fit_the_reserved_space_are_synced_by_the_kernel(tmp_path: Path
                                                                          ) -> None:
    committer, log, rounds = _committer(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(committer.run)
        for z in range(1, 201):
            committer.append([create(z)])
            await wait_for(lambda z=z: durable_zxids(rounds)[-1:] == [z])
        nursery.cancel_scope.cancel()
    assert durable_zxids(rounds) == list(range(1, 201))
    # the first round opens the segment, and every 4 KiB of records reserve more: the thread;
    # the rest: the kernel
    assert log.threaded + log.kernel == 200
    assert 2 <= log.threaded < 20, log.threaded
    assert len(log.sync_ms) == log.kernel and all(ms >= 0 for ms in log.sync_ms)
    assert recover(Disk(), str(tmp_path / "snap"), str(tmp_path / "log")).tree.last_zxid == 200


async def test_a_round_the_kernel_syncs_at_shutdown_is_still_reported(tmp_path: Path) -> None:
    committer, log, rounds = _committer(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(committer.run)
        committer.append([create(1)])
        await wait_for(lambda: durable_zxids(rounds) == [1])
        committer.append([create(2)])  # fits: written, and the kernel syncs it...
        assert log.kernel == 1
        committer.append([create(3)])  # ...while this one waits for the next round
        nursery.cancel_scope.cancel()
    assert durable_zxids(rounds) == [1, 2]  # 3 was logged on the way out, never reported
    assert recover(Disk(), str(tmp_path / "snap"), str(tmp_path / "log")).tree.last_zxid == 3


class FullDisk(WatchedLog):
    """A disk that is full once the segment is open (the first round, in the thread, opens it)."""

    def write_unsynced(self, data: bytes) -> kernel_sync.Job | None:
        if self.file is None:
            return None
        raise OSError(28, "No space left on device")


async def test_a_write_that_fails_on_the_loop_stops_the_committer(tmp_path: Path) -> None:
    committer, _, rounds = _committer(tmp_path, FullDisk)
    with pytest.raises(BaseExceptionGroup) as failed:
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.run)
            committer.append([create(1)])  # the first round opens the segment: the thread
            await wait_for(lambda: durable_zxids(rounds) == [1])
            committer.append([create(2)])  # fails where the kernel would sync it
            await trio.sleep_forever()
    assert failed.group_contains(OSError, match="No space left")
    assert durable_zxids(rounds) == [1]  # never reported durable, so never answered
