"""Log appends as direct synchronous writes: the file holds exactly what buffered appends
would have put there, whatever else writes or cuts it in between."""

from __future__ import annotations

import os
import random
import select
from collections.abc import Iterator
from pathlib import Path

import pytest

from zkserver.storage import kernel_sync
from zkserver.storage.direct_tail import BLOCK, DirectTail
from zkserver.storage.files import Disk, RealLogFile
from zkserver.storage.txnlog import TxnLog


@pytest.fixture
def kernel() -> Iterator[kernel_sync.KernelSync]:
    k = kernel_sync.KernelSync.open()
    assert k is not None, "Linux native AIO is what the CI machine has: it must be usable"
    yield k
    k.close()
    k.destroy()


def _run(k: kernel_sync.KernelSync, job: kernel_sync.Job) -> None:
    """Submit `job` and wait until the kernel reports it done."""
    k.submit(job)
    while True:
        ready, _, _ = select.select([k.fileno], [], [], 10)
        assert ready, "the kernel did not finish a write within 10 s"
        if k.done():
            return


def _direct(path: Path) -> RealLogFile:
    f = RealLogFile(str(path))
    f.allocate(1 << 20)  # the log reserves space ahead, as a hole
    return f


def test_appends_read_back_as_written(tmp_path: Path, kernel: kernel_sync.KernelSync) -> None:
    f = _direct(tmp_path / "log")
    rng = random.Random(7)
    expected = bytearray()
    # sizes around the block: inside one, ending on one, across several
    for size in [1, 100, BLOCK - 101, 1, BLOCK, 3 * BLOCK + 5, *[rng.randrange(1, 9000)
                                                               for _ in range(60)]]:
        data = rng.randbytes(size)
        job = f.stage_direct(data)
        assert job is not None, "the CI machine's file system takes direct I/O"
        _run(kernel, job)
        expected += data
    assert f.pos == len(expected)
    content = (tmp_path / "log").read_bytes()
    assert content[:len(expected)] == expected
    assert content[len(expected):] == bytes(len(content) - len(expected))  # zeros, as the hole
    f.close()


def test_a_buffered_write_or_a_cut_in_between_is_read_back_first(
        tmp_path: Path, kernel: kernel_sync.KernelSync) -> None:
    f = _direct(tmp_path / "log")
    expected = bytearray()

    def direct(data: bytes) -> None:
        job = f.stage_direct(data)
        assert job is not None
        _run(kernel, job)
        expected.extend(data)

    direct(b"a" * 5000)
    f.write(b"b" * 300)  # the log thread's buffered path (a round that grew the file)
    expected += b"b" * 300
    direct(b"c" * 70)
    f.truncate(5100)  # cut back into the block the buffer holds
    del expected[5100:]
    f.allocate(1 << 20)
    direct(b"d" * 4000)
    content = (tmp_path / "log").read_bytes()
    assert content[:len(expected)] == expected
    assert not content[len(expected):].strip(b"\0")
    f.close()


def test_where_direct_io_is_not_had_appends_are_buffered_and_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "O_DIRECT")  # as on macOS
    assert DirectTail.open(str(tmp_path / "x")) is None
    log = TxnLog(Disk(), str(tmp_path / "log"))
    log.append(1, b"first round: opens the segment")
    job = log.write_unsynced(b"second round")
    assert type(job) is kernel_sync.Sync
    assert log.write_unsynced(b"third") == job  # not asked again
    log.close()
    (segment,) = (tmp_path / "log").iterdir()
    assert segment.read_bytes().endswith(b"second roundthird")


def test_on_a_real_disk_the_log_stages_a_direct_write(tmp_path: Path) -> None:
    log = TxnLog(Disk(), str(tmp_path / "log"))
    log.append(1, b"first round: opens the segment")
    job = log.write_unsynced(b"second round")
    assert type(job) is kernel_sync.Write
    assert job.offset % BLOCK == 0 and job.length % BLOCK == 0 and job.address % BLOCK == 0
    log.close()
