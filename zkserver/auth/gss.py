"""SASL GSSAPI (Kerberos V5, RFC 4752), server and client side, as Java's SASL runs it for
ZooKeeper.

The Kerberos work is MIT krb5's, through the `gssapi` package (python-gssapi); this module only
keeps the SASL framing around it, tokens in and tokens out, no sockets. The exchange:

1. context establishment: the client's AP-REQ, the server's AP-REP (mutual authentication);
   as Java's client does, the client answers a final server token with an empty one;
2. the server offers its security layers: a 4-byte message wrapped with integrity only,
   `[layers, max buffer (3 bytes)]`; ZooKeeper never wraps the connection, so the offer is
   "no security layer" only;
3. the client answers, wrapped the same way, `[chosen layer, max buffer]` + its authorization
   id; the server checks the choice and is done (its last answer is a null token).

The server's step never talks to the network (the client brings the service ticket); MIT
reads the keytab and its replay cache, local files, within it, which is why the engine may call
it inline. The client's first step may ask the KDC for that ticket: callers run it in a thread.

The server's identity comes from the JAAS `Server` section's `Krb5LoginModule` (`keyTab`,
`principal`); `acceptor_credentials` turns those into MIT credentials once, at start-up. Every
failure -- a garbled, truncated or oversized token, a ticket for another service, a replay, a
wrong layer -- raises `SaslError` with a message that holds no key material.
"""

from __future__ import annotations

from typing import Any

from zkserver.auth.digest_md5 import SaslError

MAX_TOKEN = 64 * 1024  # a Kerberos ticket with a large PAC stays well under this
NO_SECURITY_LAYER = 1
MAX_BUFFER = 65536  # what Java's GSSAPI server announces (it is not used: no layer)


def _gssapi() -> Any:
    """The `gssapi` package, imported on first use: DIGEST-MD5-only deployments don't need
    it (it is the `kerberos` extra)."""
    try:
        import gssapi
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise SaslError("GSSAPI: the python 'gssapi' package is not installed "
                        "(pip install 'zkserver[kerberos]')") from e
    return gssapi


def acceptor_credentials(principal: str | None, keytab: str | None) -> Any:
    """MIT acceptor credentials for `principal` (any key in the keytab if None), read from
    `keytab` (the default keytab if None). Raises SaslError when they can't be had."""
    gssapi = _gssapi()
    try:
        name = (gssapi.Name(principal, gssapi.NameType.kerberos_principal)
                if principal else None)
        store = {b"keytab": keytab.encode()} if keytab else None
        return gssapi.Credentials(name=name, usage="accept", store=store)
    except gssapi.exceptions.GSSError as e:
        raise SaslError(f"GSSAPI: no acceptor credentials for {principal} in "
                        f"{keytab or 'the default keytab'}: {e.gen_message()}") from e


def initiator_credentials(principal: str | None, keytab: str | None) -> Any:
    """MIT initiator credentials for `principal` from its `keytab` (as Java's Krb5LoginModule
    with useKeyTab logs a member in): tickets are fetched with the key when first needed and
    kept in a memory cache of this process. Raises SaslError when they can't be had."""
    gssapi = _gssapi()
    try:
        name = (gssapi.Name(principal, gssapi.NameType.kerberos_principal)
                if principal else None)
        store = {b"ccache": f"MEMORY:zkserver-{id(name)}".encode()}
        if keytab:
            store[b"client_keytab"] = keytab.encode()
        return gssapi.Credentials(name=name, usage="initiate", store=store)
    except gssapi.exceptions.GSSError as e:
        raise SaslError(f"GSSAPI: no initiator credentials for {principal} in "
                        f"{keytab or 'the default client keytab'}: {e.gen_message()}") from e


def default_realm() -> str:
    """The default realm of the krb5 configuration (KRB5_CONFIG), which ZooKeeper's
    principal shortening compares against; '' when there is none."""
    gssapi = _gssapi()
    try:
        name = gssapi.Name("x", gssapi.NameType.kerberos_principal)
        text = str(name.canonicalize(gssapi.MechType.kerberos))
    except gssapi.exceptions.GSSError:
        return ""
    return text.partition("@")[2]


def _layer_message(layer: int, max_buffer: int, authzid: bytes = b"") -> bytes:
    return bytes([layer]) + max_buffer.to_bytes(3, "big") + authzid


def _errors() -> tuple[type[BaseException], ...]:
    gssapi = _gssapi()
    return (gssapi.exceptions.GSSError, gssapi.exceptions.GeneralError, ValueError,
            TypeError)


