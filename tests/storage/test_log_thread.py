"""The log's own thread: calls run there, in order, and their results and errors come back."""

from __future__ import annotations

import threading

import pytest
import trio

from zkserver.storage.log_thread import LogThread


async def test_calls_run_in_order_on_one_other_thread() -> None:
    worker = LogThread()
    seen: list[tuple[int, int]] = []

    def job(i: int) -> int:
        seen.append((i, threading.get_ident()))
        return i * 2

    with worker.running():
        results = [await worker.call(job, i) for i in range(5)]
    assert results == [0, 2, 4, 6, 8]
    assert [i for i, _ in seen] == list(range(5))
    threads = {t for _, t in seen}
    assert len(threads) == 1 and threading.get_ident() not in threads


async def test_an_exception_comes_back_to_the_caller() -> None:
    worker = LogThread()

    def boom() -> None:
        raise OSError("disk full")

    with worker.running():
        with pytest.raises(OSError, match="disk full"):
            await worker.call(boom)
        assert await worker.call(lambda: "still serving") == "still serving"


async def test_a_call_made_when_already_cancelled_never_starts() -> None:
    worker = LogThread()
    ran: list[int] = []
    with worker.running():
        with trio.CancelScope() as scope:
            scope.cancel()
            await worker.call(ran.append, 1)
        assert scope.cancelled_caught
        await worker.call(ran.append, 2)
    assert ran == [2]


async def test_the_thread_ends_with_its_block() -> None:
    worker = LogThread(name="log-thread-under-test")

    def names() -> set[str]:
        return {t.name for t in threading.enumerate()}

    with worker.running():
        assert "log-thread-under-test" in names()
    assert "log-thread-under-test" not in names()
