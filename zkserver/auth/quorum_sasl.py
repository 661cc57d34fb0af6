"""SASL between the members of an ensemble (`quorum.auth.*`), sans-IO.

ZooKeeper authenticates every connection one member opens to another: the member that opens
it is the *learner* (JAAS section `QuorumLearner`, or `quorum.auth.learner.saslLoginContext`),
the one that accepts it is the *server* (`QuorumServer`, or
`quorum.auth.server.saslLoginContext`). As in ZooKeeper, a section with a Kerberos principal
means GSSAPI (the learner asks for `quorum.auth.kerberos.servicePrincipal`, `_HOST` replaced by
the peer's host name), anything else DIGEST-MD5 (protocol `zookeeper-quorum`, server name
`zk-quorum-sasl-md5`; the server's `user_<name>` options, the learner's `username`/`password`).

* `quorum.auth.enableSasl`: members run the exchange at all;
* `quorum.auth.serverRequireSasl`: a member refuses (closes) a connection whose learner failed
  or did not authenticate; otherwise it logs that and carries on;
* `quorum.auth.learnerRequireSasl`: a member gives up a connection it opened when the other
  side refused it or did not prove itself; otherwise it carries on.

zkserver members speak their own link protocol, so the frames are ours: each is
`b"ZKQA"`, a status byte and a token; the learner sends IN_PROGRESS frames, the server answers
each with IN_PROGRESS (and its token), SUCCESS (with its last token, if any) or ERROR. The
learner then sends its server id and the link carries on as without SASL. `LearnerExchange` and
`ServerExchange` below are the two state machines; zkserver/quorum/quorum_auth.py carries
their frames on the sockets.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from zkserver.auth import jaas
from zkserver.auth.digest_md5 import DigestMD5Client, DigestMD5Server, SaslError

MAGIC = b"ZKQA"
IN_PROGRESS, SUCCESS, ERROR = 0, 1, 2
MAX_FRAME = 64 * 1024 + 5
QUORUM_PROTOCOL = "zookeeper-quorum"
QUORUM_SERVER_NAME = "zk-quorum-sasl-md5"
DEFAULT_SERVICE_PRINCIPAL = "zkquorum/localhost"
KRB5_LOGIN_MODULE = "com.sun.security.auth.module.Krb5LoginModule"


class QuorumSaslConfigError(Exception):
    """A quorum SASL setting ZooKeeper would refuse to start with."""


def encode(status: int, token: bytes | None) -> bytes:
    return MAGIC + bytes([status]) + (token or b"")


def decode(frame: bytes) -> tuple[int, bytes]:
    """(status, token); SaslError for anything that is not one of our auth frames."""
    if len(frame) < 5 or frame[:4] != MAGIC or frame[4] not in (IN_PROGRESS, SUCCESS, ERROR):
        raise SaslError("quorum SASL: not an authentication frame")
    return frame[4], frame[5:]


def is_auth_frame(frame: bytes) -> bool:
    return len(frame) >= 5 and frame[:4] == MAGIC


@attrs.frozen
class QuorumSasl:
    """What a member needs for quorum SASL, read once at start-up (`from_properties`).

    `server_users` holds the QuorumServer section's DIGEST-MD5 users (secrets: not in repr);
    `learner_login` the QuorumLearner section's options; `server_kerberos` and
    `learner_kerberos` the Krb5LoginModule options of either, when it is one. Credentials for
    GSSAPI are acquired by the Trio side (they read keytabs)."""

    learner_require: bool = False
    server_require: bool = False
    learner_context: str = "QuorumLearner"
    server_context: str = "QuorumServer"
    service_principal: str = DEFAULT_SERVICE_PRINCIPAL
    server_users: dict[str, str] = attrs.field(factory=dict, repr=False)
    learner_login: dict[str, str] = attrs.field(factory=dict, repr=False)
    server_kerberos: dict[str, str] | None = attrs.field(default=None, repr=False)
    learner_kerberos: dict[str, str] | None = attrs.field(default=None, repr=False)
    server_credentials: Any = attrs.field(default=None, repr=False, eq=False)
    learner_credentials: Any = attrs.field(default=None, repr=False, eq=False)

    def start_server(self, random_bytes: Callable[[int], bytes] = os.urandom
                     ) -> ServerExchange:
        if self.server_kerberos is not None:
            from zkserver.auth.gss import GssapiServer

            return ServerExchange(GssapiServer(self.server_credentials))
        return ServerExchange(DigestMD5Server(
            self.server_users.get, random_bytes, protocol=QUORUM_PROTOCOL,
            server_name=QUORUM_SERVER_NAME))

    def start_learner(self, peer_host: str,
                      random_bytes: Callable[[int], bytes] = os.urandom) -> LearnerExchange:
        """The learner's side towards a member at `peer_host` (may read a keytab and ask the
        KDC: the Trio side runs it in a thread for GSSAPI)."""
        if self.learner_kerberos is not None:
            from zkserver.auth.gss import GssapiClient

            service, _, host = self.service_principal.partition("/")
            host = host.partition("@")[0].replace("_HOST", peer_host) or peer_host
            return LearnerExchange(GssapiClient(service, host,
                                                credentials=self.learner_credentials))
        login = self.learner_login
        if "username" not in login or "password" not in login:
            raise SaslError(f"quorum SASL: the {self.learner_context} section has no "
                            "username and password")
        return LearnerExchange(DigestMD5Client(login["username"], login["password"],
                                               random_bytes, protocol=QUORUM_PROTOCOL,
                                               server_name=QUORUM_SERVER_NAME))

    @property
    def mechanism(self) -> str:
        return "GSSAPI" if self.server_kerberos is not None else "DIGEST-MD5"


def _flag(props: Mapping[str, str], key: str) -> bool:
    return props.get(key, "false").strip().lower() == "true"


def from_properties(props: Mapping[str, str],
                    sections: Mapping[str, list[jaas.LoginModule]] | None) -> QuorumSasl | None:
    """None unless `quorum.auth.enableSasl=true`; then the settings, checked as ZooKeeper's
    QuorumPeerConfig and QuorumPeer check them."""
    enabled = _flag(props, "quorum.auth.enableSasl")
    learner_require = _flag(props, "quorum.auth.learnerRequireSasl")
    server_require = _flag(props, "quorum.auth.serverRequireSasl")
    if not enabled:
        for key, value in (("learnerRequireSasl", learner_require),
                           ("serverRequireSasl", server_require)):
            if value:
                raise QuorumSaslConfigError(f"quorum.auth.enableSasl is disabled, so cannot "
                                            f"enable quorum.auth.{key}")
        return None
    if learner_require and not server_require:
        raise QuorumSaslConfigError("quorum.auth.serverRequireSasl is disabled, so cannot "
                                    "enable quorum.auth.learnerRequireSasl")
    learner_context = props.get("quorum.auth.learner.saslLoginContext", "QuorumLearner")
    server_context = props.get("quorum.auth.server.saslLoginContext", "QuorumServer")
    sections = sections or {}
    for context in (learner_context, server_context):
        if context not in sections:
            raise QuorumSaslConfigError(f"quorum.auth.enableSasl is true but the JAAS file has "
                                        f"no '{context}' section")
    users: dict[str, str] = {}
    server_kerberos = None
    for module in sections[server_context]:
        if module.name == KRB5_LOGIN_MODULE:
            server_kerberos = server_kerberos or dict(module.options)
        users.update({k[5:]: v for k, v in module.options.items() if k.startswith("user_")})
    learner_login: dict[str, str] = {}
    learner_kerberos = None
    for module in sections[learner_context]:
        if module.name == KRB5_LOGIN_MODULE:
            learner_kerberos = learner_kerberos or dict(module.options)
        learner_login.update(module.options)
    return QuorumSasl(
        learner_require=learner_require, server_require=server_require,
        learner_context=learner_context, server_context=server_context,
        service_principal=props.get("quorum.auth.kerberos.servicePrincipal",
                                    DEFAULT_SERVICE_PRINCIPAL),
        server_users=users, learner_login=learner_login, server_kerberos=server_kerberos,
        learner_kerberos=learner_kerberos)


def kerberos_login(settings: QuorumSasl) -> QuorumSasl:
    """Acquire the Kerberos credentials the sections name (keytabs read now, as Java's
    Krb5LoginModule logs in at start-up); SaslError if it can't."""
    from zkserver.auth import gss

    server_creds = learner_creds = None
    if settings.server_kerberos is not None:
        opts = settings.server_kerberos
        server_creds = gss.acceptor_credentials(opts.get("principal"), opts.get("keyTab"))
    if settings.learner_kerberos is not None:
        opts = settings.learner_kerberos
        learner_creds = gss.initiator_credentials(opts.get("principal"), opts.get("keyTab"))
    return attrs.evolve(settings, server_credentials=server_creds,
                        learner_credentials=learner_creds)


