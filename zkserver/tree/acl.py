"""ACL schemes and the permission check, as ZooKeeper's auth providers define them.

An ACL list travels inside the tree as a tuple of `(perms, scheme, id)` tuples. Lists are
interned (`intern_acl`), so a million znodes created with OPEN_ACL_UNSAFE share one tuple, as
ZooKeeper shares them through its reference-counted ACL cache.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress

AclEntry = tuple[int, str, str]
AclList = tuple[AclEntry, ...]
Identity = tuple[str, str]

OPEN_ACL: AclList = ((31, "world", "anyone"),)
READ_ACL: AclList = ((1, "world", "anyone"),)
SUPER: Identity = ("super", "")

# Schemes whose identities `auth` ACLs expand to (ZooKeeper: providers with isAuthenticated()).
AUTHENTICATED_SCHEMES = frozenset({"digest", "x509", "sasl"})

_interned: dict[AclList, AclList] = {}


def intern_acl(acl: AclList) -> AclList:
    return _interned.setdefault(acl, acl)


class InvalidACL(Exception):
    """The list is empty, names an unknown scheme, or has an id its scheme rejects."""


def digest_id(user_password: str) -> str:
    """`user:password` -> `user:BASE64(SHA1(user:password))`, the digest scheme's id."""
    user = user_password.split(":", 1)[0]
    sha = hashlib.sha1(user_password.encode()).digest()
    return f"{user}:{base64.b64encode(sha).decode()}"


def _java_split_colon(s: str) -> list[str]:
    """Java's String.split(":"): trailing empty strings are dropped."""
    parts = s.split(":")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _parse_ip(ident: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(ident, strict=False)
    except ValueError:
        return None


def valid_id(scheme: str, ident: str) -> bool:
    if scheme == "world":
        return ident == "anyone"
    if scheme == "digest":
        return len(_java_split_colon(ident)) == 2
    if scheme == "ip":
        return _parse_ip(ident) is not None
    return False


def fixup_acl(acl: list[tuple[int, str | None, str | None]] | None,
              auth_ids: list[Identity]) -> AclList:
    """Validate an ACL given to create/setACL and expand its `auth` entries.

    Duplicates are dropped, keeping the first. Raises InvalidACL as ZooKeeper answers -114.
    """
    if not acl:
        raise InvalidACL("empty ACL")
    out: list[AclEntry] = []
    for perms, scheme, ident in acl:
        scheme = scheme or ""
        ident = ident or ""
        if scheme == "auth":
            expanded = [(perms, s, i) for s, i in auth_ids if s in AUTHENTICATED_SCHEMES]
            if not expanded:
                raise InvalidACL("auth ACL with no authenticated identity")
            out.extend(expanded)
        elif valid_id(scheme, ident):
            out.append((perms, scheme, ident))
        else:
            raise InvalidACL(f"invalid ACL id {scheme}:{ident}")
    seen: set[AclEntry] = set()
    unique = []
    for entry in out:
        if entry not in seen:
            seen.add(entry)
            unique.append(entry)
    return intern_acl(tuple(unique))


def _ip_matches(have: str, pattern: str) -> bool:
    net = _parse_ip(pattern)
    try:
        addr = ipaddress.ip_address(have)
    except ValueError:
        return False
    return net is not None and addr.version == net.version and addr in net


def check(acl: AclList, perm: int, auth_ids: list[Identity]) -> bool:
    """True when a connection holding `auth_ids` may do `perm` (any bit of it) under `acl`."""
    if not acl:
        return True
    if SUPER in auth_ids:
        return True
    for perms, scheme, ident in acl:
        if not perms & perm:
            continue
        if scheme == "world" and ident == "anyone":
            return True
        for s, i in auth_ids:
            if s != scheme:
                continue
            if s == "ip":
                if _ip_matches(i, ident):
                    return True
            elif i == ident:
                return True
    return False


def mask_digests(acl: AclList) -> AclList:
    """getACL without ADMIN permission hides digest hashes (`user:x`)."""
    return tuple((p, s, i.split(":", 1)[0] + ":x" if s == "digest" else i) for p, s, i in acl)
