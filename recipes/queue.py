"""FIFO and priority queues on kazoo's `Queue` layout (ZooKeeper's queue recipe).

Layout: items are PERSISTENT_SEQUENTIAL children `<path>/entry-<priority:03d>-<seq>`; lower
priority numbers are served first, equal priorities in the order they were put. A kazoo
`Queue` on the same path produces and consumes the same items.

A consumer lists the children (fresh on every `get`, so an urgent item put since the last
call is never skipped: the priority-queue rule of the recipe), reads the first item and claims
it by deleting it; if another consumer deleted it first (NoNode) it moves to the next. With
nothing to take, it waits on a children watch.

Guarantees, precisely: an item is delivered to at most one consumer, except when a consumer's
delete is interrupted by a connection loss and the retry finds the node gone: that consumer
then takes the item as its own (it cannot tell its own delete from a rival's), so the item may
be delivered twice, but it is never silently dropped by the queue. The item is gone from
ZooKeeper once delivered: a consumer that crashes while processing loses it. For delivery that
survives consumer crashes use `recipes.ack_queue`. A `put` whose reply is lost raises
`ConnectionLossError` (the item may or may not be in the queue).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import anyio

from zkserver.client import CreateMode
from zkserver.client import errors as E
from zkserver.recipes._common import (
    RETRYABLE,
    drop_watch,
    ensure_path,
    join,
    retrying,
    sequence,
    wait_watch,
)

if TYPE_CHECKING:
    from zkserver.client import Client

PREFIX = "entry-"
_ENTRY_RE = re.compile(r"^entry-(\d{3})-(?:-\d{9}|\d{10})$")


def _order(name: str) -> tuple[int, int]:
    m = _ENTRY_RE.match(name)
    assert m is not None
    return int(m.group(1)), sequence(name)


class Queue:
    """A FIFO queue: `put(item)`, `await get()`."""

    DEFAULT_PRIORITY = 100

    def __init__(self, zk: Client, path: str) -> None:
        self.zk = zk
        self.path = path.rstrip("/")
        self._ensured = False

    async def _ensure(self) -> None:
        if not self._ensured:
            await ensure_path(self.zk, self.path)
            self._ensured = True

    def _name(self, priority: int) -> str:
        if not 0 <= priority <= 999:
            raise ValueError("priority must be between 0 and 999")
        return join(self.path, f"{PREFIX}{priority:03d}-")

    async def put(self, item: bytes, priority: int = DEFAULT_PRIORITY) -> None:
        await self._ensure()
        await self.zk.create(self._name(priority), item, mode=CreateMode.PERSISTENT_SEQUENTIAL)

    async def put_all(self, items: Iterable[bytes], priority: int = DEFAULT_PRIORITY) -> None:
        """Put several items atomically (one multi), in order."""
        await self._ensure()
        txn = self.zk.transaction()
        for item in items:
            txn.create(self._name(priority), item, mode=CreateMode.PERSISTENT_SEQUENTIAL)
        await txn.commit()

    async def size(self) -> int:
        await self._ensure()
        children = (await retrying(self.zk.get_children, self.path)).children
        return sum(1 for c in children if _ENTRY_RE.match(c))

    async def _try_take(self, children: list[str]) -> bytes | None:
        for name in sorted((c for c in children if _ENTRY_RE.match(c)), key=_order):
            path = join(self.path, name)
            try:
                data, _ = await retrying(self.zk.get, path)
            except E.NoNodeError:
                continue
            lost = False
            while True:
                try:
                    await self.zk.delete(path)
                    return data or b""
                except E.NoNodeError:
                    if lost:
                        return data or b""
                    break
                except RETRYABLE:
                    lost = True
        return None

    async def get_nowait(self) -> bytes | None:
        """The first item, or None if the queue is empty."""
        await self._ensure()
        children = (await retrying(self.zk.get_children, self.path)).children
        return await self._try_take(children)

    async def get(self, timeout: float | None = None) -> bytes | None:
        """The first item, waiting for one (None after `timeout` seconds)."""
        await self._ensure()
        with anyio.move_on_after(timeout):
            while True:
                children = (await retrying(self.zk.get_children, self.path)).children
                item = await self._try_take(children)
                if item is not None:
                    return item
                children, _stat, watch = await retrying(self.zk.get_children, self.path,
                                                        watch=True)
                if any(_ENTRY_RE.match(c) for c in children):
                    await drop_watch(watch)
                    continue
                await wait_watch(watch)
        return None


class PriorityQueue(Queue):
    """Lower `priority` (0..999) first; equal priorities in FIFO order."""

    async def put(self, item: bytes, priority: int = Queue.DEFAULT_PRIORITY) -> None:
        await super().put(item, priority)
