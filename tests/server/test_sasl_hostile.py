"""Hostile SASL clients against a zkserver process that serves DIGEST-MD5 (`--jaas-config`).

Clients that stop half-way through the exchange, send garbage, oversized or replayed tokens, or
wrong passwords each get ZooKeeper's answer (AUTHFAILED, then the connection closes) or simply
wait, while a kazoo canary keeps reading and writing undisturbed; the server's log names the
failures but holds no password.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from puresasl.client import SASLClient
from support import wire as W
from support.canary import Canary
from support.process import ZkServerProcess
from support.realzk import free_port
from support.wire import Closed, RawConnection

JAAS = 'Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n' \
       '  user_bob="bob-secret";\n};\n'
AUTHFAILED = -115


@pytest.fixture
def sasl_server(tmp_path: Path) -> Iterator[ZkServerProcess]:
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(JAAS)
    command = [sys.executable, "-m", "zkserver", "--jaas-config", str(jaas)]
    with ZkServerProcess(tmp_path / "srv", free_port(), command=command,
                         env={"JVMFLAGS": "", "SERVER_JVMFLAGS": ""}) as server:
        yield server


def _sasl(conn: RawConnection, xid: int, token: bytes) -> tuple[int, bytes] | str:
    """(err, token) of the answer, or "closed" if the connection closed unanswered."""
    conn.send(W.request(xid, W.SASL, W.buf(token)))
    try:
        rxid, _zxid, err, body = conn.read_reply(5.0)
    except Closed:
        return "closed"
    assert rxid == xid
    length = int.from_bytes(body[:4], "big", signed=True)
    return err, body[4:4 + length] if length >= 0 else b""


def _session(server: ZkServerProcess) -> RawConnection:
    conn = RawConnection("127.0.0.1", server.port)
    conn.handshake(timeout_ms=40000)  # the longest session: stalled ones must outlive the test
    return conn


def _digest_response(challenge: bytes, password: str) -> bytes:
    cli = SASLClient("zk-sasl-md5", "zookeeper", mechanism="DIGEST-MD5", username="bob",
                     password=password)
    cli.process(None)
    return cli.process(challenge)


def test_hostile_sasl_clients_disturb_nobody(sasl_server: ZkServerProcess) -> None:
    canary = Canary(sasl_server)
    try:
        stalled = []
        for _ in range(20):  # they stop after the challenge and never answer it
            conn = _session(sasl_server)
            err, challenge = _sasl(conn, 1, b"")
            assert err == 0 and b"nonce=" in challenge
            stalled.append(conn)
        replay_from = _session(sasl_server)
        _, first_challenge = _sasl(replay_from, 1, b"")
        replayed = _digest_response(first_challenge, "bob-secret")
        bad_tokens = {
            "garbage": os.urandom(200),
            "oversized": b"x=" + b"y" * 6000,
            "initial response": b"\0bob\0bob-secret",
        }
        for name, token in bad_tokens.items():
            conn = _session(sasl_server)
            err, _ = _sasl(conn, 1, b"") if name != "initial response" else (0, b"")
            assert err == 0
            assert _sasl(conn, 2, token) == (AUTHFAILED, b""), name
            assert conn.wait_closed(5.0), name
        for name, password in (("wrong password", "hunter2"), ("replay", None)):
            conn = _session(sasl_server)
            err, challenge = _sasl(conn, 1, b"")
            token = replayed if password is None else _digest_response(challenge, password)
            assert _sasl(conn, 2, token) == (AUTHFAILED, b""), name
            assert conn.wait_closed(5.0), name
        good = _session(sasl_server)
        _, challenge = _sasl(good, 1, b"")
        err, rspauth = _sasl(good, 2, _digest_response(challenge, "bob-secret"))
        assert err == 0 and rspauth.startswith(b"rspauth=")
        for conn in stalled:  # still connected, still answered
            assert conn.call(5, W.EXISTS, W.ustr("/") + b"\0")[2] == 0
            conn.close()
        canary.check()
    finally:
        canary.close()
    log = sasl_server.log_path.read_text()
    assert "failed to SASL authenticate" in log
    assert "bob-secret" not in log and "hunter2" not in log
