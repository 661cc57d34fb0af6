"""Quotas under `/zookeeper/quota`, kept as ZooKeeper keeps them.

A quota on `/app` is two znodes that clients (zkCli's `setquota`, Curator, ...) write with
ordinary requests:

* `/zookeeper/quota/app/zookeeper_limits`: the limits, as text such as `count=10,bytes=-1`, or
  3.7+'s `count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=-1` (pairs split on `,` or `;`,
  an empty value is -1). `count`/`bytes` are soft limits, `countHardLimit`/`byteHardLimit` hard
  ones; -1 means "no limit".
* `/zookeeper/quota/app/zookeeper_stats`: what the subtree holds now, `count=N,bytes=M`. The
  *server* keeps this one: when it is created it is filled with a count of the subtree (the
  node itself included), and every later create, delete and setData under `/app` changes it
  in place, without a new zxid or version, exactly as ZooKeeper's DataTree does.

Each write counts toward the innermost quota above it only. With `enforceQuota=true` (3.7+) a
create or setData that would go past a hard limit fails with QUOTAEXCEEDED (-125) before it
gets a zxid; going past a soft limit is only logged. As in ZooKeeper the check reads the
committed stats, so writes still in flight are not counted.

Each `DataTree` owns its `Quotas` (`tree.quotas`). They start idle: replaying a log over a
snapshot need not keep stats that are about to be counted again. Whoever serves a tree calls
`tree.track_quotas()` once it is loaded (a restart, an installed snapshot), which finds the
quota roots and counts their stats afresh, the way ZooKeeper's `setupQuota` does when it loads
a snapshot; from then on every `tree.apply` keeps them. The tree's digest is kept right across
the in-place updates, so replicas keep agreeing.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from zkserver.proto.codes import Err
from zkserver.tree import digest as digestmod
from zkserver.txn import CloseSessionTxn, CreateTxn, DeleteTxn, MultiTxn, SetDataTxn, Txn

if TYPE_CHECKING:
    from zkserver.tree.datatree import DataTree

log = logging.getLogger(__name__)
# What a check finds (a limit passed, a quota node missing), logged at every write that finds it;
# the server lets at most one line a second through (ZooKeeper's RateLogger), on its own clock.
limits_log = logging.getLogger(__name__ + ".limits")

QUOTA_ROOT = "/zookeeper/quota"
LIMIT_NODE = "zookeeper_limits"
STAT_NODE = "zookeeper_stats"
_QUOTA_PREFIX = QUOTA_ROOT + "/"
_PAIRS = re.compile(r"[,;]+")


class QuotaExceeded(Exception):
    """A hard limit would be passed; the request is answered QUOTAEXCEEDED."""

    code = Err.QUOTAEXCEEDED

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.root = root


def parse_stats(data: bytes | None) -> dict[str, int]:
    """ZooKeeper's StatsTrack text -> {key: value}; a missing key means -1."""
    out: dict[str, int] = {}
    if not data:
        return out
    for pair in _PAIRS.split(data.decode("utf-8", "replace")):
        if not pair:
            continue
        parts = [p for p in pair.split("=")]
        while parts and parts[-1] == "":
            parts.pop()  # Java's split drops trailing empty strings
        if not parts:
            continue
        key = parts[0]
        value = parts[1] if len(parts) > 1 else ""
        try:
            out[key] = int(value) if value else -1
        except ValueError:
            log.warning("quota: ignoring %r in %r", pair, data)
    return out


def format_stats(count: int, nbytes: int) -> bytes:
    """The `zookeeper_stats` text the server writes."""
    return f"count={count},bytes={nbytes}".encode()


def limit_path(root: str) -> str:
    return f"{QUOTA_ROOT}{root}/{LIMIT_NODE}"


def stat_path(root: str) -> str:
    return f"{QUOTA_ROOT}{root}/{STAT_NODE}"


def _size(data: bytes | None) -> int:
    return 0 if data is None else len(data)


# Per path a write touches under a quota root: (root, existed, data size) before the write; and
# per quota node it touches (limits or stats), whether it existed.
_Pending = tuple[dict[str, tuple[str, bool, int]], dict[str, bool]]


