"""What operations return: small attrs records.

Records that pair a value with its Stat unpack like tuples (`data, stat = await zk.get(p)`), and
the watched variants carry the watch as their last field (`data, stat, watch = ...`), so the
common case reads as naturally as kazoo while every field still has a name.
`Stat`, `ACL` and `Id` are the codec's own records (`zkserver.proto.records`), re-exported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from zkserver.proto.codes import EventType, KeeperState
from zkserver.proto.records import ACL, Id, Stat

if TYPE_CHECKING:
    from .watches import Watch

__all__ = [
    "ACL", "ACLs", "Checked", "Children", "Created", "Deleted", "ExistsWatched", "Id", "NodeData",
    "SetDataResult", "Stat", "WatchedChildren", "WatchedEvent", "WatchedNodeData",
]


class _Unpackable:
    """Lets a record unpack into its fields, in declaration order."""

    def __iter__(self) -> Iterator[Any]:
        return iter(attrs.astuple(self, recurse=False))  # type: ignore[arg-type]


@attrs.frozen
class NodeData(_Unpackable):
    data: bytes | None
    stat: Stat


@attrs.frozen
class WatchedNodeData(_Unpackable):
    data: bytes | None
    stat: Stat
    watch: Watch


@attrs.frozen
class Children(_Unpackable):
    """Child names (not paths), and the parent's Stat (None inside multiRead, which has none)."""

    children: list[str]
    stat: Stat | None


@attrs.frozen
class WatchedChildren(_Unpackable):
    children: list[str]
    stat: Stat
    watch: Watch


@attrs.frozen
class ExistsWatched(_Unpackable):
    """exists with a watch: the Stat (None when the node is missing) and the watch, which then
    fires on creation."""

    stat: Stat | None
    watch: Watch


@attrs.frozen
class Created(_Unpackable):
    path: str
    stat: Stat | None


@attrs.frozen
class ACLs(_Unpackable):
    acl: list[ACL]
    stat: Stat


@attrs.frozen
class WatchedEvent:
    """A change the server told us about, or (type NONE) a connection change a persistent watch
    should know about because events may have been missed while disconnected."""

    type: EventType
    state: KeeperState
    path: str | None
    zxid: int = -1


@attrs.frozen
class Deleted:
    """Result of a delete inside a transaction."""

    path: str


@attrs.frozen
class Checked:
    """Result of a version check inside a transaction."""

    path: str


@attrs.frozen
class SetDataResult:
    """Result of a setData inside a transaction."""

    path: str
    stat: Stat

