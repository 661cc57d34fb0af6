"""`ssl.protocol`, `ssl.enabledProtocols` and `ssl.ciphersuites` as Apache ZooKeeper 3.9 honours
them, TLS 1.3 included, on the secure client port.

Each configuration runs on a zkserver process and on Apache ZooKeeper (Netty, the same zoo.cfg
lines, the same openssl PEM key store); `openssl s_client` then offers one protocol, or one
cipher suite, at a time. What each server accepts (protocol and suite agreed) or refuses must be
the same, and a few outcomes are also asserted outright.
"""

from __future__ import annotations

import ssl
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trio
import trio.testing
from support import pki, realzk
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port

from zkserver.server import tls

# (zoo.cfg lines, without the key store ones) per configuration
CONFIGS = {
    "default": [],
    "protocol-1.2": ["ssl.protocol=TLSv1.2"],
    "protocol-1.3": ["ssl.protocol=TLSv1.3"],
    "only-1.3-two-suites": ["ssl.enabledProtocols=TLSv1.3",
                            "ssl.ciphersuites=TLS_AES_256_GCM_SHA384,"
                            "TLS_CHACHA20_POLY1305_SHA256"],
    "1.2-suites-only": ["ssl.protocol=TLSv1.2",
                        "ssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,"
                        "TLS_RSA_WITH_AES_128_GCM_SHA256"],
}
# (s_client options) per probe: one protocol, or one suite under one protocol
PROBES = {
    "tls1.3": ["-tls1_3"],
    "tls1.2": ["-tls1_2"],
    "tls1.1": ["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
    "1.3 AES128": ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
    "1.3 CHACHA20": ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
    "1.2 ECDHE-AES256-GCM": ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"],
    "1.2 ECDHE-AES128-SHA": ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA"],
    "1.2 ECDHE-CHACHA20": ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"],
    "1.2 RSA-AES128-GCM": ["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
    "1.2 DHE-AES128-GCM": ["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"],
}


def probe(port: int, options: list[str]) -> str:
    """'<protocol> <suite>' that s_client agreed with the server, or 'refused'."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief",
                          *options], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=20)
    fields = dict(line.split(": ", 1) for line in out.stderr.splitlines() if ": " in line)
    if out.returncode != 0 or "Ciphersuite" not in fields:
        return "refused"
    return f"{fields['Protocol version']} {fields['Ciphersuite']}"


def outcomes(port: int) -> dict[str, str]:
    return {name: probe(port, options) for name, options in PROBES.items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    d = tmp_path_factory.mktemp("pki")
    pki.make_ca(d)
    return [f"ssl.keyStore.location={pki.signed(d, 'server')}",
            f"ssl.trustStore.location={d / 'ca.pem'}", "ssl.clientAuth=none"]


def _zkserver_outcomes(base: Path, lines: list[str]) -> dict[str, str]:
    port = free_port()
    with ZkServerProcess(base, free_port(), extra=[f"secureClientPort={port}", *lines]):
        return outcomes(port)


def _zookeeper_outcomes(base: Path, lines: list[str]) -> dict[str, str]:
    port = free_port()
    extra = ["serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
             f"secureClientPort={port}", *lines]
    with RealZooKeeper(base, free_port(), extra=extra, heap="256m"):
        return outcomes(port)


def test_what_zkserver_accepts(store: list[str], tmp_path: Path) -> None:
    """The rules, asserted on zkserver alone (and quick)."""
    with ThreadPoolExecutor(len(CONFIGS)) as pool:
        seen = dict(zip(CONFIGS, pool.map(
            lambda name: _zkserver_outcomes(tmp_path / name, [*store, *CONFIGS[name]]),
            CONFIGS), strict=True))
    default = seen["default"]  # TLSv1.3 alone, as ZooKeeper 3.9.5 on Java 17
    assert default["tls1.3"] == "TLSv1.3 TLS_AES_256_GCM_SHA384"
    assert default["1.3 AES128"] == "TLSv1.3 TLS_AES_128_GCM_SHA256"
    assert default["tls1.2"] == default["tls1.1"] == "refused"
    assert seen["protocol-1.3"] == default
    tls12 = seen["protocol-1.2"]
    assert tls12["tls1.3"] == "refused"
    assert tls12["tls1.2"] == "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256"  # ZooKeeper's first suite
    assert tls12["1.2 ECDHE-AES128-SHA"] == "TLSv1.2 ECDHE-RSA-AES128-SHA"
    # Not among ZooKeeper's default suites: plain RSA and DHE key exchange, ChaCha20 in 1.2
    assert tls12["1.2 RSA-AES128-GCM"] == tls12["1.2 DHE-AES128-GCM"] == "refused"
    assert tls12["1.2 ECDHE-CHACHA20"] == "refused"
    narrow = seen["only-1.3-two-suites"]
    assert narrow["tls1.2"] == "refused"
    assert narrow["1.3 AES128"] == "refused"
    assert narrow["1.3 CHACHA20"] == "TLSv1.3 TLS_CHACHA20_POLY1305_SHA256"
    assert narrow["tls1.3"] == "TLSv1.3 TLS_AES_256_GCM_SHA384"
    listed = seen["1.2-suites-only"]
    assert listed["1.2 RSA-AES128-GCM"] == "TLSv1.2 AES128-GCM-SHA256"
    assert listed["1.2 ECDHE-AES128-SHA"] == "refused"


def test_tls13_alone_without_a_tls13_suite_is_a_config_error(store: list[str]) -> None:
    """ZooKeeper starts and then fails every handshake; zkserver says why at start-up."""
    props = dict(line.split("=", 1) for line in store)
    props["ssl.ciphersuites"] = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
    with pytest.raises(tls.TLSConfigError, match="no TLS 1.3 suite"):
        tls.server_context(props)
    props["ssl.enabledProtocols"] = "TLSv1.2,TLSv1.3"
    assert tls.server_context(props).maximum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.skipif(not realzk.available(), reason="Apache ZooKeeper or java is missing")
def test_same_answers_as_zookeeper(store: list[str], tmp_path: Path) -> None:
    def both(name: str) -> tuple[dict[str, str], dict[str, str]]:
        lines = [*store, *CONFIGS[name]]
        return (_zkserver_outcomes(tmp_path / f"ours-{name}", lines),
                _zookeeper_outcomes(tmp_path / f"zk-{name}", lines))

    with ThreadPoolExecutor(len(CONFIGS)) as pool:
        results = dict(zip(CONFIGS, pool.map(both, CONFIGS), strict=True))
    differences = {(name, probe_name): (ours[probe_name], theirs[probe_name])
                   for name, (ours, theirs) in results.items()
                   for probe_name in PROBES if ours[probe_name] != theirs[probe_name]}
    assert differences == {}, "zkserver, ZooKeeper differ"


async def _member_handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
                            ) -> tuple[str, str] | None:
    """(version, suite) two members' contexts agree on over a memory stream, or None."""
    a, b = trio.testing.memory_stream_pair()
    server = trio.SSLStream(a, server_ctx, server_side=True)
    client = trio.SSLStream(b, client_ctx, server_hostname="127.0.0.1")
    refused = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.do_handshake)
            nursery.start_soon(client.do_handshake)
    except* trio.BrokenResourceError:
        refused = True
    return None if refused else (client.version(), client.cipher()[0])


async def test_quorum_keys_narrow_member_links(store: list[str]) -> None:
    """The same rules under `ssl.quorum.*`, between two members' own contexts."""
    props = {"ssl.quorum." + k.removeprefix("ssl."): v
             for k, v in (line.split("=", 1) for line in store)}
    props["ssl.quorum.clientAuth"] = "need"
    props["ssl.quorum.hostnameVerification"] = "false"

    def contexts(**keys: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        both = {**props, **{f"ssl.quorum.{k}": v for k, v in keys.items()}}
        return (tls.server_context(both, tls.QUORUM_PREFIX),
                tls.client_context(both, tls.QUORUM_PREFIX))

    server, client = contexts()
    assert await _member_handshake(server, client) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    server, client = contexts(ciphersuites="TLS_CHACHA20_POLY1305_SHA256")
    assert await _member_handshake(server, client) == ("TLSv1.3",
                                                       "TLS_CHACHA20_POLY1305_SHA256")
    _, other = contexts(ciphersuites="TLS_AES_128_GCM_SHA256")
    assert await _member_handshake(server, other) is None  # no suite in common
    server, client = contexts(protocol="TLSv1.2")
    assert await _member_handshake(server, client) == ("TLSv1.2",
                                                       "ECDHE-RSA-AES128-GCM-SHA256")
    _, newer = contexts()
    assert await _member_handshake(server, newer) is None  # TLS 1.2 against TLS 1.3 alone