class GssapiServer:
    """One connection's GSSAPI exchange, on the server. Same surface as DigestMD5Server:
    `evaluate` (None is the null token of the last answer), `complete`, `failed`,
    `authentication_id` (the client's principal), `authorization_id`."""

    mechanism = "GSSAPI"

    def __init__(self, credentials: Any, *, max_token: int = MAX_TOKEN) -> None:
        self._gssapi = _gssapi()
        self._ctx = self._gssapi.SecurityContext(creds=credentials, usage="accept")
        self._max_token = max_token
        self._offered = False
        self.complete = False
        self.failed = False
        self.authentication_id: str | None = None
        self.authorization_id: str | None = None

    def evaluate(self, token: bytes) -> bytes | None:
        if self.failed:
            raise SaslError("GSSAPI: authentication already failed")
        try:
            return self._step(token)
        except SaslError:
            self.failed = True
            raise
        except _errors() as e:
            self.failed = True
            raise SaslError(f"GSSAPI: {_describe(e)}") from e

    def _step(self, token: bytes) -> bytes | None:
        if len(token) > self._max_token:
            raise SaslError(f"GSSAPI: token of {len(token)} bytes is longer than "
                            f"{self._max_token}")
        if self.complete:
            raise SaslError("GSSAPI: server at illegal state (exchange already complete)")
        if not self._ctx.complete:
            if not token:
                raise SaslError("GSSAPI: the client sent no context token")
            out = self._ctx.step(token)
            if not self._ctx.complete:
                return out or b""
            self.authentication_id = str(self._ctx.initiator_name)
            if out:
                return out  # the client answers it with an empty token
            return self._offer()
        if not self._offered:
            if token:
                raise SaslError("GSSAPI: unexpected token after the context was established")
            return self._offer()
        self._accept_layer(token)
        return None  # ZooKeeper's last answer: a null token

    def _offer(self) -> bytes:
        self._offered = True
        return self._ctx.wrap(_layer_message(NO_SECURITY_LAYER, MAX_BUFFER), False).message

    def _accept_layer(self, token: bytes) -> None:
        plain = self._ctx.unwrap(token).message
        if len(plain) < 4:
            raise SaslError("GSSAPI: the client's security layer message is too short")
        if plain[0] != NO_SECURITY_LAYER:
            raise SaslError(f"GSSAPI: the client chose security layer {plain[0]}, which was "
                            "not offered")
        try:
            authzid = plain[4:].decode("utf-8")
        except UnicodeDecodeError as e:
            raise SaslError("GSSAPI: the authorization id is not UTF-8") from e
        self.authorization_id = authzid or self.authentication_id
        self.complete = True


class GssapiClient:
    """The client side, for zkserver's own client and for quorum learners: `evaluate(None)`
    starts, each server token gets the next client token, and None means done. The service
    principal is `service/host` (the host as the client names the server; Java canonicalises
    an address by reverse lookup, and client/sasl.py does the same)."""

    mechanism = "GSSAPI"

    def __init__(self, service: str, host: str, *, principal: str | None = None,
                 credentials: Any = None, authzid: str | None = None) -> None:
        self._gssapi = gssapi = _gssapi()
        target = gssapi.Name(f"{service}@{host}", gssapi.NameType.hostbased_service)
        self._authzid = authzid
        try:
            if credentials is None and principal is not None:
                credentials = gssapi.Credentials(
                    name=gssapi.Name(principal, gssapi.NameType.kerberos_principal),
                    usage="initiate")
            self._ctx = gssapi.SecurityContext(
                name=target, creds=credentials, usage="initiate",
                mech=gssapi.MechType.kerberos,
                flags=gssapi.RequirementFlag.mutual_authentication)
        except _errors() as e:
            raise SaslError(f"GSSAPI: {_describe(e)}") from e
        self._started = False
        self._answered = False
        self.complete = False

    def evaluate(self, challenge: bytes | None) -> bytes | None:
        try:
            return self._step(challenge)
        except _errors() as e:
            raise SaslError(f"GSSAPI: {_describe(e)}") from e

    def _step(self, challenge: bytes | None) -> bytes | None:
        if not self._started:
            self._started = True
            return self._ctx.step() or b""
        if self.complete:
            if challenge:
                raise SaslError("GSSAPI: the server sent a token after the exchange ended")
            return None
        if self._answered:
            if challenge:
                raise SaslError("GSSAPI: the server sent a token after the exchange ended")
            self.complete = True
            return None
        if not self._ctx.complete:
            # Once complete, Java's client answers the server's final token with an empty one.
            return self._ctx.step(challenge or b"") or b""
        if not challenge:
            raise SaslError("GSSAPI: the server sent no security layer offer")
        offer = self._ctx.unwrap(challenge).message
        if len(offer) != 4 or not offer[0] & NO_SECURITY_LAYER:
            raise SaslError("GSSAPI: the server does not offer 'no security layer'")
        self._answered = True
        name = (self._authzid or str(self._ctx.initiator_name)).encode()
        return self._ctx.wrap(_layer_message(NO_SECURITY_LAYER, 0, name), False).message


def _describe(e: BaseException) -> str:
    gen = getattr(e, "gen_message", None)
    if callable(gen):
        try:
            return str(gen())
        except Exception:  # noqa: BLE001 - describing an error must not raise another
            pass
    return type(e).__name__
