"""HTTPS on the AdminServer port, from ZooKeeper's `admin.*` keys.

    admin.forceHttps=true          HTTPS only
    admin.portUnification=true     HTTP and HTTPS on the same port (forceHttps wins)
    admin.needClientAuth=true      a client certificate is required (ZooKeeper: needed for
                                   the `x509` admin auth scheme)
    admin.wantClientAuth=true      zkserver's own: a certificate is asked for but optional, so
                                   browsers with and without one can use the console

As ZooKeeper's JettyAdminServer, the key and trust stores are the quorum's: `ssl.quorum.
keyStore.*` and `ssl.quorum.trustStore.*` (PEM, PKCS12 or JKS, read by `tls.py`). A port
with unification tells the protocols apart by the first byte a client sends: a TLS record
starts with 0x16 (handshake), an HTTP request with a letter.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import attrs

from zkserver.server import tls

TLS_HANDSHAKE_RECORD = 0x16
STS = "max-age=86400; includeSubDomains"  # Jetty's SecureRequestCustomizer as ZooKeeper sets it


@attrs.frozen
class AdminTLS:
    context: ssl.SSLContext
    unified: bool  # plain HTTP is answered too


def _flag(props: Mapping[str, str], key: str) -> bool:
    value = props.get(f"zookeeper.{key}", props.get(key, ""))
    return value.strip().lower() == "true"


def from_config(props: Mapping[str, str], ssl_props: Mapping[str, str]) -> AdminTLS | None:
    """None for plain HTTP; raises TLSConfigError (an OSError) naming a bad key."""
    force = _flag(props, "admin.forceHttps")
    unified = _flag(props, "admin.portUnification")
    if not (force or unified):
        return None
    ctx = tls.server_context(ssl_props, tls.QUORUM_PREFIX)
    if _flag(props, "admin.needClientAuth"):
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif _flag(props, "admin.wantClientAuth"):
        ctx.verify_mode = ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return AdminTLS(ctx, unified=not force)
