"""A local copy of a subtree, kept current by one persistent recursive watch (CuratorCache's
design, ZooKeeper 3.6+).

    async with TreeCache(zk, "/config") as cache:
        await cache.initialized.wait()
        data = cache.get("/config/db/url")
        async with cache.listen() as events:
            async for event in events: ...

Why this shape:
* One recursive watch replaces a pair of one-time watches per node (Curator's old TreeCache,
  kazoo's TreeCache): there is nothing to re-arm after each event, so no event can fall
  between an event and the next watch. The watch is set *before* the first walk, so every
  change made after the walk started is seen.
* An event says which node changed, not to what: the cache re-reads that node (create and
  data-change events) or drops its subtree (delete). Reads are answered in order on one
  connection, so the copy never goes back in time.
* The server does not replay persistent-watch events missed while disconnected, so when the
  connection comes back the cache walks the tree again and reports the difference
  (`CONNECTION_SUSPENDED`, then the differences, then `CONNECTION_RECONNECTED`).
* With a `recipes.session.Session` the cache rebuilds itself on each new session; with a plain
  client it stops when the session ends (`cache.error` tells why).
"""

from __future__ import annotations

import enum
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from zkserver.client import EventType, KeeperState
from zkserver.client import errors as E
from zkserver.recipes._common import background, retrying
from zkserver.recipes._lifetime import Lifetime
from zkserver.recipes.session import Session, each_client

if TYPE_CHECKING:
    from zkserver.client import Client, Stat


class TreeEventType(enum.Enum):
    NODE_ADDED = "NODE_ADDED"
    NODE_UPDATED = "NODE_UPDATED"
    NODE_REMOVED = "NODE_REMOVED"
    INITIALIZED = "INITIALIZED"
    CONNECTION_SUSPENDED = "CONNECTION_SUSPENDED"
    CONNECTION_RECONNECTED = "CONNECTION_RECONNECTED"


@attrs.frozen
class ChildData:
    path: str
    data: bytes | None
    stat: Stat


@attrs.frozen
class TreeEvent:
    type: TreeEventType
    node: ChildData | None = None


def _parent(path: str) -> str:
    i = path.rfind("/")
    return "/" if i <= 0 else path[:i]


