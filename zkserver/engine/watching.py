"""The watch requests: checkWatches, removeWatches, addWatch and setWatches.

They change the tree's watch registrations and nothing else, so they run like reads (in turn,
without a transaction) and have the reads' handler shape: (tree, client, request body) ->
(error code, reply body). setWatches is how a client that reconnects re-arms its watches: a
watch whose node changed while the client was away (past the zxid it last saw) fires at once
instead, as a notification with zxid -1, the way ZooKeeper answers it.
"""

from __future__ import annotations

from collections.abc import Callable

from zkserver.engine.ordering import Client
from zkserver.engine.reads import Handler
from zkserver.proto import records as R
from zkserver.proto.codes import AddWatchMode, Err, EventType, Op, WatcherType
from zkserver.proto.frames import notification
from zkserver.proto.jute import JuteError, Reader
from zkserver.tree.datatree import DataTree
from zkserver.tree.nodetable import Node


def _watch_type(r: Reader) -> tuple[str | None, int]:
    path = r.ustring()
    wtype = r.int()
    if wtype not in WatcherType._value2member_map_:
        raise JuteError(f"unknown watcher type {wtype}")
    return path, wtype


def check_watches(tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
    path, wtype = _watch_type(r)
    if path is None or not tree.watches.has(path, client, wtype):
        return Err.NOWATCHER, b""
    return 0, b""


def remove_watches(tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
    path, wtype = _watch_type(r)
    if path is None or not tree.watches.remove(path, client, wtype):
        return Err.NOWATCHER, b""
    return 0, b""


def add_watch(tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
    path = r.ustring()
    mode = r.int()
    if mode not in (AddWatchMode.PERSISTENT, AddWatchMode.PERSISTENT_RECURSIVE):
        raise JuteError(f"unknown addWatch mode {mode}")
    if path is not None:
        tree.watches.add_persistent(path, client, mode == AddWatchMode.PERSISTENT_RECURSIVE)
    return 0, R.IntResponse.pack(0)


def set_watches(tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
    """SetWatches: three lists (bytes after them are ignored, as by ZooKeeper)."""
    return _set_watches(tree, client, r, False)


def set_watches2(tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
    """SetWatches2: SetWatches' lists, then the persistent and persistent-recursive ones."""
    return _set_watches(tree, client, r, True)


def _set_watches(tree: DataTree, client: Client, r: Reader, v2: bool) -> tuple[int, bytes]:
    rel = r.long()
    data = r.ustring_vector() or []
    exist = r.ustring_vector() or []
    child = r.ustring_vector() or []
    persistent: list[str] = []
    recursive: list[str] = []
    if v2:
        persistent = r.ustring_vector() or []
        recursive = r.ustring_vector() or []
    nodes = tree.nodes
    watches = tree.watches
    # ZooKeeper's node map holds the root under "" too (engine/reads.py).
    for path in data:
        node = nodes.get(path or "/")
        _rearm(client, path, node, node is not None and node.mzxid > rel,
               EventType.NODE_DATA_CHANGED, watches.add_data)
    for path in exist:
        if (path or "/") in nodes:
            client.send(notification(-1, EventType.NODE_CREATED, path))
        else:
            watches.add_data(path, client)
    for path in child:
        node = nodes.get(path or "/")
        _rearm(client, path, node, node is not None and node.pzxid > rel,
               EventType.NODE_CHILDREN_CHANGED, watches.add_child)
    for path in persistent:
        watches.add_persistent(path, client, False)
    for path in recursive:
        watches.add_persistent(path, client, True)
    return 0, b""


def _rearm(client: Client, path: str, node: Node | None, changed: bool, event: int,
           add: Callable[[str, Client], None]) -> None:
    """A watch the client held before it reconnected: fired now if its node is gone or has
    changed since (`event`), set again otherwise."""
    if node is None:
        client.send(notification(-1, EventType.NODE_DELETED, path))
    elif changed:
        client.send(notification(-1, event, path))
    else:
        add(path, client)


HANDLERS: dict[int, Handler] = {
    Op.CHECK_WATCHES: check_watches, Op.REMOVE_WATCHES: remove_watches, Op.ADD_WATCH: add_watch,
    Op.SET_WATCHES: set_watches, Op.SET_WATCHES2: set_watches2,
}
