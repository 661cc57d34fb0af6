"""The tree's nodes: a table of znodes by path, each filed among its parent's children.

The table is the only place nodes are made, filed and unfiled, so that what a znode costs is
decided here alone (ZooKeeper's users run into memory first). Everything else reads a node's
fields and its children through `Node`, and changes its fields, never its place.

* Read it as a mapping: `get`, `[]`, `in`, `len`, iteration over paths, `items`, `values`.
* `add(path, parent, ...)` makes a node and files it under `parent`; `remove(path, parent)`
  takes it out. A node already removed can still be read (a multi's result shows the Stat it
  had; a delete's watch check reads its ACL).
* `restore(path, ...)` puts a node as a snapshot recorded it; `link()` files every node under
  its parent once all are in (a snapshot may list a child before its parent).
* A `Node` has the fields (`data`, `acl`, `czxid`, ..., `pzxid`, all settable), `stat()`,
  `child_count()`, `child_paths()` and `child_names(path)`.
* Iteration follows insertion order, except that the native table reuses the places of removed
  nodes. Nothing depends on the order but which of a session's ephemerals a restarted server
  deletes first when the session closes.

Two implementations: the native one (_nodetable.c: about 210 bytes a znode with a 100-byte
value, against 470 in Python), built at install where a C compiler is present, and the same
in Python (pynodetable.py) otherwise. `NATIVE` says which one runs.
"""

from __future__ import annotations

try:
    from zkserver.tree._nodetable import Node, NodeTable
    NATIVE = True
except ImportError:  # not built: no C compiler where zkserver was installed
    from zkserver.tree.pynodetable import Node, NodeTable  # type: ignore[assignment]
    NATIVE = False

__all__ = ["NATIVE", "Node", "NodeTable"]
