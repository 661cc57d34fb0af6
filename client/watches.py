"""Watches as async objects (AnyIO: Trio or asyncio), and the table that routes notifications.

* A one-time watch (`Watch`) comes back from a read made with `watch=True`. Awaiting it gives
  the single `WatchedEvent` that ends it. It survives reconnects (the session re-arms it with
  setWatches) and raises `SessionExpiredError` (or `ClientClosedError`) if the session ends
  before it fires.
* A persistent watch (`PersistentWatch`, addWatch) is an async iterator of events; closing it
  (leaving its `async with`, or `aclose()`) removes it from the server. Because the server does
  not replay persistent-watch events missed while disconnected, the stream also carries a
  `WatchedEvent` of type NONE when the connection drops (state DISCONNECTED) and when it is
  back (state SYNC_CONNECTED): a consumer that caches state should re-read then.

The server sends one notification per change per connection; `WatchRegistry.dispatch` fans it
out to every local watch it concerns, with the same rules as the Java client: NodeCreated and
NodeDataChanged go to data and exists watches, NodeChildrenChanged to child watches, NodeDeleted
to all three; persistent watches get every event on their path; recursive ones every event but
NodeChildrenChanged on their path and below. One-time watches are forgotten as they fire.
Paths in the table are server paths (chroot included), which is what setWatches needs.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import anyio

from zkserver.proto.codes import EventType, KeeperState

from .errors import WatchOverflowError, ZooKeeperError
from .results import WatchedEvent

if TYPE_CHECKING:
    from .client import Client

DEFAULT_EVENT_BACKLOG = 10_000


class WatchKind(enum.Enum):
    DATA = "data"          # getData, or exists on an existing node
    EXIST = "exist"        # exists on a missing node
    CHILD = "child"        # getChildren
    PERSISTENT = "persistent"
    RECURSIVE = "recursive"


class Watch:
    """A one-time watch. `event = await watch` (or `await watch.wait()`).

    `remove()` ends it early: awaiting it then gives an event of type DATA_WATCH_REMOVED or
    CHILD_WATCH_REMOVED, as the Java client reports it."""

    __slots__ = ("_client", "kind", "path", "_server_path", "_done", "_event", "_error")

    def __init__(self, client: Client, kind: WatchKind, path: str, server_path: str) -> None:
        self._client = client
        self.kind = kind
        self.path = path
        self._server_path = server_path
        self._done = anyio.Event()
        self._event: WatchedEvent | None = None
        self._error: ZooKeeperError | None = None

    def __repr__(self) -> str:
        return f"<Watch {self.kind.value} {self.path!r} fired={self.fired}>"

    @property
    def fired(self) -> bool:
        """True once the event (or the end of the session) has arrived."""
        return self._done.is_set()

    def _fire(self, event: WatchedEvent) -> None:
        if not self._done.is_set():
            self._event = event
            self._done.set()

    def _fail(self, error: ZooKeeperError) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> WatchedEvent:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._event is not None
        return self._event

    def __await__(self) -> Generator[Any, None, WatchedEvent]:
        return self.wait().__await__()

    async def remove(self) -> None:
        """Stop watching. The server's watch goes too when no other local watch needs it."""
        if self._done.is_set():
            return
        etype = (EventType.CHILD_WATCH_REMOVED if self.kind == WatchKind.CHILD
                 else EventType.DATA_WATCH_REMOVED)
        self._fire(WatchedEvent(etype, KeeperState.SYNC_CONNECTED, self.path))
        await self._client._remove_one_time(self)


