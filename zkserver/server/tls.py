"""TLS for the secure client port and between ensemble members, from ZooKeeper's `ssl.*` keys.

A zoo.cfg that sets up TLS for Apache ZooKeeper works here unchanged:

    secureClientPort=2281
    ssl.keyStore.location=/etc/zk/server.p12      # PEM, PKCS12 or JKS
    ssl.keyStore.password=secret
    ssl.trustStore.location=/etc/zk/ca.pem
    ssl.clientAuth=need                           # none / want / need (the default)

The quorum reads the same keys under `ssl.quorum.` when `sslQuorum=true`.

Key and trust stores are read the way ZooKeeper's X509Util reads them: the `.type` key wins,
else the file name decides (`.pem`, `.p12`/`.pfx`, `.jks`). PEM files hold the private key
(optionally encrypted with the store password) and the certificate chain; PKCS12 is read with
`cryptography`; JKS needs the optional `pyjks` package (`pip install zkserver[jks]`). BCFKS
(Bouncy Castle) stores cannot be read: convert them with keytool.

A client certificate (clientAuth want or need) gives the connection the identity
`x509:<subject DN>`, the DN written as Java's `X500Principal.getName()` writes it (RFC 2253:
the most specific part first, `CN=client,OU=ops,O=Example,C=US`), so `x509` ACLs set on
ZooKeeper carry over.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import ssl
import tempfile
from collections.abc import Iterator, Mapping

from zkserver.server import openssl_ciphersuites

log = logging.getLogger(__name__)

CLIENT_PREFIX = "ssl."
QUORUM_PREFIX = "ssl.quorum."

_PROTOCOLS = {
    "TLSV1": ssl.TLSVersion.TLSv1,
    "TLSV1.1": ssl.TLSVersion.TLSv1_1,
    "TLSV1.2": ssl.TLSVersion.TLSv1_2,
    "TLSV1.3": ssl.TLSVersion.TLSv1_3,
}
_ANY_TLS = ("TLS", "SSL", "DEFAULT")
_CLIENT_AUTH = {"none": ssl.CERT_NONE, "want": ssl.CERT_OPTIONAL, "need": ssl.CERT_REQUIRED}
_IGNORED_KEYS = ("crl", "ocsp", "sslProvider", "context.supplier.class",
                 "handshakeDetectionTimeoutMillis", "authProvider", "clientHostnameVerification")


class TLSConfigError(OSError):
    """The `ssl.*` settings can't make a working TLS context; the message says which key.

    An OSError, so `zkserver` reports it the way it reports a port it cannot bind."""


# -- reading the ssl.* keys ---------------------------------------------------------------------


class _Keys:
    def __init__(self, props: Mapping[str, str], prefix: str) -> None:
        self.props = props
        self.prefix = prefix

    def get(self, name: str) -> str | None:
        value = self.props.get(self.prefix + name)
        if value is None:
            value = self.props.get("zookeeper." + self.prefix + name)
        value = value.strip() if value is not None else None
        return value or None

    def password(self, store: str) -> str | None:
        value = self.get(f"{store}.password")
        path = self.get(f"{store}.passwordPath")
        if value is None and path is not None:
            try:
                with open(path, encoding="utf-8") as f:
                    value = f.read().rstrip("\r\n")
            except OSError as e:
                raise TLSConfigError(f"{self.prefix}{store}.passwordPath={path}: "
                                     f"{e.strerror}") from e
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.get(name)
        return default if value is None else value.lower() == "true"


def store_type(location: str, declared: str | None, key: str) -> str:
    """PEM / PKCS12 / JKS / BCFKS, from the `.type` key or else the file name."""
    if declared:
        t = declared.upper()
        if t in ("PEM", "PKCS12", "JKS", "BCFKS"):
            return t
        raise TLSConfigError(f"{key}.type={declared}: unknown store type "
                             "(PEM, PKCS12, JKS or BCFKS)")
    lower = location.lower()
    for suffix, t in ((".pem", "PEM"), (".p12", "PKCS12"), (".pfx", "PKCS12"),
                      (".jks", "JKS"), (".bcfks", "BCFKS")):
        if lower.endswith(suffix):
            return t
    raise TLSConfigError(f"{key}.location={location}: cannot tell the store type from the "
                         f"file name; set {key}.type (PEM, PKCS12 or JKS)")


def _read(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TLSConfigError(f"{key}.location={path}: {e.strerror}") from e


def _jks_module(key: str):  # noqa: ANN202 - an optional dependency
    try:
        import jks  # type: ignore[import-not-found, import-untyped]
    except ImportError:
        raise TLSConfigError(
            f"{key}: Java KeyStore (JKS) files need the pyjks package "
            "(pip install 'zkserver[jks]'), or convert the store to PKCS12 with "
            "`keytool -importkeystore -srckeystore store.jks -destkeystore store.p12 "
            "-deststoretype PKCS12`") from None
    return jks


def _pem_cert(der: bytes) -> bytes:
    return ssl.DER_cert_to_PEM_cert(der).encode()


def load_key_store(location: str, password: str | None, declared: str | None,
                   key: str) -> tuple[bytes, bytes]:
    """(private key PEM, certificate chain PEM) of a key store, unencrypted, in memory."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    kind = store_type(location, declared, key)
    data = _read(location, key)
    pw = password.encode() if password else None
    unencrypted = serialization.NoEncryption()
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    if kind == "PEM":
        blocks = re.findall(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", data, re.S)
        texts = re.findall(rb"-----BEGIN [A-Z0-9 ]+-----.*?-----END [A-Z0-9 ]+-----", data,
                           re.S)
        keys = [t for t, label in zip(texts, blocks, strict=True) if b"PRIVATE KEY" in label]
        certs = [t for t, label in zip(texts, blocks, strict=True) if label == b"CERTIFICATE"]
        if not keys or not certs:
            raise TLSConfigError(f"{key}.location={location}: a PEM key store needs a private "
                                 "key and a certificate in the same file")
        try:
            pkey = serialization.load_pem_private_key(keys[0], pw)
        except (ValueError, TypeError) as e:
            raise TLSConfigError(f"{key}.location={location}: cannot read the private key "
                                 f"(wrong {key}.password?): {e}") from e
        return pkey.private_bytes(pem, pkcs8, unencrypted), b"\n".join(certs) + b"\n"
    if kind == "PKCS12":
        try:
            pkey, cert, extra = pkcs12.load_key_and_certificates(data, pw)
        except (ValueError, TypeError) as e:
            raise TLSConfigError(f"{key}.location={location}: cannot read the PKCS12 store "
                                 f"(wrong {key}.password?): {e}") from e
        if pkey is None or cert is None:
            raise TLSConfigError(f"{key}.location={location}: the PKCS12 store has no "
                                 "private key with its certificate")
        chain = [cert, *extra]
        return (pkey.private_bytes(pem, pkcs8, unencrypted),
                b"".join(c.public_bytes(pem) for c in chain))
    if kind == "JKS":
        jks = _jks_module(f"{key}.location={location}")
        try:
            store = jks.KeyStore.loads(data, password or "")
        except Exception as e:  # pyjks raises its own exception types
            raise TLSConfigError(f"{key}.location={location}: cannot read the JKS store "
                                 f"(wrong {key}.password?): {e}") from e
        for entry in store.private_keys.values():
            if not entry.is_decrypted():
                entry.decrypt(password or "")
            pkey = serialization.load_der_private_key(entry.pkey_pkcs8, None)
            chain = b"".join(_pem_cert(der) for _, der in entry.cert_chain)
            return pkey.private_bytes(pem, pkcs8, unencrypted), chain
        raise TLSConfigError(f"{key}.location={location}: the JKS store has no private key")
    raise TLSConfigError(f"{key}.location={location}: {kind} stores are not supported; "
                         "convert the store to PKCS12 or PEM")


def load_trust_store(location: str, password: str | None, declared: str | None,
                     key: str) -> bytes:
    """The trusted certificates of a trust store, as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    kind = store_type(location, declared, key)
    data = _read(location, key)
    if kind == "PEM":
        certs = re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", data,
                           re.S)
        if not certs:
            raise TLSConfigError(f"{key}.location={location}: no certificate in the file")
        return b"\n".join(certs) + b"\n"
    if kind == "PKCS12":
        try:
            store = pkcs12.load_pkcs12(data, password.encode() if password else None)
        except (ValueError, TypeError) as e:
            raise TLSConfigError(f"{key}.location={location}: cannot read the PKCS12 store "
                                 f"(wrong {key}.password?): {e}") from e
        certs_list: list[x509.Certificate] = [c.certificate for c in store.additional_certs]
        if store.cert is not None:
            certs_list.insert(0, store.cert.certificate)
        if not certs_list:
            raise TLSConfigError(f"{key}.location={location}: no certificate in the store")
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs_list)
    if kind == "JKS":
        jks = _jks_module(f"{key}.location={location}")
        try:
            store = jks.KeyStore.loads(data, password or "", try_decrypt_keys=False)
        except Exception as e:
            raise TLSConfigError(f"{key}.location={location}: cannot read the JKS store "
                                 f"(wrong {key}.password?): {e}") from e
        ders = [entry.cert for entry in store.certs.values()]
        ders += [der for entry in store.private_keys.values() for _, der in entry.cert_chain]
        if not ders:
            raise TLSConfigError(f"{key}.location={location}: no certificate in the store")
        return b"".join(_pem_cert(der) for der in ders)
    raise TLSConfigError(f"{key}.location={location}: {kind} stores are not supported; "
                         "convert the store to PKCS12 or PEM")


@contextlib.contextmanager
def _private_file(data: bytes) -> Iterator[str]:
    """OpenSSL loads a key only from a file: a 0600 file in a 0700 directory, removed at once."""
    with tempfile.TemporaryDirectory(prefix="zkserver-tls-") as d:
        path = os.path.join(d, "key.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path


# -- protocols and cipher suites ----------------------------------------------------------------


def _protocols(keys: _Keys) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    """The lowest and highest TLS version to allow.

    `enabledProtocols` lists the versions (Java enables exactly those; a gap in the list is
    filled here). Without it, `protocol` alone is enabled, TLSv1.3 by default: ZooKeeper 3.9.5
    on Java 17 then refuses a TLSv1.2 client (measured: tests/server/test_tls_protocols.py)."""
    enabled = keys.get("enabledProtocols")
    protocol = keys.get("protocol")
    if enabled:
        names = [n.strip() for n in enabled.split(",") if n.strip()]
        key, value = keys.prefix + "enabledProtocols", enabled
    elif protocol:
        names = [protocol]
        key, value = keys.prefix + "protocol", protocol
    else:  # X509Util's default protocol on a JVM that has TLS 1.3
        return ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3
    versions = []
    for name in names:
        if name.upper() in _ANY_TLS:
            versions += [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
            continue
        v = _PROTOCOLS.get(name.upper())
        if v is None:
            raise TLSConfigError(f"{key}={value}: unknown protocol {name!r} "
                                 "(TLSv1.2, TLSv1.3, ...)")
        versions.append(v)
    return min(versions), max(versions)


_CIPHER_PARTS = {
    "AES_128_GCM": "AES128-GCM", "AES_256_GCM": "AES256-GCM", "AES_128_CBC": "AES128",
    "AES_256_CBC": "AES256", "AES_128_CCM": "AES128-CCM", "AES_256_CCM": "AES256-CCM",
    "AES_128_CCM_8": "AES128-CCM8", "AES_256_CCM_8": "AES256-CCM8",
    "CHACHA20_POLY1305": "CHACHA20-POLY1305", "3DES_EDE_CBC": "DES-CBC3",
    "CAMELLIA_128_CBC": "CAMELLIA128", "CAMELLIA_256_CBC": "CAMELLIA256",
    "ARIA_128_GCM": "ARIA128-GCM", "ARIA_256_GCM": "ARIA256-GCM",
}
_IANA = re.compile(r"(?:TLS|SSL)_(\w+?)_WITH_(\w+?)(?:_(SHA|SHA256|SHA384))?")

# ZooKeeper 3.9's suites when `ciphersuites` is not set (X509Util on Java 9 and later, in its
# order: a Java server prefers its own order): ECDHE with AES-GCM, then ECDHE with AES-CBC,
# then the TLS 1.3 suites. Plain-RSA and DHE key exchange, and ChaCha20 under TLS 1.2, are
# not among them, so a client offering only those is refused, as by ZooKeeper.
DEFAULT_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256",
)


def openssl_cipher_name(iana: str) -> str | None:
    """A Java/IANA suite name (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) -> OpenSSL's
    (ECDHE-RSA-AES128-GCM-SHA256); None for TLS 1.3 suites and names it can't translate."""
    m = _IANA.fullmatch(iana.strip())
    if m is None:
        return None
    kx, cipher, mac = m.groups()
    enc = _CIPHER_PARTS.get(cipher)
    if enc is None:
        return None
    prefix = "" if kx == "RSA" else kx.replace("_", "-") + "-"
    aead_no_mac = "CHACHA20" in enc or "CCM" in enc
    suffix = "" if aead_no_mac or not mac else "-" + mac
    if prefix.startswith("ECDHE-RSA-") and enc.startswith("ARIA"):
        prefix = "ECDHE-"  # OpenSSL's own spelling
    return f"{prefix}{enc}{suffix}"


def _tls13_names(ctx: ssl.SSLContext) -> list[str]:
    return [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"]


def _set_ciphers(ctx: ssl.SSLContext, keys: _Keys) -> None:
    """Java's enabled suites, in Java's names, as OpenSSL's TLS 1.2 cipher list and TLS 1.3
    ciphersuites. No TLS 1.3 suite listed means no TLS 1.3 (Java cannot negotiate it without
    one), and no TLS 1.2 suite listed means no TLS 1.2 and older."""
    value = keys.get("ciphersuites")
    names = ([n.strip() for n in value.split(",") if n.strip()] if value
             else list(DEFAULT_CIPHER_SUITES))
    # Every suite OpenSSL knows, TLS 1.2 ones included whatever Python's default list is.
    ctx.set_ciphers("ALL")
    known = {c["name"]: c["protocol"] for c in ctx.get_ciphers()}
    chosen, tls13, unknown = [], [], []
    for name in names:
        if known.get(name) == "TLSv1.3":
            tls13.append(name)
            continue
        openssl = openssl_cipher_name(name) or name
        if known.get(openssl, "TLSv1.3") != "TLSv1.3":
            chosen.append(openssl)
        else:
            unknown.append(name)
    if unknown and value:
        log.warning("%sciphersuites: ignoring suites OpenSSL does not offer: %s", keys.prefix,
                    ", ".join(unknown))
    if not chosen and not tls13:
        raise TLSConfigError(f"{keys.prefix}ciphersuites={value}: none of these suites is "
                             "available")
    if chosen:
        ctx.set_ciphers(":".join(chosen))
    elif ctx.minimum_version < ssl.TLSVersion.TLSv1_3:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3  # only TLS 1.3 suites were listed
    if not tls13:
        if ctx.minimum_version >= ssl.TLSVersion.TLSv1_3:
            raise TLSConfigError(f"{keys.prefix}ciphersuites={value}: only TLSv1.3 is enabled "
                                 "but no TLS 1.3 suite (TLS_AES_128_GCM_SHA256, ...) is listed")
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif set(tls13) != set(_tls13_names(ctx)):
        openssl_ciphersuites.enable(ctx, tls13)
    if ctx.minimum_version > ctx.maximum_version:
        raise TLSConfigError(f"{keys.prefix}ciphersuites={value}: no listed suite works with "
                             "the enabled protocols")


# -- building contexts --------------------------------------------------------------------------


def _load_stores(ctx: ssl.SSLContext, keys: _Keys, need_key: bool,
                 purpose: ssl.Purpose) -> None:
    prefix = keys.prefix
    location = keys.get("keyStore.location")
    if location:
        key_pem, chain_pem = load_key_store(location, keys.password("keyStore"),
                                            keys.get("keyStore.type"), prefix + "keyStore")
        with _private_file(key_pem + chain_pem) as path:
            try:
                ctx.load_cert_chain(path)
            except ssl.SSLError as e:
                raise TLSConfigError(f"{prefix}keyStore.location={location}: the key does not "
                                     f"match the certificate: {e}") from e
    elif need_key:
        raise TLSConfigError(f"{prefix}keyStore.location is not set: a TLS server needs a "
                             "certificate and its private key")
    trust = keys.get("trustStore.location")
    if trust:
        cadata = load_trust_store(trust, keys.password("trustStore"),
                                  keys.get("trustStore.type"), prefix + "trustStore")
        ctx.load_verify_locations(cadata=cadata.decode())
    else:
        ctx.load_default_certs(purpose)  # Java: the JVM's default trust store


def _warn_ignored(keys: _Keys) -> None:
    for name in _IGNORED_KEYS:
        value = keys.get(name)
        if value is not None and value.lower() != "false":
            log.warning("%s%s=%s is not supported and is ignored", keys.prefix, name, value)


def client_auth(props: Mapping[str, str], prefix: str = CLIENT_PREFIX) -> str:
    value = (_Keys(props, prefix).get("clientAuth") or "need").lower()
    if value not in _CLIENT_AUTH:
        raise TLSConfigError(f"{prefix}clientAuth={value}: must be none, want or need")
    return value


def server_context(props: Mapping[str, str], prefix: str = CLIENT_PREFIX) -> ssl.SSLContext:
    """The context of a TLS listener (the secure client port, or a quorum port)."""
    keys = _Keys(props, prefix)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version, ctx.maximum_version = _protocols(keys)
    ctx.verify_mode = _CLIENT_AUTH[client_auth(props, prefix)]
    _load_stores(ctx, keys, need_key=True, purpose=ssl.Purpose.CLIENT_AUTH)
    _set_ciphers(ctx, keys)
    _warn_ignored(keys)
    return ctx


def client_context(props: Mapping[str, str], prefix: str = QUORUM_PREFIX) -> ssl.SSLContext:
    """The context a server uses to reach another ensemble member."""
    keys = _Keys(props, prefix)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version, ctx.maximum_version = _protocols(keys)
    ctx.check_hostname = keys.flag("hostnameVerification", True)
    ctx.verify_mode = ssl.CERT_REQUIRED
    _load_stores(ctx, keys, need_key=False, purpose=ssl.Purpose.SERVER_AUTH)
    _set_ciphers(ctx, keys)
    return ctx


def hostname_verification(props: Mapping[str, str], prefix: str = QUORUM_PREFIX) -> bool:
    return _Keys(props, prefix).flag("hostnameVerification", True)


# -- the peer's identity ------------------------------------------------------------------------

# RFC 2253's keywords, the only ones X500Principal.getName() writes; others are dotted OIDs
# with the value as '#' + hex of its DER encoding.
_KEYWORDS = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# DER string types Java writes as text: tag -> codec.
_STRING_TAGS = {12: "utf-8", 19: "latin-1", 20: "latin-1", 22: "latin-1", 27: "latin-1",
                30: "utf-16-be", 28: "utf-32-be"}
_ESCAPED = set(',=+<>#;"\\')
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]")


def _der(data: bytes, pos: int) -> tuple[int, int, int, int]:
    """(tag, start of contents, end of contents, end of element) of the element at `pos`."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length, pos + length


def _oid(body: bytes) -> str:
    first = body[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for b in body[1:]:
        value = value << 7 | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def _escape(text: str) -> str:
    out = []
    for c in text:
        if c in _ESCAPED:
            out.append("\\" + c)
        elif c == "\0":
            out.append("\\00")
        else:
            out.append(c)
    chars = "".join(out)
    lead = len(chars) - len(chars.lstrip(" \r"))
    trail = len(chars.rstrip(" \r"))
    return "".join("\\" + c if i < lead or i >= trail else c for i, c in enumerate(chars))


def dn_of_name(name_der: bytes) -> str:
    """A DER-encoded X.500 Name as Java's X500Principal.getName() (RFC 2253) writes it."""
    rdns: list[str] = []
    _, pos, end, _ = _der(name_der, 0)  # SEQUENCE OF RDN
    while pos < end:
        _, spos, send, pos = _der(name_der, pos)  # SET OF AttributeTypeAndValue
        avas = []
        while spos < send:
            _, apos, _, spos = _der(name_der, spos)  # SEQUENCE { OID, value }
            _, opos, oend, vstart = _der(name_der, apos)
            oid = _oid(name_der[opos:oend])
            vtag, vpos, vend, vnext = _der(name_der, vstart)
            keyword = _KEYWORDS.get(oid, oid)
            codec = _STRING_TAGS.get(vtag)
            if keyword[0].isdigit() or codec is None:
                avas.append(f"{keyword}=#{name_der[vstart:vnext].hex()}")
            else:
                text = name_der[vpos:vend].decode(codec, "replace")
                avas.append(f"{keyword}={_escape(text)}")
        rdns.append("+".join(avas))
    return ",".join(reversed(rdns))


def x509_identity(cert_der: bytes) -> str:
    """The `x509` scheme's id for a client certificate: its subject DN, RFC 2253."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(cert_der)
    return dn_of_name(cert.subject.public_bytes())


def peer_matches_host(cert_der: bytes, ip: str, names: list[str]) -> bool:
    """ZooKeeper's hostname verification of a peer's certificate: its subjectAltName (or CN)
    must name the peer's address or one of the host names it resolves back to."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(cert_der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
        dns = list(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        ips = set()
        dns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        if str(ipaddress.ip_address(ip)) in ips:
            return True
    except ValueError:
        pass
    for name in names:
        for pattern in dns:
            if _host_matches(pattern, name):
                return True
    return False


def _host_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        return "." in host and host.split(".", 1)[1] == pattern[2:]
    return pattern == host


# Keywords Java's X500Principal accepts when it parses a DN (any case), besides dotted OIDs.
_JAVA_DN_KEYWORDS = frozenset({
    "CN", "C", "L", "S", "ST", "O", "OU", "T", "IP", "STREET", "DC", "DNQUALIFIER", "DNQ",
    "SURNAME", "GIVENNAME", "INITIALS", "GENERATION", "EMAIL", "EMAILADDRESS", "UID",
    "SERIALNUMBER",
})
_OID_TEXT = re.compile(r"(?:OID\.)?[0-9]+(?:\.[0-9]+)+", re.I)


def _split_dn(text: str) -> list[str] | None:
    """The `type=value` parts of a DN (split on `,` `;` `+` outside quotes and escapes)."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c in ",;+" and not quoted:
            parts.append("".join(current))
            current = []
            i += 1
            continue
        current.append(c)
        i += 1
    if quoted:
        return None
    parts.append("".join(current))
    return parts


def valid_dn(text: str) -> bool:
    """Whether Java's `new X500Principal(text)` would accept an `x509` ACL id."""
    if not text.strip():
        return True
    parts = _split_dn(text)
    if parts is None:
        return False
    for part in parts:
        keyword, sep, _ = part.partition("=")
        keyword = keyword.strip()
        if not sep or not (keyword.upper() in _JAVA_DN_KEYWORDS or _OID_TEXT.fullmatch(keyword)):
            return False
    return True
