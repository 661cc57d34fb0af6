"""Which container and TTL nodes are due for deletion (ZooKeeper's ContainerManager rules).

* A container is deleted once it has no children *and* has had at least one (stored
  cversion > 0). One that never had a child goes only when `maxNeverUsedIntervalMs` > 0 and it
  is older than that (ZooKeeper's default, 0, keeps it forever).
* A TTL node is deleted when it has no children and has not been modified (mtime) for longer
  than its TTL.

Ages are ZooKeeper's: the current *wall* time against the node's mtime (the wall-clock stamp
of the transaction that last changed it), so a step of the wall clock moves them, as it does in
ZooKeeper. *When* the reaper looks is the server's business, on its monotonic clock.

The reaper's deletes are ordinary transactions (no ACL check) that fire the usual watches.
"""

from __future__ import annotations

from zkserver.tree.datatree import DataTree, ttl_of


def due_for_reaping(tree: DataTree, wall: int, max_never_used_ms: int = 0) -> list[str]:
    victims: list[str] = []
    nodes = tree.nodes
    for path in sorted(tree.containers):
        node = nodes[path]
        if node.child_count():
            continue
        if node.cversion > 0 or (max_never_used_ms > 0 and wall - node.mtime > max_never_used_ms):
            victims.append(path)
    for path in sorted(tree.ttls):
        node = nodes[path]
        ttl = ttl_of(node.owner)
        if not node.child_count() and ttl is not None and wall - node.mtime > ttl:
            victims.append(path)
    return victims
