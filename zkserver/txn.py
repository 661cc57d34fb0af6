"""Transactions: what a write becomes once it has been checked and given a zxid.

`prep` makes them, the transaction log stores them, ZAB proposes them and `DataTree.apply`
applies them: one record, one path, no translation layers. Every field a replica needs to reach
the same state is inside (the time of the write included), so applying a transaction is
deterministic. They serialize to compact cbor2 arrays: `[tag, field, ...]`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import attrs
import cbor2


@attrs.frozen(slots=True)
class CreateTxn:
    path: str
    data: bytes | None
    acl: tuple[tuple[int, str, str], ...]
    owner: int  # ZooKeeper's ephemeralOwner encoding: 0, a session id, container or TTL marker
    # The parent's stored cversion after this create. Carried (as ZooKeeper's CreateTxn does) so
    # that replaying the log over a fuzzy snapshot sets it rather than counting it twice.
    parent_cversion: int


@attrs.frozen(slots=True)
class DeleteTxn:
    path: str


@attrs.frozen(slots=True)
class SetDataTxn:
    path: str
    data: bytes | None
    version: int  # the node's new version


@attrs.frozen(slots=True)
class SetACLTxn:
    path: str
    acl: tuple[tuple[int, str, str], ...]
    version: int  # the node's new aversion


@attrs.frozen(slots=True)
class CheckTxn:
    path: str
    version: int


@attrs.frozen(slots=True)
class CreateSessionTxn:
    timeout: int


@attrs.frozen(slots=True)
class CloseSessionTxn:
    """Ends a session. It names the ephemerals it deletes (as ZooKeeper's does since
    ZOOKEEPER-3145), so replaying it over a fuzzy snapshot that missed some of them still
    updates their parents exactly."""

    paths: tuple[str, ...]


@attrs.frozen(slots=True)
class ReconfigTxn:
    """A new membership (ZooKeeper's reconfig: a setData of /zookeeper/config whose data is the
    new configuration, `version=` its own zxid). Every replica learns the membership from it,
    and recovery from the log, so the text is the whole of it."""

    data: bytes


@attrs.frozen(slots=True)
class ErrorTxn:
    """A write that failed its checks: it still takes a zxid, as in ZooKeeper."""

    err: int


@attrs.frozen(slots=True)
class MultiTxn:
    """All sub-transactions share the multi's zxid; a failed multi is an ErrorTxn per op."""

    txns: tuple[Any, ...]


@attrs.frozen(slots=True)
class Txn:
    zxid: int
    time: int  # ms since the epoch, stamped by the leader; becomes ctime/mtime
    session_id: int
    cxid: int
    op: Any
    # Its encoding, kept by `encode` the first time: a leader writes each transaction to its
    # log and into a PROPOSAL for every follower, and encoding it was most of that work.
    raw: bytes | None = attrs.field(default=None, eq=False, repr=False)


_TAGS: dict[type, int] = {
    CreateTxn: 1, DeleteTxn: 2, SetDataTxn: 5, SetACLTxn: 7, CheckTxn: 13, MultiTxn: 14,
    ReconfigTxn: 16, CreateSessionTxn: -10, CloseSessionTxn: -11, ErrorTxn: -1,
}
_CLASSES = {tag: cls for cls, tag in _TAGS.items()}


def _fields_of(cls: type) -> Callable[[Any], tuple]:
    """A C-speed getter of an operation's fields as a tuple (`attrs.astuple` is generic and
    costs more than the cbor2 encoding it feeds, on every write)."""
    get = operator.attrgetter(*(f.name for f in attrs.fields(cls)))
    return get if len(attrs.fields(cls)) > 1 else lambda op: (get(op),)


_FIELDS = {cls: _fields_of(cls) for cls in _TAGS if cls is not MultiTxn}


def _op_to_list(op: Any) -> list:
    cls = type(op)
    if cls is MultiTxn:
        return [14, [_op_to_list(t) for t in op.txns]]
    return [_TAGS[cls], *_FIELDS[cls](op)]


def _op_from_list(item: list) -> Any:
    tag = item[0]
    if tag == 14:
        return MultiTxn(tuple(_op_from_list(t) for t in item[1]))
    cls = _CLASSES[tag]
    if cls is CloseSessionTxn:
        return cls(tuple(item[1]))
    if cls in (CreateTxn, SetACLTxn):
        fields = list(item[1:])
        i = 2 if cls is CreateTxn else 1
        fields[i] = tuple(tuple(e) for e in fields[i])
        return cls(*fields)
    return cls(*item[1:])


def to_obj(txn: Txn) -> list:
    return [txn.zxid, txn.time, txn.session_id, txn.cxid, _op_to_list(txn.op)]


def from_obj(obj: list, raw: bytes | None = None) -> Txn:
    """The transaction `obj` lists; `raw`, when given, is its encoding (kept for `encode`)."""
    zxid, time, session_id, cxid, op = obj
    return Txn(zxid, time, session_id, cxid, _op_from_list(op), raw)


def encode(txn: Txn) -> bytes:
    raw = txn.raw
    if raw is None:
        raw = cbor2.dumps(to_obj(txn))
        object.__setattr__(txn, "raw", raw)  # a memo of a frozen value, not a change of it
    return raw


def forget_encoding(txn: Txn) -> None:
    """Drop the kept encoding once the log has it: an ensemble member keeps a window of
    100,000 transactions in memory, which their bytes would make half as big again."""
    object.__setattr__(txn, "raw", None)


def decode(data: bytes) -> Txn:
    return from_obj(cbor2.loads(data))
