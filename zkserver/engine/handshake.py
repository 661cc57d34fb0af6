"""The handshake: a connection's ConnectRequest, answered with a new session or a resumed one.

A new session needs a transaction (createSession), so its ConnectResponse waits in the
connection's queue like a write's reply and goes out when that is committed; nothing the client
sends meanwhile overtakes it. A resumed session is answered at once. ZooKeeper's refusals are
kept: a client that has seen a zxid this server has not reached is dropped unanswered (it must
try another server), as is a client that does not accept a read-only server when this one is;
a session that is unknown, closing, or presented with the wrong password gets a ConnectResponse
of zeros, then the connection closes. A session resumed on a new connection takes it over from
the old one, which is closed. An ensemble member that is not serving takes no connections.
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
    if engine.member is not None:
        engine.member.adopt(engine.sessions, engine.tree, req.session_id, now)
    client.read_only_aware = req.read_only is not None
    client.stats.received += 1
    engine.stats.received += 1
    if req.last_zxid_seen > engine.last_zxid:
        return False  # the client has seen a future we don't know: it must try elsewhere
    if engine.read_only and not req.read_only:
        return False  # a read-only server takes only clients that accept one
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
    client.queue.append(entry)
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
