"""SASL for the Trio client: DIGEST-MD5 and GSSAPI (Kerberos), as ZooKeeper's Java client and
kazoo run them.

`Client(..., sasl={"mechanism": "DIGEST-MD5", "username": ..., "password": ...})` (kazoo's
`sasl_options` shape), or `sasl={"mechanism": "GSSAPI"}` with a Kerberos ticket cache
(`kinit`; `KRB5CCNAME` names another one) and optional `service` (default `zookeeper`),
`host` (default: the server's address looked up in reverse, as Java's client canonicalises it)
and `principal` (which of the cache's principals), makes every new connection run the exchange
before anything else is sent on it: its credentials and watches are restored only once the
server has accepted the client (and proved that it knows the password, with `rspauth`, or holds
the service key, with its Kerberos reply). A refusal ends the session in AUTH_FAILED, as the
Java client's AuthFailed state.

The exchanges themselves are sans-IO (zkserver/auth/digest_md5.py, gss.py); this module only
carries their tokens in SASL requests (opcode 102, ordinary xids) and back. A GSSAPI step may
ask the KDC for a service ticket, so it runs in a worker thread.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import anyio
import anyio.abc
import anyio.to_thread

from zkserver.auth.digest_md5 import DigestMD5Client, SaslError
from zkserver.auth.gss import GssapiClient
from zkserver.proto import records as R
from zkserver.proto.codes import Err, Op
from zkserver.proto.jute import JuteError, Reader, Writer

from .connection import Connection

MECHANISMS = ("DIGEST-MD5", "GSSAPI")
_OPTIONS = {"DIGEST-MD5": {"mechanism", "username", "password", "authzid"},
            "GSSAPI": {"mechanism", "service", "host", "principal", "authzid"}}
_HEADER = 16  # xid, zxid, err


class SaslOptions:
    """Checked when the Client is made, so a typo fails at once rather than at connect."""

    def __init__(self, options: Mapping[str, str]) -> None:
        mechanism = options.get("mechanism", "DIGEST-MD5").upper()
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism!r} "
                             f"(supported: {', '.join(MECHANISMS)})")
        unknown = set(options) - _OPTIONS[mechanism]
        if unknown:
            raise ValueError(f"unknown SASL options for {mechanism}: "
                             f"{', '.join(sorted(unknown))}")
        if mechanism == "DIGEST-MD5" and (
                not options.get("username") or options.get("password") is None):
            raise ValueError("DIGEST-MD5 needs a username and a password")
        self.mechanism = mechanism
        self._username = options.get("username") or options.get("principal")
        self._password = options.get("password")
        self._authzid = options.get("authzid")
        self._service = options.get("service", "zookeeper")
        self._host = options.get("host")

    def __repr__(self) -> str:  # never the password
        return f"SaslOptions(mechanism={self.mechanism!r}, username={self._username!r})"

    async def start(self, conn: Connection) -> DigestMD5Client | GssapiClient:
        if self.mechanism == "DIGEST-MD5":
            assert self._username is not None and self._password is not None
            return DigestMD5Client(self._username, self._password, os.urandom,
                                   authzid=self._authzid)
        host = self._host or await _canonical_host(conn)
        return await anyio.to_thread.run_sync(
            lambda: GssapiClient(self._service, host, principal=self._username,
                                 authzid=self._authzid))


async def _canonical_host(conn: Connection) -> str:
    """The server's name as Java's client finds it: its address, looked up in reverse."""
    address = conn.stream.extra(anyio.abc.SocketAttribute.remote_address)
    ip = str(address[0]) if isinstance(address, tuple) else "localhost"
    try:
        name, _ = await anyio.getnameinfo((ip, 0), socket.NI_NAMEREQD)
        return name
    except OSError:
        return ip


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
    challenge: bytes | None = None
    try:
        mechanism = await options.start(conn)
    except SaslError:
        return Err.AUTHFAILED
    while True:
        try:
            if isinstance(mechanism, GssapiClient):  # may ask the KDC for a ticket
                token = await anyio.to_thread.run_sync(mechanism.evaluate, challenge)
            else:
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