class ServerExchange:
    """The accepting member's side: `receive(frame)` -> the frame to answer with. `done` once
    answered with SUCCESS or ERROR; `authenticated` then says which, `identity` who, and
    `error` why not (safe to log)."""

    def __init__(self, mechanism: Any) -> None:
        self._mechanism = mechanism
        self.done = False
        self.authenticated = False
        self.identity: str | None = None
        self.error: str | None = None

    def receive(self, frame: bytes) -> bytes:
        if self.done:
            raise SaslError("quorum SASL: a frame after the exchange ended")
        try:
            status, token = decode(frame)
            if status != IN_PROGRESS:
                raise SaslError("quorum SASL: the learner sent a server status")
            answer = self._mechanism.evaluate(token)
        except SaslError as e:
            self.done = True
            self.error = str(e)
            return encode(ERROR, None)
        if self._mechanism.complete:
            self.done = self.authenticated = True
            self.identity = self._mechanism.authorization_id
            return encode(SUCCESS, answer)
        return encode(IN_PROGRESS, answer)


class LearnerExchange:
    """The connecting member's side: `first()` is the opening frame; `receive(frame)` the
    server's answer -> the next frame to send, or None when the exchange is over (`accepted`
    then says whether the server let us in and proved itself; `error` why not)."""

    def __init__(self, mechanism: Any) -> None:
        self._mechanism = mechanism
        self.accepted = False
        self.error: str | None = None

    def first(self) -> bytes:
        return encode(IN_PROGRESS, self._mechanism.evaluate(None))

    def receive(self, frame: bytes) -> bytes | None:
        try:
            status, token = decode(frame)
            if status == ERROR:
                raise SaslError("quorum SASL: the server refused our credentials")
            out = self._mechanism.evaluate(token)
            if status == SUCCESS:
                if out is not None:  # the mechanism wanted more: the server ended too soon
                    raise SaslError("quorum SASL: the server ended the exchange early")
                self.accepted = True
                return None
        except SaslError as e:
            self.error = str(e)
            return None
        if out is None:
            self.error = "quorum SASL: the exchange ended without the server's SUCCESS"
            return None
        return encode(IN_PROGRESS, out)
