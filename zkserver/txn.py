"""Transactions: what a write becomes once it has been checked and given a zxid.

`prep` makes them, the transaction log stores them, ZAB proposes them and `DataTree.apply`
applies them: one record, one path, no translation layers. Every field a replica needs to reach
the same state is inside (the time of the write included), so applying a transaction is
deterministic. They serialize to compact cbor2 arrays: `[tag, field, ...]`.

Nothing changes a transaction once made; the classes are immutable by convention (`value`, which
says why not attrs-frozen) and compare and hash by their fields.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable
from typing import Any

import attrs
import cbor2

from zkserver.value import value


@value
class CreateTxn:
    path: str
    data: bytes | None
    acl: tuple[tuple[int, str, str], ...]
    owner: int  # ZooKeeper's ephemeralOwner encoding: 0, a session id, container or TTL marker
    # The parent's stored cversion after this create. Carried (as ZooKeeper's CreateTxn does) so
    # that replaying the log over a fuzzy snapshot sets it rather than counting it twice.
    parent_cversion: int


@value
class DeleteTxn:
    path: str


@value
class SetDataTxn:
    path: str
    data: bytes | None
    version: int  # the node's new version


@value
class SetACLTxn:
    path: str
    acl: tuple[tuple[int, str, str], ...]
    version: int  # the node's new aversion


@value
class CheckTxn:
    path: str
    version: int


@value
class CreateSessionTxn:
    timeout: int


@value
class CloseSessionTxn:
    """Ends a session. It names the ephemerals it deletes (as ZooKeeper's does since
    ZOOKEEPER-3145), so replaying it over a fuzzy snapshot that missed some of them still
    updates their parents exactly."""

    paths: tuple[str, ...]


@value
class ReconfigTxn:
    """A new membership (ZooKeeper's reconfig: a setData of /zookeeper/config whose data is the
    new configuration, `version=` its own zxid). Every replica learns the membership from it,
    and recovery from the log, so the text is the whole of it."""

    data: bytes


@value
class ErrorTxn:
    """A write that failed its checks: it still takes a zxid, as in ZooKeeper."""

    err: int


@value
class MultiTxn:
    """All sub-transactions share the multi's zxid; a failed multi is an ErrorTxn per op."""

    txns: tuple[Any, ...]


@value
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
    return _FROM_LIST[item[0]](item)


def _acl_of(entries: list) -> tuple[tuple[int, str, str], ...]:
    return tuple(map(tuple, entries))


def _plain(cls: type) -> Callable[[list], Any]:
    return lambda item: cls(*item[1:])


# A decoder per tag: a follower decodes every transaction the leader proposes, and the
# generic way (copy the fields, then turn lists back into tuples where the op has them) took
# 0.9 µs of a create's 2.3.
_FROM_LIST: dict[int, Callable[[list], Any]] = {
    **{tag: _plain(cls) for cls, tag in _TAGS.items()},
    _TAGS[MultiTxn]: lambda item: MultiTxn(tuple(map(_op_from_list, item[1]))),
    _TAGS[CloseSessionTxn]: lambda item: CloseSessionTxn(tuple(item[1])),
    _TAGS[CreateTxn]: lambda item: CreateTxn(item[1], item[2], _acl_of(item[3]), *item[4:]),
    _TAGS[SetACLTxn]: lambda item: SetACLTxn(item[1], _acl_of(item[2]), *item[3:]),
}


def to_obj(txn: Txn) -> list:
    return [txn.zxid, txn.time, txn.session_id, txn.cxid, _op_to_list(txn.op)]


def from_obj(obj: list, raw: bytes | None = None) -> Txn:
    """The transaction `obj` lists; `raw`, when given, is its encoding (kept for `encode`)."""
    zxid, time, session_id, cxid, op = obj
    return Txn(zxid, time, session_id, cxid, _op_from_list(op), raw)


def encode(txn: Txn) -> bytes:
    raw = txn.raw
    if raw is None:
        direct = _DIRECT.get(type(txn.op))
        raw = direct(txn) if direct is not None else cbor2.dumps(to_obj(txn))
        txn.raw = raw  # a memo of the value, not a change of it
    return raw


# -- the usual writes, encoded directly ---------------------------------------------------------
# cbor2.dumps(to_obj(txn)) took 2.4-2.9 µs for a create, a tenth of its whole CPU on a
# standalone server; the same bytes put together here take about 60% of that (the shared ACL
# list is encoded once). The bytes are cbor2's exactly (tests/test_txn.py checks that over
# random values), and anything else goes through cbor2.

_HEAD1 = struct.Struct(">BB").pack
_HEAD2 = struct.Struct(">BH").pack
_HEAD4 = struct.Struct(">BI").pack
_HEAD8 = struct.Struct(">BQ").pack


def _head(major: int, n: int) -> bytes:
    """A CBOR item head: major type `major` (shifted), argument `n` (0 <= n < 2**64)."""
    if n < 24:
        return bytes((major | n,))
    if n < 0x100:
        return _HEAD1(major | 24, n)
    if n < 0x10000:
        return _HEAD2(major | 25, n)
    if n < 0x100000000:
        return _HEAD4(major | 26, n)
    return _HEAD8(major | 27, n)


def _int(n: int) -> bytes:
    return _head(0, n) if n >= 0 else _head(0x20, -1 - n)


def _str(s: str) -> bytes:
    b = s.encode()
    return _head(0x60, len(b)) + b


def _bytes(b: bytes | None) -> bytes:
    return b"\xf6" if b is None else _head(0x40, len(b)) + b


_ACLS: dict[tuple, bytes] = {}


def _acl(acl: tuple[tuple[int, str, str], ...]) -> bytes:
    out = _ACLS.get(acl)
    if out is None:
        if len(_ACLS) >= 256:
            _ACLS.clear()
        out = _ACLS[acl] = cbor2.dumps([list(e) for e in acl])
    return out


def _header(txn: Txn) -> bytes:
    return b"".join((b"\x85", _int(txn.zxid), _int(txn.time), _int(txn.session_id),
                     _int(txn.cxid)))


def _op_head(cls: type) -> bytes:
    """The head of `_op_to_list(op)` for an op of `cls`: an array of its tag and fields."""
    return _head(0x80, 1 + len(attrs.fields(cls))) + _int(_TAGS[cls])


_CREATE, _SET_DATA, _DELETE = _op_head(CreateTxn), _op_head(SetDataTxn), _op_head(DeleteTxn)


def _create(txn: Txn) -> bytes:
    op = txn.op
    return b"".join((_header(txn), _CREATE, _str(op.path), _bytes(op.data), _acl(op.acl),
                     _int(op.owner), _int(op.parent_cversion)))


def _set_data(txn: Txn) -> bytes:
    op = txn.op
    return b"".join((_header(txn), _SET_DATA, _str(op.path), _bytes(op.data),
                     _int(op.version)))


def _delete(txn: Txn) -> bytes:
    return b"".join((_header(txn), _DELETE, _str(txn.op.path)))


_DIRECT: dict[type, Callable[[Txn], bytes]] = {
    CreateTxn: _create, SetDataTxn: _set_data, DeleteTxn: _delete}


def forget_encoding(txn: Txn) -> None:
    """Drop the kept encoding once the log has it: an ensemble member keeps a window of
    100,000 transactions in memory, which their bytes would make half as big again."""
    txn.raw = None


def decode(data: bytes) -> Txn:
    return from_obj(cbor2.loads(data))
