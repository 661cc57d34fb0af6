"""The server side of SASL DIGEST-MD5 (RFC 2831), as Java's SASL server answers ZooKeeper clients.

No maintained Python library does the server side (pure-sasl is a client), so this module holds
the exchange and nothing else: tokens in, tokens out, no I/O. Its parameters are ZooKeeper's:
protocol `zookeeper`, server name and realm `zk-sasl-md5`, quality of protection `auth` only (the
connection is never wrapped). The exchange has two rounds:

1. the client sends an empty token; the server answers with a challenge (realm, a fresh nonce);
2. the client sends its digest-response; the server checks every directive and the response
   hash against the password it looks up for the user, and answers `rspauth=...`, proving it
   knows the password too. The exchange is then complete.

Anything else (an initial response, a second response, a malformed or oversized token, an
unknown user, a wrong hash) raises `SaslError`; the server then answers as ZooKeeper does
(AUTHFAILED and close). Error messages never contain passwords or hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

PROTOCOL = "zookeeper"
SERVER_NAME = "zk-sasl-md5"  # ZooKeeper's fixed DIGEST-MD5 host name (and so its realm)
MAX_RESPONSE = 4096  # Java's DigestMD5Server rejects longer digest-responses
_SINGLE = ("username", "realm", "nonce", "cnonce", "nc", "qop", "digest-uri", "response",
           "maxbuf", "charset", "authzid", "cipher")


class SaslError(Exception):
    """The exchange failed; the message is safe to log (it holds no secret)."""


def parse_directives(token: bytes) -> dict[str, list[bytes]]:
    """`a=b, c="d\\"e"` -> {"a": [b"b"], "c": [b'd"e']}: RFC 2831's #(name=value) list.

    Every name keeps all the values given for it so that the caller can refuse repeats."""
    out: dict[str, list[bytes]] = {}
    i, n = 0, len(token)
    while i < n:
        while i < n and token[i] in b" \t\r\n,":
            i += 1
        if i >= n:
            break
        eq = token.find(b"=", i)
        if eq < 0:
            raise SaslError("DIGEST-MD5: directive without a value")
        name = token[i:eq].strip().lower().decode("ascii", "replace")
        if not name:
            raise SaslError("DIGEST-MD5: empty directive name")
        i = eq + 1
        while i < n and token[i] in b" \t":
            i += 1
        if i < n and token[i] == ord('"'):
            i += 1
            value = bytearray()
            while True:
                if i >= n:
                    raise SaslError("DIGEST-MD5: unterminated quoted string")
                c = token[i]
                if c == ord("\\") and i + 1 < n:
                    value.append(token[i + 1])
                    i += 2
                elif c == ord('"'):
                    i += 1
                    break
                else:
                    value.append(c)
                    i += 1
            while i < n and token[i] in b" \t\r\n":
                i += 1
            if i < n and token[i] != ord(","):
                raise SaslError("DIGEST-MD5: garbage after a quoted string")
            val = bytes(value)
        else:
            end = token.find(b",", i)
            end = n if end < 0 else end
            val = token[i:end].strip()
            i = end
        out.setdefault(name, []).append(val)
    return out


def _hex_md5(data: bytes) -> bytes:
    return hashlib.md5(data).hexdigest().encode("ascii")


def response_value(*, username: bytes, realm: bytes, password: bytes, nonce: bytes,
                   cnonce: bytes, nc: bytes, qop: bytes, digest_uri: bytes,
                   authzid: bytes | None, client: bool) -> bytes:
    """RFC 2831 section 2.1.2.1: the client's `response` (client=True) or the server's
    `rspauth` (client=False); they differ only in A2's method part."""
    a1 = hashlib.md5(username + b":" + realm + b":" + password).digest()
    a1 += b":" + nonce + b":" + cnonce
    if authzid:
        a1 += b":" + authzid
    a2 = (b"AUTHENTICATE:" if client else b":") + digest_uri
    kd = b":".join([_hex_md5(a1), nonce, nc, cnonce, qop, _hex_md5(a2)])
    return _hex_md5(kd)


