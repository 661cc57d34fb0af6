"""Idle connections, watched together by one task instead of a task each.

A Trio task parked on a socket costs about 2.8 KB (its coroutine frames down to the epoll wait,
the Task, its context, the abort callbacks), two tasks and a nursery per connection three times
that: most of what an idle session cost, four times ZooKeeper's whole session. So a plain
connection with nothing in flight has no task. It is registered, level-triggered, in an epoll
of its own (`park`), and one task (`run`) waits on that epoll's descriptor through Trio. When a
parked connection has bytes to read, the task calls its `readable`, which does what the
connection's task would have done when nothing needs to wait: read, hand the frames to the
engine in one driver step, and leave the replies to the flusher (server/flush.py). A
connection that needs to wait (a full socket, the outstanding-request throttle, a close) gets
a task again (`start`), owned by this object's nursery, until it is idle once more.

Whatever is parked when the server stops is closed here: every connection has an owner, a
task or this object.
"""

from __future__ import annotations

import select
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

MAX_EVENTS = 256  # readable connections served per pass; the rest wait for the next pass
READ_SIZE = 256 * 1024


class Parked(Protocol):
    """A connection as the idle set sees it."""

    fd: int

    def readable(self, buf: memoryview) -> None: ...

    def close_now(self) -> None: ...


class IdleConnections:
    """The parked connections of one server, and the nursery their tasks run in when they
    wake up."""

    def __init__(self) -> None:
        self._epoll: select.epoll | None = None
        self._nursery: trio.Nursery | None = None
        self._parked: dict[int, Parked] = {}
        # One receive buffer for every parked connection: they are read one at a time.
        self._buf = memoryview(bytearray(READ_SIZE))

    @property
    def open(self) -> bool:
        """Whether connections may park (the watching task runs)."""
        return self._nursery is not None

    def __len__(self) -> int:
        return len(self._parked)

    def park(self, conn: Parked) -> bool:
        """Watch `conn` here instead of in a task of its own; False once the server stops."""
        if self._epoll is None or self._nursery is None:
            return False
        self._epoll.register(conn.fd, select.EPOLLIN)
        self._parked[conn.fd] = conn
        return True

    def unpark(self, conn: Parked) -> None:
        """Stop watching `conn` (it gets a task again, or closes)."""
        del self._parked[conn.fd]
        if self._epoll is not None:
            self._epoll.unregister(conn.fd)

    def start(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a woken connection's task in the nursery that owns connection tasks."""
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        self._epoll = epoll = select.epoll()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                buf, parked = self._buf, self._parked
                while True:
                    await trio.lowlevel.wait_readable(epoll)
                    for fd, _events in epoll.poll(0, MAX_EVENTS):
                        conn = parked.get(fd)
                        if conn is not None:
                            conn.readable(buf)
        finally:
            self._nursery = None
            for conn in list(self._parked.values()):
                conn.close_now()
            self._epoll = None
            epoll.close()
