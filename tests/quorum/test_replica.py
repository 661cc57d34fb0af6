"""An ensemble member's engine, driven as quorum/node.py drives it, without ZAB or sockets.

Two engines stand for a leader and a follower; what the follower forwards is prepared by the
leader, "committed" (the transactions handed to both engines' `apply_txns` in zxid order, as
ZAB would), and answered on the server where the client is. Role changes go through the
engine's methods (`lead`, `follow`, `stop_serving`, `serve_read_only`, `reset_to`).
"""

from __future__ import annotations

import struct

from support.wire import (
    CREATE,
    GET_DATA,
    OPEN_ACL,
    SET_DATA,
    SYNC,
    buf,
    connect_request,
    i32,
    request,
    ustr,
)

from zkserver.engine import Client, Engine
from zkserver.proto.codes import Err
from zkserver.quorum import messages as M
from zkserver.quorum.replica import Forward, Member
from zkserver.tree.datatree import DataTree
from zkserver.txn import Txn

NOW = 1_000
WALL = 1_700_000_000_000
EPOCH = 1


class Pair:
    """A leader and a follower engine; `forwarded` is the follower's link to the leader."""

    def __init__(self) -> None:
        self.leader = _member(1)
        self.follower = _member(2)
        self.forwarded: list[object] = []
        self.syncs: list[int] = []
        self.leader.lead(EPOCH, NOW, lambda token: None)
        self.follower.follow(Forward(self.forwarded.append), self.syncs.append)

    def commit(self) -> list[Txn]:
        """The leader prepares what was forwarded, proposes it all, and both apply it."""
        for msg in self.forwarded:
            self.leader.remote_write(msg, NOW, WALL)
        self.forwarded.clear()
        batch = self.leader.take_commits()
        self.leader.proposed(batch)
        txns = [txn for txn, _, _ in batch]
        for engine in (self.leader, self.follower):
            engine.apply_txns(txns, NOW + 3)
        return txns


def _member(sid: int) -> Engine:
    engine = Engine(server_id=sid, wall=WALL)
    engine.join_ensemble(Member())
    engine.tree.track_digest()
    return engine


def _connect(engine: Engine, port: int = 1) -> Client:
    return engine.connect(("127.0.0.1", port), lambda: None, NOW, WALL)


def _handle(engine: Engine, client: Client, xid: int, op: int, body: bytes) -> None:
    engine.handle(client, request(xid, op, body)[4:], NOW, WALL)


def _replies(client: Client) -> list[tuple[int, int]]:
    """(xid, err) of every reply frame sent to `client` (after the ConnectResponse)."""
    out, data, pos = [], bytes(client.out), 0
    while pos < len(data):
        (n,) = struct.unpack_from(">i", data, pos)
        if n != 36 and n != 37:  # not a ConnectResponse
            xid, _, err = struct.unpack_from(">iqi", data, pos + 4)
            out.append((xid, err))
        pos += 4 + n
    client.out.clear()
    return out


def test_a_member_without_a_role_takes_no_connections() -> None:
    engine = _member(1)
    assert not engine.serving
    assert not engine.handshake(_connect(engine), connect_request(6000), NOW, WALL)


def test_a_follower_forwards_and_answers_once_committed() -> None:
    pair = Pair()
    client = _connect(pair.follower)
    assert pair.follower.handshake(client, connect_request(6000), NOW, WALL)
    assert pair.follower.take_commits() == []  # nothing prepared on a follower
    [session] = pair.forwarded
    assert isinstance(session, M.Request) and session.session_id == client.session_id
    pair.commit()
    assert client.out  # the ConnectResponse, once the createSession came back

    _handle(pair.follower, client, 1, CREATE, ustr("/n") + buf(b"x") + OPEN_ACL + i32(0))
    _handle(pair.follower, client, 2, GET_DATA, ustr("/n") + b"\0")
    assert _replies(client) == []  # the read waits behind the forwarded write
    [create] = pair.commit()
    assert create.session_id == client.session_id and create.cxid == 1
    assert _replies(client) == [(1, 0), (2, 0)]
    assert "/n" in pair.leader.tree.nodes and pair.leader.tree.digest == pair.follower.tree.digest


def test_the_leaders_own_writes_come_back_by_zxid() -> None:
    pair = Pair()
    client = _connect(pair.leader)
    assert pair.leader.handshake(client, connect_request(6000), NOW, WALL)
    pair.commit()
    _handle(pair.leader, client, 1, SET_DATA, ustr("/") + buf(b"r") + i32(-1))
    [txn] = pair.commit()
    assert txn.zxid >> 32 == EPOCH
    assert _replies(client) == [(1, 0)]
    assert pair.follower.tree.nodes["/"].data == b"r"


def test_sessions_touched_on_a_follower_are_reported_once() -> None:
    pair = Pair()
    client = _connect(pair.follower)
    pair.follower.handshake(client, connect_request(6000), NOW, WALL)
    pair.commit()
    _handle(pair.follower, client, 1, GET_DATA, ustr("/") + b"\0")
    assert pair.follower.take_touched() == {client.session_id: 6000}
    assert pair.follower.take_touched() == {}


def test_sync_waits_until_the_follower_has_what_the_leader_had() -> None:
    pair = Pair()
    client = _connect(pair.follower)
    pair.follower.handshake(client, connect_request(6000), NOW, WALL)
    pair.commit()
    _handle(pair.follower, client, 1, SYNC, ustr("/"))
    [token] = pair.syncs
    target = pair.follower.tree.last_zxid + 1
    pair.follower.sync_answered(token, target, NOW)
    assert _replies(client) == []  # the leader had proposed more than we applied
    other = _connect(pair.leader, 2)
    pair.leader.handshake(other, connect_request(6000), NOW, WALL)
    pair.commit()  # that createSession is zxid `target`
    assert _replies(client) == [(1, 0)]


def test_stop_serving_closes_every_connection_and_forgets_what_waits() -> None:
    pair = Pair()
    client = _connect(pair.follower)
    pair.follower.handshake(client, connect_request(6000), NOW, WALL)
    pair.follower.stop_serving()
    assert client.closed and client.close_after_flush and not pair.follower.serving
    pair.commit()  # the createSession commits after all: nobody here waits any more
    assert client.out == b""


def test_read_only_serving_answers_writes_notreadonly() -> None:
    engine = _member(1)
    engine.serve_read_only()
    client = _connect(engine)
    assert engine.handshake(client, connect_request(6000, read_only=True), NOW, WALL)
    _handle(engine, client, 1, CREATE, ustr("/n") + buf(b"") + OPEN_ACL + i32(0))
    assert _replies(client) == [(1, Err.NOTREADONLY)]
    assert engine.take_commits() == []


def test_reset_to_serves_the_new_tree_with_nothing_pending() -> None:
    pair = Pair()
    client = _connect(pair.leader)
    pair.leader.handshake(client, connect_request(6000), NOW, WALL)
    pair.commit()
    _handle(pair.leader, client, 1, CREATE, ustr("/gone") + buf(b"") + OPEN_ACL + i32(0))
    pair.leader.stop_serving()
    tree = DataTree()
    tree.nodes["/zookeeper/quota"].data = b""  # a tree loaded from elsewhere
    tree.last_zxid = 7
    pair.leader.reset_to(tree)
    assert pair.leader.tree is tree and pair.leader.prep.tree is tree
    assert tree.quotas.tracking
    assert pair.leader.prep.record("/gone") is None  # the old pending create is forgotten
    pair.leader.lead(EPOCH + 1, NOW, lambda token: None)
    assert pair.leader.prep.last_zxid == (EPOCH + 1) << 32
