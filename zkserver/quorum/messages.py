"""Messages between the servers of an ensemble, and their cbor2 encoding.

Election messages travel on the election port, everything else on the quorum port; both are
attrs records that encode as `[tag, field, ...]`. Transactions inside them are the same
`zkserver.txn.Txn` records the log stores and the tree applies.
"""

from __future__ import annotations

import io
import operator
from collections.abc import Callable
from typing import Any

import attrs
import cbor2

from zkserver import txn as txnmod
from zkserver.quorum.roles import Role
from zkserver.value import ordered_value, value


@ordered_value
class Vote:
    """Ordered as ZooKeeper's totalOrderPredicate: epoch, then zxid, then server id."""

    peer_epoch: int
    zxid: int
    leader: int


@value
class Notification:
    vote: Vote
    election_epoch: int
    state: Role
    sid: int
    config: bytes = b""  # a reconfiguration the sender has in its log, not yet in force
    # The sender's configuration in force (reconfigEnabled only): a looking server that holds
    # an older one takes it, as ZooKeeper's election does.
    committed: bytes = b""


@value
class FollowerInfo:
    sid: int
    accepted_epoch: int
    last_zxid: int
    observer: bool


@value
class LeaderInfo:
    epoch: int


@value
class AckEpoch:
    current_epoch: int
    last_zxid: int


@value
class Diff:
    """Committed transactions the follower lacks, in order."""

    txns: tuple[txnmod.Txn, ...]


@value
class Trunc:
    """Drop every logged transaction after `zxid` (never committed), then take a Diff."""

    zxid: int


@value
class Snap:
    """One chunk of the leader's state at `zxid` (a snapshot file's bytes, in order): the
    leader streams a SNAP as a run of these, `first` to `last`, so neither end ever holds the
    whole tree image at once."""

    zxid: int
    chunk: bytes
    first: bool
    last: bool


@value
class NewLeader:
    epoch: int
    zxid: int
    config_version: int = 0  # the membership version the leader serves with
    config: bytes = b""  # the configuration in force at the leader, which the learner takes


@value
class AckNewLeader:
    epoch: int


@value
class UpToDate:
    commit_zxid: int


@value
class Proposal:
    txn: txnmod.Txn


@value
class Proposals:
    """Several proposals in one message (a leader proposes a whole batch at once)."""

    txns: tuple[txnmod.Txn, ...]


@value
class Ack:
    zxid: int


@value
class Commit:
    """Everything up to `zxid` is committed. `digest` is the leader's state digest after
    `digest_zxid`, the last zxid it had applied (0: none yet), for the learner to check."""

    zxid: int
    digest_zxid: int
    digest: int


@value
class Inform:
    """What an observer gets instead of a proposal and its commit (digest as in `Commit`)."""

    txn: txnmod.Txn
    digest_zxid: int
    digest: int


@value
class Ping:
    """Leader -> learner heartbeat; the learner answers with the sessions it has seen. It
    carries the leader's latest digest too, so a check is not left waiting for more writes."""

    zxid: int
    digest_zxid: int
    digest: int


@value
class PingReply:
    touches: tuple[tuple[int, int], ...]  # (session id, timeout)


@value
class Request:
    """A client write forwarded by a learner, with what the leader's checks need."""

    session_id: int
    cxid: int
    op: int
    data: bytes
    auth_ids: tuple[tuple[str, str], ...]


@value
class Logged:
    """Leader -> follower: the leader's own log is durable up to `zxid`. Sent only to a
    follower that said it reads it (`peer.READS_LOGGED`); see `Peer._commit_known`."""

    zxid: int


@value
class SyncRequest:
    """A learner's `sync`: answered once everything the leader proposed before is committed."""

    token: int


@value
class SyncReply:
    token: int
    zxid: int


