"""TLS to a `secureClientPort`, against the real ZooKeeper (zkserver has no TLS yet).

ZooKeeper serves TLS through its Netty connection factory; 3.8 reads PEM key and trust stores,
so a self-signed certificate made with openssl is all the set-up it takes.
"""

from __future__ import annotations

import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import realzk
from support.realzk import RealZooKeeper, free_port

from zkserver import client

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tls_zk(tmp_path_factory: Any) -> Iterator[tuple[RealZooKeeper, int, Path]]:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper)")
    base = tmp_path_factory.mktemp("tls")
    key, cert = base / "key.pem", base / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    (base / "server.pem").write_text(key.read_text() + cert.read_text())
    secure_port = free_port()
    extra = ["serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
             f"secureClientPort={secure_port}",
             f"ssl.keyStore.location={base / 'server.pem'}", "ssl.keyStore.type=PEM",
             f"ssl.trustStore.location={cert}", "ssl.trustStore.type=PEM",
             "ssl.clientAuth=none"]
    with RealZooKeeper(base / "zk", free_port(), extra=extra) as zk:
        yield zk, secure_port, cert


async def test_tls_session(tls_zk: tuple[RealZooKeeper, int, Path]) -> None:
    _, port, cert = tls_zk
    ctx = ssl.create_default_context(cafile=str(cert))
    async with client.connect(f"127.0.0.1:{port}", ssl_context=ctx) as zk:
        assert zk.state == client.State.CONNECTED
        path = f"/over-tls-{uuid.uuid4().hex[:8]}"  # the server is shared by both backends
        await zk.create(path, b"secret")
        data, stat, watch = await zk.get(path, watch=True)
        assert data == b"secret"
        await zk.set(path, b"changed")
        assert (await watch).type == client.EventType.NODE_DATA_CHANGED


async def test_tls_refuses_an_untrusted_server(tls_zk: tuple[RealZooKeeper, int, Path]) -> None:
    _, port, _ = tls_zk
    ctx = ssl.create_default_context()  # the system's CAs: our self-signed cert is not there
    with pytest.raises(client.ConnectionLossError):
        async with client.connect(f"127.0.0.1:{port}", ssl_context=ctx, connect_timeout=2):
            pass
