"""Certificates rotated on disk reach new TLS connections without a restart (`client.certReload`).

openssl makes a CA and two server certificates, "first" and "second". zkserver serves the secure
client port from a PEM key store holding "first"; the file is then replaced by "second" and new
connections must soon be shown "second", while a store caught broken keeps the last good one.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wire as W
from support.process import ZkServerProcess
from support.realzk import free_port

from zkserver.server.tls_reload import StoreFiles

WAIT = 15.0


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def _server_cert(d: Path, name: str) -> bytes:
    """A PEM key store (key, then certificate) for CN=<name>, signed by the test CA."""
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / f"{name}.key"),
         "-out", str(d / f"{name}.csr"), "-subj", f"/CN={name}")
    (d / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _run("openssl", "x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
         "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
         "-out", str(d / f"{name}.pem"), "-extfile", str(d / f"{name}.ext"))
    return (d / f"{name}.key").read_bytes() + (d / f"{name}.pem").read_bytes()


@pytest.fixture
def rotating(tmp_path: Path) -> Iterator[tuple[ZkServerProcess, int, Path, dict[str, bytes]]]:
    """(server, its secure port, the key store file, the two stores' contents)."""
    d = tmp_path / "pki"
    d.mkdir()
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-subj", "/CN=Test CA")
    stores = {name: _server_cert(d, name) for name in ("first", "second")}
    key_store = d / "server-store.pem"
    key_store.write_bytes(stores["first"])
    secure_port = free_port()
    extra = [f"secureClientPort={secure_port}", f"ssl.keyStore.location={key_store}",
             f"ssl.trustStore.location={d / 'ca.pem'}", "ssl.clientAuth=none",
             "client.certReload=true"]
    with ZkServerProcess(tmp_path / "srv", free_port(), extra=extra) as server:
        yield server, secure_port, key_store, stores


def _served_cn(port: int, ca: Path) -> str:
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        subject = dict(x[0] for x in s.getpeercert()["subject"])
        s.sendall(W.frame(W.connect_request(6000)))
        assert s.recv(4)  # a ConnectResponse: the server really serves on it
        return subject["commonName"]


def _wait_for_cn(port: int, ca: Path, cn: str) -> None:
    deadline = time.monotonic() + WAIT
    seen = None
    while time.monotonic() < deadline:
        seen = _served_cn(port, ca)
        if seen == cn:
            return
        time.sleep(0.1)
    raise AssertionError(f"still served {seen!r} {WAIT}s after the rotation to {cn!r}")


def test_a_rotated_certificate_reaches_new_connections(rotating) -> None:
    server, port, key_store, stores = rotating
    ca = key_store.parent / "ca.pem"
    assert _served_cn(port, ca) == "first"
    tmp = key_store.with_suffix(".new")
    tmp.write_bytes(stores["second"])
    os.replace(tmp, key_store)  # a rotation by rename
    _wait_for_cn(port, ca, "second")
    key_store.write_bytes(b"-----BEGIN PRIVATE KEY-----\ntruncated")  # broken in place
    deadline = time.monotonic() + WAIT
    while "did not load" not in server.log_path.read_text():
        assert time.monotonic() < deadline, "the broken store was not noticed"
        time.sleep(0.1)
    assert _served_cn(port, ca) == "second"  # the last good certificates stay
    key_store.write_bytes(stores["first"])  # an overwrite in place
    _wait_for_cn(port, ca, "first")


def test_store_files_notice_changes() -> None:
    state = {"a": (1, 10, 100), "b": None}
    files = StoreFiles(["a", "b", "a"], look=lambda p: state[p])
    assert files.paths == ["a", "b"] and files.changed() == []
    state["a"] = (1, 10, 200)
    state["b"] = (2, 5, 1)
    assert files.changed() == ["a", "b"]
    assert files.changed() == []
