"""The nemesis's network: proxies that forward, cut, reset and heal; ZooKeeper's election
handshake rewritten so that connections back go through the proxies too."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.jepsen.nemesis import (
    Network,
    SilentCut,
    _rewrite_initial_message,
    choose,
    cut_pairs,
    cut_schedule,
)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@contextlib.contextmanager
def echo_server(port: int = 0) -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def network() -> Iterator[Network]:
    net = Network(connect_patience=2.0).start()
    yield net
    net.stop()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def test_forwards_freezes_while_cut_and_delivers_after_healing(network):
    with echo_server() as target:
        port = network.link(0, 1, target)
        s = connect(port)
        s.sendall(b"one")
        assert s.recv(100) == b"one"
        network.isolate([0])
        assert network.blocked() == [(0, 1)]
        s.sendall(b"two")
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):  # held, like packets a firewall drops
            s.recv(100)
        network.heal()
        s.settimeout(5)
        assert s.recv(100) == b"two"  # TCP retransmits: nothing was lost
        s.close()


def test_refusing_partition_resets_connections(network):
    with echo_server() as target:
        port = network.link(0, 1, target)
        s = connect(port)
        s.sendall(b"x")
        assert s.recv(10) == b"x"
        network.partition([{0}, {1}], refuse=True)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            s.sendall(b"y")
            assert s.recv(10) == b""  # a reset may also show as end of stream first
            s.sendall(b"z")
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            fresh = connect(port)  # the reset can even beat connect() returning
            fresh.sendall(b"y")
            assert fresh.recv(10) == b""
            fresh.sendall(b"z")
        network.heal()
        again = connect(port)
        again.sendall(b"back")
        assert again.recv(10) == b"back"


def test_partition_groups_cut_only_links_between_groups(network):
    with echo_server() as target:
        for src in range(3):
            for dst in range(3):
                if src != dst:
                    network.link(src, dst, target)
        network.partition([{0, 1}, {2}])
        assert network.blocked() == [(0, 2), (1, 2), (2, 0), (2, 1)]
        network.isolate([1])
        assert network.blocked() == [(0, 1), (1, 0), (1, 2), (2, 1)]
        network.heal()
        assert network.blocked() == []


def test_cutting_single_links_leaves_the_others(network):
    with echo_server() as target:
        ports = {(src, dst): network.link(src, dst, target)
                 for src in range(3) for dst in range(3) if src != dst}
        network.cut([(0, 2)])
        assert network.blocked() == [(0, 2), (2, 0)]
        through, cut = connect(ports[0, 1]), connect(ports[2, 0])
        through.sendall(b"a")
        assert through.recv(10) == b"a"
        cut.sendall(b"b")
        cut.settimeout(0.3)
        with pytest.raises(TimeoutError):
            cut.recv(10)
        network.heal()
        cut.settimeout(5)
        assert cut.recv(10) == b"b"


def test_a_connection_made_before_the_server_listens_is_bridged(network):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        target = probe.getsockname()[1]
    port = network.link(0, 1, target)
    s = connect(port)  # accepted by the proxy while nothing listens behind it
    s.sendall(b"early")
    with echo_server(target):
        assert s.recv(100) == b"early"
    s.close()


def test_zookeeper_election_handshake_is_rewritten():
    addr = b"127.0.0.1:2888"
    message = struct.pack(">qqi", -65536, 3, len(addr)) + addr + b"rest"
    for cut in range(len(message) - 4):
        _, done = _rewrite_initial_message(message[:cut], 4242)
        assert not done
    out, done = _rewrite_initial_message(message, 4242)
    assert done
    new = b"127.0.0.1:4242"
    assert out == struct.pack(">qqi", -65536, 3, len(new)) + new + b"rest"
    other = b"\x00" * 8 + b"anything"  # the old protocol (a bare server id) or not ZooKeeper
    assert _rewrite_initial_message(other, 4242) == (other, True)


class _FakeCluster:
    def __init__(self, n: int, leader: int | None) -> None:
        self.n = n
        self._leader = leader

    def leader(self) -> int | None:
        return self._leader


def test_targets():
    import random

    rng = random.Random(1)
    five = _FakeCluster(5, 3)
    assert choose(five, "leader", rng) == [3]
    assert 3 not in choose(five, "follower", rng)
    minority = choose(five, "minority", rng)
    assert len(minority) == 2 and 3 not in minority
    majority = choose(five, "majority", rng)
    assert len(set(majority)) == 3 and majority[0] == 3
    assert choose(_FakeCluster(1, 0), "follower", rng) == []  # standalone: nothing to hit
    assert len(choose(_FakeCluster(3, None), "leader", rng)) == 1


def test_cut_shapes():
    import random

    rng = random.Random(3)
    assert cut_pairs("leader", 3, 1, rng) == [(1, 0), (1, 2)]
    (f, a), (f2, b) = cut_pairs("follower", 3, 1, rng)
    assert f == f2 != 1 and {a, b} == {0, 1, 2} - {f}
    link = cut_pairs("link", 3, 1, rng)
    assert len(link) == 1 and link[0][0] == 1
    assert sorted(cut_pairs("bridge", 3, 1, rng)[0]) == [0, 2]
    five = cut_pairs("leader", 5, 4, rng)  # the leader and one more, against three
    side = {i for i, _ in five}
    assert 4 in side and len(side) == 2 and len(five) == 6
    assert len(cut_pairs("link", 3, None, rng)) == 1  # mid-election: a random stand-in


def test_cut_schedule_depends_only_on_the_seed():
    def shape(faults: list[SilentCut]) -> list[tuple[str, float | None, float | None]]:
        return [(f.shape, f.active, f.quiet) for f in faults]

    a, b = cut_schedule(7, 60.0), cut_schedule(7, 60.0)
    assert shape(a) == shape(b) and shape(a) != shape(cut_schedule(8, 60.0))
    assert sum(f.active + f.quiet for f in a) >= 60.0
    assert {f.shape for f in a} <= set(SilentCut.SHAPES)
    assert all(2.0 <= f.active <= 8.0 and 1.0 <= f.quiet <= 4.0 for f in a)