class PersistentWatch:
    """A persistent (or recursive) watch: `async with zk.add_watch(path) as events: async for
    event in events: ...`. Closing it removes it from the server."""

    def __init__(self, client: Client, path: str, server_path: str, recursive: bool,
                 backlog: int = DEFAULT_EVENT_BACKLOG) -> None:
        self._client = client
        self.path = path
        self._server_path = server_path
        self.recursive = recursive
        self.kind = WatchKind.RECURSIVE if recursive else WatchKind.PERSISTENT
        self._backlog = backlog
        self._queue: deque[WatchedEvent] = deque()
        self._ready = anyio.Event()
        self._error: ZooKeeperError | None = None
        self._overflowed = False
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<PersistentWatch {self.kind.value} {self.path!r}>"

    def _deliver(self, event: WatchedEvent) -> None:
        if self._closed or self._overflowed:
            return
        if len(self._queue) >= self._backlog:
            self._overflowed = True
        else:
            self._queue.append(event)
        self._ready.set()

    def _fail(self, error: ZooKeeperError) -> None:
        if self._error is None:
            self._error = error
            self._ready.set()

    async def start(self) -> PersistentWatch:
        if not self._started:
            self._started = True
            await self._client._add_persistent(self)
        return self

    def __await__(self) -> Generator[Any, None, PersistentWatch]:
        return self.start().__await__()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        if self._started:
            await self._client._remove_persistent(self)

    async def __aenter__(self) -> PersistentWatch:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._client.request_timeout):
                await self.aclose()

    def __aiter__(self) -> PersistentWatch:
        return self

    async def __anext__(self) -> WatchedEvent:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._overflowed:
                self._overflowed = False
                raise WatchOverflowError(
                    f"more than {self._backlog} events were waiting; some were dropped",
                    path=self.path)
            if self._error is not None:
                raise self._error
            if self._closed:
                raise StopAsyncIteration
            self._ready = anyio.Event()
            await self._ready.wait()


def _parent(path: str) -> str:
    i = path.rfind("/")
    return "/" if i <= 0 else path[:i]


class WatchRegistry:
    """Which local watches wait on which server paths."""

    def __init__(self) -> None:
        self.tables: dict[WatchKind, dict[str, set[Any]]] = {k: {} for k in WatchKind}

    def add(self, kind: WatchKind, server_path: str, watch: Any) -> None:
        self.tables[kind].setdefault(server_path, set()).add(watch)

    def discard(self, kind: WatchKind, server_path: str, watch: Any) -> bool:
        """Forget one watch; True when it was the last of its kind on the path."""
        table = self.tables[kind]
        watches = table.get(server_path)
        if watches is None:
            return True
        watches.discard(watch)
        if watches:
            return False
        del table[server_path]
        return True

    def has(self, kind: WatchKind, server_path: str) -> bool:
        return server_path in self.tables[kind]

    def paths(self, kind: WatchKind) -> list[str]:
        return list(self.tables[kind])

    @property
    def has_persistent(self) -> bool:
        return bool(self.tables[WatchKind.PERSISTENT] or self.tables[WatchKind.RECURSIVE])

    def is_empty(self) -> bool:
        return not any(self.tables.values())

    def dispatch(self, etype: int, server_path: str, client_path: str, zxid: int) -> None:
        try:
            event_type = EventType(etype)
        except ValueError:
            return
        event = WatchedEvent(event_type, KeeperState.SYNC_CONNECTED, client_path, zxid)
        t = self.tables
        fired: list[set[Watch]] = []
        kinds: tuple[WatchKind, ...]
        if event_type in (EventType.NODE_CREATED, EventType.NODE_DATA_CHANGED):
            kinds = (WatchKind.DATA, WatchKind.EXIST)
        elif event_type == EventType.NODE_CHILDREN_CHANGED:
            kinds = (WatchKind.CHILD,)
        elif event_type == EventType.NODE_DELETED:
            kinds = (WatchKind.DATA, WatchKind.EXIST, WatchKind.CHILD)
        else:
            kinds = ()
        for kind in kinds:
            watches = t[kind].pop(server_path, None)
            if watches:
                fired.append(watches)
        for watches in fired:
            for w in watches:
                w._fire(event)
        for pw in t[WatchKind.PERSISTENT].get(server_path, ()):
            pw._deliver(event)
        recursive = t[WatchKind.RECURSIVE]
        if recursive and event_type != EventType.NODE_CHILDREN_CHANGED:
            p = server_path
            while True:
                for pw in recursive.get(p, ()):
                    pw._deliver(event)
                if p == "/":
                    break
                p = _parent(p)

    def connection_event(self, state: KeeperState) -> None:
        """Tell persistent watches the connection dropped or came back."""
        event = WatchedEvent(EventType.NONE, state, None)
        for kind in (WatchKind.PERSISTENT, WatchKind.RECURSIVE):
            for watches in self.tables[kind].values():
                for pw in watches:
                    pw._deliver(event)

    def fail_all(self, error: ZooKeeperError) -> None:
        for table in self.tables.values():
            for watches in table.values():
                for w in watches:
                    w._fail(error)
            table.clear()
