"""The data tree: ZooKeeper's replicated state machine.

`apply(txn)` is the only way state changes. It is deterministic (time comes inside the
transaction) and does no I/O: it returns what the write produced (for the reply) and the watch
events to deliver, in order. Reads (`get`, `stat_of`, ...) never change anything but watch
registrations. Two kinds of upkeep ride along once switched on, because only a served tree
needs them: the digest replicas compare (`track_digest`) and the quota stats (`track_quotas`,
tree/quota.py); replaying a log at start-up needs neither.

Stat rules that clients depend on (see docs/protocol-notes.md):
* `cversion` is stored as the number of child *creates*; clients see `2*cversion - numChildren`
  (creates + deletes). The sequence suffix uses the stored value.
* `ephemeralOwner` is stored with ZooKeeper's encoding (container and TTL markers) and shown as
  0 for everything but a plain ephemeral.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zkserver.proto.codes import EventType
from zkserver.tree import acl as aclmod
from zkserver.tree import digest as digestmod
from zkserver.tree import javahash
from zkserver.tree.nodetable import Node, NodeTable
from zkserver.tree.paths import parent_of
from zkserver.tree.quota import Quotas
from zkserver.tree.watches import Event, Watcher, WatchManager
from zkserver.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    ReconfigTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
)

CONFIG_PATH = "/zookeeper/config"

CONTAINER_OWNER = -(1 << 63)  # Long.MIN_VALUE
# Whether a watcher may see an event on a node with this ACL (see `DataTree.apply`).
CanSee = Callable[[Watcher, aclmod.AclList], bool]
TTL_MASK = -(1 << 56)  # 0xFF00000000000000 as a signed long
TTL_VALUE_MASK = (1 << 40) - 1


def ttl_owner(ttl_ms: int) -> int:
    return TTL_MASK | ttl_ms


def is_container(owner: int) -> bool:
    return owner == CONTAINER_OWNER


def ttl_of(owner: int) -> int | None:
    """The TTL of a TTL node's owner field, or None for any other kind of node."""
    if owner < 0 and owner != CONTAINER_OWNER and owner & TTL_MASK == TTL_MASK:
        return owner & TTL_VALUE_MASK
    return None


def shown_owner(owner: int) -> int:
    return owner if owner > 0 else 0


class StatAt:
    """A node's Stat as one op of a multi left it.

    ZooKeeper copies each op's Stat into the multi's result as the op is applied, so a later
    op of the same multi (a create below the node, a second setData) must not show through.
    """

    __slots__ = ("_stat",)

    def __init__(self, stat: tuple[int, ...]) -> None:
        self._stat = stat

    def stat(self) -> tuple[int, ...]:
        return self._stat


def _stat_at(result: Any) -> Any:
    if type(result) is Node:
        return StatAt(result.stat())
    if type(result) is tuple and result[1] is not None:
        return result[0], StatAt(result[1].stat())
    return result


