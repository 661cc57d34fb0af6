"""SASL on the client port (`engine/sasl.py`, `auth/digest_md5.py`), driven through the Engine.

pure-sasl's DIGEST-MD5 client (what kazoo uses) plays the client, so both sides of every hash
are computed by independent code. Bad input gets ZooKeeper's answer: AUTHFAILED with a null
token and the connection closing, never an effect on another connection, never a secret in
the log.
"""

from __future__ import annotations

import logging
import struct

import attrs
import pytest
from puresasl.client import SASLClient
from support.wire import GET_DATA, WHO_AM_I, buf, connect_request, request, ustr

from zkserver.auth.settings import SaslSettings, from_properties
from zkserver.engine import Client, Engine
from zkserver.engine.sasl import SaslGate
from zkserver.proto import records as R
from zkserver.proto.codes import Err, Op
from zkserver.tree import acl as aclmod

NOW = 1_000
WALL = 1_700_000_000_000
USERS = {"bob": "bob-secret", "super": "admin-secret"}


def _settings(**props: str) -> SaslSettings:
    base = {"zookeeper.authProvider.1":
            "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"}
    return attrs.evolve(from_properties({**base, **props}), credentials=dict(USERS))


def _engine(settings: SaslSettings | None = None) -> Engine:
    counter = iter(range(1 << 30))
    return Engine(sasl=SaslGate(settings or _settings(),
                                random_bytes=lambda n: bytes([next(counter) % 256]) * n))


def _session(engine: Engine, port: int = 1) -> Client:
    client = engine.connect(("127.0.0.1", port), lambda: None, NOW, WALL)
    assert engine.handshake(client, connect_request(6000), NOW, WALL)
    engine.apply_committed(engine.take_commits(), NOW)
    client.out.clear()
    return client


def _replies(client: Client) -> list[tuple[int, int, bytes]]:
    """(xid, err, body) of every reply queued, which are then cleared."""
    data = bytes(client.out)
    client.out.clear()
    out = []
    while data:
        length = struct.unpack_from(">i", data)[0]
        xid, _zxid, err = struct.unpack_from(">iqi", data, 4)
        out.append((xid, err, data[20:4 + length]))
        data = data[4 + length:]
    return out


def _sasl(engine: Engine, client: Client, xid: int,
          token: bytes | None) -> tuple[int, bytes | None]:
    engine.handle(client, request(xid, Op.SASL, buf(token))[4:], NOW, WALL)
    [(rxid, err, body)] = _replies(client)
    assert rxid == xid
    length = struct.unpack_from(">i", body)[0]
    return err, None if length < 0 else body[4:4 + length]


def _pure_sasl(user: str, password: str) -> SASLClient:
    return SASLClient("zk-sasl-md5", "zookeeper", mechanism="DIGEST-MD5", username=user,
                      password=password)


def _exchange(engine: Engine, client: Client, user: str, password: str) -> int:
    """kazoo's loop: empty token, then responses until the client is done; the last error."""
    cli = _pure_sasl(user, password)
    challenge = None
    for xid in range(1, 5):
        response = cli.process(challenge)
        if cli.complete and not response:
            return 0
        err, challenge = _sasl(engine, client, xid, response or b"")
        if err:
            return err
    raise AssertionError("the exchange did not finish")


def test_digest_md5_with_pure_sasl_adds_the_sasl_identity() -> None:
    engine = _engine()
    client = _session(engine)
    assert _exchange(engine, client, "bob", "bob-secret") == 0
    assert ("sasl", "bob") in client.auth_ids
    assert aclmod.SUPER not in client.auth_ids
    assert not client.close_after_flush
    engine.handle(client, request(9, WHO_AM_I)[4:], NOW, WALL)
    [(_, err, body)] = _replies(client)
    assert err == 0
    infos = R.WhoAmIResponse.decode(body).clientInfo or []
    # (in ZooKeeper's identity-set order, which tests/engine/test_engine_xids.py checks)
    assert sorted((i.authScheme, i.user) for i in infos) == [("ip", "127.0.0.1"), ("sasl", "bob")]


def test_a_configured_super_user_gets_super() -> None:
    engine = _engine(_settings(**{"zookeeper.superUser": "super"}))
    client = _session(engine)
    assert _exchange(engine, client, "super", "admin-secret") == 0
    assert client.auth_ids[-2:] == [("sasl", "super"), aclmod.SUPER]


@pytest.mark.parametrize("user,password", [("bob", "hunter2"), ("mallory", "bob-secret"),
                                           ("", "x")])
