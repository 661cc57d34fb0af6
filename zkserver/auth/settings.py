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
from collections.abc import Mapping

import attrs

from zkserver.auth import jaas

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
    kerberos_modules: int = 0  # Krb5LoginModule entries (GSSAPI, not offered yet)
    let_any_sasl_user: str | None = None  # zookeeper.letAnySaslUserDoX

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
    if sections is not None and context in sections:
        credentials = {}
        for module in sections[context]:
            if module.name == KRB5_LOGIN_MODULE:
                kerberos += 1
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
    return settings
