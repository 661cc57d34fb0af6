"""A local copy of one node, kept current by a persistent watch (CuratorCache's
SINGLE_NODE_CACHE mode; Curator's older NodeCache and kazoo's DataWatch do the same with a
one-time watch re-armed after every event).

    async with NodeCache(zk, "/config/flags") as cache:
        await cache.initialized.wait()
        print(cache.data)
        async for node in cache.changes(): ...       # the node after each change (None: gone)

The watch is persistent, so there is no window between an event and re-arming the next watch.
Each event triggers a re-read; the result is published only if it differs from the copy
(by czxid and mzxid), so duplicate or coalesced events never publish twice. The node may be
missing: the copy is then None, and its creation is seen like any other change. After a
reconnection the node is read again, since events missed meanwhile are not replayed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from zkserver.client import EventType, KeeperState
from zkserver.client import errors as E
from zkserver.recipes._common import background, retrying
from zkserver.recipes._lifetime import Lifetime
from zkserver.recipes.session import Session, each_client
from zkserver.recipes.tree_cache import ChildData

if TYPE_CHECKING:
    from zkserver.client import Client


class NodeCache(Lifetime):
    def __init__(self, zk: Client | Session, path: str) -> None:
        self.zk = zk
        self.path = path
        self.node: ChildData | None = None
        self.initialized = anyio.Event()
        self.error: BaseException | None = None
        self.version = 0
        """Bumped each time the copy changes."""
        self._changed = anyio.Event()

    @property
    def data(self) -> bytes | None:
        return self.node.data if self.node is not None else None

    async def wait_for(self, predicate: Callable[[ChildData | None], bool]) -> ChildData | None:
        """Return the copy once `predicate(copy)` holds."""
        while not (self.initialized.is_set() and predicate(self.node)):
            if self.error is not None:
                raise self.error
            await self._changed.wait()
        return self.node

    async def changes(self) -> AsyncIterator[ChildData | None]:
        """The copy now, then after every change. A consumer slower than the changes sees the
        latest state, not every intermediate one (see `recipes.config` for that)."""
        await self.initialized.wait()
        seen = -1
        while True:
            if self.version != seen:
                seen = self.version
                yield self.node
            else:
                if self.error is not None:
                    raise self.error
                await self._changed.wait()

    def _publish(self, node: ChildData | None) -> None:
        old = self.node
        if old is None and node is None:
            return
        if (old is not None and node is not None and old.stat.czxid == node.stat.czxid
                and old.stat.mzxid >= node.stat.mzxid):
            return
        self.node = node
        self.version += 1
        self._changed.set()
        self._changed = anyio.Event()

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[NodeCache]:
        async with background() as tasks:
            tasks.start_soon(self._run)
            yield self

    async def _run(self) -> None:
        async for zk in each_client(self.zk):
            try:
                await self._follow(zk)
            except E.SessionExpiredError as e:
                self.error = e
                self._changed.set()
                self._changed = anyio.Event()
            if not isinstance(self.zk, Session):
                return
            self.error = None

    async def _read(self, zk: Client) -> None:
        try:
            data, stat = await retrying(zk.get, self.path)
        except E.NoNodeError:
            self._publish(None)
            return
        self._publish(ChildData(self.path, data, stat))

    async def _follow(self, zk: Client) -> None:
        async with zk.add_watch(self.path) as events:
            await self._read(zk)
            if not self.initialized.is_set():
                self.initialized.set()
                self._changed.set()
                self._changed = anyio.Event()
            async for event in events:
                if event.type == EventType.NONE and event.state != KeeperState.SYNC_CONNECTED:
                    continue
                if event.type == EventType.NODE_CHILDREN_CHANGED:
                    continue
                await self._read(zk)
