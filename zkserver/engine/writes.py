"""Write submission: a write request, decoded and turned into a transaction by `Prep`.

The request is decoded here (a multi's sub-op codes kept: its reply is shaped by them) and
prepared against the sessions: closeSession marks the session closing at once, so that nothing
else of it is prepared after it, and a write of a session that has expired meanwhile becomes an
error transaction (SESSIONEXPIRED) with its own zxid, as in ZooKeeper. Where the transaction
goes next (the local log, or ZAB) is the engine's driver's business.
"""

from __future__ import annotations

from typing import Any

from zkserver.prep import Prep, Session
from zkserver.proto import records as R
from zkserver.proto.codes import CreateMode, Err, Op
from zkserver.proto.jute import JuteError, Reader
from zkserver.sessions import SessionTracker
from zkserver.tree import acl as aclmod
from zkserver.txn import Txn

WRITE_OPS = frozenset({Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL, Op.DELETE,
                       Op.SET_DATA, Op.SET_ACL, Op.MULTI, Op.CLOSE_SESSION,
                       Op.RECONFIG})


def decode_write(op: int, frame: bytes, max_buffer: int
                 ) -> tuple[Any, list[int] | None] | None:
    """A write's request record (and a multi's sub-op codes); None if it doesn't parse."""
    if op == Op.CLOSE_SESSION:
        return None, None
    r = Reader(frame, 8, max_buffer=max_buffer)
    try:
        if op == Op.MULTI:
            req: Any = _decode_multi(r)
            return req, [sub for sub, _ in req]
        return R.REQUEST_RECORDS[op].decode_from(r), None
    except _NullACL:
        return None
    except JuteError:
        # ZooKeeper gives a multi that does not decode a zxid of its own (an error transaction,
        # MARSHALLINGERROR); any other write is answered in turn without one.
        return (MALFORMED_MULTI, []) if op == Op.MULTI else None


class _NullACL(JuteError):
    """A create in a multi with a null ACL: a NullPointerException in ZooKeeper's decoding,
    which its prep catches with no zxid used (MARSHALLINGERROR, answered in turn)."""


def _decode_multi(r: Reader) -> list[tuple[int, Any]]:
    """A multi's sub-ops: writes only (ZooKeeper's prep cannot run a read)."""
    ops = decode_multi_any(r)
    if any(op in R.MULTI_READ_OPS for op, _ in ops):
        raise JuteError("a read in a multi")
    return ops


def decode_multi_any(r: Reader) -> list[tuple[int, Any]]:
    """A MultiOperationRecord as ZooKeeper decodes it, for multi and multiRead alike: write and
    read ops, not mixed, each create checked as it is decoded (the first failure in order
    decides how the request fails)."""
    ops: list[tuple[int, Any]] = []
    kinds = set()
    while True:
        op = r.int()
        done = r.bool()
        r.int()
        if done:
            return ops
        cls = R.MULTI_WRITE_OPS.get(op) or R.MULTI_READ_OPS.get(op)
        if cls is None:
            raise JuteError(f"op {op} is not allowed in a multi")
        ops.append(_multi_create(op, cls.decode_from(r)))
        kinds.add(op in R.MULTI_READ_OPS)
        if len(kinds) > 1:
            raise JuteError("mixing different kinds of ops")


MALFORMED_MULTI = None  # the request of a multi that does not decode (prep: MARSHALLINGERROR)
_CREATES = (Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER)


def _multi_create(op: int, req: Any) -> tuple[int, Any]:
    """A create inside a multi as ZooKeeper's MultiOperationRecord decodes it: a create,
    create2 or createContainer with flags that are no create mode, or a TTL mode, does not
    decode; one with the container mode is a createContainer; a createTTL without a TTL mode
    is a create (or createContainer) and its ttl is dropped; any flags count as persistent for
    that choice, and are checked again when the create is prepared. A null ACL fails apart
    (`_NullACL`)."""
    if op in _CREATES:
        try:
            mode = CreateMode(req.flags)
        except ValueError:
            raise JuteError(f"invalid flag {req.flags} for create mode") from None
        if req.acl is None:
            raise _NullACL("null ACL")
        if mode.ttl:
            raise JuteError("a TTL mode without a ttl")
        return (Op.CREATE_CONTAINER if mode == CreateMode.CONTAINER else op), req
    if op == Op.CREATE_TTL:
        try:
            mode = CreateMode(req.flags)
        except ValueError:
            mode = CreateMode.PERSISTENT
        if mode.ttl:
            return op, req
        plain = R.CreateRequest(req.path, req.data, req.acl, req.flags)
        return (Op.CREATE_CONTAINER if mode == CreateMode.CONTAINER else Op.CREATE), plain
    return op, req


def prepare(prep: Prep, sessions: SessionTracker, sid: int, auth_ids: list[aclmod.Identity],
            xid: int, op: int, req: Any, wall: int) -> Txn:
    """The transaction of one decoded write of session `sid`, stamped `wall`."""
    if op == Op.CLOSE_SESSION:
        sessions.set_closing(sid)
        return prep.close_session(sid, xid, wall)
    if not sessions.alive(sid):
        return prep.error(sid, xid, wall, Err.SESSIONEXPIRED)
    return prep.write(op, req, Session(sid, auth_ids), xid, wall)
