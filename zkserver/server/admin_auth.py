"""Who is asking an admin command, and may they: ZooKeeper 3.9's AdminServer authentication.

A command that needs it (`snapshot`, `restore`) reads the request's `Authorization` header,
`<scheme>[ <auth data>]`, split on single spaces as Java's `String.split(" ")` does:

    Authorization: digest alice:secret     the digest scheme's `user:password`
    Authorization: x509                    the HTTPS connection's verified client certificate
    Authorization: ip                      the client's address (X-Forwarded-For's first entry
                                           with IPAuthenticationProvider.usexforwardedfor=true)

The identities found must hold every bit of the command's permission (ALL) under the ACL of
its path (`/`), checked bit by bit as ZooKeeper's `checkACL` does; `super` (superDigest, the
x509 superUser) passes. No header: 401 "Auth info is missing for the command"; a header that
proves nothing (unknown scheme, wrong shape, no certificate): 401 "Not authenticated"; proven
but not permitted: 403 "Not authorized". With ZooKeeper's default ACL on `/`
(world:anyone, ALL) any proven identity passes, as there.
"""

from __future__ import annotations

import attrs

from zkserver.tree import acl as aclmod

ALL = 31  # ZooDefs.Perms.ALL


@attrs.frozen
class Refusal:
    status: int
    error: str


MISSING = Refusal(401, "Auth info is missing for the command")
NOT_AUTHENTICATED = Refusal(401, "Not authenticated")
NOT_AUTHORIZED = Refusal(403, "Not authorized")


@attrs.frozen
class Caller:
    """What the transport knows of the client: its address, forwarded-for header, and the
    `x509` identity of a client certificate the TLS handshake verified (None: none)."""

    ip: str
    forwarded_for: str | None = None
    x509: str | None = None


@attrs.frozen
class Settings:
    super_digest: str | None = None
    x509_super_user: str | None = None
    use_x_forwarded_for: bool = False
    skip_acl: bool = False


def _java_split_space(text: str) -> list[str]:
    parts = text.split(" ")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def identities(header: str, caller: Caller, settings: Settings) -> list[aclmod.Identity]:
    """The identities an `Authorization` header proves; empty when it proves nothing."""
    parts = _java_split_space(header)
    if len(parts) not in (1, 2):
        return []
    scheme = parts[0]
    data = parts[1] if len(parts) == 2 else None
    if scheme == "digest":
        if data is None:
            return []  # ZooKeeper's provider fails on null auth data
        ident = aclmod.digest_id(data)
        ids: list[aclmod.Identity] = [("digest", ident)]
        if settings.super_digest is not None and ident == settings.super_digest:
            ids.append(aclmod.SUPER)
        return ids
    if scheme == "ip":
        ip = caller.ip
        if settings.use_x_forwarded_for and caller.forwarded_for:
            ip = caller.forwarded_for.split(",")[0].strip()
        return [("ip", ip)] if ip else []
    if scheme == "x509":
        if caller.x509 is None:
            return []
        ids = [("x509", caller.x509)]
        if settings.x509_super_user is not None and caller.x509 == settings.x509_super_user:
            ids.append(aclmod.SUPER)
        return ids
    return []


def authorize(header: str | None, caller: Caller, settings: Settings, acl: aclmod.AclList,
              perm: int = ALL) -> Refusal | None:
    """None when the request may run; else why not, with ZooKeeper's status and message."""
    if header is None:
        return MISSING
    ids = identities(header, caller, settings)
    if not ids:
        return NOT_AUTHENTICATED
    if settings.skip_acl:
        return None
    for bit in range(perm.bit_length()):
        if perm & (1 << bit) and not aclmod.check(acl, 1 << bit, ids):
            return NOT_AUTHORIZED
    return None
