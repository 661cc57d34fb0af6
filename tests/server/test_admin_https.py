"""HTTPS on the AdminServer port (admin.forceHttps, admin.portUnification, admin.needClientAuth)
with the quorum's `ssl.quorum.*` stores, as ZooKeeper's JettyAdminServer; and the `x509`
admin auth scheme with a client certificate. Certificates are made here with openssl.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id, make_digest_acl
from support import pki as pki_tools
from support import realzk
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerProcess, side_by_side
from support.realzk import RealZooKeeper, free_port
from support.waiting import wait_for

CLIENT_DN = "CN=admin-client,O=Example"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Path:
    d = tmp_path_factory.mktemp("adminpki")
    pki_tools.make_ca(d, cn="Admin CA")
    pki_tools.certificate(d, "server", "/CN=localhost", "IP:127.0.0.1,DNS:localhost")
    pki_tools.certificate(d, "client", "/O=Example/CN=admin-client", "DNS:client")
    pki_tools.make_ca(d, "rogue", "rogue")
    pki_tools.bundle_of(d, "server")
    return d


def _server(base: Path, pki: Path, *flags: str) -> tuple[ZkServerProcess, int]:
    """A zkserver with the admin port on HTTPS settings, not started yet (`with` starts it)."""
    port = free_port()
    server = ZkServerProcess(base, free_port(), extra=[
        "admin.enableServer=true", "admin.serverAddress=127.0.0.1", f"admin.serverPort={port}",
        f"ssl.quorum.keyStore.location={pki / 'server-bundle.pem'}",
        f"ssl.quorum.trustStore.location={pki / 'ca.pem'}",
        "admin.rateLimiterIntervalInMS=10", *flags])
    return server, port


def _ctx(pki: Path, cert: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert is not None:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return ctx


def _get(port: int, path: str, ctx: ssl.SSLContext | None, auth: str | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    conn: http.client.HTTPConnection
    if ctx is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=20, context=ctx)
    try:
        conn.request("GET", path, headers={"Authorization": auth} if auth else {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _serving(port: int, ctx: ssl.SSLContext | None) -> None:
    def up() -> bool:
        try:
            return _get(port, "/commands/ruok", ctx)[0] == 200
        except OSError:
            return False
    wait_for(up, 30, "the AdminServer over HTTPS")


def _snapshot(port: int, ctx: ssl.SSLContext | None, auth: str) -> tuple[int, bytes]:
    got: list[tuple[int, bytes]] = []

    def once() -> bool:
        status, _, body = _get(port, "/commands/snapshot", ctx, auth)
        got[:] = [(status, body)]
        return status != 429
    wait_for(once, 20, "a snapshot that is not rate limited")
    return got[0]


@pytest.fixture(scope="module")
def forced(pki: Path, tmp_path_factory: Any) -> Iterator[int]:
    server, port = _server(tmp_path_factory.mktemp("forced"), pki, "admin.forceHttps=true")
    with server:
        _serving(port, _ctx(pki))
        yield port


def test_force_https_serves_only_https(pki: Path, forced: int) -> None:
    status, headers, body = _get(forced, "/commands/ruok", _ctx(pki))
    assert status == 200 and json.loads(body) == {"command": "ruok", "error": None}
    assert headers["strict-transport-security"] == "max-age=86400; includeSubDomains"
    with socket.create_connection(("127.0.0.1", forced), timeout=10) as s:
        s.sendall(b"GET /commands/ruok HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = s.recv(100)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"HTTP/1.1 200")  # plain HTTP gets no answer


def test_no_client_certificate_needed_by_default(pki: Path, forced: int) -> None:
    """needClientAuth=false: no certificate is asked for, so `x509` proves nothing."""
    assert _get(forced, "/commands/ruok", _ctx(pki, "client"))[0] == 200
    status, body = _snapshot(forced, _ctx(pki, "client"), "x509")
    assert status == 401 and json.loads(body)["error"] == "Not authenticated"
    status, body = _snapshot(forced, _ctx(pki), "digest alice:pw")
    assert status == 200 and body.startswith(b"ZKSSNAP1")


def test_untrusted_server_certificate_is_refused(pki: Path, forced: int) -> None:
    with pytest.raises(ssl.SSLError):
        _get(forced, "/commands/ruok", ssl.create_default_context())


@pytest.fixture(scope="module")
def unified(pki: Path, tmp_path_factory: Any) -> Iterator[tuple[ZkServerProcess, int]]:
    server, port = _server(tmp_path_factory.mktemp("unified"), pki,
                          "admin.portUnification=true", "admin.needClientAuth=true")
    with server:
        _serving(port, _ctx(pki, "client"))
        yield server, port


def test_port_unification_answers_http_and_https(pki: Path, unified: Any) -> None:
    _, port = unified
    status, headers, _ = _get(port, "/commands/ruok", None)
    assert status == 200 and "strict-transport-security" not in headers
    status, headers, _ = _get(port, "/commands/ruok", _ctx(pki, "client"))
    assert status == 200 and "strict-transport-security" in headers


def test_need_client_auth_refuses_https_without_a_trusted_certificate(pki: Path,
                                                                     unified: Any) -> None:
    _, port = unified
    for cert in (None, "rogue"):
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError,
                            http.client.RemoteDisconnected)):
            _get(port, "/commands/ruok", _ctx(pki, cert))


def test_x509_admin_auth_with_a_client_certificate(pki: Path, unified: Any) -> None:
    server, port = unified
    client = _ctx(pki, "client")
    zk = kazoo_client(server.hosts)
    try:
        zk.add_auth("digest", "alice:pw")
        zk.set_acls("/", [ACL(31, Id("x509", CLIENT_DN)), make_digest_acl("alice", "pw",
                                                                          all=True)])
        status, body = _snapshot(port, client, "x509")
        assert status == 200 and body.startswith(b"ZKSSNAP1")
        status, body = _snapshot(port, client, "digest bob:pw")
        assert (status, json.loads(body)) == (403, {"command": "snapshot",
                                                    "error": "Not authorized"})
        # Plain HTTP on the same port carries no certificate.
        status, body = _snapshot(port, None, "x509")
        assert (status, json.loads(body)) == (401, {"command": "snapshot",
                                                    "error": "Not authenticated"})
    finally:
        zk.set_acls("/", OPEN_ACL_UNSAFE)
        stop_kazoo(zk)


def test_bad_tls_settings_leave_the_server_up(pki: Path, tmp_path: Path) -> None:
    port = free_port()
    server = ZkServerProcess(tmp_path, free_port(), extra=[
        "admin.enableServer=true", "admin.serverAddress=127.0.0.1", f"admin.serverPort={port}",
        "admin.forceHttps=true", f"ssl.quorum.keyStore.location={tmp_path / 'missing.pem'}"])
    with server:
        zk = kazoo_client(server.hosts)
        try:
            zk.create("/up", b"")
        finally:
            stop_kazoo(zk)
        wait_for(lambda: "Problem starting AdminServer" in server.log_path.read_text(), 10,
                 "the AdminServer's failure in the log")


# -- against ZooKeeper 3.9.5 ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def both_unified(pki: Path, tmp_path_factory: Any) -> Iterator[tuple[Any, int, Any, int]]:
    """zkserver and ZooKeeper 3.9.5, each with HTTP+HTTPS on its admin port and client
    certificates required, and the x509 provider on (ZooKeeper needs it named)."""
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (tests/support/fetch_zookeeper.sh)")
    base = tmp_path_factory.mktemp("https-vs-zk")
    stores = [f"ssl.quorum.keyStore.location={pki / 'server-bundle.pem'}",
              f"ssl.quorum.trustStore.location={pki / 'ca.pem'}",
              f"ssl.keyStore.location={pki / 'server-bundle.pem'}",
              f"ssl.trustStore.location={pki / 'ca.pem'}",
              "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
              "admin.enableServer=true", "admin.serverAddress=127.0.0.1",
              "admin.portUnification=true", "admin.needClientAuth=true",
              "admin.rateLimiterIntervalInMS=10"]
    ours_port, real_port = free_port(), free_port()
    ours = ZkServerProcess(base / "zks", free_port(),
                           extra=[*stores, f"admin.serverPort={ours_port}"])
    real = RealZooKeeper(base / "real", free_port(),
                         extra=[*stores, f"admin.serverPort={real_port}"])
    with side_by_side(ours, real):
        for port in (ours_port, real_port):
            _serving(port, _ctx(pki, "client"))
        yield ours, ours_port, real, real_port


def test_x509_admin_auth_as_zookeeper(pki: Path, both_unified: Any) -> None:
    ours, ours_port, real, real_port = both_unified
    client = _ctx(pki, "client")
    answers: dict[str, list[Any]] = {}
    for server, port in ((ours, ours_port), (real, real_port)):
        seen = answers.setdefault(server.hosts, [])
        zk = kazoo_client(server.hosts)
        try:
            seen.append(_snapshot(port, client, "x509")[0])  # `/` open: any identity
            zk.add_auth("digest", "alice:pw")
            zk.set_acls("/", [ACL(31, Id("x509", CLIENT_DN)),
                              make_digest_acl("alice", "pw", all=True)])
            for ctx, auth in ((client, "x509"), (client, "digest bob:pw"),
                              (client, "digest alice:pw"), (None, "x509"), (None, "ip")):
                status, body = _snapshot(port, ctx, auth)
                seen.append((status, None if status == 200 else json.loads(body)))
            with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError,
                                http.client.RemoteDisconnected)):
                _get(port, "/commands/ruok", _ctx(pki))  # HTTPS without a certificate
        finally:
            zk.set_acls("/", OPEN_ACL_UNSAFE)
            stop_kazoo(zk)
    mine, theirs = answers.values()
    assert mine == theirs
    assert mine == [200, (200, None), (403, {"command": "snapshot", "error": "Not authorized"}),
                    (200, None), (401, {"command": "snapshot", "error": "Not authenticated"}),
                    (403, {"command": "snapshot", "error": "Not authorized"})]