def _quote(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class DigestMD5Server:
    """One connection's DIGEST-MD5 exchange.

    `password_of(user)` returns the user's password, or None for an unknown user; `nonce_bytes`
    supplies the randomness of the nonce (the driver passes `os.urandom`; tests pass their own).
    """

    mechanism = "DIGEST-MD5"

    def __init__(self, password_of: Callable[[str], str | None],
                 nonce_bytes: Callable[[int], bytes], *, protocol: str = PROTOCOL,
                 server_name: str = SERVER_NAME) -> None:
        self._password_of = password_of
        self._nonce_bytes = nonce_bytes
        self._protocol = protocol
        self._server_name = server_name
        self._realm = server_name.encode()
        self._nonce: bytes | None = None
        self.complete = False
        self.failed = False
        self.authentication_id: str | None = None
        self.authorization_id: str | None = None

    def evaluate(self, token: bytes) -> bytes:
        """The client's next token -> the server's answer; raises SaslError on failure, after
        which the exchange stays failed."""
        if self.failed:
            raise SaslError("DIGEST-MD5: authentication already failed")
        try:
            return self._step(token)
        except SaslError:
            self.failed = True
            raise

    def _step(self, token: bytes) -> bytes:
        if len(token) > MAX_RESPONSE:
            raise SaslError(f"DIGEST-MD5: digest response of {len(token)} bytes is longer "
                            f"than {MAX_RESPONSE}")
        if self.complete:
            raise SaslError("DIGEST-MD5: server at illegal state (exchange already complete)")
        if self._nonce is None:
            if token:
                raise SaslError("DIGEST-MD5 must not have an initial response")
            self._nonce = base64.b64encode(self._nonce_bytes(30))
            return b",".join([b"realm=" + _quote(self._realm), b"nonce=" + _quote(self._nonce),
                              b'qop="auth"', b"charset=utf-8", b"algorithm=md5-sess"])
        return self._verify(token)

    def _verify(self, token: bytes) -> bytes:
        directives = parse_directives(token)
        for name in _SINGLE:
            if len(directives.get(name, ())) > 1:
                raise SaslError(f"DIGEST-MD5: directive {name} given more than once")
        d = {k: v[0] for k, v in directives.items()}
        for name in ("username", "nonce", "cnonce", "nc", "response", "digest-uri"):
            if name not in d:
                raise SaslError(f"DIGEST-MD5: digest-response lacks {name}")
        utf8 = d.get("charset", b"").lower() == b"utf-8"
        if "charset" in d and not utf8:
            raise SaslError("DIGEST-MD5: unsupported charset")
        encoding = "utf-8" if utf8 else "latin-1"
        realm = d.get("realm", b"")
        if realm and realm != self._realm:
            raise SaslError("DIGEST-MD5: realm not offered by the server")
        if not hmac.compare_digest(d["nonce"], self._nonce or b""):
            raise SaslError("DIGEST-MD5: nonce does not match the challenge")
        if d["nc"] != b"00000001":
            raise SaslError("DIGEST-MD5: nonce count must be 1")
        qop = d.get("qop", b"auth")
        if qop != b"auth":
            raise SaslError("DIGEST-MD5: quality of protection not offered")
        if "cipher" in d:
            raise SaslError("DIGEST-MD5: cipher given without auth-conf")
        self._check_uri(d["digest-uri"])
        try:
            username = d["username"].decode(encoding)
            authzid = d["authzid"].decode("utf-8") if d.get("authzid") else None
        except UnicodeDecodeError as e:
            raise SaslError("DIGEST-MD5: username or authzid is not valid text") from e
        password = self._password_of(username)
        if password is None:
            raise SaslError(f"DIGEST-MD5: cannot acquire password for {username!r} "
                            f"in realm {self._server_name}")
        try:
            secret = password.encode(encoding)
        except UnicodeEncodeError as e:
            raise SaslError("DIGEST-MD5: password not representable in ISO-8859-1") from e
        common = dict(username=d["username"], realm=realm, password=secret,
                      nonce=d["nonce"], cnonce=d["cnonce"], nc=d["nc"], qop=qop,
                      digest_uri=d["digest-uri"], authzid=d.get("authzid") or None)
        expected = response_value(**common, client=True)
        if not hmac.compare_digest(expected, d["response"].lower()):
            raise SaslError(f"DIGEST-MD5: digest response of {username!r} does not match "
                            f"(wrong password?)")
        self.complete = True
        self.authentication_id = username
        self.authorization_id = authzid or username
        return b"rspauth=" + response_value(**common, client=False)

    def _check_uri(self, uri: bytes) -> None:
        text = uri.decode("utf-8", "replace")
        parts = text.split("/")
        if len(parts) not in (2, 3) or parts[0] != self._protocol or (
                parts[1].lower() != self._server_name.lower()):
            raise SaslError(f"DIGEST-MD5: digest-uri {text!r} does not name this service")


class DigestMD5Client:
    """The client side, for zkserver's own Trio client (client/sasl.py): an empty first token,
    a digest-response to the server's challenge, then a check of the server's `rspauth` (a
    server that does not know the password can't forge it)."""

    mechanism = "DIGEST-MD5"

    def __init__(self, username: str, password: str, cnonce_bytes: Callable[[int], bytes], *,
                 authzid: str | None = None, protocol: str = PROTOCOL,
                 server_name: str = SERVER_NAME) -> None:
        self._username = username
        self._password = password
        self._authzid = authzid
        self._cnonce_bytes = cnonce_bytes
        self._digest_uri = f"{protocol}/{server_name}".encode()
        self._expected_rspauth: bytes | None = None
        self._started = False
        self.complete = False

    def evaluate(self, challenge: bytes | None) -> bytes | None:
        """The next token to send (b"" to start), or None once the exchange is complete."""
        if not self._started:
            self._started = True
            return b""
        if self._expected_rspauth is None:
            return self._respond(challenge or b"")
        d = parse_directives(challenge or b"")
        rspauth = d.get("rspauth", [b""])[0]
        if not hmac.compare_digest(rspauth, self._expected_rspauth):
            raise SaslError("DIGEST-MD5: the server's rspauth is wrong (it does not know the "
                            "password)")
        self.complete = True
        return None

    def _respond(self, challenge: bytes) -> bytes:
        if not challenge:
            raise SaslError("DIGEST-MD5: the server sent no challenge (no SASL on the server?)")
        d = parse_directives(challenge)
        nonces = d.get("nonce", [])
        if len(nonces) != 1:
            raise SaslError("DIGEST-MD5: the challenge must hold exactly one nonce")
        if d.get("algorithm", [b""])[0].lower() != b"md5-sess":
            raise SaslError("DIGEST-MD5: the challenge does not name algorithm=md5-sess")
        qops = [q.strip() for q in d.get("qop", [b"auth"])[0].split(b",")]
        if b"auth" not in qops:
            raise SaslError("DIGEST-MD5: the server does not offer qop=auth")
        utf8 = d.get("charset", [b""])[0].lower() == b"utf-8"
        encoding = "utf-8" if utf8 else "latin-1"
        realm = d.get("realm", [b""])[0]
        cnonce = base64.b64encode(self._cnonce_bytes(24))
        try:
            username = self._username.encode(encoding)
            password = self._password.encode(encoding)
        except UnicodeEncodeError as e:
            raise SaslError("DIGEST-MD5: credentials not representable in ISO-8859-1") from e
        authzid = self._authzid.encode() if self._authzid else None
        common = dict(username=username, realm=realm, password=password, nonce=nonces[0],
                      cnonce=cnonce, nc=b"00000001", qop=b"auth", digest_uri=self._digest_uri,
                      authzid=authzid)
        self._expected_rspauth = response_value(**common, client=False)
        parts = [b"username=" + _quote(username)]
        if realm:
            parts.append(b"realm=" + _quote(realm))
        parts += [b"nonce=" + _quote(nonces[0]), b"cnonce=" + _quote(cnonce), b"nc=00000001",
                  b"qop=auth", b"digest-uri=" + _quote(self._digest_uri),
                  b"response=" + response_value(**common, client=True)]
        if utf8:
            parts.append(b"charset=utf-8")
        if authzid:
            parts.append(b"authzid=" + _quote(authzid))
        return b",".join(parts)
