"""A digest of the whole tree, kept up to date per transaction (ClickHouse Keeper and
ZooKeeper 3.6+ do the same), so replicas can prove they hold the same state.

The digest is a sum, modulo 2**64, of a CRC of every node (path, data, ACL and every stat
field) and of every session; a transaction changes it by the nodes and sessions it touches,
so keeping it costs a few hashes per write, not a walk of the tree.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, Any

from zkserver.tree.paths import parent_of
from zkserver.txn import (
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
)

if TYPE_CHECKING:
    from zkserver.tree.datatree import DataTree
    from zkserver.tree.nodetable import Node

MASK = (1 << 64) - 1


# Each server sets /zookeeper/config itself (its data, mzxid and mtime) when it starts to serve,
# as ZooKeeper does, so replicas may differ there (ZooKeeper leaves /zookeeper/ out of its
# digest for the same reason). It counts as it was in a new tree, as it always stayed before
# servers set it: members running that older code still compute the same digest.
_LOCAL = "/zookeeper/config"
_local_hash: list[int] = []


def node_hash(path: str, node: Node | None) -> int:
    if node is None:
        return 0
    if path == _LOCAL:
        return _local()
    return _hash(path, node)


def _local() -> int:
    """The hash `_LOCAL` counts with: as it is in a new tree."""
    if not _local_hash:
        from zkserver.tree.datatree import DataTree  # (it imports this module)

        _local_hash.append(_hash(_LOCAL, DataTree().nodes[_LOCAL]))
    return _local_hash[0]


def _hash(path: str, node: Node) -> int:
    """The CRC of path, stat, data and ACL, one after the other (one call over the joined
    bytes: the same CRC as chained calls, which cost a write a quarter more)."""
    data = node.data
    acl = node.acl
    acl_bytes = _acl_cache.get(acl)
    if acl_bytes is None:
        acl_bytes = _acl_cache[acl] = repr(acl).encode()
    h = _crc32(b"".join((
        path.encode(),
        node.packed_fields(),
        _ABSENT if data is None else _PRESENT,
        data or b"",
        acl_bytes)))
    return h * 0x9E3779B97F4A7C15 & MASK  # spread 32 bits over 64


_crc32 = zlib.crc32
_ABSENT, _PRESENT = b"\x00", b"\x01"
_acl_cache: dict[tuple, bytes] = {}


def session_hash(sid: int, timeout: int | None) -> int:
    if timeout is None:
        return 0
    return zlib.crc32(struct.pack(">qi", sid, timeout)) * 0xC2B2AE3D27D4EB4F & MASK


def touched(op: Any, out: set[str]) -> None:
    """The paths whose nodes a transaction may change."""
    kind = type(op)
    if kind is CreateTxn or kind is DeleteTxn:
        out.add(op.path)
        out.add(parent_of(op.path))
    elif kind is SetDataTxn or kind is SetACLTxn:
        out.add(op.path)
    elif kind is CloseSessionTxn:
        for p in op.paths:
            out.add(p)
            out.add(parent_of(p))
    elif kind is MultiTxn:
        for sub in op.txns:
            touched(sub, out)


def part(tree: DataTree, paths: set[str], sid: int | None) -> int:
    """The hashes of `paths` (and of session `sid`) as they are now: what a transaction that
    touches them takes out of the digest before it is applied, and puts back after."""
    nodes = tree.nodes
    total = 0
    for p in paths:
        node = nodes.get(p)
        if node is not None:
            total += _local() if p == _LOCAL else _hash(p, node)
    if sid is not None:
        total += session_hash(sid, tree.sessions.get(sid))
    return total


def full(tree: DataTree) -> int:
    total = sum(node_hash(p, n) for p, n in tree.nodes.items())
    total += sum(session_hash(s, t) for s, t in tree.sessions.items())
    return total & MASK


def session_of(op: Any, sid: int) -> int | None:
    return sid if type(op) in (CreateSessionTxn, CloseSessionTxn) else None
