"""What a server needs to know about SASL, gathered once at start-up from ZooKeeper's settings.

ZooKeeper reads these as Java system properties: a zoo.cfg key it does not consume itself
becomes `zookeeper.<key>` (so `authProvider.1=...` is `zookeeper.authProvider.1`), and
`-D<key>=<value>` flags in `SERVER_JVMFLAGS`/`JVMFLAGS` set them too (zoo.cfg wins, as it
sets the property after the JVM started). The JAAS file comes from `--jaas-config` on the
command line, else the zoo.cfg key `jaasConfigFile` (zkserver's own), else the JVM flag
`-Djava.security.auth.login.config=`.

`from_properties` is pure; `load_sasl` adds the reading of the JAAS file and the environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import attrs

from zkserver.auth import jaas, quorum_sasl

log = logging.getLogger(__name__)

SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
X509_PROVIDER = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"
DIGEST_LOGIN_MODULE = "org.apache.zookeeper.server.auth.DigestLoginModule"
KRB5_LOGIN_MODULE = "com.sun.security.auth.module.Krb5LoginModule"
JVM_FLAG_VARIABLES = ("SERVER_JVMFLAGS", "JVMFLAGS")  # zkServer.sh: "$SERVER_JVMFLAGS $JVMFLAGS"
_PROVIDER_SCHEMES = {SASL_PROVIDER: "sasl", X509_PROVIDER: "x509"}


class SaslConfigError(Exception):
    """A SASL setting ZooKeeper would refuse to start with; the message says which."""


@attrs.frozen
class KerberosLogin:
    """A JAAS `Krb5LoginModule`'s options that say who the server is: `keyTab` (None: the
    default keytab) and `principal` (None: whatever key the keytab holds)."""

    keytab: str | None
    principal: str | None

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> KerberosLogin:
        keytab = options.get("keyTab") if options.get("useKeyTab", "").lower() == "true" \
            or "keyTab" in options else None
        return cls(keytab, options.get("principal"))


@attrs.frozen
class SaslSettings:
    """`credentials` is None when there is no JAAS login section: ZooKeeper then has no SASL
    server, and answers every SASL token with an empty OK."""

    credentials: dict[str, str] | None = attrs.field(default=None, repr=False)  # secrets
    login_context: str = "Server"
    jaas_file: str | None = None
    super_password: str | None = attrs.field(default=None, repr=False)
    super_users: frozenset[str] = frozenset()
    remove_host: bool = False
    remove_realm: bool = False
    allow_failed_clients: bool = False
    provider_schemes: frozenset[str] = frozenset()
    enforce_auth: bool = False
    enforce_schemes: tuple[str, ...] = ()
    kerberos_modules: int = 0  # Krb5LoginModule entries: the server then speaks GSSAPI
    let_any_sasl_user: str | None = None  # zookeeper.letAnySaslUserDoX
    kerberos: KerberosLogin | None = None  # the first Krb5LoginModule's keytab and principal
    # MIT acceptor credentials for `kerberos`, acquired by load_sasl (gss.acceptor_credentials)
    gss_credentials: Any = attrs.field(default=None, repr=False, eq=False)
    default_realm: str = ""  # the krb5 default realm, for shortening principals
    quorum: quorum_sasl.QuorumSasl | None = None  # quorum.auth.enableSasl (load_sasl reads it)

    @property
    def mechanism(self) -> str:
        """ZooKeeper's server speaks GSSAPI when its login has a Kerberos principal, else
        DIGEST-MD5 (one mechanism per server, as ZooKeeperSaslServer chooses)."""
        return "GSSAPI" if self.kerberos is not None else "DIGEST-MD5"

    @property
    def sasl_scheme(self) -> bool:
        """Whether `sasl` ACLs may be set and are checked (authProvider.N names SASL)."""
        return "sasl" in self.provider_schemes

    @property
    def sasl_required(self) -> bool:
        return self.enforce_auth and "sasl" in self.enforce_schemes

    def password_of(self, user: str) -> str | None:
        """The JAAS `user_<name>` password; `super` may come from superPassword instead."""
        creds = self.credentials or {}
        if user not in creds:
            return None
        if user == "super" and self.super_password is not None:
            return self.super_password
        return creds[user]

    def is_super(self, authorized_id: str) -> bool:
        return bool(authorized_id) and authorized_id in self.super_users


def _true(props: Mapping[str, str], key: str) -> bool:
    """Java's "true".equals(...): exact, unlike Boolean.parseBoolean."""
    return props.get(key) == "true"


def _parse_boolean(props: Mapping[str, str], key: str) -> bool:
    """Java's Boolean.parseBoolean: "true" in any case."""
    return props.get(key, "").strip().lower() == "true"


