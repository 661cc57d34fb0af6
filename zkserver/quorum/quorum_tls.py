"""TLS between ensemble members: the contexts of `sslQuorum=true`, and their reload.

The contexts come from the `ssl.quorum.*` keys (zkserver/server/tls.py). With
`sslQuorumReloadCertFiles=true`, as in ZooKeeper 3.9 (QuorumPeerConfig turns it into the quorum
X509Util's file watching), a change to the quorum key or trust store file rebuilds both
contexts, and the election and quorum links use them for every connection made afterwards,
inbound or outbound; established connections keep the certificates they were made with, as
ZooKeeper's do. A store that fails to load keeps the previous contexts (tls_reload.watch).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from zkserver.quorum.transport import Links, QuorumTLS
from zkserver.server import tls, tls_reload


def build(config: Any) -> QuorumTLS | None:
    """The members' TLS from the config; None without `sslQuorum=true`."""
    if not config.ssl_quorum:
        return None
    return QuorumTLS(tls.server_context(config.ssl, tls.QUORUM_PREFIX),
                     tls.client_context(config.ssl, tls.QUORUM_PREFIX),
                     tls.hostname_verification(config.ssl, tls.QUORUM_PREFIX))


def store_files(config: Any) -> tls_reload.StoreFiles | None:
    """The quorum's key and trust store files, if `sslQuorumReloadCertFiles=true` asks to
    watch them."""
    if not (config.ssl_quorum and config.ssl_quorum_reload_cert_files):
        return None
    paths = [config.ssl.get(tls.QUORUM_PREFIX + key) for key in
             ("keyStore.location", "trustStore.location")]
    return tls_reload.StoreFiles(p.strip() for p in paths if p and p.strip())


async def watch(config: Any, files: tls_reload.StoreFiles, links: Iterable[Links]) -> None:
    """Rebuild the quorum's contexts when a store file changes, for `links`; forever."""
    links = list(links)

    def rebuild() -> None:
        fresh = build(config)
        assert fresh is not None
        for link in links:
            link.use_tls(fresh)

    await tls_reload.watch(files, rebuild)
