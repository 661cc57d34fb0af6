"""Idle connections park without a task (server/idle.py) and behave as if they had one.

A server runs in this process so that the test can see its idle set; the clients are raw
blocking connections (support/wire.py), driven from worker threads so that the server's event
loop keeps running.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from support import wire as W
from support.wire import RawConnection

from zkserver.config import parse_config
from zkserver.proto.codes import Op
from zkserver.server.server import Server

PING_XID = -2


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


def _run(fn: Callable[..., Any], *args: Any) -> Any:
    return trio.to_thread.run_sync(fn, *args)


def _server(tmp_path: Path, tick_ms: int = 2000, extra: str = "") -> Server:
    """A standalone server on a free loopback port, without its admin server."""
    return Server(parse_config(f"tickTime={tick_ms}\ndataDir={tmp_path}\nclientPort=0\n"
                               "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                               + extra))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = _server(tmp_path, extra="maxClientCnxns=0\n")
    async with trio.open_nursery() as nursery:
        await nursery.start(srv.serve)
        yield srv
        nursery.cancel_scope.cancel()


def _connect(srv: Server) -> RawConnection:
    host, port = srv.addresses[0]
    conn = RawConnection(host, port)
    negotiated, sid, _, _ = conn.handshake()
    assert negotiated > 0 and sid
    return conn


def _ping(conn: RawConnection) -> int:
    return conn.call(PING_XID, Op.PING)[0]


async def test_idle_sessions_park_and_still_answer(server: Server) -> None:
    conns = [await _run(_connect, server) for _ in range(20)]
    await _until(lambda: len(server.idle) == 20)  # no task each once the session is made
    for conn in conns:
        assert await _run(_ping, conn) == PING_XID
    body = W.ustr("/") + W.boolean(False)
    xid, _, err, _ = await _run(conns[0].call, 7, Op.GET_DATA, body)
    assert (xid, err) == (7, 0)
    await _until(lambda: len(server.idle) == 20)  # answered from the idle set, parked again
    for conn in conns:
        conn.close()
    await _until(lambda: len(server.idle) == 0 and server.total_connections == 0)
    assert not server.engine.clients


async def test_replies_the_socket_does_not_take_wake_the_connection(server: Server) -> None:
    """64 replies of 512 KB, more than the socket buffers hold, while the client reads none:
    the rest waits for a task's sender, and every reply arrives, in order."""
    conn = await _run(_connect, server)
    value = b"v" * (512 * 1024)
    create = W.ustr("/big") + W.buf(value) + W.OPEN_ACL + W.i32(0)
    _, _, err, _ = await _run(conn.call, 1, Op.CREATE, create)
    assert err == 0
    await _until(lambda: len(server.idle) == 1)
    get = W.ustr("/big") + W.boolean(False)
    await _run(conn.send, b"".join(W.request(100 + i, Op.GET_DATA, get) for i in range(64)))
    await _until(lambda: len(server.idle) == 0)  # woken: output waits for the socket
    for i in range(64):
        xid, _, err, body = await _run(conn.read_reply)
        assert (xid, err) == (100 + i, 0)
        assert body[4:4 + len(value)] == value
    await _until(lambda: len(server.idle) == 1)  # drained: parked again
    conn.close()


async def test_a_parked_connection_closes_when_its_session_moves(server: Server) -> None:
    host, port = server.addresses[0]
    first = RawConnection(host, port)
    _, sid, passwd, _ = await _run(first.handshake)
    await _until(lambda: len(server.idle) == 1)
    second = RawConnection(host, port)
    negotiated, again, _, _ = await _run(
        lambda: second.handshake(session_id=sid, passwd=passwd))
    assert again == sid
    assert await _run(first.wait_closed, 5.0)  # the old connection is closed by the server
    assert await _run(_ping, second) == PING_XID
    second.close()


async def test_a_parked_connection_with_a_bad_frame_is_closed(server: Server) -> None:
    conn = await _run(_connect, server)
    await _until(lambda: len(server.idle) == 1)
    await _run(conn.send, struct.pack(">i", -5))  # a negative length: closed, no reply
    assert await _run(conn.wait_closed, 5.0)
    await _until(lambda: len(server.idle) == 0 and server.total_connections == 0)


async def test_stopping_the_server_closes_parked_connections(tmp_path: Path) -> None:
    srv = _server(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(srv.serve)
        conns = [await _run(_connect, srv) for _ in range(3)]
        await _until(lambda: len(srv.idle) == 3)
        nursery.cancel_scope.cancel()
    for conn in conns:
        assert conn.wait_closed(5.0)
    assert srv.total_connections == 0


async def test_a_parked_connection_whose_session_expires_is_closed(tmp_path: Path) -> None:
    srv = _server(tmp_path, tick_ms=100)
    async with trio.open_nursery() as nursery:
        await nursery.start(srv.serve)
        host, port = srv.addresses[0]
        quiet = RawConnection(host, port)
        negotiated, sid, _, _ = await _run(lambda: quiet.handshake(timeout_ms=400))
        assert negotiated == 400
        await _until(lambda: len(srv.idle) == 1)
        assert await _run(quiet.wait_closed, 5.0)  # no pings: expired, and its socket closed
        assert srv.engine.sessions.get(sid) is None
        await _until(lambda: srv.total_connections == 0)
        nursery.cancel_scope.cancel()
