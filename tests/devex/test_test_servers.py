"""The processes behind the pytest fixtures (`zkserver.testing.servers`): start time, clean stop,
restart on the same data, and an ensemble member killed and brought back."""

from __future__ import annotations

import socket
import statistics
import time
from pathlib import Path

from kazoo.client import KazooClient

from zkserver.testing.servers import TestEnsemble, TestServer, server_mode


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_standalone_starts_in_well_under_a_second(tmp_path: Path) -> None:
    times = []
    for i in range(3):
        started = time.monotonic()
        server = TestServer(tmp_path / f"s{i}").start()
        times.append(time.monotonic() - started)
        server.stop()
        assert server.proc is not None and server.proc.returncode == 0
    print(f"standalone start: {', '.join(f'{t:.2f}' for t in times)} s")
    # Typically 0.45 s on a loaded 2-core machine; the bound leaves room for a slower CI.
    assert statistics.median(times) < 2.0


def test_restart_keeps_port_and_data(tmp_path: Path) -> None:
    with TestServer(tmp_path) as server:
        assert server_mode(server.host, server.port) == "standalone"
        kz = KazooClient(server.hosts)
        kz.start()
        kz.create("/kept", b"yes")
        kz.stop()
        port = server.port
        server.restart()
        assert server.port == port
        kz = KazooClient(server.hosts)
        kz.start()
        assert kz.get("/kept")[0] == b"yes"
        kz.stop()
        server.kill()
        assert not server.running
        assert not _port_open(port)


def test_ensemble_member_killed_and_started(tmp_path: Path) -> None:
    with TestEnsemble(tmp_path, 3) as ensemble:
        modes = ensemble.modes()
        assert sorted(modes) == ["follower", "follower", "leader"]
        leader = ensemble.leader()
        assert leader is not None
        ensemble.kill(leader)
        assert ensemble.members[leader].running is False
        ensemble.wait_serving()
        assert ensemble.leader() not in (None, leader)
        ensemble.start(leader)
        assert ensemble.modes()[leader] == "follower"
