"""The network between servers: proxies that forward, cut, reset and heal, in a thread of
this process or in a process of their own; ZooKeeper's election handshake rewritten so that
connections back go through the proxies too."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.jepsen.network import Network, NetworkProcess, _rewrite_initial_message
from zkserver.devensemble import free_port_base


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


@pytest.fixture(params=[Network, NetworkProcess])
def network(request) -> Iterator[Network | NetworkProcess]:
    net = request.param(connect_patience=2.0).start()
    yield net
    net.stop()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def echoing(network, target: int) -> tuple[socket.socket, int]:
    """A connection from node 0 to the echo server of node 1 that has echoed once, and the
    proxy port it goes through."""
    port = network.link(0, 1, target)
    s = connect(port)
    s.sendall(b"one")
    assert s.recv(100) == b"one"
    return s, port


def test_forwards_freezes_while_cut_and_delivers_after_healing(network):
    with echo_server() as target:
        s, _ = echoing(network, target)
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
        s, port = echoing(network, target)
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
    # Free now and below the kernel's ephemeral ports: a port probed with bind(0) was taken,
    # once in CI, as the local end of another connection before the echo server bound it.
    target = free_port_base(1) + 1
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