class DataTree:
    """Nodes by path, sessions and their ephemerals, and the watch registrations."""

    def __init__(self) -> None:
        self.nodes = NodeTable()
        # Per session, its ephemerals in creation order, and the table size ZooKeeper's
        # HashSet of them has grown to: together they give the order in which closing the
        # session deletes them (see javahash).
        self.ephemerals: dict[int, dict[str, None]] = {}
        self.ephemeral_capacity: dict[int, int] = {}
        self.sessions: dict[int, int] = {}  # session id -> timeout, as committed
        self.containers: set[str] = set()
        self.ttls: set[str] = set()
        self.watches = WatchManager()
        self.last_zxid = 0
        self.digest: int | None = None
        self.quotas = Quotas(self)
        self.nodes.restore("/", b"", aclmod.OPEN_ACL, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        for path, acl in (("/zookeeper", aclmod.OPEN_ACL), ("/zookeeper/quota", aclmod.OPEN_ACL),
                          (CONFIG_PATH, aclmod.READ_ACL)):
            self.nodes.add(path, self.nodes[parent_of(path)], b"", acl, 0, 0, 0)
        self.nodes[CONFIG_PATH].aversion = -1

    # -- reads --------------------------------------------------------------------------------

    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def node_count(self) -> int:
        """As ZooKeeper counts: its map holds the root twice."""
        return len(self.nodes) + 1

    def count_descendants(self, path: str) -> int:
        node = self.nodes[path]
        total = 0
        stack = [node]
        nodes = self.nodes
        while stack:
            for child in stack.pop().child_paths():
                total += 1
                stack.append(nodes[child])
        return total

    def approximate_data_size(self) -> int:
        return sum(len(p) + (len(n.data) if n.data else 0) for p, n in self.nodes.items())

    # -- writes -------------------------------------------------------------------------------

    def unindex_owner(self, path: str, owner: int) -> None:
        if owner > 0:
            paths = self.ephemerals.get(owner)
            if paths is not None:
                paths.pop(path, None)
                if not paths:
                    del self.ephemerals[owner]
        elif owner == CONTAINER_OWNER:
            self.containers.discard(path)
        elif owner < 0:
            self.ttls.discard(path)

    def index_owner(self, path: str, owner: int) -> None:
        """File a node under its session (ephemeral), or as a container or TTL node."""
        if owner > 0:
            paths = self.ephemerals.setdefault(owner, {})
            paths[path] = None
            if len(paths) > 12:  # beyond a new HashSet's first resize threshold
                capacity = self.ephemeral_capacity.get(owner, javahash.DEFAULT_CAPACITY)
                self.ephemeral_capacity[owner] = javahash.grown_capacity(len(paths), capacity)
        elif owner == CONTAINER_OWNER:
            self.containers.add(path)
        elif owner < 0:
            self.ttls.add(path)

    def apply(self, txn: Txn, can_see: CanSee | None = None) -> tuple[Any, list[Event]]:
        """Apply one committed transaction; return (result, watch events).

        `can_see(watcher, acl)` is the READ check on event delivery (ZooKeeper 3.8.4+/3.9.2+,
        CVE-2024-23944): a watcher that may not read a changed node gets no event for it. Only
        the engine knows what its watchers may read; without it every watcher is told."""
        quotas = self.quotas
        pending = quotas.before(txn) if quotas.tracking else None
        events: list[Event] = []
        if self.digest is None:
            result = self._apply_op(txn, txn.op, events, can_see)
        else:
            paths: set[str] = set()
            digestmod.touched(txn.op, paths)
            sid = digestmod.session_of(txn.op, txn.session_id)
            before = digestmod.part(self, paths, sid)
            result = self._apply_op(txn, txn.op, events, can_see)
            after = digestmod.part(self, paths, sid)
            self.digest = (self.digest - before + after) & digestmod.MASK
        if txn.zxid > self.last_zxid:
            self.last_zxid = txn.zxid
        if pending is not None:
            quotas.after(pending)
        return result, events

    def track_digest(self) -> int:
        """Start keeping `digest` (replicas compare it after every commit)."""
        self.digest = digestmod.full(self)
        return self.digest

    def track_quotas(self) -> None:
        """Find the quota roots, count their stats, and keep them at every apply from now on."""
        self.quotas.rebuild()

    def _apply_op(self, txn: Txn, op: Any, events: list[Event], can_see: CanSee | None) -> Any:
        kind = type(op)
        if kind is SetDataTxn:
            return self._set_data(txn.zxid, txn.time, op, events, can_see)
        if kind is CreateTxn:
            return self._create(txn.zxid, txn.time, op, events, can_see)
        if kind is DeleteTxn:
            self._delete(txn.zxid, op.path, events, can_see)
            return None
        if kind is SetACLTxn:
            node = self.nodes.get(op.path)
            if node is not None:
                node.acl = aclmod.intern_acl(op.acl)
                node.aversion = op.version
            return node
        if kind is MultiTxn:
            return [_stat_at(self._apply_op(txn, sub, events, can_see)) for sub in op.txns]
        if kind is CreateSessionTxn:
            self.sessions[txn.session_id] = op.timeout
            return None
        if kind is CloseSessionTxn:
            self.sessions.pop(txn.session_id, None)
            self.ephemeral_capacity.pop(txn.session_id, None)
            for path in op.paths:
                self._delete(txn.zxid, path, events, can_see)
            return None
        if kind is ErrorTxn or kind is CheckTxn:
            return op
        if kind is ReconfigTxn:
            return self._set_data(txn.zxid, txn.time, SetDataTxn(CONFIG_PATH, op.data, -1),
                                  events, can_see)
        raise TypeError(f"unknown transaction {op!r}")

    def _create(self, zxid: int, time: int, op: CreateTxn, events: list[Event],
                can_see: CanSee | None) -> tuple[str, Node]:
        path = op.path
        parent_path = parent_of(path)
        parent = self.nodes.get(parent_path)
        if parent is not None and op.parent_cversion > parent.cversion:
            parent.cversion = op.parent_cversion
            parent.pzxid = zxid
        if parent is None or path in self.nodes:
            # Only when replaying the log over a fuzzy snapshot that already caught this node
            # (or missed its parent): the parent's counters above are all that can be behind.
            return path, self.nodes.get(path)
        node = self.nodes.add(path, parent, op.data, aclmod.intern_acl(op.acl), zxid, time,
                              op.owner)
        self.index_owner(path, op.owner)
        watches = self.watches
        if watches.data.by_path or watches.data.recursive:
            watches.data.trigger(path, EventType.NODE_CREATED, events, set(),
                                 _visibility(can_see, node.acl))
        if watches.child.by_path:
            watches.child.trigger(parent_path, EventType.NODE_CHILDREN_CHANGED, events, set(),
                                  _visibility(can_see, parent.acl))
        return path, node

    def _delete(self, zxid: int, path: str, events: list[Event], can_see: CanSee | None
                ) -> None:
        parent_path = parent_of(path)
        parent = self.nodes.get(parent_path)
        node = self.nodes.remove(path, parent)
        if parent is not None:
            if zxid > parent.pzxid:
                parent.pzxid = zxid
        if node is not None:
            self.unindex_owner(path, node.owner)
        if node is None or parent is None:
            return  # only when replaying the log over a fuzzy snapshot
        watches = self.watches
        if watches.data.by_path or watches.child.by_path:
            seen: set[Watcher] = set()
            visible = _visibility(can_see, node.acl)
            watches.data.trigger(path, EventType.NODE_DELETED, events, seen, visible)
            watches.child.trigger(path, EventType.NODE_DELETED, events, seen, visible)
            watches.child.trigger(parent_path, EventType.NODE_CHILDREN_CHANGED, events, set(),
                                  _visibility(can_see, parent.acl))

    def _set_data(self, zxid: int, time: int, op: SetDataTxn, events: list[Event],
                  can_see: CanSee | None) -> Node | None:
        node = self.nodes.get(op.path)
        if node is None:
            return None  # replaying over a snapshot taken after a later delete
        node.set_data(op.data, op.version, zxid, time)
        watches = self.watches
        if watches.data.by_path:
            watches.data.trigger(op.path, EventType.NODE_DATA_CHANGED, events, set(),
                                 _visibility(can_see, node.acl))
        return node


def _visibility(can_see: CanSee | None, acl: aclmod.AclList) -> Callable[[Watcher], bool] | None:
    """`can_see` for one node's ACL; None (everyone may see) when that needs no check."""
    if can_see is None or acl is aclmod.OPEN_ACL:
        return None
    return lambda watcher: can_see(watcher, acl)
