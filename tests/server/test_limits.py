"""Resource limits: maxClientCnxns, maxCnxns, jute.maxbuffer, globalOutstandingLimit and the
time a new connection gets to say hello.

Connections from other loopback addresses (127.0.0.2, ...) show that maxClientCnxns counts per
address; raw frames built from the protocol reference (support/wire.py) test the frame limit
to the byte. The back-pressure test runs a server in this process with a transaction log
slowed down, so requests pile up on purpose.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from support import wire as W
from support.process import ZkServerProcess
from support.realzk import free_port
from support.wire import Closed, RawConnection

from zkserver import client
from zkserver.config import parse_config
from zkserver.server.server import Server

HOST = "127.0.0.1"


class From(RawConnection):
    """A raw connection from a chosen loopback source address."""

    def __init__(self, port: int, source: str = HOST, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout,
                                             source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False


def _session(port: int, source: str = HOST) -> From | None:
    """A connection with a session, or None if the server turned it away."""
    conn = From(port, source)
    try:
        negotiated, sid, _, _ = conn.handshake()
    except (Closed, ConnectionResetError):
        conn.close()
        return None
    assert negotiated > 0 and sid
    return conn


def _until(predicate: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: Any) -> Iterator[tuple[ZkServerProcess, int]]:
    metrics_port = free_port()
    server = ZkServerProcess(tmp_path_factory.mktemp("limits"), free_port(), extra=[
        "maxClientCnxns=2", "maxCnxns=3", "jute.maxbuffer=4096",
        f"metricsProvider.httpPort={metrics_port}", "metricsProvider.httpHost=127.0.0.1"])
    with server:
        yield server, metrics_port


def test_max_client_cnxns_counts_per_address(limited: Any) -> None:
    server, metrics_port = limited
    a1, a2 = _session(server.port), _session(server.port)
    assert a1 is not None and a2 is not None
    assert _session(server.port) is None  # a third from 127.0.0.1: maxClientCnxns=2
    b1 = _session(server.port, "127.0.0.2")  # another address has its own count
    assert b1 is not None
    # maxCnxns=3: now full for every address
    assert _session(server.port, "127.0.0.3") is None
    a1.close()
    again = _until(lambda: _session(server.port, "127.0.0.3"))
    assert again is not None
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    rejected = [ln for ln in text.decode().splitlines() if ln.startswith("connection_rejected ")]
    assert rejected and float(rejected[0].split()[1]) >= 2
    for c in (a2, b1, again):
        c.close()
    _until(lambda: _session(server.port) and True)  # the slots come back


def _create_frame(xid: int, path: str, data: bytes) -> bytes:
    body = (W.ustr(path) + W.buf(data) + W.i32(1) + W.i32(31) + W.ustr("world")
            + W.ustr("anyone") + W.i32(0))
    return W.request(xid, W.CREATE, body)


def test_jute_maxbuffer_to_the_byte(limited: Any) -> None:
    server, _ = limited
    conn = _until(lambda: _session(server.port, "127.0.0.9"))
    assert conn is not None
    overhead = len(_create_frame(1, "/big", b"")) - 4
    fits = _create_frame(1, "/big", b"x" * (4096 - overhead))
    assert len(fits) - 4 == 4096  # the frame's length field says exactly jute.maxbuffer
    conn.send(fits)
    xid, _, err, _ = conn.read_reply()
    assert (xid, err) == (1, 0)
    too_big = _create_frame(2, "/big", b"x" * (4097 - overhead))  # the same path: one byte more
    assert len(too_big) - 4 == 4097
    conn.send(too_big)
    assert conn.wait_closed(5.0)  # closed, with no reply
    conn.close()
    check = _until(lambda: _session(server.port, "127.0.0.9"))
    assert check is not None
    xid, _, err, _ = check.call(3, W.EXISTS, W.ustr("/big") + W.boolean(False))
    assert err == 0  # the first /big exists, the session and the server are fine
    check.close()


def _self_signed(d: Path) -> Path:
    bundle = d / "bundle.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem"),
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    bundle.write_text((d / "k.pem").read_text() + (d / "c.pem").read_text())
    return bundle


def test_silent_connections_are_closed(tmp_path: Path) -> None:
    """A connection must send its ConnectRequest (or finish TLS) within maxSessionTimeout."""
    secure = free_port()
    bundle = _self_signed(tmp_path)
    server = ZkServerProcess(tmp_path / "zk", free_port(), extra=[
        "tickTime=100", "maxSessionTimeout=1500", f"secureClientPort={secure}",
        f"ssl.keyStore.location={bundle}", "ssl.clientAuth=none"])
    with server:
        silent = From(server.port)
        partial = From(server.port)
        partial.send(b"\x00\x00")  # half a length prefix, then nothing
        tls_silent = From(secure)  # TCP open, no ClientHello
        start = time.monotonic()
        for conn in (silent, partial, tls_silent):
            assert conn.wait_closed(6.0)
            conn.close()
        assert time.monotonic() - start < 6.0
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((HOST, secure), timeout=5) as raw:  # TLS works
            with ctx.wrap_socket(raw) as s:
                s.sendall(b"ruok")
                assert s.recv(10) == b"imok"


async def test_global_outstanding_limit_applies_back_pressure(tmp_path: Path) -> None:
    limit = 20
    config = parse_config(f"tickTime=2000\ndataDir={tmp_path}\nclientPort=0\n"
                          "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                          f"globalOutstandingLimit={limit}\n")
    server = Server(config)
    log_append = server.txnlog.append

    def slow_append(*args: Any) -> Any:
        time.sleep(0.01)  # a slow disk: requests pile up while it syncs
        return log_append(*args)

    server.txnlog.append = slow_append  # type: ignore[method-assign]
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            most = max(most, sum(len(c.queue) for c in server.engine.clients))
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        nursery.start_soon(watch)
        host, port = server.addresses[0]
        async with client.connect(f"{host}:{port}") as busy, \
                client.connect(f"{host}:{port}") as other:
            await busy.create("/bp", b"")
            results: list[str] = []

            async def create(i: int) -> None:
                results.append(await busy.create(f"/bp/n{i:04d}", b"x"))

            async with trio.open_nursery() as writers:
                for i in range(400):
                    writers.start_soon(create, i)
                await trio.sleep(0.05)
                # throttled: the busy connection waits, an idle one is served at once
                with trio.fail_after(1.0):
                    await other.get("/")
            assert sorted(results) == [f"/bp/n{i:04d}" for i in range(400)]
            children = await other.get_children("/bp")
            assert len(children.children) == 400
        nursery.cancel_scope.cancel()
    assert server.throttled > 0
    assert most <= limit + 5, most  # one request over the limit per connection, plus slack