_CLASSES: list[type] = [Vote, Notification, FollowerInfo, LeaderInfo, AckEpoch, Diff, Trunc, Snap,
                        NewLeader, AckNewLeader, UpToDate, Proposal, Ack, Commit, Inform, Ping,
                        PingReply, Request, SyncRequest, SyncReply, Proposals, Logged]
_TAG = {cls: i for i, cls in enumerate(_CLASSES)}

# Every message on a write's path is encoded and decoded once per hop, so the shape of each
# class is worked out here once (its fields, their defaults, how each is read back) rather
# than asked of attrs per message: that cost more than the cbor2 work it fed.


def _plain(v: Any) -> Any:
    """A field value as it goes on the wire: a transaction as ["T", ...], a record as its
    [tag, ...] list, a tuple as a list."""
    t = type(v)
    if t is int or t is bytes or t is bool or t is str:
        return v
    if t is txnmod.Txn:
        return _EncodedTxn(v)
    if t is tuple:
        return [_plain(x) for x in v]
    if t in _SHAPES:
        return _to_obj(v)
    return v


class _Shape:
    """One message class: its tag, field getter, trailing defaults and field readers."""

    __slots__ = ("tag", "get", "defaults", "readers", "required", "cls")

    def __init__(self, cls: type) -> None:
        fields = attrs.fields(cls)
        self.cls = cls
        self.tag = _TAG[cls]
        names = [f.name for f in fields]
        get = operator.attrgetter(*names)
        self.get = get if len(names) > 1 else (lambda v: (get(v),))
        # A trailing field at its default is left out, so that a member still running the
        # code from before the field was added reads the message as it always did.
        self.defaults = [f.default for f in fields]
        self.required = sum(1 for f in fields if f.default is attrs.NOTHING)
        self.readers = [_reader(f) for f in fields]


def _reader(f: Any) -> Callable[[Any], Any]:
    if f.type in ("Role", Role):
        return lambda raw: Role(_field_from_obj(raw))
    if f.name == "vote":
        return lambda raw: _from_obj(Vote, raw)
    if f.name == "txns":
        return lambda raw: tuple(txnmod.from_obj(t[1]) for t in raw)
    if f.name in ("touches", "auth_ids"):
        return lambda raw: tuple(tuple(x) for x in raw)
    return _field_from_obj


def _field_from_obj(raw: Any) -> Any:
    if type(raw) is list and raw and raw[0] == "T":
        return txnmod.from_obj(raw[1])
    return raw


def _to_obj(v: Any) -> list:
    shape = _SHAPES[type(v)]
    values = list(shape.get(v))
    defaults = shape.defaults
    while values and defaults[len(values) - 1] is not attrs.NOTHING \
            and values[-1] == defaults[len(values) - 1]:
        values.pop()
    return [shape.tag, *[_plain(x) for x in values]]


def _from_obj(cls: type, obj: list) -> Any:
    shape = _SHAPES[cls]
    given = len(obj) - 1
    if given > len(shape.readers) or given < shape.required:
        raise ValueError(f"{cls.__name__}: {given} fields")
    return cls(*[read(raw) for read, raw in zip(shape.readers, obj[1:], strict=False)])


_SHAPES: dict[type, _Shape] = {}
_SHAPES.update({cls: _Shape(cls) for cls in _CLASSES})

# The messages whose fields are all integers without a default (ACK, COMMIT, PING, SYNC...):
# most of the messages on a write's path. Their list [tag, field, ...] is made and read here
# directly, to the same bytes, instead of through the walk over fields and defaults above: on a
# member's cold cache that walk was about a third of the time its messages took.
_INTS: dict[type, tuple[int, Callable[[Any], tuple[int, ...]]]] = {
    cls: (shape.tag, shape.get) for cls, shape in _SHAPES.items()
    if all(f.type in ("int", int) and f.default is attrs.NOTHING for f in attrs.fields(cls))}
_INTS_BY_TAG: dict[int, tuple[type, int]] = {
    tag: (cls, len(attrs.fields(cls))) for cls, (tag, _) in _INTS.items()}