class Quotas:
    """The quota roots of one tree (ZooKeeper's PathTrie) and the upkeep of their stats."""

    def __init__(self, tree: DataTree) -> None:
        self.tree = tree
        self.roots: set[str] = set()
        self.tracking = False  # set by `rebuild`: from then on every apply keeps the stats

    # -- the roots ------------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Find every `zookeeper_limits` node, recount the stats of its subtree, and keep them
        from now on."""
        self.tracking = True
        self.roots = set()
        suffix = "/" + LIMIT_NODE
        for path in list(self.tree.nodes):
            if path.startswith(_QUOTA_PREFIX) and path.endswith(suffix):
                root = path[len(QUOTA_ROOT):-len(suffix)]
                if root:
                    self.roots.add(root)
                    self.recount(root)

    def root_of(self, path: str) -> str | None:
        """The innermost quota root at or above `path` (never `/` or `/zookeeper`)."""
        roots = self.roots
        if not roots:
            return None
        p = path
        while p and p != "/":
            if p in roots:
                return None if p == "/zookeeper" else p
            p = p[:p.rfind("/")]
        return None

    # -- keeping the stats ------------------------------------------------------------------------

    def count(self, root: str) -> tuple[int, int]:
        """Nodes and data bytes of the subtree at `root`, the root itself included."""
        nodes = self.tree.nodes
        node = nodes.get(root)
        if node is None:
            return 0, 0
        count, nbytes = 0, 0
        stack = [node]
        while stack:
            n = stack.pop()
            count += 1
            nbytes += _size(n.data)
            for child in n.child_paths():
                c = nodes.get(child)
                if c is not None:
                    stack.append(c)
        return count, nbytes

    def recount(self, root: str) -> None:
        self._write_stats(root, *self.count(root))

    def _write_stats(self, root: str, count: int, nbytes: int) -> None:
        path = stat_path(root)
        node = self.tree.nodes.get(path)
        if node is None:
            return  # ZooKeeper: "Missing quota stat node"
        data = format_stats(count, nbytes)
        if node.data == data:
            return
        tree = self.tree
        if tree.digest is not None:
            before = digestmod.node_hash(path, node)
            node.data = data
            tree.digest = (tree.digest - before + digestmod.node_hash(path, node)) \
                & digestmod.MASK
        else:
            node.data = data

    def _add_to_stats(self, root: str, dcount: int, dbytes: int) -> None:
        node = self.tree.nodes.get(stat_path(root))
        if node is None:
            return
        stats = parse_stats(node.data)
        self._write_stats(root, stats.get("count", -1) + dcount, stats.get("bytes", -1) + dbytes)

    def before(self, txn: Txn) -> _Pending | None:
        """What `after` needs to update the stats once `txn` is applied; None when the
        transaction touches no quota (or the stats are not kept)."""
        if not self.tracking:
            return None
        op = txn.op
        kind = type(op)
        if not self.roots and (kind is SetDataTxn or kind is CreateTxn or kind is DeleteTxn) \
                and not op.path.startswith(_QUOTA_PREFIX):
            return None  # the usual write, with no quota set: a call and two lists saved
        paths: list[str] = []
        _touched(op, paths)
        quota_paths = [p for p in paths if p.startswith(_QUOTA_PREFIX)]
        if not self.roots and not quota_paths:
            return None
        nodes = self.tree.nodes
        quota_before = {p: p in nodes for p in quota_paths}
        before: dict[str, tuple[str, bool, int]] = {}
        if self.roots:
            for p in paths:
                if p in before:
                    continue
                root = self.root_of(p)
                if root is not None:
                    node = nodes.get(p)
                    before[p] = (root, node is not None, 0 if node is None else _size(node.data))
        return before, quota_before

    def after(self, pending: _Pending) -> None:
        """The quota upkeep of the transaction `before` looked at, now applied."""
        before, quota_before = pending
        nodes = self.tree.nodes
        deltas: dict[str, list[int]] = {}
        for p, (root, existed, size) in before.items():
            node = nodes.get(p)
            d = deltas.setdefault(root, [0, 0])
            d[0] += (node is not None) - existed
            d[1] += (0 if node is None else _size(node.data)) - size
        for root, (dcount, dbytes) in deltas.items():
            if dcount or dbytes:
                self._add_to_stats(root, dcount, dbytes)
        for p, existed in quota_before.items():
            parent, _, name = p.rpartition("/")
            root = parent[len(QUOTA_ROOT):]
            if not root:
                continue
            if name == LIMIT_NODE:
                if p in nodes:
                    self.roots.add(root)
                else:
                    self.roots.discard(root)
            elif name == STAT_NODE and p in nodes and not existed:
                self.recount(root)

    # -- the check before a write ---------------------------------------------------------------

    def check(self, path: str, old: bytes | None, new: bytes | None, create: bool) -> None:
        """ZooKeeper's checkQuota: raise QuotaExceeded where a hard limit would be passed."""
        root = self.root_of(path)
        if root is None:
            return
        nodes = self.tree.nodes
        limit_node = nodes.get(limit_path(root))
        if limit_node is None:
            limits_log.error("Missing limit node for quota %s", limit_path(root))
            return
        limits = parse_stats(limit_node.data)
        dcount = 1 if create else 0
        dbytes = _size(new) - (0 if create else _size(old))
        soft_count, hard_count = limits.get("count", -1), limits.get("countHardLimit", -1)
        soft_bytes, hard_bytes = limits.get("bytes", -1), limits.get("byteHardLimit", -1)
        check_count = dcount != 0 and (soft_count > -1 or hard_count > -1)
        check_bytes = dbytes != 0 and (soft_bytes > -1 or hard_bytes > -1)
        if not check_count and not check_bytes:
            return
        stat_node = nodes.get(stat_path(root))
        if stat_node is None:
            limits_log.error("Missing node for stat %s", stat_path(root))
            return
        current = parse_stats(stat_node.data)
        if check_count:
            self._limit(root, "count", current.get("count", -1) + dcount, soft_count, hard_count)
        if check_bytes:
            self._limit(root, "bytes", current.get("bytes", -1) + dbytes, soft_bytes, hard_bytes)

    def _limit(self, root: str, what: str, value: int, soft: int, hard: int) -> None:
        limit = hard if hard > -1 else soft
        if value <= limit:
            return
        kind = "hard" if hard > -1 else "soft"
        limits_log.warning("Quota exceeded: %s [current %s=%d, %s%sLimit=%d]",
                           root, what, value, kind, "Count" if what == "count" else "Byte", limit)
        if hard > -1:
            raise QuotaExceeded(root)


def _touched(op: Any, out: list[str]) -> None:
    kind = type(op)
    if kind is CreateTxn or kind is DeleteTxn or kind is SetDataTxn:
        out.append(op.path)
    elif kind is CloseSessionTxn:
        out.extend(op.paths)
    elif kind is MultiTxn:
        for sub in op.txns:
            _touched(sub, out)


def check(tree: DataTree, path: str, new: bytes | None, create: bool) -> None:
    """Before a create or setData of `path` (the committed tree's data is the old value)."""
    q = tree.quotas
    if not q.roots:
        return
    node = None if create else tree.nodes.get(path)
    q.check(path, None if node is None else node.data, new, create)