def from_properties(props: Mapping[str, str],
                    sections: Mapping[str, list[jaas.LoginModule]] | None = None,
                    jaas_file: str | None = None) -> SaslSettings:
    """Settings from ZooKeeper's system properties and the parsed JAAS file (if any)."""
    context = props.get("zookeeper.sasl.serverconfig", "Server")
    credentials: dict[str, str] | None = None
    kerberos = 0
    login: KerberosLogin | None = None
    if sections is not None and context in sections:
        credentials = {}
        for module in sections[context]:
            if module.name == KRB5_LOGIN_MODULE:
                kerberos += 1
                login = login or KerberosLogin.from_options(module.options)
            for key, value in module.options.items():
                if key.startswith("user_"):
                    credentials[key[len("user_"):]] = value
    super_users = frozenset(
        v for k, v in props.items()
        if k == "zookeeper.superUser" or k.startswith("zookeeper.superUser."))
    schemes = {"ip", "digest"}
    for key, value in props.items():
        if key.startswith("zookeeper.authProvider."):
            scheme = _PROVIDER_SCHEMES.get(value.strip())
            if scheme:
                schemes.add(scheme)
    if _parse_boolean(props, "zookeeper.sessionRequireClientSASLAuth"):
        enforce, enforce_schemes = True, ("sasl",)
    else:
        enforce = _parse_boolean(props, "zookeeper.enforce.auth.enabled")
        raw = props.get("zookeeper.enforce.auth.schemes")
        enforce_schemes = tuple(s.strip() for s in raw.split(",")) if raw is not None else ()
    if enforce:
        if not enforce_schemes:
            raise SaslConfigError("zookeeper.enforce.auth.enabled is true "
                                  "zookeeper.enforce.auth.schemes must be configured.")
        for scheme in enforce_schemes:
            if scheme not in schemes:
                raise SaslConfigError(f"Authentication scheme {scheme} is not available.")
    return SaslSettings(
        credentials=credentials,
        login_context=context,
        jaas_file=jaas_file,
        super_password=props.get("zookeeper.SASLAuthenticationProvider.superPassword"),
        super_users=super_users,
        remove_host=_true(props, "zookeeper.kerberos.removeHostFromPrincipal"),
        remove_realm=_true(props, "zookeeper.kerberos.removeRealmFromPrincipal"),
        allow_failed_clients=_parse_boolean(props, "zookeeper.allowSaslFailedClients"),
        provider_schemes=frozenset(schemes - {"ip", "digest"}),
        enforce_auth=enforce,
        enforce_schemes=enforce_schemes,
        kerberos_modules=kerberos,
        let_any_sasl_user=props.get("zookeeper.letAnySaslUserDoX"),
        kerberos=login,
    )


def load_sasl(props: Mapping[str, str], env: Mapping[str, str],
              jaas_file: str | None = None) -> SaslSettings:
    """Read the JAAS file (named by `jaas_file`, else by the JVM flags in `env`) and build the
    settings. A named file that can't be read or parsed stops the server, as in ZooKeeper; a
    file without the login section leaves SASL off."""
    merged = dict(jaas.jvm_properties(env, *JVM_FLAG_VARIABLES))
    merged.update(props)
    path = jaas_file or merged.get(jaas.JAAS_PROPERTY)
    sections = None
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            sections = jaas.parse_jaas(text, path)
        except (OSError, UnicodeDecodeError, jaas.JaasError) as e:
            context = merged.get("zookeeper.sasl.serverconfig", "Server")
            raise SaslConfigError(f"No JAAS configuration section named '{context}' was "
                                  f"found in '{path}': {e}") from e
    settings = from_properties(merged, sections, path)
    if path and settings.credentials is None:
        log.info("JAAS file %s has no '%s' section: SASL is off", path, settings.login_context)
    _krb5_config(merged, env)
    if settings.kerberos is not None:
        settings = kerberos_login(settings)
    try:
        quorum = quorum_sasl.from_properties(merged, sections)
        if quorum is not None and (quorum.server_kerberos or quorum.learner_kerberos):
            quorum = quorum_sasl.kerberos_login(quorum)
    except (quorum_sasl.QuorumSaslConfigError, quorum_sasl.SaslError) as e:
        raise SaslConfigError(str(e)) from e
    if quorum is not None:
        log.info("quorum SASL: %s (learnerRequireSasl=%s, serverRequireSasl=%s)",
                 quorum.mechanism, quorum.learner_require, quorum.server_require)
        settings = attrs.evolve(settings, quorum=quorum)
    return settings


def _krb5_config(props: Mapping[str, str], env: Mapping[str, str]) -> None:
    """`-Djava.security.krb5.conf=` (the JVM's krb5 configuration) is honoured as
    `KRB5_CONFIG` when that is not set, so one set of JVM flags configures zkserver and
    ZooKeeper alike."""
    krb5_conf = props.get("java.security.krb5.conf")
    if krb5_conf and "KRB5_CONFIG" not in env:
        os.environ["KRB5_CONFIG"] = krb5_conf


def kerberos_login(settings: SaslSettings) -> SaslSettings:
    """Log in as the JAAS section's Kerberos principal (its keytab read now, as Java's
    Krb5LoginModule does at start-up); a login that fails stops the server."""
    from zkserver.auth import gss  # needs the `gssapi` package: only for Kerberos servers

    login = settings.kerberos
    assert login is not None
    try:
        creds = gss.acceptor_credentials(login.principal, login.keytab)
        realm = gss.default_realm()
    except gss.SaslError as e:
        raise SaslConfigError(f"Kerberos login for '{settings.login_context}' failed: {e}") \
            from e
    log.info("SASL: GSSAPI as %s (keytab %s)", login.principal or "any keytab principal",
             login.keytab or "default")
    return attrs.evolve(settings, gss_credentials=creds, default_realm=realm)
