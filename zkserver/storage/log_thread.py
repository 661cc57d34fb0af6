"""One OS thread that runs the group committer's blocking log calls (write + fsync).

`trio.to_thread.run_sync` per round cost a busy ensemble member more than the round's own
Python work: a capacity limiter, a context copy, two `prctl` calls naming the thread, a
cancellation protocol and an outcome wrapper, per fsync. A server has exactly one log writer,
and its rounds never overlap, so a dedicated thread fed through a queue does the same job; the
result comes back through the Trio token, to a parked task (`call`) or a callback (`submit`).

The thread belongs to the task that runs `running` (the committer's `run`): it starts there and
is stopped and joined when that task ends, cancelled or not.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import outcome
import trio

R = TypeVar("R")

_STOP = object()


class LogThread:
    """Runs one blocking call at a time, in order, off the event loop."""

    def __init__(self, name: str = "zkserver-log") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    @contextmanager
    def running(self) -> Iterator[None]:
        """The thread lives for the `with` block (entered from a Trio task)."""
        token = trio.lowlevel.current_trio_token()
        self._thread = threading.Thread(target=self._work, args=(token,), name=self.name,
                                        daemon=True)
        self._thread.start()
        try:
            yield
        finally:
            self._jobs.put(_STOP)
            self._thread.join()
            self._thread = None

    async def call(self, fn: Callable[..., R], *args: Any) -> R:
        """`fn(*args)` in the thread; its result or exception here. Not abandoned on
        cancellation (a log write that started finishes, as with `trio.to_thread`)."""
        await trio.lowlevel.checkpoint_if_cancelled()  # cancelled already: nothing starts
        task = trio.lowlevel.current_task()
        self.submit(fn, args, lambda result: trio.lowlevel.reschedule(task, result))
        return await trio.lowlevel.wait_task_rescheduled(  # type: ignore[no-any-return]
            lambda _: trio.lowlevel.Abort.FAILED)

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...],
               done: Callable[[outcome.Outcome[Any]], object]) -> None:
        """Run `fn(*args)` in the thread, then `done(result)` on the event loop (through the
        Trio token, in submission order). No task waits meanwhile: the group committer starts
        a round where records arrive and finishes it from `done`, which saves two scheduling
        passes per fsync round over a task that wakes up, calls and wakes up again."""
        assert self._thread is not None, "LogThread used outside `running()`"
        self._jobs.put((fn, args, done))

    def _work(self, token: trio.lowlevel.TrioToken) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is _STOP:
                return
            fn, args, done = job
            token.run_sync_soon(done, outcome.capture(fn, *args))
