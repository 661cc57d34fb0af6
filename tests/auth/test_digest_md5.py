"""The DIGEST-MD5 exchange objects on their own (zkserver/auth/digest_md5.py), no I/O."""

from __future__ import annotations

import os

import pytest

from zkserver.auth.digest_md5 import (
    DigestMD5Client,
    DigestMD5Server,
    SaslError,
    parse_directives,
)


def _server() -> DigestMD5Server:
    return DigestMD5Server({"bob": "bob-secret", "ünï": "päss"}.get, os.urandom)


@pytest.mark.parametrize("user,password", [("bob", "bob-secret"), ("ünï", "päss")])
def test_client_and_server_agree(user: str, password: str) -> None:
    server, client = _server(), DigestMD5Client(user, password, os.urandom)
    token = client.evaluate(None)
    assert token == b""
    challenge = server.evaluate(token)
    assert b'charset=utf-8' in challenge and b"algorithm=md5-sess" in challenge
    rspauth = server.evaluate(client.evaluate(challenge) or b"")
    assert server.complete and server.authentication_id == user
    assert client.evaluate(rspauth) is None and client.complete


def test_an_authzid_is_carried_and_checked() -> None:
    server, client = _server(), DigestMD5Client("bob", "bob-secret", os.urandom, authzid="ops")
    rspauth = server.evaluate(client.evaluate(server.evaluate(client.evaluate(None) or b"")))
    assert server.authorization_id == "ops"
    client.evaluate(rspauth)


def test_the_client_refuses_a_server_that_does_not_know_the_password() -> None:
    impostor = DigestMD5Server({"bob": "guessed"}.get, os.urandom)
    client = DigestMD5Client("bob", "bob-secret", os.urandom)
    challenge = impostor.evaluate(client.evaluate(None) or b"")
    response = client.evaluate(challenge)
    with pytest.raises(SaslError):
        impostor.evaluate(response or b"")  # the impostor can't check the response...
    forged = b"rspauth=" + b"0" * 32
    with pytest.raises(SaslError, match="rspauth"):
        client.evaluate(forged)  # ...nor forge its answer


def test_a_failed_exchange_stays_failed() -> None:
    server = _server()
    with pytest.raises(SaslError):
        server.evaluate(b"not empty")
    with pytest.raises(SaslError, match="already failed"):
        server.evaluate(b"")


def test_parse_directives() -> None:
    d = parse_directives(b' a=1 ,b="x\\"y", ,C=, a="2"')
    assert d == {"a": [b"1", b"2"], "b": [b'x"y'], "c": [b""]}
    for bad in (b"a", b'a="open', b'a="x"junk', b"=1"):
        with pytest.raises(SaslError):
            parse_directives(bad)
