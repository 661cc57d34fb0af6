"""The per-connection ordering rule, first on `Client` alone, then through the engine.

A request runs at once only when nothing of its connection waits; otherwise it queues behind the
uncommitted write, and `drain` answers the head of the queue as soon as it can, in order. Other
connections are never held up, and a watcher hears of a change before the writer's reply.
"""

from __future__ import annotations

import struct

from support.wire import (
    CREATE,
    EXISTS,
    GET_DATA,
    NOTIFICATION_XID,
    OPEN_ACL,
    SET_DATA,
    buf,
    connect_request,
    i32,
    request,
    ustr,
)

from zkserver.engine import Client, Engine, Entry
from zkserver.server.counters import ServerStats

NOW = 1_000
WALL = 1_700_000_000_000


def _client() -> tuple[Client, list[int]]:
    rings: list[int] = []
    return Client(("127.0.0.1", 1), lambda: rings.append(1), NOW, WALL, ServerStats()), rings


def test_drain_stops_at_an_unanswered_write_and_runs_reads_in_turn() -> None:
    client, _ = _client()
    ran: list[int] = []

    def run_read(c: Client, xid: int, op: int, frame: bytes, now: int) -> None:
        ran.append(xid)
        c.send(b"read %d" % xid)

    first = Entry(1, SET_DATA, None, True, NOW)
    second = Entry(3, SET_DATA, None, True, NOW)
    for entry in (first, Entry(2, GET_DATA, b"", False, NOW), second):
        client.enqueue(entry)
    assert client.server_stats.in_hand == 3
    client.drain(run_read, NOW)
    assert ran == [] and client.out == b""  # the head is a write still uncommitted

    second.data = b"w3"  # committed out of turn: still waits for the first
    client.drain(run_read, NOW)
    assert client.out == b""

    first.data = b"w1"
    client.drain(run_read, NOW)
    assert bytes(client.out) == b"w1" + b"read 2" + b"w3"
    assert ran == [2] and not client.queue
    assert client.server_stats.in_hand == 0


def test_send_counts_on_the_connection_and_the_server_and_rings() -> None:
    client, rings = _client()
    client.send(b"12345")
    client.send(b"12")
    assert client.stats.sent == 2
    server = client.server_stats
    assert (server.sent, server.last_response_size, server.min_response_size,
            server.max_response_size) == (2, 2, 2, 5)
    assert len(rings) == 2
    client.close()
    assert client.close_after_flush and len(rings) == 3


def _connect(engine: Engine, port: int) -> Client:
    client = engine.connect(("127.0.0.1", port), lambda: None, NOW, WALL)
    assert engine.handshake(client, connect_request(10_000), NOW, WALL)
    engine.apply_committed(engine.take_commits(), NOW)
    client.out.clear()
    return client


def _replies(client: Client) -> list[tuple[int, int, bytes]]:
    """(xid, err, body) of every frame sent to `client`, in order; then forget them."""
    out, data = [], bytes(client.out)
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from(">i", data, pos)
        xid, _, err = struct.unpack_from(">iqi", data, pos + 4)
        out.append((xid, err, data[pos + 20:pos + 4 + n]))
        pos += 4 + n
    client.out.clear()
    return out


def _handle(engine: Engine, client: Client, xid: int, op: int, body: bytes) -> None:
    engine.handle(client, request(xid, op, body)[4:], NOW, WALL)


def test_a_read_behind_a_write_waits_for_it_and_sees_it() -> None:
    engine = Engine()
    writer = _connect(engine, 1)
    other = _connect(engine, 2)
    _handle(engine, writer, 1, CREATE, ustr("/n") + buf(b"old") + OPEN_ACL + i32(0))
    engine.apply_committed(engine.take_commits(), NOW)
    _replies(writer)

    _handle(engine, writer, 2, SET_DATA, ustr("/n") + buf(b"new") + i32(-1))
    _handle(engine, writer, 3, GET_DATA, ustr("/n") + b"\0")
    _handle(engine, other, 7, GET_DATA, ustr("/n") + b"\0")
    assert _replies(writer) == []  # both wait for the setData
    [(xid, err, body)] = _replies(other)  # another connection is not held up
    assert (xid, err, body[4:7]) == (7, 0, b"old")

    engine.apply_committed(engine.take_commits(), NOW + 5)
    [(x1, e1, _), (x2, e2, body)] = _replies(writer)
    assert (x1, e1, x2, e2) == (2, 0, 3, 0)
    assert body[4:7] == b"new"  # the read ran after the write it queued behind


def test_requests_in_hand_are_counted_as_they_come_and_go() -> None:
    """globalOutstandingLimit reads this count for every request: it must equal the
    connections' queues without walking them, also when a connection goes away."""
    engine = Engine()
    a, b = _connect(engine, 1), _connect(engine, 2)

    def in_hand() -> int:
        assert engine.stats.in_hand == sum(len(c.queue) for c in (a, b))
        return engine.stats.in_hand

    base = in_hand()
    for xid in range(1, 4):
        _handle(engine, a, xid, CREATE, ustr(f"/a{xid}") + buf(b"") + OPEN_ACL + i32(0))
    _handle(engine, a, 4, GET_DATA, ustr("/a1") + b"\0")  # waits behind the creates
    _handle(engine, b, 1, CREATE, ustr("/b") + buf(b"") + OPEN_ACL + i32(0))
    assert in_hand() == base + 5
    engine.apply_committed(engine.take_commits(), NOW)
    assert in_hand() == 0
    _handle(engine, b, 2, SET_DATA, ustr("/b") + buf(b"x") + i32(-1))
    _handle(engine, b, 3, GET_DATA, ustr("/b") + b"\0")
    assert in_hand() == 2
    engine.disconnect(b)
    assert engine.stats.in_hand == 0


def test_a_watcher_hears_of_the_change_before_its_own_later_reply() -> None:
    engine = Engine()
    client = _connect(engine, 1)
    _handle(engine, client, 1, EXISTS, ustr("/w") + b"\1")  # watch a missing node
    _handle(engine, client, 2, CREATE, ustr("/w") + buf(b"") + OPEN_ACL + i32(0))
    _replies(client)  # the exists reply (NONODE)
    engine.apply_committed(engine.take_commits(), NOW)
    [(x1, _, _), (x2, e2, _)] = _replies(client)
    assert (x1, x2, e2) == (NOTIFICATION_XID, 2, 0)
