"""Quorum SASL (`quorum.auth.*`) between zkserver members, as real processes on loopback.

Three members with `quorum.auth.enableSasl`, `learnerRequireSasl` and `serverRequireSasl` and a
JAAS file with `QuorumServer` (DigestLoginModule users) and `QuorumLearner` (the member's own
user and password) form an ensemble and serve. One member restarted with a wrong password is
refused by the others (they log it), cannot join, and the other two keep serving; given the
right password again it joins. Hostile connections to a member's quorum port -- an exchange
that stops half-way, an oversized frame, garbage -- are closed without disturbing anyone.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from support import kdc as kdcmod
from support.kdc import LocalKdc
from support.process import ZkServerEnsemble, free_port_base
from support.waiting import wait_for

from zkserver.quorum.quorum_auth import AUTH_TIMEOUT

SASL = ["quorum.auth.enableSasl=true", "quorum.auth.learnerRequireSasl=true",
        "quorum.auth.serverRequireSasl=true"]


def _jaas(path: Path, password: str) -> Path:
    path.write_text(f"""\
QuorumServer {{
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_zkmember="{password}";
}};
QuorumLearner {{
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="zkmember"
    password="{password}";
}};
""")
    return path


def _flags(jaas: Path) -> dict[str, str]:
    return {"SERVER_JVMFLAGS": f"-Djava.security.auth.login.config={jaas}", "JVMFLAGS": ""}


def _kazoo(hosts: str) -> KazooClient:
    k = KazooClient(hosts, timeout=4, connection_retry={"max_tries": -1, "delay": 0.05,
                                                         "max_delay": 0.2})
    k.start(timeout=15)
    return k


def _log(ens: ZkServerEnsemble, i: int) -> str:
    return ens.nodes[i].log_path.read_text(errors="replace")


@pytest.fixture
def ensemble(tmp_path: Path):
    good = _jaas(tmp_path / "jaas.conf", "member-secret")
    with ZkServerEnsemble(tmp_path, free_port_base(3), n=3, extra=SASL,
                          env=_flags(good)) as ens:
        yield ens, good


def test_a_member_with_wrong_credentials_is_refused_and_the_rest_serve(ensemble, tmp_path):
    ens, good = ensemble
    zk = _kazoo(",".join(f"127.0.0.1:{p}" for p in ens.client_ports[:2]))
    try:
        zk.create("/before", b"1")
        for i in ens.ids:
            assert "quorum SASL: DIGEST-MD5" in _log(ens, i)
        ens.kill(3)
        ens.nodes[3].env.update(_flags(_jaas(tmp_path / "bad.conf", "not-the-secret")))
        ens.restart(3)
        wait_for(lambda: any("refused the member at 127.0.0.1: quorum SASL authentication "
                             "failed" in _log(ens, i) for i in (1, 2)), timeout=30,
                 what="a refusal in the logs of servers 1 and 2")
        wait_for(lambda: "quorum SASL authentication to server" in _log(ens, 3), timeout=30,
                 what="server 3 logging its failure")
        for n in range(20):  # the two good members still form the quorum
            zk.create(f"/during-{n}", b"x")
        assert ens.modes()[3] not in ("leader", "follower")
        log = "".join(_log(ens, i) for i in ens.ids)
        assert "member-secret" not in log and "not-the-secret" not in log
        ens.kill(3)
        ens.nodes[3].env.update(_flags(good))
        ens.restart(3)
        ens.wait_serving(timeout=60)
        three = _kazoo(f"127.0.0.1:{ens.client_ports[2]}")
        three.sync("/")
        assert three.exists("/during-19") is not None
        three.stop()
    finally:
        zk.stop()


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def test_hostile_connections_to_a_quorum_port_disturb_nobody(ensemble):
    ens, _ = ensemble
    zk = _kazoo(ens.hosts)
    port = ens.quorum_port(ens.leader() or 1)
    socks = []
    try:
        # An exchange that stops after its first frame, a half frame, garbage, and an
        # oversized frame.
        for payload in (_frame(b"ZKQA\0"), b"\0\0\0\x10ZKQA", _frame(b"ZKQA\0" + b"\xff" * 50),
                        struct.pack(">I", 1 << 24) + b"ZKQA\0"):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(payload)
            socks.append(s)
        for n in range(20):  # writes go through the leader meanwhile
            zk.create(f"/hostile-{n}", b"x")
        start = time.monotonic()
        for s in socks:  # each is closed by the member (at the latest after AUTH_TIMEOUT)
            s.settimeout(AUTH_TIMEOUT + 10)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
        assert time.monotonic() - start < AUTH_TIMEOUT + 10
        assert zk.exists("/hostile-19") is not None
        ens.wait_serving(timeout=10)
    finally:
        for s in socks:
            s.close()
        zk.stop()


def test_a_kerberos_ensemble_forms_and_refuses_a_member_without_the_key(tmp_path: Path):
    """GSSAPI between members: each logs in from a keytab of `zkquorum/localhost` (JAAS
    `Krb5LoginModule` in both sections) and asks for that service principal
    (`quorum.auth.kerberos.servicePrincipal`). A member whose QuorumServer keytab holds a stale
    key (the principal's key changed since) can't read the others' tickets: the links they
    open to it are refused, it stays out, and the others serve. (A stale QuorumLearner keytab
    stops the member at start-up, as Java's Krb5LoginModule fails its login.)"""
    if not kdcmod.available():
        pytest.fail("MIT Kerberos is not installed; run tests/run.sh, which installs krb5-kdc, "
                    "krb5-admin-server and krb5-user")
    with LocalKdc(tmp_path / "kdc") as kdc:
        keytab = kdc.add_principal("zkquorum/localhost")
        stale = tmp_path / "stale.keytab"
        stale.write_bytes(keytab.read_bytes())
        keytab.unlink()
        kdc.add_principal("zkquorum/localhost")  # a new key: the copy above is stale now

        def jaas(path: Path, server_tab: Path, learner_tab: Path = keytab) -> Path:
            def module(tab: Path) -> str:
                return (f'    com.sun.security.auth.module.Krb5LoginModule required\n'
                        f'    useKeyTab=true keyTab="{tab}" storeKey=true useTicketCache=false\n'
                        f'    principal="zkquorum/localhost@{kdc.realm}";\n')
            path.write_text(f"QuorumServer {{\n{module(server_tab)}}};\n"
                            f"QuorumLearner {{\n{module(learner_tab)}}};\n")
            return path

        env = {**_flags(jaas(tmp_path / "jaas.conf", keytab)), **kdc.env,
               "SERVER_JVMFLAGS": f"-Djava.security.auth.login.config={tmp_path / 'jaas.conf'}"}
        extra = [*SASL, "quorum.auth.kerberos.servicePrincipal=zkquorum/localhost"]
        with ZkServerEnsemble(tmp_path / "ens", free_port_base(3), n=3, extra=extra,
                              env=env) as ens:
            zk = _kazoo(ens.hosts)
            try:
                zk.create("/krb", b"1")
                for i in ens.ids:
                    assert "quorum SASL: GSSAPI" in _log(ens, i)
                    assert "authenticated as zkquorum/localhost@EXAMPLE.COM" in _log(ens, i)
                ens.kill(3)
                ens.nodes[3].env["SERVER_JVMFLAGS"] = (
                    f"-Djava.security.auth.login.config={jaas(tmp_path / 'stale.conf', stale)}")
                ens.restart(3)
                # It can't read the others' tickets, so it refuses them, and they it.
                wait_for(lambda: "refused the member at 127.0.0.1" in _log(ens, 3), timeout=30,
                         what="server 3 refusing the others")
                wait_for(lambda: any("quorum SASL authentication to server 3" in _log(ens, i)
                                     for i in (1, 2)), timeout=30,
                         what="servers 1 and 2 failing to authenticate to server 3")
                for n in range(10):
                    zk.create(f"/krb-{n}", b"x")
                assert ens.modes()[3] not in ("leader", "follower")
            finally:
                zk.stop()
