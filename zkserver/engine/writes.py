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
from zkserver.proto.codes import Err, Op
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
            req: Any = R.decode_multi(r, R.MULTI_WRITE_OPS)
            return req, [sub for sub, _ in req]
        return R.REQUEST_RECORDS[op].decode_from(r), None
    except JuteError:
        return None


def prepare(prep: Prep, sessions: SessionTracker, sid: int, auth_ids: list[aclmod.Identity],
            xid: int, op: int, req: Any, wall: int) -> Txn:
    """The transaction of one decoded write of session `sid`, stamped `wall`."""
    if op == Op.CLOSE_SESSION:
        sessions.set_closing(sid)
        return prep.close_session(sid, xid, wall)
    if not sessions.alive(sid):
        return prep.error(sid, xid, wall, Err.SESSIONEXPIRED)
    return prep.write(op, req, Session(sid, auth_ids), xid, wall)
