"""The quorum SASL settings and exchanges on their own (zkserver/auth/quorum_sasl.py), no I/O."""

from __future__ import annotations

import pytest

from zkserver.auth import jaas
from zkserver.auth.quorum_sasl import (
    ERROR,
    IN_PROGRESS,
    SUCCESS,
    QuorumSaslConfigError,
    decode,
    encode,
    from_properties,
)
from zkserver.auth.settings import KerberosLogin, SaslConfigError, load_sasl

JAAS = """
QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required
               user_member="s3cret"; };
QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required
                username="member" password="%s"; };
"""
ON = {"quorum.auth.enableSasl": "true", "quorum.auth.learnerRequireSasl": "true",
      "quorum.auth.serverRequireSasl": "true"}


def _settings(password: str = "s3cret"):
    settings = from_properties(ON, jaas.parse_jaas(JAAS % password))
    assert settings is not None
    return settings


def _run(server_side, learner_side) -> None:
    frame = learner_side.first()
    while frame is not None:
        answer = server_side.receive(frame)
        frame = learner_side.receive(answer)


def test_members_with_the_same_secret_authenticate() -> None:
    settings = _settings()
    server, learner = settings.start_server(), settings.start_learner("localhost")
    _run(server, learner)
    assert server.authenticated and server.identity == "member" and learner.accepted


def test_a_wrong_password_is_refused_and_the_learner_knows() -> None:
    server = _settings().start_server()
    learner = _settings("guess").start_learner("localhost")
    _run(server, learner)
    assert server.done and not server.authenticated
    assert "does not match" in (server.error or "") and "guess" not in (server.error or "")
    assert not learner.accepted and "refused" in (learner.error or "")


@pytest.mark.parametrize("frame", [b"", b"ZKQ", b"XXXX\0", b"ZKQA\x07", encode(SUCCESS, b""),
                                   encode(IN_PROGRESS, b"x" * 70000)])
def test_bad_frames_end_the_exchange_with_error(frame: bytes) -> None:
    server = _settings().start_server()
    assert decode(server.receive(frame))[0] == ERROR
    assert server.done and not server.authenticated
    with pytest.raises(Exception, match="after the exchange ended"):
        server.receive(encode(IN_PROGRESS, b""))


def test_a_server_that_claims_success_too_early_is_not_believed() -> None:
    learner = _settings().start_learner("localhost")
    learner.first()
    assert learner.receive(encode(SUCCESS, b"")) is None
    assert not learner.accepted


@pytest.mark.parametrize("props,message", [
    ({"quorum.auth.learnerRequireSasl": "true"}, "enableSasl is disabled"),
    ({"quorum.auth.enableSasl": "true", "quorum.auth.learnerRequireSasl": "true"},
     "serverRequireSasl is disabled"),
    ({"quorum.auth.enableSasl": "true"}, "no 'QuorumLearner' section"),
])
def test_settings_zookeeper_refuses(props: dict[str, str], message: str) -> None:
    with pytest.raises(QuorumSaslConfigError, match=message):
        from_properties(props, {})


def test_off_unless_enabled_and_contexts_renamed() -> None:
    assert from_properties({}, None) is None
    sections = jaas.parse_jaas(JAAS.replace("QuorumServer", "S").replace("QuorumLearner", "L")
                               % "s3cret")
    settings = from_properties({"quorum.auth.enableSasl": "true",
                                "quorum.auth.server.saslLoginContext": "S",
                                "quorum.auth.learner.saslLoginContext": "L"}, sections)
    assert settings is not None and settings.mechanism == "DIGEST-MD5"
    assert "s3cret" not in repr(settings)


def test_load_sasl_reads_quorum_sections(tmp_path) -> None:
    path = tmp_path / "jaas.conf"
    path.write_text(JAAS % "s3cret")
    settings = load_sasl(ON, {"SERVER_JVMFLAGS": f"-Djava.security.auth.login.config={path}"})
    assert settings.quorum is not None and settings.quorum.server_require
    with pytest.raises(SaslConfigError, match="QuorumLearner"):
        load_sasl({"quorum.auth.enableSasl": "true"}, {})


def test_krb5_login_module_options() -> None:
    login = KerberosLogin.from_options({"useKeyTab": "true", "keyTab": "/k.tab",
                                        "principal": "zookeeper/h@R"})
    assert login == KerberosLogin("/k.tab", "zookeeper/h@R")
    assert KerberosLogin.from_options({"useTicketCache": "true"}) == KerberosLogin(None, None)
