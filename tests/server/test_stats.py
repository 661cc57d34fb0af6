"""The stats source (`server/stats.py`) that the 4lw, the AdminServer and /metrics render.

A standalone `Server` is built in-process (no sockets: connections are driven through its
engine) and given a known state; the figures must say exactly that state, and the three
renderings must agree with them. The renderings' formats are pinned against Apache ZooKeeper
by test_fourletter.py and test_admin.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.wire import (
    CREATE,
    EXISTS,
    GET_CHILDREN,
    GET_DATA,
    OPEN_ACL,
    SET_DATA,
    buf,
    connect_request,
    i32,
    request,
    ustr,
)

from zkserver.config import parse_config
from zkserver.engine import Client
from zkserver.server import admin, fourletter, metrics, stats
from zkserver.server.server import Server

NOW = 5_000
WALL = 1_700_000_000_000


class World:
    """A server and two sessions: A holds an ephemeral and watches, B waits on a write."""

    def __init__(self, tmp: Path) -> None:
        cfg = parse_config(f"tickTime=2000\ndataDir={tmp}\nclientPort=2181\n"
                           "4lw.commands.whitelist=*\nadmin.enableServer=false\n", cwd=str(tmp))
        self.server = Server(cfg)
        self.server.serving = True
        self.engine = self.server.engine
        self.a = self.connect(("127.0.0.1", 40001))
        self.b = self.connect(("10.1.2.3", 40002))
        self.handle(self.a, 1, CREATE, ustr("/s") + buf(b"hello") + OPEN_ACL + i32(0))
        self.handle(self.a, 2, CREATE, ustr("/s/e") + buf(b"e") + OPEN_ACL + i32(1))
        self.commit(NOW + 4)  # both writes waited 4 ms
        self.handle(self.a, 3, GET_DATA, ustr("/s") + b"\1")
        self.handle(self.a, 4, EXISTS, ustr("/missing") + b"\1")
        self.handle(self.a, 5, GET_CHILDREN, ustr("/s") + b"\1")  # a child watch: not in wch*
        self.handle(self.b, 1, SET_DATA, ustr("/s") + buf(b"x") + i32(-1))  # left uncommitted
        self.handle(self.b, 2, GET_DATA, ustr("/s") + b"\0")  # queued behind it

    def connect(self, remote: tuple[str, int]) -> Client:
        client = self.engine.connect(remote, lambda: None, NOW, WALL)
        assert self.engine.handshake(client, connect_request(6000), NOW, WALL)
        self.commit(NOW)
        return client

    def handle(self, client: Client, xid: int, op: int, body: bytes) -> None:
        self.engine.handle(client, request(xid, op, body)[4:], NOW, WALL)

    def commit(self, now: int) -> None:
        self.engine.apply_committed(self.engine.take_commits(), now)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_summary(world: World) -> None:
    s = stats.summary(world.server)
    assert (s.connections, s.outstanding, s.mode) == (2, 2, "standalone")
    assert s.zxid == world.engine.last_zxid == 4  # two sessions, two creates
    assert s.node_count == 4 + 1 + 2  # built-ins, ZooKeeper's doubled root, /s and /s/e
    # received: 2 handshakes + 7 requests; sent: 2 session replies + 2 writes + 3 reads
    assert (s.received, s.sent) == (9, 7)
    # latencies: the two creates (4 ms) and three reads (0); session creates don't count
    assert (s.min_latency, s.avg_latency, s.max_latency) == (0, 8 / 5, 4)


def test_connections(world: World) -> None:
    conns = {c.remote: c for c in stats.connections(world.server)}
    a, b = conns[("127.0.0.1", 40001)], conns[("10.1.2.3", 40002)]
    assert (a.queued, a.received, a.sent, a.last_op, a.last_cxid) == (0, 6, 6, "GETC", 5)
    assert (a.timeout, a.established, a.secure) == (6000, WALL, False)
    assert (a.min_latency, a.avg_latency, a.max_latency, a.last_latency) == (0, 1, 4, 0)
    assert (b.queued, b.received, b.sent, b.last_op) == (2, 3, 1, "NA")
    assert a.session_id != b.session_id != 0
    assert stats.non_mtls_connections(world.server) == (1, 1)


def test_watches_are_the_data_watches(world: World) -> None:
    sid = world.a.session_id
    assert stats.watch_summary(world.server) == stats.WatchSummary(1, 2, 2)
    assert stats.watches_by_session(world.server) == [(sid, ["/missing", "/s"])]
    assert stats.watches_by_path(world.server) == [("/missing", [sid]), ("/s", [sid])]


def test_sessions_and_ephemerals(world: World) -> None:
    assert stats.session_count(world.server) == 2
    [(at, sids)] = stats.expiry(world.server)
    assert sids == sorted([world.a.session_id, world.b.session_id]) and at > NOW
    assert stats.ephemerals(world.server) == [(world.a.session_id, ["/s/e"])]


def test_resets(world: World) -> None:
    stats.reset_connection_stats(world.server)
    assert all((c.received, c.sent, c.last_op, c.max_latency) == (0, 0, "NA", 0)
               for c in stats.connections(world.server))
    stats.reset_server_stats(world.server)
    s = stats.summary(world.server)
    assert (s.received, s.sent, s.max_latency) == (0, 0, 0)
    assert stats.response_sizes(world.server) == (0, -1, 0)


def test_the_three_renderings_show_the_same_figures(world: World) -> None:
    server = world.server
    mntr = stats.mntr(server)
    text = fourletter.run(server, "mntr")
    for key in ("packets_received", "packets_sent", "num_alive_connections",
                "outstanding_requests", "znode_count", "watch_count", "ephemerals_count"):
        assert f"zk_{key}\t{mntr[key]}\n" in text
    monitor = admin.run_command(server, "monitor")
    prometheus = metrics.prometheus_text(server)
    for key in ("packets_received", "znode_count", "outstanding_requests"):
        assert monitor[key] == mntr[key]
        assert f"\n{key} {metrics.java_double(mntr[key])}\n" in prometheus  # type: ignore
    s = stats.summary(server)
    srvr = fourletter.run(server, "srvr")
    assert f"Outstanding: {s.outstanding}\n" in srvr and f"Received: {s.received}\n" in srvr
    assert admin.run_command(server, "srvr")["server_stats"]["packets_received"] == s.received
    assert fourletter.run(server, "wchs") == "1 connections watching 2 paths\nTotal watches:2\n"
    assert admin.run_command(server, "wchs")["num_total_watches"] == 2
