"""The xid each special request is answered with, as Apache ZooKeeper frames it.

ZooKeeper answers addAuth with the client's own xid (zxid 0) as soon as it arrives, outside its
request pipeline, so the reply overtakes replies still waiting on the connection; a ping always
with -2; setWatches, closeSession and every other request with the xid they came with, whatever
it is (positive, negative, reused). Go clients send addAuth with an ordinary positive xid and wait
for that xid: a server that answers -4 hangs them.
"""

from __future__ import annotations

import struct

import pytest
from support.wire import (
    AUTH,
    CLOSE_SESSION,
    CREATE,
    EXISTS,
    GET_DATA,
    PING,
    PING_XID,
    SET_WATCHES,
    boolean,
    buf,
    connect_request,
    i32,
    request,
    ustr,
    valid_body,
)

from zkserver.engine import Client, Engine
from zkserver.proto.codes import Err
from zkserver.tree import acl as aclmod

NOW = 1_000
WALL = 1_700_000_000_000


def _connect(engine: Engine) -> Client:
    client = engine.connect(("127.0.0.1", 1), lambda: None, NOW, WALL)
    assert engine.handshake(client, connect_request(10_000), NOW, WALL)
    engine.apply_committed(engine.take_commits(), NOW)
    client.out.clear()
    return client


def _send(engine: Engine, client: Client, xid: int, op: int, body: bytes) -> None:
    engine.handle(client, request(xid, op, body)[4:], NOW, WALL)


def _replies(client: Client) -> list[tuple[int, int, int]]:
    """(xid, zxid, err) of every frame queued on the connection, taken off it."""
    out, data = [], bytes(client.out)
    client.out.clear()
    while data:
        (n,) = struct.unpack_from(">i", data)
        out.append(struct.unpack_from(">iqi", data, 4))
        data = data[4 + n:]
    return out


def _auth(user: str = "user:pw") -> bytes:
    return i32(0) + ustr("digest") + buf(user.encode())


@pytest.mark.parametrize("xid", [1, 7, 0, -4, -9, 2**31 - 1])
def test_auth_is_answered_with_the_clients_xid(xid: int) -> None:
    engine = Engine()
    client = _connect(engine)
    _send(engine, client, xid, AUTH, _auth())
    assert _replies(client) == [(xid, 0, 0)]
    assert ("digest", aclmod.digest_id("user:pw")) in client.auth_ids
    assert not client.close_after_flush


def test_a_failed_auth_echoes_the_xid_then_closes() -> None:
    engine = Engine()
    client = _connect(engine)
    _send(engine, client, 12, AUTH, i32(0) + ustr("nosuchscheme") + buf(b"x"))
    assert _replies(client) == [(12, 0, Err.AUTHFAILED)]
    assert client.close_after_flush


def test_an_auth_packet_that_does_not_parse_closes_unanswered() -> None:
    engine = Engine()
    client = _connect(engine)
    _send(engine, client, 12, AUTH, i32(0) + ustr("digest"))
    assert _replies(client) == []
    assert client.close_after_flush


def test_auth_overtakes_a_waiting_write_and_later_requests_see_it() -> None:
    """create (uncommitted), getData of a protected node, addAuth, getData again: the auth
    reply goes out at once; the read that came before it keeps the old identities."""
    engine = Engine()
    owner = _connect(engine)
    _send(engine, owner, 1, AUTH, _auth())
    owner.out.clear()
    digest_acl = i32(1) + i32(31) + ustr("digest") + ustr(aclmod.digest_id("user:pw"))
    _send(engine, owner, 2, CREATE, ustr("/private") + buf(b"x") + digest_acl + i32(0))
    engine.apply_committed(engine.take_commits(), NOW)
    owner.out.clear()

    client = _connect(engine)
    _send(engine, client, 5, CREATE, valid_body(CREATE, "/p"))
    _send(engine, client, 6, GET_DATA, ustr("/private") + boolean(False))
    _send(engine, client, 7, AUTH, _auth())
    _send(engine, client, 8, GET_DATA, ustr("/private") + boolean(False))
    assert _replies(client) == [(7, 0, 0)]  # the write and the reads behind it wait
    engine.apply_committed(engine.take_commits(), NOW)
    zxid = engine.last_zxid
    assert _replies(client) == [(5, zxid, 0), (6, zxid, Err.NOAUTH), (8, zxid, 0)]


def test_ping_is_answered_with_minus_two_whatever_its_xid() -> None:
    engine = Engine()
    client = _connect(engine)
    for xid in (PING_XID, 5, -4):
        _send(engine, client, xid, PING, b"")
    zxid = engine.last_zxid
    assert _replies(client) == [(PING_XID, zxid, 0)] * 3


@pytest.mark.parametrize("xid", [-8, 11, -1, -2, -4])
def test_set_watches_and_reads_echo_any_xid(xid: int) -> None:
    engine = Engine()
    client = _connect(engine)
    _send(engine, client, xid, SET_WATCHES, valid_body(SET_WATCHES, "/x"))
    _send(engine, client, xid, EXISTS, ustr("/") + boolean(False))
    zxid = engine.last_zxid
    assert [r for r in _replies(client) if r[1] != -1] == [(xid, zxid, 0), (xid, zxid, 0)]


def test_reused_and_decreasing_xids_are_echoed_in_order() -> None:
    engine = Engine()
    client = _connect(engine)
    for xid in (3, 3, 1, -7):
        _send(engine, client, xid, EXISTS, ustr("/") + boolean(False))
    _send(engine, client, 3, CREATE, valid_body(CREATE, "/r"))
    _send(engine, client, 3, EXISTS, ustr("/r") + boolean(False))
    engine.apply_committed(engine.take_commits(), NOW)
    assert [r[0] for r in _replies(client)] == [3, 3, 1, -7, 3, 3]


@pytest.mark.parametrize("xid", [14, -3])
def test_close_session_echoes_its_xid(xid: int) -> None:
    engine = Engine()
    client = _connect(engine)
    _send(engine, client, xid, CLOSE_SESSION, b"")
    engine.apply_committed(engine.take_commits(), NOW)
    assert _replies(client) == [(xid, engine.last_zxid, 0)]
    assert client.close_after_flush


def test_nothing_after_close_session_is_answered() -> None:
    """ZooKeeper closes the connection with the closeSession reply: a request the client sent
    after it gets no answer (zkserver used to run it before closing)."""
    engine = Engine()
    client = _connect(engine)
    _send(engine, client, 1, CLOSE_SESSION, b"")
    _send(engine, client, 2, EXISTS, ustr("/") + boolean(False))
    _send(engine, client, 3, CREATE, valid_body(CREATE, "/after"))
    engine.apply_committed(engine.take_commits(), NOW)
    assert _replies(client) == [(1, engine.last_zxid, 0)]
    assert client.close_after_flush and engine.tree.get("/after") is None
