"""Watch registrations and who to notify when a node changes.

Two tables, as in ZooKeeper: *data* watches (getData, exists, persistent and recursive modes)
and *child* watches (getChildren, persistent mode). A watcher is any hashable object, in practice
a client connection; it is one watcher however many times it asks, so it gets at most one event
per change. Each (watcher, path) entry holds a set of mode bits, so a one-time watch and a
persistent watch on the same path coexist (ZooKeeper 3.9's behaviour).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Iterable

from zkserver.proto.codes import WatcherType
from zkserver.tree.paths import ancestors

STANDARD = 1
PERSISTENT = 2
RECURSIVE = 4

Watcher = Hashable
Event = tuple[Watcher, int, str]  # (watcher, event type, path)


class WatchTable:
    """One table: path -> {watcher: mode bits}, plus the reverse index for cleanup.

    The reverse index maps a watcher to its paths as the keys of a dict (values None), not a
    set: CPython's compact dicts take about half the memory of a set of the same size, and a
    session with thousands of watches is what this table is sized for.
    """

    __slots__ = ("by_path", "by_watcher", "recursive")

    def __init__(self) -> None:
        self.by_path: dict[str, dict[Watcher, int]] = {}
        self.by_watcher: dict[Watcher, dict[str, None]] = {}
        self.recursive = 0

    def add(self, path: str, watcher: Watcher, mode: int) -> None:
        # Each request parses its own copy of the path; interned, a path watched by a thousand
        # sessions is one string in both indexes instead of a thousand (about 60 bytes each).
        path = sys.intern(path)
        watchers = self.by_path.get(path)
        if watchers is None:
            watchers = self.by_path[path] = {}
        old = watchers.get(watcher, 0)
        if mode & RECURSIVE and not old & RECURSIVE:
            self.recursive += 1
        watchers[watcher] = old | mode
        self.by_watcher.setdefault(watcher, {})[path] = None

    def _set(self, path: str, watcher: Watcher, old: int, new: int) -> None:
        if old & RECURSIVE and not new & RECURSIVE:
            self.recursive -= 1
        watchers = self.by_path[path]
        if new:
            watchers[watcher] = new
            return
        del watchers[watcher]
        if not watchers:
            del self.by_path[path]
        paths = self.by_watcher[watcher]
        paths.pop(path, None)
        if not paths:
            del self.by_watcher[watcher]

    def mode(self, path: str, watcher: Watcher) -> int:
        watchers = self.by_path.get(path)
        return watchers.get(watcher, 0) if watchers else 0

    def remove(self, path: str, watcher: Watcher, bits: int) -> bool:
        old = self.mode(path, watcher)
        if not old & bits:
            return False
        self._set(path, watcher, old, old & ~bits)
        return True

    def remove_watcher(self, watcher: Watcher) -> None:
        for path in list(self.by_watcher.get(watcher, ())):
            self._set(path, watcher, self.by_path[path][watcher], 0)

    def trigger(self, path: str, etype: int, out: list[Event], seen: set[Watcher],
                can_see: Callable[[Watcher], bool] | None) -> None:
        """Notify watchers of `path` (any mode) and recursive watchers of its ancestors."""
        watchers = self.by_path.get(path)
        if watchers:
            for watcher, mode in list(watchers.items()):
                if mode & STANDARD:
                    self._set(path, watcher, mode, mode & ~STANDARD)
                if watcher in seen or (can_see is not None and not can_see(watcher)):
                    continue
                seen.add(watcher)
                out.append((watcher, etype, path))
        if self.recursive:
            for anc in ancestors(path):
                watchers = self.by_path.get(anc)
                if not watchers:
                    continue
                for watcher, mode in watchers.items():
                    if mode & RECURSIVE and watcher not in seen:
                        if can_see is not None and not can_see(watcher):
                            continue
                        seen.add(watcher)
                        out.append((watcher, etype, path))

    def count(self) -> int:
        return sum(len(w) for w in self.by_path.values())


class WatchManager:
    __slots__ = ("data", "child")

    def __init__(self) -> None:
        self.data = WatchTable()
        self.child = WatchTable()

    def add_data(self, path: str, watcher: Watcher) -> None:
        self.data.add(path, watcher, STANDARD)

    def add_child(self, path: str, watcher: Watcher) -> None:
        self.child.add(path, watcher, STANDARD)

    def add_persistent(self, path: str, watcher: Watcher, recursive: bool) -> None:
        if recursive:
            self.data.add(path, watcher, RECURSIVE)
        else:
            self.data.add(path, watcher, PERSISTENT)
            self.child.add(path, watcher, PERSISTENT)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.data.remove_watcher(watcher)
        self.child.remove_watcher(watcher)

    def _bits(self, wtype: int) -> tuple[int, int]:
        """(data-table bits, child-table bits) that a WatcherType names."""
        if wtype == WatcherType.CHILDREN:
            return 0, STANDARD
        if wtype == WatcherType.DATA:
            return STANDARD, 0
        if wtype == WatcherType.ANY:
            return STANDARD | PERSISTENT | RECURSIVE, STANDARD | PERSISTENT
        if wtype == WatcherType.PERSISTENT:
            return PERSISTENT, PERSISTENT
        if wtype == WatcherType.PERSISTENT_RECURSIVE:
            return RECURSIVE, 0
        raise ValueError(f"unknown watcher type {wtype}")

    def has(self, path: str, watcher: Watcher, wtype: int) -> bool:
        dbits, cbits = self._bits(wtype)
        return bool(self.data.mode(path, watcher) & dbits or self.child.mode(path, watcher) & cbits)

    def remove(self, path: str, watcher: Watcher, wtype: int) -> bool:
        dbits, cbits = self._bits(wtype)
        removed = self.data.remove(path, watcher, dbits) if dbits else False
        if cbits and self.child.remove(path, watcher, cbits):
            removed = True
        return removed

    def paths_of(self, watcher: Watcher) -> Iterable[str]:
        return self.data.by_watcher.get(watcher, ())