def test_wrong_credentials_fail_and_close_without_logging_secrets(
        user: str, password: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    engine = _engine()
    client = _session(engine)
    assert _exchange(engine, client, user, password) == Err.AUTHFAILED
    assert client.close_after_flush
    assert [s for s, _ in client.auth_ids] == ["ip"]
    for secret in ("bob-secret", "admin-secret", "hunter2"):
        assert secret not in caplog.text
    assert "failed to SASL authenticate" in caplog.text


def _response_token(engine: Engine, client: Client, password: str = "bob-secret") -> bytes:
    cli = _pure_sasl("bob", password)
    cli.process(None)
    err, challenge = _sasl(engine, client, 1, b"")
    assert err == 0 and challenge
    return cli.process(challenge)


@pytest.mark.parametrize("token", [
    b"\0" * 20,                        # another mechanism's initial response
    b"auth\0bob\0bob-secret",          # PLAIN
], ids=["binary", "plain"])
def test_an_initial_response_is_another_mechanism_and_fails(token: bytes) -> None:
    engine = _engine()
    client = _session(engine)
    err, body = _sasl(engine, client, 1, token)
    assert (err, body) == (Err.AUTHFAILED, None)
    assert client.close_after_flush


def test_bad_digest_responses(caplog: pytest.LogCaptureFixture) -> None:
    cases = {
        "truncated": lambda t: t[: len(t) // 2],
        "oversized": lambda t: t + b"," + b"x=" + b"y" * 5000,
        "repeated": lambda t: t + b",nonce=\"abc\"",
        "garbage": lambda t: b"\xff\xfe\x00=\"",
        "second-nc": lambda t: t.replace(b"nc=00000001", b"nc=00000002"),
        "other-uri": lambda t: t.replace(b"zookeeper/zk-sasl-md5", b"ldap/zk-sasl-md5"),
        "auth-conf": lambda t: t.replace(b"qop=auth", b"qop=auth-conf"),
        "empty": lambda t: b"",
    }
    for name, mangle in cases.items():
        engine = _engine()
        client = _session(engine)
        token = _response_token(engine, client)
        err, body = _sasl(engine, client, 2, mangle(token))
        assert (name, err, body) == (name, Err.AUTHFAILED, None)
        assert client.close_after_flush and ("sasl", "bob") not in client.auth_ids
    assert "bob-secret" not in caplog.text


def test_a_replayed_response_fails_on_another_connection() -> None:
    engine = _engine()
    first = _session(engine, 1)
    token = _response_token(engine, first)
    second = _session(engine, 2)
    assert _sasl(engine, second, 1, b"")[0] == 0  # a new challenge, a new nonce
    assert _sasl(engine, second, 2, token) == (Err.AUTHFAILED, None)


def test_a_round_after_completion_fails() -> None:
    engine = _engine()
    client = _session(engine)
    assert _exchange(engine, client, "bob", "bob-secret") == 0
    assert _sasl(engine, client, 7, b"") == (Err.AUTHFAILED, None)
    assert client.close_after_flush


def test_an_unfinished_exchange_disturbs_nobody() -> None:
    engine = _engine()
    stalled = _session(engine, 1)
    assert _sasl(engine, stalled, 1, b"")[0] == 0  # and never answers the challenge
    other = _session(engine, 2)
    assert _exchange(engine, other, "bob", "bob-secret") == 0
    engine.handle(other, request(5, GET_DATA, ustr("/") + b"\0")[4:], NOW, WALL)
    assert _replies(other)[0][:2] == (5, 0)
    engine.handle(stalled, request(2, GET_DATA, ustr("/") + b"\0")[4:], NOW, WALL)
    assert _replies(stalled)[0][:2] == (2, 0)  # without enforcement it may still read
    assert not stalled.close_after_flush


def test_an_undecodable_sasl_packet_closes_unanswered() -> None:
    engine = _engine()
    client = _session(engine)
    engine.handle(client, request(1, Op.SASL, struct.pack(">i", 50) + b"short")[4:], NOW, WALL)
    assert _replies(client) == []
    assert client.close_after_flush


def test_without_a_jaas_section_every_token_gets_an_empty_ok() -> None:
    engine = Engine(sasl=SaslGate(SaslSettings()))
    client = _session(engine)
    assert _sasl(engine, client, 1, b"") == (0, None)
    assert _sasl(engine, client, 2, b"anything") == (0, None)
    assert not client.close_after_flush and [s for s, _ in client.auth_ids] == ["ip"]


def test_allow_sasl_failed_clients_keeps_the_connection() -> None:
    engine = _engine(_settings(**{"zookeeper.allowSaslFailedClients": "true"}))
    client = _session(engine)
    token = _response_token(engine, client, "wrong")
    assert _sasl(engine, client, 2, token) == (0, None)  # an OK with a null token
    assert not client.close_after_flush and ("sasl", "bob") not in client.auth_ids


def test_session_require_client_sasl_auth() -> None:
    engine = _engine(_settings(**{"zookeeper.sessionRequireClientSASLAuth": "true"}))
    anonymous = _session(engine, 1)
    engine.handle(anonymous, request(3, GET_DATA, ustr("/") + b"\0")[4:], NOW, WALL)
    assert _replies(anonymous) == [(3, Err.SESSIONCLOSEDREQUIRESASLAUTH, b"")]
    assert anonymous.close_after_flush
    failed = _session(engine, 2)
    assert _exchange(engine, failed, "bob", "wrong") == Err.SESSIONCLOSEDREQUIRESASLAUTH
    good = _session(engine, 3)
    assert _exchange(engine, good, "bob", "bob-secret") == 0
    engine.handle(good, request(4, GET_DATA, ustr("/") + b"\0")[4:], NOW, WALL)
    assert _replies(good)[0][:2] == (4, 0)


def test_enforced_digest_scheme_is_satisfied_by_add_auth() -> None:
    engine = _engine(_settings(**{"zookeeper.enforce.auth.enabled": "true",
                                  "zookeeper.enforce.auth.schemes": "digest"}))
    client = _session(engine)
    engine.handle(client, request(-4, Op.AUTH, struct.pack(">i", 0) + ustr("digest")
                                  + buf(b"u:p"))[4:], NOW, WALL)
    assert _replies(client)[0][1] == 0
    engine.handle(client, request(3, GET_DATA, ustr("/") + b"\0")[4:], NOW, WALL)
    assert _replies(client)[0][:2] == (3, 0)
