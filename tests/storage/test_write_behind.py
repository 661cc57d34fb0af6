"""Write-behind for snapshot files (storage/write_behind.py): each window's writeback starts
once it is written, the writer waits for the window before last, the bytes are the same, and
where `sync_file_range` is missing the file is written as before."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from zkserver.storage import snapshot as snapmod
from zkserver.storage import write_behind
from zkserver.storage.files import Disk
from zkserver.storage.write_behind import WriteBehind

W = 4096


@pytest.fixture
def calls(monkeypatch):
    """The sync_file_range calls made, as (offset, length, flags); the real call still runs."""
    real = write_behind._sync_file_range
    assert real is not None, "sync_file_range is missing on this Linux machine"
    made: list[tuple[int, int, int]] = []

    def record(fd: int, offset: int, length: int, flags: int) -> int:
        made.append((offset, length, flags))
        return real(fd, offset, length, flags)

    monkeypatch.setattr(write_behind, "_sync_file_range", record)
    return made


def test_each_window_is_started_when_written_and_the_one_before_last_waited_for(tmp_path,
                                                                                 calls):
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    behind = WriteBehind.open(fd, 0, W)
    assert behind is not None
    written = 0
    for size in (W // 2, W // 2, 3 * W, W - 1, 1, 10):  # windows end mid-write and on a write
        os.write(fd, b"x" * size)
        written += size
        behind.written(written)
    os.close(fd)
    start, wait = write_behind._WRITE, write_behind._WAIT_BEFORE | write_behind._WRITE \
        | write_behind._WAIT_AFTER
    # after starting window k, wait for window k - 2
    assert calls == [(0, W, start), (W, W, start), (2 * W, W, start), (0, W, wait),
                     (3 * W, W, start), (W, W, wait), (4 * W, W, start), (2 * W, W, wait)]


def test_a_snapshot_file_writes_behind_and_keeps_its_bytes(tmp_path, calls):
    window = write_behind.WINDOW
    path = str(tmp_path / "snapshot.5")
    data = os.urandom(window // 4) * 10 + b"tail"  # two windows and a half
    f = snapmod.open_tmp(Disk(), path)
    for i in range(0, len(data), 1 << 20):
        f.write(data[i:i + (1 << 20)])
    snapmod.finish(Disk(), f, path)
    with open(path, "rb") as got:
        assert got.read() == data
    assert calls == [(0, window, write_behind._WRITE), (window, window, write_behind._WRITE)]


def test_without_sync_file_range_the_file_is_written_as_before(tmp_path, monkeypatch):
    monkeypatch.setattr(write_behind, "_sync_file_range", None)
    path = str(tmp_path / "snapshot.6")
    f = snapmod.open_tmp(Disk(), path)
    f.write(b"y" * (3 * write_behind.WINDOW // 2))
    snapmod.finish(Disk(), f, path)
    assert os.path.getsize(path) == 3 * write_behind.WINDOW // 2


def test_a_failed_call_raises_naming_it(tmp_path):
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    behind = WriteBehind.open(fd, 0, W)
    os.close(fd)  # the descriptor is gone: EBADF
    assert behind is not None
    with pytest.raises(OSError, match="sync_file_range"):
        behind.written(W)


def test_a_file_system_that_refuses_it_is_left_to_the_kernel(tmp_path, monkeypatch):
    made = []

    def refuse(fd: int, offset: int, length: int, flags: int) -> int:
        made.append(offset)
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(write_behind, "_sync_file_range", refuse)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    behind = WriteBehind.open(fd, 0, W)
    assert behind is not None
    for n in range(1, 6):
        os.write(fd, b"z" * W)
        behind.written(n * W)
    os.close(fd)
    assert made == [0]  # asked once
