"""The node table in Python: what zkserver runs on where the native one (_nodetable.c) could
not be built. Both offer the same interface, described in nodetable.py.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from zkserver.tree import acl as aclmod

# The nine stored fields, as the digest hashes them (`Node.packed_fields`).
_FIELDS = struct.Struct(">qqqqiiiqq")

# Most znodes are leaves; they share one empty, immutable set instead of ~200 bytes each.
NO_CHILDREN: frozenset[str] = frozenset()


class Node:
    """One znode: its data, ACL and Stat fields (ZooKeeper's stored form, see DataTree)."""

    __slots__ = ("data", "acl", "czxid", "mzxid", "ctime", "mtime", "version", "cversion",
                 "aversion", "owner", "pzxid", "_children")

    def __init__(self, data: bytes | None, acl: aclmod.AclList, czxid: int, mzxid: int,
                 ctime: int, mtime: int, version: int, cversion: int, aversion: int,
                 owner: int, pzxid: int) -> None:
        self.data, self.acl, self.owner, self._children = data, acl, owner, NO_CHILDREN
        self.czxid, self.mzxid, self.pzxid, self.ctime, self.mtime = czxid, mzxid, pzxid, \
            ctime, mtime
        self.version, self.cversion, self.aversion = version, cversion, aversion

    # `_children` holds the children's full paths, the very strings that key the table: a
    # child costs its parent a set slot and no name string of its own (64 bytes a znode, an
    # eighth of one). The names are cut from them when a client asks (`child_names`).

    def child_count(self) -> int:
        return len(self._children)

    def child_paths(self) -> Iterable[str]:
        """The full paths of this node's children, in no particular order."""
        return self._children

    def child_names(self, path: str) -> list[str]:
        """The names of the children of this node, which is at `path`."""
        cut = len(path) + 1 if path != "/" else 1
        return [child[cut:] for child in self._children]

    def set_data(self, data: bytes | None, version: int, mzxid: int, mtime: int) -> None:
        """A setData's four changes at once (the native table makes its record once)."""
        self.data, self.version, self.mzxid, self.mtime = data, version, mzxid, mtime

    def packed_fields(self) -> bytes:
        """czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid, packed
        big-endian (struct ">qqqqiiiqq"): what the digest hashes of the Stat."""
        return _FIELDS.pack(self.czxid, self.mzxid, self.ctime, self.mtime, self.version,
                            self.cversion, self.aversion, self.owner, self.pzxid)

    def stat(self) -> tuple[int, ...]:
        """The 11 Stat fields in wire order."""
        n = len(self._children)
        data = self.data
        return (self.czxid, self.mzxid, self.ctime, self.mtime, self.version,
                2 * self.cversion - n, self.aversion, self.owner if self.owner > 0 else 0,
                len(data) if data is not None else 0, n, self.pzxid)

    def _file(self, path: str) -> None:
        if self._children is NO_CHILDREN:
            self._children = {path}
        else:
            self._children.add(path)  # type: ignore[union-attr]

    def _unfile(self, path: str) -> None:
        children = self._children
        if path in children:
            if len(children) == 1:
                self._children = NO_CHILDREN
            else:
                children.discard(path)  # type: ignore[union-attr]


class NodeTable(dict[str, Node]):
    """Nodes by path. Read it as a mapping; change its shape only through its methods."""

    __slots__ = ()

    def add(self, path: str, parent: Node, data: bytes | None, acl: aclmod.AclList, zxid: int,
            time: int, owner: int) -> Node:
        """Make a new node at `path` (absent) under `parent` (the node at its parent path)."""
        node = Node(data, acl, zxid, zxid, time, time, 0, 0, 0, owner, zxid)
        self[path] = node
        parent._file(path)
        return node

    def remove(self, path: str, parent: Node | None) -> Node | None:
        """Take the node at `path` out of the table and out of `parent`'s children."""
        if parent is not None:
            parent._unfile(path)
        return self.pop(path, None)

    def restore(self, path: str, data: bytes | None, acl: aclmod.AclList, czxid: int,
                mzxid: int, ctime: int, mtime: int, version: int, cversion: int, aversion: int,
                owner: int, pzxid: int) -> None:
        """Put a node as a snapshot recorded it, replacing any at `path`; `link` files it."""
        self[path] = Node(data, acl, czxid, mzxid, ctime, mtime, version, cversion, aversion,
                          owner, pzxid)

    def link(self) -> None:
        """File every node among its parent's children, afresh (after `restore`s).

        A restart spends about half its snapshot load here, so it is written for speed:
        siblings mostly come together (a snapshot lists nodes as they were created), so the
        parent found last is tried first. A node whose parent is missing stays unfiled."""
        for n in self.values():
            n._children = NO_CHILDREN
        parent_path: str | None = None
        parent: Node | None = None
        for path in self:
            if path == "/":
                continue
            i = path.rfind("/")  # paths.parent_of, inlined: a million calls
            at = path[:i] if i > 0 else "/"
            if at != parent_path:
                parent_path, parent = at, self.get(at)
            if parent is not None:
                parent._file(path)
