"""Members pick up rotated quorum key and trust stores without a restart
(`sslQuorumReloadCertFiles=true`, as ZooKeeper 3.9).

openssl makes two CAs and a member certificate from each. A 3-server ensemble starts on the
first pair; both files are then replaced by the second pair (the new CA alone in the trust
store), so an old-certificate connection can no longer work in either direction. Every running
member must soon show the new certificate on its quorum port, and a follower restarted after
the rotation must join again: it trusts only the new CA and shows only the new certificate, so
it can only connect to members that reloaded both stores.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path

from support import pki
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerEnsemble, free_port_base

from zkserver.config import parse_config
from zkserver.quorum import quorum_tls

WAIT = 20.0


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a rotation by rename


def _served_cn(port: int, bundle: Path, ca: Path) -> str | None:
    """The CN a member's quorum port shows a client holding `bundle` and trusting `ca`
    (None: no handshake)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(bundle))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
    except (OSError, ssl.SSLError):
        return None


def _wait_for_cn(port: int, bundle: Path, ca: Path, cn: str) -> None:
    deadline = time.monotonic() + WAIT
    seen = None
    while time.monotonic() < deadline:
        seen = _served_cn(port, bundle, ca)
        if seen == cn:
            return
        time.sleep(0.1)
    raise AssertionError(f"quorum port {port} still shows {seen!r} {WAIT}s after the rotation")


def test_members_pick_up_rotated_stores(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    for n in (1, 2):
        pki.make_ca(d, f"ca{n}", f"CA {n}")
    old, new = pki.signed(d, "old", ca="ca1"), pki.signed(d, "new", ca="ca2")
    key_store, trust_store = d / "member.pem", d / "trust.pem"
    key_store.write_bytes(old.read_bytes())
    trust_store.write_bytes((d / "ca1.pem").read_bytes())
    extra = ["sslQuorum=true", "sslQuorumReloadCertFiles=true",
             f"ssl.quorum.keyStore.location={key_store}",
             f"ssl.quorum.trustStore.location={trust_store}"]
    with ZkServerEnsemble(tmp_path / "ens", free_port_base(3), n=3, extra=extra) as ens:
        for i in ens.ids:
            assert _served_cn(ens.quorum_port(i), old, d / "ca1.pem") == "old"
        _replace(trust_store, (d / "ca2.pem").read_bytes())
        _replace(key_store, new.read_bytes())
        for i in ens.ids:
            _wait_for_cn(ens.quorum_port(i), new, d / "ca2.pem", "new")
        follower = next(i for i, mode in ens.modes().items() if mode == "follower")
        ens.kill(follower)
        ens.restart(follower)
        ens.wait_serving(WAIT * 2)
        assert ens.modes()[follower] == "follower"
        others = [i for i in ens.ids if i != follower]
        writer = kazoo_client(f"127.0.0.1:{ens.port + others[0]}")
        reader = kazoo_client(f"127.0.0.1:{ens.port + follower}")
        try:
            writer.create("/after-rotation", b"new certificates")
            reader.sync("/after-rotation")
            assert reader.get("/after-rotation")[0] == b"new certificates"
        finally:
            stop_kazoo(writer)
            stop_kazoo(reader)
        logs = "".join(ens.nodes[i].log_path.read_text() for i in others)
        assert "TLS stores changed" in logs


def test_reload_only_when_asked(tmp_path: Path) -> None:
    base = ("server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n"
            f"dataDir={tmp_path}\nclientPort=2181\ninitLimit=5\nsyncLimit=2\nsslQuorum=true\n"
            "ssl.quorum.keyStore.location=/k.pem\nssl.quorum.trustStore.location=/t.pem\n")
    plain = parse_config(base, server_id=1)
    assert not plain.ssl_quorum_reload_cert_files
    assert quorum_tls.store_files(plain) is None
    asked = parse_config(base + "sslQuorumReloadCertFiles=true\n", server_id=1)
    files = quorum_tls.store_files(asked)
    assert files is not None and files.paths == ["/k.pem", "/t.pem"]
