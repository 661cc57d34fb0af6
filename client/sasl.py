"""SASL for the Trio client: DIGEST-MD5, as ZooKeeper's Java client and kazoo run it.

`Client(..., sasl={"mechanism": "DIGEST-MD5", "username": ..., "password": ...})` (kazoo's
`sasl_options` shape) makes every new connection run the exchange before anything else is
sent on it: its credentials and watches are restored only once the server has accepted the
client (and proved, with `rspauth`, that it knows the password too). A refusal ends the session
in AUTH_FAILED, as the Java client's AuthFailed state.

The exchange itself is sans-IO (zkserver/auth/digest_md5.py); this module only carries its
tokens in SASL requests (opcode 102, ordinary xids) and back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from zkserver.auth.digest_md5 import DigestMD5Client, SaslError
from zkserver.proto import records as R
from zkserver.proto.codes import Err, Op
from zkserver.proto.jute import JuteError, Reader, Writer

from .connection import Connection

MECHANISMS = ("DIGEST-MD5",)
_HEADER = 16  # xid, zxid, err


class SaslOptions:
    """Checked when the Client is made, so a typo fails at once rather than at connect."""

    def __init__(self, options: Mapping[str, str]) -> None:
        mechanism = options.get("mechanism", "DIGEST-MD5").upper()
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism!r} "
                             f"(supported: {', '.join(MECHANISMS)})")
        unknown = set(options) - {"mechanism", "username", "password", "authzid"}
        if unknown:
            raise ValueError(f"unknown SASL options: {', '.join(sorted(unknown))}")
        if not options.get("username") or options.get("password") is None:
            raise ValueError("DIGEST-MD5 needs a username and a password")
        self.mechanism = mechanism
        self._username = options["username"]
        self._password = options["password"]
        self._authzid = options.get("authzid")

    def __repr__(self) -> str:  # never the password
        return f"SaslOptions(mechanism={self.mechanism!r}, username={self._username!r})"

    def start(self) -> DigestMD5Client:
        return DigestMD5Client(self._username, self._password, os.urandom,
                               authzid=self._authzid)


def _token_of(body: bytes) -> bytes | None:
    try:
        request: R.SaslRequest = R.SaslRequest.decode_from(Reader(body, _HEADER))
        return request.token
    except JuteError:
        return None


def _request(token: bytes) -> bytes:
    w = Writer()
    R.SaslRequest(token).encode_to(w)
    return bytes(w.out)


async def authenticate(conn: Connection, options: SaslOptions) -> int:
    """Run the exchange on `conn`: 0 once the server accepted us, else the error code that
    ends the session (the server's, or AUTHFAILED when the server's answers don't hold up)."""
    mechanism = options.start()
    challenge: bytes | None = None
    while True:
        try:
            token = mechanism.evaluate(challenge)
        except SaslError:
            return Err.AUTHFAILED
        if token is None:
            return 0
        p = conn.submit(Op.SASL, _request(token))
        await p.done.wait()
        if p.error is not None:
            raise p.error
        if p.err != Err.OK:
            return p.err
        challenge = _token_of(p.body)
