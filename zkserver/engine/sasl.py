"""SASL on the client port (opcode 102) and the authentication ZooKeeper may insist on.

Each SASL request carries one token of the client's exchange; the reply (same xid, zxid 0)
carries the server's next token. The exchange of a connection lives here, keyed weakly by its
`Client`, so it goes when the connection goes. As ZooKeeper's `processSasl`:

* no JAAS login section: no SASL server; every token gets OK and an empty (null) token;
* the exchange completes: the connection holds `sasl:<name>` (the name canonicalised as
  principal.py says), and `super` too if the name is a configured `superUser`;
* the exchange fails: AUTHFAILED (SESSIONCLOSEDREQUIRESASLAUTH where SASL is required) and the
  connection closes, unless `allowSaslFailedClients` keeps it open with an OK.

`admit` is ZooKeeper's `enforce.auth.enabled` check: any request other than addAuth and SASL
from a connection holding no identity of an enforced scheme is answered with
SESSIONCLOSEDREQUIRESASLAUTH, and the connection closes.
"""

from __future__ import annotations

import logging
import os
import struct
import weakref
from collections.abc import Callable

from zkserver.auth import principal
from zkserver.auth.digest_md5 import DigestMD5Server, SaslError
from zkserver.auth.gss import GssapiServer
from zkserver.auth.settings import SaslSettings
from zkserver.engine.ordering import Client
from zkserver.proto import records as R
from zkserver.proto.codes import Err, Op
from zkserver.proto.frames import reply
from zkserver.proto.jute import JuteError, Reader
from zkserver.tree import acl as aclmod

log = logging.getLogger(__name__)

_NULL_TOKEN = struct.pack(">i", -1)  # SetSASLResponse with a null token
_header = struct.Struct(">ii").unpack_from


class SaslGate:
    def __init__(self, settings: SaslSettings | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self.settings = settings or SaslSettings()
        self.enforcing = self.settings.enforce_auth  # read on every request: a plain attribute
        self._random_bytes = random_bytes
        self._exchanges: weakref.WeakKeyDictionary[Client, DigestMD5Server | GssapiServer] = (
            weakref.WeakKeyDictionary())

    def admit(self, client: Client, data: bytes) -> bool:
        """False (and the connection answered and closing) if the request must be refused
        because the connection has not authenticated with an enforced scheme."""
        settings = self.settings
        if not settings.enforce_auth or len(data) < 8 or client.close_after_flush:
            return True  # a closing connection's requests are dropped by the engine anyway
        xid, op = _header(data)
        if op in (Op.AUTH, Op.SASL):
            return True
        schemes = settings.enforce_schemes
        if any(scheme in schemes for scheme, _ in client.auth_ids):
            return True
        log.error("client %s:%d authenticated with %s, none of the required schemes %s: "
                  "closing session", *client.remote,
                  sorted({s for s, _ in client.auth_ids}), list(schemes))
        client.send(reply(xid, 0, Err.SESSIONCLOSEDREQUIRESASLAUTH))
        client.close()
        return False

    def answer(self, client: Client, xid: int, frame: bytes, max_buffer: int) -> None:
        """One SASL request (header and body) of `client`."""
        try:
            token = R.SaslRequest.decode_from(Reader(frame, 8, max_buffer=max_buffer)).token
        except JuteError:
            token = None
        if token is None:
            # ZooKeeper fails to read the record (or its null token) and drops the connection.
            client.close()
            return
        settings = self.settings
        if settings.credentials is None:
            client.send(reply(xid, 0, 0, _NULL_TOKEN))
            return
        try:
            exchange = self._exchanges.get(client)
            if exchange is None:
                exchange = self._start()
                self._exchanges[client] = exchange
            answer = exchange.evaluate(token)
            if exchange.complete and exchange.authentication_id is not None:
                self._authenticated(client, exchange.authentication_id,
                                    exchange.authorization_id or exchange.authentication_id)
        except (SaslError, principal.MalformedName) as e:
            log.warning("client %s:%d failed to SASL authenticate: %s", *client.remote, e)
            if settings.allow_failed_clients and not settings.sasl_required:
                log.warning("maintaining client connection despite SASL authentication failure")
                client.send(reply(xid, 0, 0, _NULL_TOKEN))
                return
            err = Err.SESSIONCLOSEDREQUIRESASLAUTH if settings.sasl_required else Err.AUTHFAILED
            client.send(reply(xid, 0, err, _NULL_TOKEN))
            client.close()
            return
        if answer is None:
            client.send(reply(xid, 0, 0, _NULL_TOKEN))
        else:
            client.send(reply(xid, 0, 0, struct.pack(">i", len(answer)) + answer))

    def _start(self) -> DigestMD5Server | GssapiServer:
        """A new exchange in the server's one mechanism (GSSAPI when it logged in to
        Kerberos, as ZooKeeper's server chooses)."""
        settings = self.settings
        if settings.gss_credentials is not None:
            return GssapiServer(settings.gss_credentials)
        return DigestMD5Server(settings.password_of, self._random_bytes)

    def _authenticated(self, client: Client, authentication_id: str,
                       authorization_id: str) -> None:
        settings = self.settings
        name = principal.authorized_id(authentication_id, authorization_id,
                                       remove_host=settings.remove_host,
                                       remove_realm=settings.remove_realm,
                                       default_realm=settings.default_realm)
        log.info("session 0x%x: adding SASL authorization for authorizationID: %s",
                 client.session_id, name)
        ids = client.auth_ids
        if ("sasl", name) not in ids:
            ids.append(("sasl", name))
        if settings.is_super(name) and aclmod.SUPER not in ids:
            ids.append(aclmod.SUPER)
            log.info("session 0x%x: authenticated id %r as super user", client.session_id, name)