class TreeCache(Lifetime):
    def __init__(self, zk: Client | Session, path: str, *, max_depth: int | None = None
                 ) -> None:
        self.zk = zk
        self.path = path.rstrip("/") or "/"
        self.max_depth = max_depth
        self.nodes: dict[str, ChildData] = {}
        self.initialized = anyio.Event()
        """Set once the first walk is complete."""
        self.connected = False
        """False while the connection is down: the copy may then be stale."""
        self.error: BaseException | None = None
        self._listeners: set[MemoryObjectSendStream[TreeEvent]] = set()
        self._changed = anyio.Event()

    # -- reading the copy -----------------------------------------------------------------------

    def get(self, path: str) -> ChildData | None:
        return self.nodes.get(path.rstrip("/") or "/")

    def children(self, path: str) -> list[str]:
        """Names of the cached children of `path`, sorted."""
        path = path.rstrip("/") or "/"
        prefix = path if path == "/" else path + "/"
        return sorted(p[len(prefix):] for p in self.nodes
                      if p.startswith(prefix) and "/" not in p[len(prefix):] and p != path)

    def snapshot(self) -> dict[str, bytes | None]:
        return {p: c.data for p, c in self.nodes.items()}

    async def wait_for(self, predicate: Callable[[TreeCache], bool]) -> None:
        """Return once `predicate(cache)` is true (checked after every change)."""
        while not predicate(self):
            if self.error is not None:
                raise self.error
            await self._changed.wait()

    @asynccontextmanager
    async def listen(self, buffer: float = math.inf
                     ) -> AsyncIterator[MemoryObjectReceiveStream[TreeEvent]]:
        """A stream of every TreeEvent from now on."""
        send, receive = anyio.create_memory_object_stream[TreeEvent](buffer)
        self._listeners.add(send)
        try:
            async with receive:
                yield receive
        finally:
            self._listeners.discard(send)
            send.close()

    def _emit(self, event: TreeEvent) -> None:
        for send in list(self._listeners):
            try:
                send.send_nowait(event)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._listeners.discard(send)
        self._changed.set()
        self._changed = anyio.Event()

    # -- life cycle -----------------------------------------------------------------------------

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[TreeCache]:
        async with background() as tasks:
            tasks.start_soon(self._run)
            yield self

    async def _run(self) -> None:
        async for zk in each_client(self.zk):
            try:
                await self._follow(zk)
            except E.SessionExpiredError as e:
                self.error = e
                self.connected = False
                self._emit(TreeEvent(TreeEventType.CONNECTION_SUSPENDED))
            if not isinstance(self.zk, Session):
                return
            self.error = None

    def _depth_ok(self, path: str) -> bool:
        if self.max_depth is None:
            return True
        if path == self.path:
            return True
        rel = path[len(self.path):] if self.path != "/" else path
        return rel.count("/") <= self.max_depth

    async def _follow(self, zk: Client) -> None:
        async with zk.add_watch(self.path, recursive=True) as events:
            self.connected = True
            await self._resync(zk)
            if not self.initialized.is_set():
                self.initialized.set()
                self._emit(TreeEvent(TreeEventType.INITIALIZED))
            async for event in events:
                if event.type == EventType.NONE:
                    if event.state == KeeperState.DISCONNECTED:
                        self.connected = False
                        self._emit(TreeEvent(TreeEventType.CONNECTION_SUSPENDED))
                    elif event.state == KeeperState.SYNC_CONNECTED:
                        await self._resync(zk)
                        self.connected = True
                        self._emit(TreeEvent(TreeEventType.CONNECTION_RECONNECTED))
                    continue
                path = event.path
                if path is None or not self._depth_ok(path):
                    continue
                if event.type == EventType.NODE_DELETED:
                    self._remove(path)
                elif event.type in (EventType.NODE_CREATED, EventType.NODE_DATA_CHANGED):
                    await self._refresh(zk, path)

    async def _refresh(self, zk: Client, path: str) -> None:
        try:
            data, stat = await retrying(zk.get, path)
        except E.NoNodeError:
            self._remove(path)
            return
        self._put(ChildData(path, data, stat))

    def _put(self, node: ChildData) -> None:
        old = self.nodes.get(node.path)
        if old is not None and old.stat.mzxid >= node.stat.mzxid \
                and old.stat.czxid == node.stat.czxid:
            return
        self.nodes[node.path] = node
        kind = TreeEventType.NODE_ADDED if old is None else TreeEventType.NODE_UPDATED
        self._emit(TreeEvent(kind, node))

    def _remove(self, path: str) -> None:
        prefix = path if path == "/" else path + "/"
        doomed = [p for p in self.nodes if p == path or p.startswith(prefix)]
        for p in sorted(doomed, key=len, reverse=True):
            node = self.nodes.pop(p)
            self._emit(TreeEvent(TreeEventType.NODE_REMOVED, node))

    async def _resync(self, zk: Client) -> None:
        """Walk the subtree and bring the copy in line with it."""
        seen: set[str] = set()

        async def walk(path: str, depth: int) -> None:
            try:
                data, stat = await retrying(zk.get, path)
            except E.NoNodeError:
                return
            seen.add(path)
            self._put(ChildData(path, data, stat))
            if self.max_depth is not None and depth >= self.max_depth:
                return
            if stat.numChildren == 0:
                return
            try:
                children = (await retrying(zk.get_children, path)).children
            except E.NoNodeError:
                return
            for child in sorted(children):
                await walk(f"{path.rstrip('/')}/{child}", depth + 1)

        await walk(self.path, 0)
        for p in sorted(set(self.nodes) - seen, key=len, reverse=True):
            if p in self.nodes:
                self._emit(TreeEvent(TreeEventType.NODE_REMOVED, self.nodes.pop(p)))
