"""The handshake: a connection's ConnectRequest, answered with a new session or a resumed one.

A new session needs a transaction (createSession), so its ConnectResponse waits in the
connection's queue like a write's reply and goes out when that is committed; nothing the client
sends meanwhile overtakes it. A resumed session is answered at once. ZooKeeper's refusals are
kept: a client that has seen a zxid this server has not reached is dropped unanswered (it must
try another server), as is a client that does not accept a read-only server when this one is;
a session that is unknown, closing, or presented with the wrong password gets a ConnectResponse
of zeros, then the connection closes. A session resumed on a new connection takes it over from
the old one, which is closed. An ensemble member that is not serving takes no connections.

A member cut off from its quorum (readonlymode) serves only clients that accept a read-only
server, with sessions of its own: created at once with no transaction, unknown to the ensemble,
and ended when the member leaves read-only mode (`end_local_sessions`), so a client that brings
one to a read-write server hears that it expired and starts a new one, as ZooKeeper's read-only
server keeps local sessions. A session of the ensemble is not renewed there, as in ZooKeeper: a
session that holds ephemerals (one ZooKeeper would have made global) is dropped unanswered and
its client keeps trying until a quorum is back, so it never believes it still holds them while
the majority may expire it; any other (one ZooKeeper would have kept local to the server it was
created on) is answered as expired, so its client starts a read-only session at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zkserver.engine.ordering import Client, Entry
from zkserver.proto import records as R
from zkserver.proto.codes import Op
from zkserver.proto.frames import frame
from zkserver.proto.jute import JuteError

if TYPE_CHECKING:
    from zkserver.engine.pipeline import Engine

_REFUSED_PASSWORD = b"\0" * 16


def handshake(engine: Engine, client: Client, data: bytes, now: int, wall: int) -> bool:
    """A ConnectRequest. Returns False if the connection must close at once, unanswered."""
    if not engine.serving:
        return False  # an ensemble member without a role: clients must find a serving server
    try:
        req = R.ConnectRequest.decode(data, engine.max_buffer)
    except JuteError:
        return False
    if engine.member is not None and not engine.read_only:
        engine.member.adopt(engine.sessions, engine.tree, req.session_id, now)
    client.read_only_aware = req.read_only is not None
    client.stats.received += 1
    engine.stats.received += 1
    if req.last_zxid_seen > engine.last_zxid:
        return False  # the client has seen a future we don't know: it must try elsewhere
    if engine.read_only and not req.read_only:
        return False  # a read-only server takes only clients that accept one
    if engine.read_only and req.session_id in engine.tree.sessions:
        if engine.tree.ephemerals.get(req.session_id):
            return False  # a session of the ensemble: not renewed while cut off
        client.send(frame(R.ConnectResponse(0, 0, 0, _REFUSED_PASSWORD, True).encode()))
        client.close()
        return True
    timeout = min(max(req.timeout, engine.min_timeout), engine.max_timeout)
    read_only = engine.read_only if req.read_only is not None else None
    if req.session_id == 0:
        _new_session(engine, client, timeout, read_only, now, wall)
    else:
        _resume(engine, client, req, timeout, read_only, now)
    return True


def _new_session(engine: Engine, client: Client, timeout: int, read_only: bool | None,
                 now: int, wall: int) -> None:
    sessions = engine.sessions
    sid = sessions.new_id()
    sessions.add(sid, timeout, now)
    engine.bind(client, sid)
    resp = R.ConnectResponse(0, timeout, sid, sessions.password(sid), read_only)
    if engine.read_only:  # a local session: nothing to commit while cut off
        client.send(frame(resp.encode()))
        return
    entry = Entry(0, Op.CREATE_SESSION, resp, True, now)  # answered once committed
    client.enqueue(entry)
    engine.route.new_session(engine, client, sid, timeout, entry, wall)


def _resume(engine: Engine, client: Client, req: R.ConnectRequest, timeout: int,
            read_only: bool | None, now: int) -> None:
    sid = req.session_id
    old = engine.client_of(sid)
    if old is not None and old is not client:
        engine.disconnect(old)
        old.close()
    sessions = engine.sessions
    info = sessions.get(sid)
    if info is None or info.closing or not sessions.check_password(sid, req.passwd):
        client.send(frame(R.ConnectResponse(0, 0, 0, _REFUSED_PASSWORD, read_only).encode()))
        client.close()
        return
    info.timeout = timeout
    sessions.touch(sid, now)
    engine.bind(client, sid)
    client.send(frame(R.ConnectResponse(0, timeout, sid, sessions.password(sid),
                                        read_only).encode()))


def local_sessions(engine: Engine) -> list[int]:
    """The sessions of this server alone: those a read-only member created, which no
    transaction made part of the ensemble's state."""
    known = engine.tree.sessions
    return [sid for sid in engine.sessions.sessions if sid not in known]


def end_local_sessions(engine: Engine) -> None:
    """Leaving read-only mode: its sessions end with it (their connections close with it)."""
    for sid in local_sessions(engine):
        engine.sessions.remove(sid)
