"""JAAS files, principal names and the SASL settings a server starts with (zkserver/auth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zkserver.auth import jaas, principal
from zkserver.auth.settings import SaslConfigError, from_properties, load_sasl
from zkserver.config import ConfigError, load_config, parse_config

JAAS = """\
/* ZooKeeper's server section,
   and a client one */
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="admin \\"secret\\""   // a quoted quote
    user_bob="bob-secret";
};
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob" password="bob-secret";
};
"""
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"


def test_parse_jaas() -> None:
    sections = jaas.parse_jaas(JAAS)
    [server] = sections["Server"]
    assert server.name == "org.apache.zookeeper.server.auth.DigestLoginModule"
    assert server.flag == "required"
    assert server.options == {"user_super": 'admin "secret"', "user_bob": "bob-secret"}
    assert sections["Client"][0].options["username"] == "bob"


@pytest.mark.parametrize("text", [
    "Server { a.B required x=\"1\"; }",           # no ; after the section
    "Server { a.B mandatory x=\"1\"; };",         # not a control flag
    "Server { a.B required x; };",                # an option without a value
    "Server { a.B required x=\"1\" ",             # cut short
    "Server { a.B required x=\"1; };",            # an unterminated quote
])
def test_bad_jaas_files_are_refused_with_a_place(text: str) -> None:
    with pytest.raises(jaas.JaasError, match=r"^<jaas>:\d+: "):
        jaas.parse_jaas(text)


def test_jvm_properties_later_flags_win() -> None:
    env = {"SERVER_JVMFLAGS": "-Xmx1g -Djava.security.auth.login.config=/a.conf -Dx=1",
           "JVMFLAGS": "-Djava.security.auth.login.config='/b c.conf'"}
    props = jaas.jvm_properties(env, "SERVER_JVMFLAGS", "JVMFLAGS")
    assert props == {jaas.JAAS_PROPERTY: "/b c.conf", "x": "1"}


@pytest.mark.parametrize("name,host,realm,expected", [
    ("bob", False, False, "bob"),
    ("zk/host.example@EXAMPLE.COM", False, False, "zk/host.example@EXAMPLE.COM"),
    ("zk/host.example@EXAMPLE.COM", True, False, "zk@EXAMPLE.COM"),
    ("zk/host.example@EXAMPLE.COM", False, True, "zk/host.example"),
    ("zk/host.example@EXAMPLE.COM", True, True, "zk"),
    ("bob@OTHER.ORG", True, True, "bob@OTHER.ORG"),  # no rule for another realm: kept
])
def test_authorized_ids(name: str, host: bool, realm: bool, expected: str) -> None:
    default = "EXAMPLE.COM"
    assert principal.authorized_id(name, name, remove_host=host, remove_realm=realm,
                                   default_realm=default) == expected


def test_sasl_acl_ids() -> None:
    assert principal.valid("bob") and principal.valid("zk/h@R")
    assert not principal.valid("a@b@c")


def test_settings_from_properties() -> None:
    s = from_properties({"zookeeper.authProvider.1": SASL_PROVIDER,
                         "zookeeper.superUser": "super",
                         "zookeeper.kerberos.removeHostFromPrincipal": "true",
                         "zookeeper.kerberos.removeRealmFromPrincipal": "TRUE"},
                        jaas.parse_jaas(JAAS))
    assert s.credentials == {"super": 'admin "secret"', "bob": "bob-secret"}
    assert s.sasl_scheme and s.is_super("super") and not s.is_super("bob")
    assert s.remove_host and not s.remove_realm  # Java's "true".equals: exact
    assert s.password_of("bob") == "bob-secret" and s.password_of("eve") is None
    assert not s.enforce_auth


def test_super_password_replaces_a_listed_super_only() -> None:
    props = {"zookeeper.SASLAuthenticationProvider.superPassword": "sp"}
    assert from_properties(props, jaas.parse_jaas(JAAS)).password_of("super") == "sp"
    only_bob = jaas.parse_jaas('Server { m.D required user_bob="b"; };')
    assert from_properties(props, only_bob).password_of("super") is None


def test_another_login_context() -> None:
    s = from_properties({"zookeeper.sasl.serverconfig": "Client"}, jaas.parse_jaas(JAAS))
    assert s.credentials == {}  # the Client section has no user_ options


@pytest.mark.parametrize("props,message", [
    ({"zookeeper.enforce.auth.enabled": "true"}, "must be  configured|must be configured"),
    ({"zookeeper.enforce.auth.enabled": "true", "zookeeper.enforce.auth.schemes": "sasl"},
     "Authentication scheme sasl is not available"),
    ({"zookeeper.sessionRequireClientSASLAuth": "true"},
     "Authentication scheme sasl is not available"),
])
def test_enforcement_needs_available_schemes(props: dict[str, str], message: str) -> None:
    with pytest.raises(SaslConfigError, match=message):
        from_properties(props)


def test_enforcement_settings() -> None:
    s = from_properties({"zookeeper.sessionRequireClientSASLAuth": "true",
                         "zookeeper.authProvider.sasl": SASL_PROVIDER})
    assert s.enforce_auth and s.sasl_required and s.enforce_schemes == ("sasl",)
    s = from_properties({"zookeeper.enforce.auth.enabled": "true",
                         "zookeeper.enforce.auth.schemes": "digest, sasl",
                         "zookeeper.authProvider.1": SASL_PROVIDER})
    assert s.enforce_schemes == ("digest", "sasl") and s.sasl_required


def test_zoo_cfg_keys_become_settings() -> None:
    config = parse_config(f"dataDir=/tmp/x\nclientPort=2181\nauthProvider.1={SASL_PROVIDER}\n"
                          "kerberos.removeRealmFromPrincipal=true\n")
    assert config.sasl.sasl_scheme and config.sasl.remove_realm
    assert not any("SASLAuthenticationProvider" in w for w in config.warnings)
    with pytest.raises(ConfigError, match="enforce.auth.schemes must be"):
        parse_config("dataDir=/tmp/x\nclientPort=2181\nenforce.auth.enabled=true\n")


def test_the_jaas_file_comes_from_the_jvm_flags_or_zkservers_own_options(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "jaas.conf"
    path.write_text(JAAS)
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"dataDir={tmp_path}/data\nclientPort=2181\n")
    monkeypatch.delenv("JVMFLAGS", raising=False)
    monkeypatch.setenv("SERVER_JVMFLAGS", f"-Djava.security.auth.login.config={path}")
    assert load_config(str(cfg)).sasl.credentials == {"super": 'admin "secret"',
                                                      "bob": "bob-secret"}
    monkeypatch.delenv("SERVER_JVMFLAGS")
    assert load_config(str(cfg)).sasl.credentials is None  # no JAAS file: SASL off
    assert load_config(str(cfg), jaas_file=str(path)).sasl.credentials is not None
    cfg.write_text(f"dataDir={tmp_path}/data\nclientPort=2181\njaasConfigFile=jaas.conf\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(str(cfg)).sasl.jaas_file == str(path)


def test_an_unreadable_jaas_file_stops_the_server(tmp_path: Path) -> None:
    with pytest.raises(SaslConfigError, match="No JAAS configuration section named 'Server'"):
        load_sasl({}, {}, str(tmp_path / "missing.conf"))
    bad = tmp_path / "bad.conf"
    bad.write_text("Server { oops")
    with pytest.raises(SaslConfigError, match="bad.conf"):
        load_sasl({}, {}, str(bad))
    no_section = tmp_path / "client-only.conf"
    no_section.write_text('Client { m.D required username="u"; };')
    assert load_sasl({}, {}, str(no_section)).credentials is None


def test_passwords_stay_out_of_reprs() -> None:
    s = from_properties({"zookeeper.SASLAuthenticationProvider.superPassword": "sp-secret"},
                        jaas.parse_jaas(JAAS))
    assert "bob-secret" not in repr(s) and "sp-secret" not in repr(s)
