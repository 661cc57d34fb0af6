"""The name a SASL identity gets, as ZooKeeper's SaslServerCallbackHandler canonicalises it.

ZooKeeper reads every authenticated name as a Kerberos principal `service[/host]@REALM` (a
plain DIGEST-MD5 user name is a principal without host and realm), shortens it by the default
`auth_to_local` rule (a principal of the default realm becomes its first component), and then
puts the host and realm back unless `kerberos.removeHostFromPrincipal` /
`kerberos.removeRealmFromPrincipal` say not to. A principal the rule can't shorten (another
realm) keeps the name the client authenticated as.
"""

from __future__ import annotations

import re

import attrs

_PRINCIPAL = re.compile(r"([^/@]*)(?:/([^/@]*))?@([^/@]*)")


class MalformedName(ValueError):
    """A name with `@` that is not `service[/host]@REALM`."""


@attrs.frozen
class KerberosName:
    service: str
    host: str | None
    realm: str | None

    @classmethod
    def parse(cls, name: str) -> KerberosName:
        m = _PRINCIPAL.fullmatch(name)
        if m is None:
            if "@" in name:
                raise MalformedName(f"malformed Kerberos name: {name}")
            return cls(name, None, None)
        return cls(m.group(1), m.group(2), m.group(3))

    def short_name(self, default_realm: str) -> str | None:
        """The DEFAULT auth_to_local rule; None where no rule applies."""
        if self.host is None and self.realm is None:
            return self.service
        if self.realm == default_realm:
            return self.service
        return None


def valid(name: str) -> bool:
    """The `sasl` ACL scheme accepts any name KerberosName can parse."""
    try:
        KerberosName.parse(name)
    except MalformedName:
        return False
    return True


def authorized_id(authentication_id: str, authorization_id: str, *, remove_host: bool,
                  remove_realm: bool, default_realm: str = "") -> str:
    """The identity a session gets: `sasl:<this>`. Raises MalformedName as Java's does."""
    name = KerberosName.parse(authentication_id)
    short = name.short_name(default_realm)
    if short is None:
        return authorization_id  # Java logs the failed rule and keeps the authorization id
    if name.host is not None and not remove_host:
        short += "/" + name.host
    if name.realm is not None and not remove_realm:
        short += "@" + name.realm
    return short


def matches(identity: str, acl_id: str, let_any: str | None = None) -> bool:
    """ZooKeeper's SASLAuthenticationProvider.matches: a session authenticated as `super`
    matches every `sasl` ACL, and `zookeeper.letAnySaslUserDoX` names an ACL id that every
    SASL-authenticated session matches."""
    return identity in ("super", acl_id) or (let_any is not None and acl_id == let_any)
