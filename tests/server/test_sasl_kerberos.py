"""Kerberos (SASL GSSAPI) end to end: a local MIT KDC, zkserver and Apache ZooKeeper configured
alike, zkCli.sh and our Trio client.

The test starts a KDC (tests/support/kdc.py) with a service principal
`zookeeper/localhost@EXAMPLE.COM` exported to a keytab and a user `alice` whose ticket cache
`kinit` fills. Both servers read one JAAS file whose `Server` section is a `Krb5LoginModule`
with that keytab and principal, and one krb5.conf, through the same JVM flags
(`-Djava.security.auth.login.config=`, `-Djava.security.krb5.conf=`), and both have
`kerberos.removeRealmFromPrincipal=true`, so alice's identity is `sasl:alice`. zkCli.sh logs in
from the ticket cache (`Client` section, `useTicketCache=true`) and runs one script against
each server; the outputs must be equal.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from support import kdc as kdcmod
from support import realzk
from support import wire as W
from support.clis import ZkCli
from support.kdc import LocalKdc
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port
from support.wire import Closed, RawConnection

from zkserver import client
from zkserver.auth.gss import GssapiClient
from zkserver.client import errors as E
from zkserver.proto import records as R

SERVICE = "zookeeper/localhost@EXAMPLE.COM"
AUTHFAILED = -115
CFG = ["authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
       "kerberos.removeRealmFromPrincipal=true"]


@pytest.fixture(scope="module")
def realm(tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    if not kdcmod.available():
        pytest.fail("MIT Kerberos is not installed; run tests/run.sh, which installs krb5-kdc, "
                    "krb5-admin-server and krb5-user")
    base = tmp_path_factory.mktemp("kdc")
    with LocalKdc(base / "kdc") as kdc:
        keytab = kdc.add_principal("zookeeper/localhost")
        kdc.add_principal("alice", password="alice-pw")
        kdc.add_principal("other/localhost")
        ccache = kdc.kinit("alice", password="alice-pw")
        bob_keytab = kdc.add_principal("bob")
        jaas = base / "jaas.conf"
        jaas.write_text(f"""\