class _EncodedTxn:
    """A transaction in a message: cbor2 writes it through `_write_txn` as the list
    ["T", <its log encoding>], whose bytes `txn.encode` has already made (and keeps) for the
    log, instead of encoding the same transaction again for every follower."""

    __slots__ = ("txn",)

    def __init__(self, txn: txnmod.Txn) -> None:
        self.txn = txn


_TXN_PREFIX = cbor2.dumps(["T", 0])[:-1]  # array(2) and "T" (the 0 after them is one byte)
_PROPOSAL = _TAG[Proposal]
_PROPOSALS = _TAG[Proposals]


def _write_txn(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if type(value) is not _EncodedTxn:
        raise cbor2.CBOREncodeTypeError(f"cannot encode {type(value).__name__}")
    encoder.write(_TXN_PREFIX + txnmod.encode(value.txn))


def _array_head(n: int) -> bytes:
    """The CBOR head of an array of `n` items (None encodes as one byte)."""
    return cbor2.dumps([None] * n)[:-n] if n else b"\x80"


_PROPOSAL_HEAD = b"\x82" + cbor2.dumps(_PROPOSAL)  # [tag, ...]: an array of two
_PROPOSALS_HEAD = b"\x82" + cbor2.dumps(_PROPOSALS)


def encode(msg: Any) -> bytes:
    kind = type(msg)
    if kind is Proposals:  # a busy leader's every message: its bytes put together directly
        txns = msg.txns
        return b"".join([_PROPOSALS_HEAD, _array_head(len(txns)),
                         *[_TXN_PREFIX + txnmod.encode(t) for t in txns]])
    if kind is Proposal:
        return _PROPOSAL_HEAD + _TXN_PREFIX + txnmod.encode(msg.txn)
    ints = _INTS.get(kind)
    if ints is not None:
        return cbor2.dumps([ints[0], *ints[1](msg)])
    return cbor2.dumps(_to_obj(msg), default=_write_txn)


class MessageError(ValueError):
    """Bytes from a member's port that are no message of ours (a stranger, another version)."""


def _proposals(data: bytes) -> Any:
    """A Proposal or Proposals message read so that each transaction keeps the bytes it came
    in, which are its log encoding: a follower writes them to its log as they are instead of
    encoding every proposal again (None: not one of those two, or not in the usual shape)."""
    if len(data) < 6 or data[0] != 0x82:
        return None
    tag, head = data[1], data[2]
    if tag == _PROPOSAL:
        count, pos = 1, 2
    elif tag != _PROPOSALS:
        return None
    elif 0x80 <= head < 0x98:  # an array of fewer than 24 items: the count is in the byte
        count, pos = head - 0x80, 3
    elif head == 0x98:
        count, pos = data[3], 4
    else:
        return None
    fp = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(fp)
    txns = []
    for _ in range(count):
        if data[pos:pos + 3] != _TXN_PREFIX:
            return None
        fp.seek(pos + 3)
        obj = decoder.decode()
        end = fp.tell()
        txns.append(txnmod.from_obj(obj, data[pos + 3:end]))
        pos = end
    if pos != len(data):
        return None
    return Proposal(txns[0]) if tag == _PROPOSAL else Proposals(tuple(txns))


def decode(data: bytes) -> Any:
    """The message in `data`; MessageError for anything malformed, whatever the failure."""
    try:
        fast = _proposals(data)
        if fast is not None:
            return fast
        obj = cbor2.loads(data)
        ints = _INTS_BY_TAG.get(obj[0])
        if ints is not None:
            fields = obj[1:]
            if len(fields) == ints[1]:
                for x in fields:
                    if type(x) is not int:
                        break
                else:
                    return ints[0](*fields)
        return _from_obj(_CLASSES[obj[0]], obj)
    except Exception as e:  # CBOR, a wrong shape or type: all one answer to the caller
        raise MessageError(f"undecodable member message ({len(data)} bytes): {e!r}") from e
