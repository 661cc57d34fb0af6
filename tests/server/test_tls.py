"""TLS: the secure client port, x509 client-certificate identities, key stores, quorum TLS.

Certificates are made here with openssl (a CA, a server certificate for 127.0.0.1, two client
certificates and one the CA never signed) and turned into PKCS12 and JKS stores with openssl
and keytool. kazoo and zkserver's own client connect over TLS to a zkserver process; the key
store formats, protocol and cipher settings are checked in-process, server and client contexts
shaking hands over a memory stream. The expected DN text of a client certificate is what
Apache ZooKeeper 3.8 itself shows for that certificate (checked by hand with getACL).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from kazoo.client import KazooClient
from kazoo.exceptions import InvalidACLError, NoAuthError
from kazoo.retry import KazooRetry
from kazoo.security import ACL, Id
from support import pki as pki_tools
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerEnsemble, ZkServerProcess, free_port_base
from support.realzk import four_letter, free_port

from zkserver import client
from zkserver.server import tls

PASSWORD = "s3cret"
CLIENT_SUBJECT = "/C=US/ST=Some, State/O=Example/CN=client #1 /emailAddress=a@b.c"
# X500Principal.getName() of CLIENT_SUBJECT, as ZooKeeper shows it in a getACL.
CLIENT_DN = r"1.2.840.113549.1.9.1=#16056140622e63,CN=client \#1\ ,O=Example,ST=Some\, State,C=US"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Path:
    d = tmp_path_factory.mktemp("pki")
    pki_tools.make_ca(d, cn="Test CA")
    pki_tools.certificate(d, "server", "/CN=localhost", "IP:127.0.0.1,DNS:localhost")
    pki_tools.certificate(d, "client", CLIENT_SUBJECT, "DNS:client")
    pki_tools.certificate(d, "other", "/CN=other", "DNS:other")
    pki_tools.make_ca(d, "rogue", "rogue")
    pki_tools.bundle_of(d, "server")
    run = pki_tools.run
    run("openssl", "pkcs8", "-topk8", "-in", str(d / "server.key"), "-out",
        str(d / "server-enc.key"), "-passout", f"pass:{PASSWORD}")
    (d / "server-enc.pem").write_text((d / "server-enc.key").read_text()
                                      + (d / "server.pem").read_text())
    run("openssl", "pkcs12", "-export", "-inkey", str(d / "server.key"), "-in",
        str(d / "server.pem"), "-certfile", str(d / "ca.pem"), "-name", "server",
        "-out", str(d / "server.p12"), "-passout", f"pass:{PASSWORD}")
    run("keytool", "-importkeystore", "-srckeystore", str(d / "server.p12"),
        "-srcstoretype", "PKCS12", "-srcstorepass", PASSWORD, "-destkeystore",
        str(d / "server.jks"), "-deststoretype", "JKS", "-deststorepass", PASSWORD,
        "-noprompt")
    for kind in ("JKS", "PKCS12"):
        run("keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", str(d / "ca.pem"),
            "-keystore", str(d / f"trust.{kind.lower()}"), "-storetype", kind,
            "-storepass", PASSWORD)
    (d / "trust.p12").write_bytes((d / "trust.pkcs12").read_bytes())
    return d


# -- in-process: contexts and handshakes ---------------------------------------------------------


async def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
                     ) -> tuple[trio.SSLStream, trio.SSLStream]:
    a, b = trio.testing.memory_stream_pair()
    server = trio.SSLStream(a, server_ctx, server_side=True)
    peer = trio.SSLStream(b, client_ctx, server_hostname="127.0.0.1")
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.do_handshake)
            nursery.start_soon(peer.do_handshake)
    except* trio.BrokenResourceError as group:
        raise group.exceptions[0] from None
    return server, peer


def _client_ctx(pki: Path, cert: str | None = "client") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert is not None:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return ctx


STORES = {
    "pem": {"ssl.keyStore.location": "server-bundle.pem", "ssl.trustStore.location": "ca.pem"},
    "pem-encrypted": {"ssl.keyStore.location": "server-enc.pem",
                      "ssl.keyStore.password": PASSWORD, "ssl.keyStore.type": "PEM",
                      "ssl.trustStore.location": "ca.pem", "ssl.trustStore.type": "pem"},
    "pkcs12": {"ssl.keyStore.location": "server.p12", "ssl.keyStore.password": PASSWORD,
               "ssl.trustStore.location": "trust.p12", "ssl.trustStore.password": PASSWORD},
    "jks": {"ssl.keyStore.location": "server.jks", "ssl.keyStore.password": PASSWORD,
            "ssl.trustStore.location": "trust.jks", "ssl.trustStore.password": PASSWORD},
}


def _props(pki: Path, store: dict[str, str], **extra: str) -> dict[str, str]:
    out = {k: str(pki / v) if k.endswith(".location") else v for k, v in store.items()}
    out.update({f"ssl.{k}": v for k, v in extra.items()})
    return out


@pytest.mark.parametrize("kind", sorted(STORES))
async def test_key_and_trust_store_formats(pki: Path, kind: str) -> None:
    ctx = tls.server_context(_props(pki, STORES[kind], clientAuth="need"))
    server, _ = await _handshake(ctx, _client_ctx(pki))
    der = server.getpeercert(binary_form=True)
    assert der is not None and tls.x509_identity(der) == CLIENT_DN
    with pytest.raises(trio.BrokenResourceError):  # a certificate the trust store doesn't know
        await _handshake(ctx, _client_ctx(pki, "rogue"))


@pytest.mark.parametrize("props,message", [
    ({"ssl.keyStore.location": "server.p12", "ssl.keyStore.password": "wrong"},
     "ssl.keyStore.password"),
    ({"ssl.keyStore.location": "server.jks", "ssl.keyStore.password": "wrong"},
     "ssl.keyStore.password"),
    ({"ssl.keyStore.location": "server.key"}, "ssl.keyStore.type"),  # no telling suffix
    ({"ssl.keyStore.location": "server.pem", "ssl.keyStore.type": "BCFKS"}, "not supported"),
    ({"ssl.keyStore.location": "missing.pem"}, "missing.pem"),
    ({"ssl.keyStore.location": "server.pem"}, "private key"),  # a PEM with no key in it
    ({}, "ssl.keyStore.location is not set"),
    ({"ssl.keyStore.location": "server-bundle.pem", "ssl.clientAuth": "maybe"},
     "ssl.clientAuth"),
    ({"ssl.keyStore.location": "server-bundle.pem", "ssl.protocol": "SSLv3"}, "ssl.protocol"),
])
def test_store_errors_name_the_key(pki: Path, props: dict[str, str], message: str) -> None:
    with pytest.raises(tls.TLSConfigError, match=message.replace(".", r"\.")):
        tls.server_context({k: str(pki / v) if k.endswith(".location") else v
                            for k, v in props.items()})


async def test_protocols_and_cipher_suites(pki: Path) -> None:
    only12 = tls.server_context(_props(pki, STORES["pem"], clientAuth="none",
                                       enabledProtocols="TLSv1.2",
                                       ciphersuites="TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"))
    server, peer = await _handshake(only12, _client_ctx(pki, None))
    assert peer.version() == "TLSv1.2"
    assert peer.cipher()[0] == "ECDHE-RSA-AES256-GCM-SHA384"
    modern = _client_ctx(pki, None)
    modern.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises(trio.BrokenResourceError):
        await _handshake(only12, modern)
    default = tls.server_context(_props(pki, STORES["pem"], clientAuth="none"))
    _, peer = await _handshake(default, _client_ctx(pki, None))
    assert peer.version() == "TLSv1.3"


@pytest.mark.parametrize("iana,openssl", [
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"),
    ("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384"),
    ("TLS_AES_128_GCM_SHA256", None),  # TLS 1.3: same name in OpenSSL
])
def test_cipher_suite_names(iana: str, openssl: str | None) -> None:
    assert tls.openssl_cipher_name(iana) == openssl


def test_dn_text_matches_java(pki: Path) -> None:
    der = ssl.PEM_cert_to_DER_cert((pki / "client.pem").read_text())
    assert tls.x509_identity(der) == CLIENT_DN
    assert tls.x509_identity(ssl.PEM_cert_to_DER_cert((pki / "other.pem").read_text())) \
        == "CN=other"


@pytest.mark.parametrize("dn,valid", [
    ("CN=joe", True), ("", True), ("cn=joe,ou=ops;o=Ex+uid=3", True), ("2.5.4.3=joe", True),
    ("OID.2.5.4.3=joe", True), (r"CN=a\,b", True), ('CN="a,b"', True),
    ("not a dn", False), ("FOO=bar", False), ('CN="open', False),
])
def test_x509_acl_ids_are_checked_like_x500principal(dn: str, valid: bool) -> None:
    assert tls.valid_dn(dn) is valid


def test_quorum_hostname_check(pki: Path) -> None:
    server = ssl.PEM_cert_to_DER_cert((pki / "server.pem").read_text())
    assert tls.peer_matches_host(server, "127.0.0.1", [])
    assert not tls.peer_matches_host(server, "127.0.0.2", [])
    assert tls.peer_matches_host(server, "10.0.0.1", ["localhost"])
    other = ssl.PEM_cert_to_DER_cert((pki / "other.pem").read_text())
    assert not tls.peer_matches_host(other, "127.0.0.1", ["localhost"])


# -- a zkserver with a secure client port ----------------------------------------------------------


def _server(base: Path, pki: Path, client_auth: str) -> tuple[ZkServerProcess, int]:
    secure = free_port()
    extra = [f"secureClientPort={secure}", "secureClientPortAddress=127.0.0.1",
             f"ssl.keyStore.location={pki / 'server.p12'}", f"ssl.keyStore.password={PASSWORD}",
             f"ssl.trustStore.location={pki / 'ca.pem'}", f"ssl.clientAuth={client_auth}"]
    return ZkServerProcess(base, free_port(), extra=extra), secure


@pytest.fixture(scope="module")
def secure_server(pki: Path, tmp_path_factory: Any) -> Iterator[tuple[ZkServerProcess, int]]:
    server, port = _server(tmp_path_factory.mktemp("tls-want"), pki, "want")
    with server:
        yield server, port


def _kazoo(pki: Path, port: int, cert: str | None = "client", ca: str = "ca.pem",
           timeout: float = 15) -> KazooClient:
    kw: dict[str, Any] = {}
    if cert is not None:
        kw = {"certfile": str(pki / f"{cert}.pem"), "keyfile": str(pki / f"{cert}.key")}
    zk = KazooClient(f"127.0.0.1:{port}", use_ssl=True, ca=str(pki / ca), verify_certs=True,
                     connection_retry=KazooRetry(max_tries=2, delay=0.1), **kw)
    zk.start(timeout=timeout)
    return zk


def test_kazoo_over_tls_checks_the_server(pki: Path, secure_server: Any) -> None:
    server, port = secure_server
    zk = _kazoo(pki, port, cert=None)
    try:
        zk.create("/tls-kazoo", b"secret")
        assert zk.get("/tls-kazoo")[0] == b"secret"
    finally:
        stop_kazoo(zk)
    plain = kazoo_client(server.hosts)  # the plain port serves on, next to the secure one
    try:
        assert plain.get("/tls-kazoo")[0] == b"secret"
    finally:
        stop_kazoo(plain)
    with pytest.raises(Exception, match="time-out|timeout|Timeout"):
        bad = _kazoo(pki, port, cert=None, ca="rogue.pem", timeout=3)  # we don't trust it
        stop_kazoo(bad)


def test_client_certificate_is_an_x509_identity(pki: Path, secure_server: Any) -> None:
    server, port = secure_server
    owner = _kazoo(pki, port, cert="client")
    other = _kazoo(pki, port, cert="other")
    anonymous = _kazoo(pki, port, cert=None)  # clientAuth=want: no certificate is fine
    plain = kazoo_client(server.hosts)
    try:
        owner.create("/mine", b"x", acl=[ACL(31, Id("auth", ""))])
        acl, _ = owner.get_acls("/mine")
        assert [(a.id.scheme, a.id.id) for a in acl] == [("x509", CLIENT_DN)]
        assert owner.get("/mine")[0] == b"x"
        for stranger in (other, anonymous, plain):
            with pytest.raises(NoAuthError):
                stranger.get("/mine")
        # an explicit x509 ACL for the other certificate
        owner.set_acls("/mine", [ACL(31, Id("x509", CLIENT_DN)), ACL(1, Id("x509", "CN=other"))])
        assert other.get("/mine")[0] == b"x"
        with pytest.raises(NoAuthError):
            other.set("/mine", b"y")
        with pytest.raises(InvalidACLError):
            owner.create("/bad-dn", b"", acl=[ACL(31, Id("x509", "not a dn"))])
        with pytest.raises(InvalidACLError):  # auth ACL with no authenticated identity
            anonymous.create("/nobody", b"", acl=[ACL(31, Id("auth", ""))])
    finally:
        for zk in (owner, other, anonymous, plain):
            stop_kazoo(zk)


async def test_own_client_over_tls(pki: Path, secure_server: Any) -> None:
    _, port = secure_server
    async with client.connect(f"127.0.0.1:{port}", ssl_context=_client_ctx(pki)) as zk:
        ids = {(i.scheme, i.id) for i in await zk.whoami()}
        assert ("x509", CLIENT_DN) in ids and ("ip", "127.0.0.1") in ids
        await zk.create("/own-tls", b"1")
        data, _ = await zk.get("/own-tls")
        assert data == b"1"


def test_four_letter_words_over_tls(pki: Path, secure_server: Any) -> None:
    _, port = secure_server
    ctx = _client_ctx(pki, None)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"ruok")
            assert s.recv(100) == b"imok"


def test_client_auth_need(pki: Path, tmp_path: Path) -> None:
    server, port = _server(tmp_path / "need", pki, "need")
    with server:
        zk = _kazoo(pki, port, cert="client")
        try:
            assert zk.exists("/") is not None
        finally:
            stop_kazoo(zk)
        for cert in (None, "rogue"):
            with pytest.raises(Exception, match="time-out|timeout|Timeout"):
                bad = _kazoo(pki, port, cert=cert, timeout=3)
                stop_kazoo(bad)
        mntr = four_letter("127.0.0.1", server.port, "mntr")
        failed = [ln for ln in mntr.splitlines() if ln.startswith("zk_auth_failed_count")]
        assert failed and int(failed[0].split()[1]) >= 2  # unsuccessful TLS handshakes


# -- quorum TLS ------------------------------------------------------------------------------------


def test_ensemble_over_tls(pki: Path, tmp_path: Path) -> None:
    extra = ["sslQuorum=true",
             f"ssl.quorum.keyStore.location={pki / 'server.jks'}",
             f"ssl.quorum.keyStore.password={PASSWORD}",
             f"ssl.quorum.trustStore.location={pki / 'ca.pem'}"]
    base = free_port_base(3)
    with ZkServerEnsemble(tmp_path / "ens", base, n=3, extra=extra) as ens:
        ports = ens.client_ports
        a = kazoo_client(f"127.0.0.1:{ports[0]}")
        b = kazoo_client(f"127.0.0.1:{ports[2]}")
        try:
            a.create("/over-quorum-tls", b"replicated")
            b.sync("/over-quorum-tls")
            assert b.get("/over-quorum-tls")[0] == b"replicated"
        finally:
            stop_kazoo(a)
            stop_kazoo(b)
        # The quorum port speaks TLS: a handshake with the CA and a member's certificate works.
        ctx = _client_ctx(pki, "server")
        with socket.create_connection(("127.0.0.1", ens.quorum_port(1)), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                assert s.version() in ("TLSv1.2", "TLSv1.3")