Server {{
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="{keytab}"
    storeKey=true
    useTicketCache=false
    principal="{SERVICE}";
}};
Client {{
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=false
    useTicketCache=true
    ticketCache="{ccache}"
    principal="alice@EXAMPLE.COM"
    doNotPrompt=true;
}};
KeytabClient {{
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="{bob_keytab}"
    storeKey=true
    useTicketCache=false
    principal="bob@EXAMPLE.COM";
}};
""")
        yield {"kdc": kdc, "jaas": jaas, "ccache": ccache, "base": base}


@pytest.fixture(scope="module")
def servers(realm: dict[str, Any]) -> Iterator[dict[str, str]]:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed; run tests/run.sh, which installs it")
    kdc: LocalKdc = realm["kdc"]
    flags = f"-Djava.security.auth.login.config={realm['jaas']} {kdc.jvm_flag}"
    base: Path = realm["base"]
    # Only the JVM flags, as zkServer.sh users set them: zkserver finds krb5.conf through
    # -Djava.security.krb5.conf there. Its replay cache is the realm's (see LocalKdc.env).
    ours = ZkServerProcess(base / "zkserver", free_port(), extra=CFG,
                           env={"SERVER_JVMFLAGS": flags,
                                "KRB5RCACHEDIR": kdc.env["KRB5RCACHEDIR"]})
    theirs = RealZooKeeper(base / "realzk", free_port(), extra=CFG,
                           env={"JDK_JAVA_OPTIONS": flags})
    with ours, theirs:
        yield {"zkserver": f"localhost:{ours.port}", "zookeeper": f"localhost:{theirs.port}"}


def _zkcli_script(hosts: str, realm: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                  path: str) -> list[str]:
    kdc: LocalKdc = realm["kdc"]
    base_flags = f"-Xmx128m -XX:TieredStopAtLevel=1 {kdc.jvm_flag}"
    out: list[str] = []
    with monkeypatch.context() as m:
        m.setenv("CLIENT_JVMFLAGS",
                 f"{base_flags} -Djava.security.auth.login.config={realm['jaas']}")
        with ZkCli(hosts) as cli:
            cli.wait_for(r"WatchedEvent state:SaslAuthenticated type:None path:null", timeout=60)
            for command in (f"create {path} secret sasl:alice:cdrwa", f"getAcl {path}",
                            f"get {path}", "whoami", f"create {path}/child x"):
                out += [f"kerberos> {command}", *cli.run(command)]
            cli.close()
    with monkeypatch.context() as m:
        m.setenv("CLIENT_JVMFLAGS", base_flags)
        with ZkCli(hosts) as cli:
            for command in (f"get {path}", f"ls {path}", "whoami"):
                out += [f"anonymous> {command}", *cli.run(command)]
            cli.close()
    return [line for line in out if not line.startswith("ip: ")]


def test_zkcli_kerberos_same_as_zookeeper(servers: dict[str, str], realm: dict[str, Any],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _zkcli_script(servers["zkserver"], realm, monkeypatch, "/zkcli-krb")
    theirs = _zkcli_script(servers["zookeeper"], realm, monkeypatch, "/zkcli-krb")
    assert ours == theirs
    assert "sasl: alice" in ours
    assert "Insufficient permission : /zkcli-krb" in ours


def _zkcli_keytab_script(hosts: str, realm: dict[str, Any], monkeypatch: pytest.MonkeyPatch
                         ) -> list[str]:
    """zkCli.sh logging in from a keytab (`zookeeper.sasl.clientconfig` picks the section)."""
    kdc: LocalKdc = realm["kdc"]
    out: list[str] = []
    with monkeypatch.context() as m:
        m.setenv("CLIENT_JVMFLAGS",
                 f"-Xmx128m -XX:TieredStopAtLevel=1 {kdc.jvm_flag} "
                 f"-Djava.security.auth.login.config={realm['jaas']} "
                 "-Dzookeeper.sasl.clientconfig=KeytabClient")
        with ZkCli(hosts) as cli:
            cli.wait_for(r"WatchedEvent state:SaslAuthenticated type:None path:null", timeout=60)
            for command in ("whoami", "get /zkcli-krb"):
                out += [f"keytab> {command}", *cli.run(command)]
            cli.close()
    return [line for line in out if not line.startswith("ip: ")]


def test_zkcli_kerberos_keytab_same_as_zookeeper(servers: dict[str, str],
                                                 realm: dict[str, Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _zkcli_keytab_script(servers["zkserver"], realm, monkeypatch)
    assert ours == _zkcli_keytab_script(servers["zookeeper"], realm, monkeypatch)
    assert "sasl: bob" in ours, ours


async def _client_script(hosts: str, path: str) -> list[str]:
    seen: list[str] = []
    acl = [R.ACL(31, R.Id("sasl", "alice"))]
    async with client.connect(hosts, sasl={"mechanism": "GSSAPI"}) as zk:
        seen.append(f"whoami: {[(i.scheme, i.id) for i in await zk.whoami()]}")
        await zk.create(path, b"alice's", acl=acl)
        seen.append(f"get: {(await zk.get(path)).data!r}")
    async with client.connect(hosts) as anonymous:
        try:
            await anonymous.get(path)
        except E.NoAuthError:
            seen.append("anonymous get: NoAuthError")
    return seen


def test_trio_client_kerberos_same_as_zookeeper(servers: dict[str, str], realm: dict[str, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    kdc: LocalKdc = realm["kdc"]
    monkeypatch.setenv("KRB5_CONFIG", kdc.env["KRB5_CONFIG"])
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{realm['ccache']}")
    ours = trio.run(_client_script, servers["zkserver"], "/client-krb")
    theirs = trio.run(_client_script, servers["zookeeper"], "/client-krb")
    assert ours == theirs
    assert ours == ["whoami: [('sasl', 'alice'), ('ip', '127.0.0.1')]", "get: b\"alice's\"",
                    "anonymous get: NoAuthError"]


async def _outcome(hosts: str, **sasl: str) -> str:
    try:
        async with client.connect(hosts, sasl={"mechanism": "GSSAPI", **sasl}) as zk:
            await zk.exists("/")
    except E.AuthFailedError:
        return "AuthFailedError"
    return "connected"


def test_a_ticket_for_another_service_is_refused_same_as_zookeeper(
        servers: dict[str, str], realm: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid ticket, but for `other/localhost`: the server can't read it and answers
    AUTHFAILED. A client with no ticket at all fails on its own side. Both end in AUTH_FAILED,
    and the server serves the next client."""
    kdc: LocalKdc = realm["kdc"]
    monkeypatch.setenv("KRB5_CONFIG", kdc.env["KRB5_CONFIG"])
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{realm['ccache']}")
    for hosts in servers.values():
        assert trio.run(partial(_outcome, hosts, service="other")) == "AuthFailedError"
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{realm['base'] / 'empty.ccache'}")
    assert trio.run(_outcome, servers["zkserver"]) == "AuthFailedError"
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{realm['ccache']}")
    for hosts in servers.values():
        assert trio.run(_outcome, hosts) == "connected"
    log = (realm["base"] / "zkserver" / "out.log").read_text()
    assert "failed to SASL authenticate: GSSAPI" in log


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


def test_bad_gssapi_tokens_disturb_nobody(servers: dict[str, str], realm: dict[str, Any],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Truncated, garbage and oversized GSSAPI tokens, and a replayed context token, each end
    their own connection with AUTHFAILED; exchanges that stop half-way just wait; a Kerberos
    client beside them is served all along."""
    port = int(servers["zkserver"].rsplit(":", 1)[1])
    kdc: LocalKdc = realm["kdc"]
    monkeypatch.setenv("KRB5_CONFIG", kdc.env["KRB5_CONFIG"])
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{realm['ccache']}")
    first = GssapiClient("zookeeper", "localhost").evaluate(None)
    assert first
    stalled = []
    for _ in range(10):  # a context token, and then never the rest
        conn = RawConnection("127.0.0.1", port)
        conn.handshake(timeout_ms=40000)
        token = GssapiClient("zookeeper", "localhost").evaluate(None)
        err, answer = _sasl(conn, 1, token or b"")
        assert err == 0 and answer
        stalled.append(conn)
    for name, token in {"truncated": first[:len(first) // 2], "garbage": os.urandom(300),
                        "oversized": first + b"\0" * 70000, "empty": b"",
                        "replayed": first}.items():
        conn = RawConnection("127.0.0.1", port)
        conn.handshake()
        if name == "replayed":  # the same AP-REQ on a second connection: a replay
            assert _sasl(conn, 1, token)[0] == 0
            conn.close()
            conn = RawConnection("127.0.0.1", port)
            conn.handshake()
        assert _sasl(conn, 1, token) == (AUTHFAILED, b""), name
        assert conn.wait_closed(5.0), name
    assert trio.run(_outcome, servers["zkserver"]) == "connected"
    for conn in stalled:
        assert conn.call(5, W.EXISTS, W.ustr("/") + b"\0")[2] == 0
        conn.close()
