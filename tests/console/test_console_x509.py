"""The console's x509 login: a client presenting a TLS client certificate over the AdminServer's
HTTPS logs in with the certificate's `x509` identity, and ACLs naming it apply to its pages.
Plain HTTP clients (no certificate, on the same unified port) get no such login.
"""

from __future__ import annotations

import http.client
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from consolekit import CONSOLE_KEYS, screenshot, tree
from kazoo.security import ACL, Id, make_digest_acl
from support import pki
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerProcess
from support.realzk import free_port
from support.waiting import wait_for

CLIENT_DN = "CN=console-user,O=Example"


@pytest.fixture(scope="module")
def secure_console(tmp_path_factory: Any) -> Iterator[tuple[ZkServerProcess, int, Path]]:
    d = tmp_path_factory.mktemp("consolepki")
    pki.make_ca(d, cn="Console CA")
    pki.certificate(d, "server", "/CN=localhost", "IP:127.0.0.1,DNS:localhost")
    pki.certificate(d, "user", "/O=Example/CN=console-user", "DNS:user")
    pki.bundle_of(d, "server")
    port = free_port()
    server = ZkServerProcess(tmp_path_factory.mktemp("x509console"), free_port(), extra=[
        *CONSOLE_KEYS, f"admin.serverPort={port}", "admin.portUnification=true",
        "admin.wantClientAuth=true", f"ssl.quorum.keyStore.location={d / 'server-bundle.pem'}",
        f"ssl.quorum.trustStore.location={d / 'ca.pem'}"])
    with server:
        zk = kazoo_client(server.hosts)
        try:
            zk.add_auth("digest", "admin:pw")
            zk.create("/certs-only", b"for the certificate's eyes",
                      acl=[ACL(1, Id("x509", CLIENT_DN)),
                           make_digest_acl("admin", "pw", all=True)])
        finally:
            stop_kazoo(zk)
        yield server, port, d


class Browser:
    """An HTTP(S) client holding the console's cookie, as a browser would."""

    def __init__(self, port: int, ctx: ssl.SSLContext | None) -> None:
        self.port = port
        self.ctx = ctx
        self.cookie = ""

    def request(self, method: str, target: str, fields: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], str]:
        if self.ctx is None:
            conn: http.client.HTTPConnection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=30)
        else:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30,
                                               context=self.ctx)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        body = None
        if fields is not None:
            body = urlencode(fields).encode()
            scheme = "http" if self.ctx is None else "https"
            headers.update({"Content-Type": "application/x-www-form-urlencoded",
                            "Origin": f"{scheme}://127.0.0.1:{self.port}",
                            "Host": f"127.0.0.1:{self.port}"})
        try:
            conn.request(method, target, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
        finally:
            conn.close()

    def login(self, fields: dict[str, str]) -> tuple[int, dict[str, str], str]:
        status, headers, page = self.request("POST", "/console/login", fields)
        if status == 303:
            self.cookie = headers["set-cookie"].split(";")[0]
        return status, headers, page


def _ctx(pki: Path, cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / "user.pem"), str(pki / "user.key"))
    return ctx


def _ready(port: int, pki: Path) -> None:
    def up() -> bool:
        try:
            return Browser(port, _ctx(pki, True)).request("GET", "/console/login")[0] == 200
        except OSError:
            return False
    wait_for(up, 30, "the console over HTTPS")


def test_certificate_login_sees_what_its_acl_allows(secure_console: Any) -> None:
    _, port, pki = secure_console
    _ready(port, pki)
    browser = Browser(port, _ctx(pki, True))
    status, _, page = browser.request("GET", "/console/login")
    assert status == 200 and f"x509:{CLIENT_DN}" in page and 'id="login-x509"' in page
    status, headers, _ = browser.login({"method": "x509", "next": tree("/certs-only")})
    assert status == 303
    cookie = headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, _, page = browser.request("GET", tree("/certs-only"))
    assert status == 200
    assert "for the certificate&#x27;s eyes" in page or "for the certificate's eyes" in page
    assert f"x509:{CLIENT_DN}" in page  # shown as who is logged in
    assert "not allowed by the node" not in page


def test_without_a_certificate_there_is_no_x509_login(secure_console: Any) -> None:
    _, port, pki = secure_console
    _ready(port, pki)
    for ctx in (_ctx(pki, False), None):  # HTTPS without a certificate; plain HTTP
        browser = Browser(port, ctx)
        status, _, page = browser.request("GET", "/console/login")
        assert status == 200 and 'id="login-x509"' not in page
        status, _, page = browser.login({"method": "x509"})
        assert status == 403 and "no client certificate" in page
        status, _, _ = browser.login({"user": "", "password": ""})  # anyone
        assert status == 303
        status, _, page = browser.request("GET", tree("/certs-only"))
        assert status == 200 and "not allowed by the node" in page
        assert re.search("for the certificate", page) is None


def test_chromium_logs_in_with_its_certificate(secure_console: Any, browser: Any) -> None:
    """Debian's Chromium, given the client certificate, logs in with it and reads the node."""
    _, port, pki = secure_console
    _ready(port, pki)
    origin = f"https://127.0.0.1:{port}"
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, ignore_https_errors=True,
        client_certificates=[{"origin": origin, "certPath": str(pki / "user.pem"),
                              "keyPath": str(pki / "user.key")}])
    context.set_default_timeout(20_000)
    try:
        pg = context.new_page()
        pg.goto(origin + "/console/login?" + urlencode({"next": tree("/certs-only")}))
        assert f"x509:{CLIENT_DN}" in pg.inner_text("#login-x509")
        screenshot(pg, "x509-login")
        pg.click("#login-x509 button")
        pg.wait_for_selector("#node-path")
        assert "for the certificate's eyes" in pg.content()
    finally:
        context.close()
