"""ACL schemes and the permission check, as ZooKeeper's auth providers define them.

An ACL list travels inside the tree as a tuple of `(perms, scheme, id)` tuples. Lists are
interned (`intern_acl`), so a million znodes created with OPEN_ACL_UNSAFE share one tuple, as
ZooKeeper shares them through its reference-counted ACL cache.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import re
from collections.abc import Callable

from zkserver.tree import javahash

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


class NullInACL(Exception):
    """ZooKeeper's duplicate check compares entries with Java's equals(), which throws on a
    null scheme, or a null id under an equal scheme, when an earlier entry has the same perms
    (kazoo sends "" as null, e.g. `auth:""` twice): the request fails with MARSHALLINGERROR."""


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


_JAVA_INT = re.compile(r"[+-]?\d+")  # what Integer.parseInt accepts


def _java_small_int(text: str) -> int | None:
    """Integer.parseInt(text) for the small values ACL ids use; None if Java would throw."""
    if not _JAVA_INT.fullmatch(text):
        return None
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 10:
        return None  # beyond an int: NumberFormatException
    return -int(digits) if text[0] == "-" else int(digits)


@functools.lru_cache(maxsize=1024)
def _ipv6(addr: str) -> int | None:
    """An IPv6 address as ZooKeeper 3.9.4+'s IPAuthenticationProvider reads it, or None:
    groups of 1-4 hex digits, at most one `::`; no zone, no brackets, no embedded IPv4."""
    if ":" not in addr or "." in addr or "%" in addr:
        return None
    try:
        return int(ipaddress.IPv6Address(addr))
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _ipv4(addr: str) -> int | None:
    """A dotted IPv4 address as ZooKeeper's IPAuthenticationProvider reads it, or None.

    Four parts, each an integer 0-255 as Java's Integer.parseInt reads it ("010" and "+1" are
    fine).
    """
    parts = addr.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        v = _java_small_int(part)
        if v is None or not 0 <= v <= 255:
            return None
        value = value << 8 | v
    return value


def _ip_address(addr: str) -> tuple[int, int] | None:
    """(width in bits, value) of an IPv4 or (3.9.4+) IPv6 address; None if neither."""
    value = _ipv4(addr)
    if value is not None:
        return 32, value
    value = _ipv6(addr)
    return None if value is None else (128, value)


@functools.lru_cache(maxsize=1024)
def _ip_pattern(ident: str) -> tuple[int, int, int] | None:
    """An ip ACL id `address[/bits]` -> (width, masked address, mask), or None if invalid."""
    addr, slash, bits_text = ident.partition("/")
    parsed = _ip_address(addr)
    if parsed is None:
        return None
    width, value = parsed
    bits = width
    if slash:
        bits = _java_small_int(bits_text)
        if bits is None or not 0 <= bits <= width:
            return None
    full = (1 << width) - 1
    mask = (full << (width - bits)) & full
    return width, value & mask, mask


# Schemes beyond world/ip/digest that a server registered, with their id check. Process-wide,
# like ZooKeeper's ProviderRegistry: a server that serves TLS registers `x509`.
_registered: dict[str, Callable[[str], bool]] = {}
# Schemes whose provider matches an identity to an ACL id by more than equality (`sasl`).
_matchers: dict[str, Callable[[str, str], bool]] = {}


def register_scheme(scheme: str, valid: Callable[[str], bool],
                    matches: Callable[[str, str], bool] | None = None) -> None:
    _registered[scheme] = valid
    if matches is not None:
        _matchers[scheme] = matches


def valid_id(scheme: str, ident: str) -> bool:
    if scheme in _registered:
        return _registered[scheme](ident)
    if scheme == "world":
        return ident == "anyone"
    if scheme == "digest":
        return len(_java_split_colon(ident)) == 2
    if scheme == "ip":
        return _ip_pattern(ident) is not None
    return False


def fixup_acl(acl: list[tuple[int, str | None, str | None]] | None,
              auth_ids: list[Identity]) -> AclList:
    """Validate an ACL given to create/setACL and expand its `auth` entries.

    As ZooKeeper's fixupACL: duplicates of the list *as sent* are dropped (keeping the first),
    then `auth` entries expand to every authenticated identity, which may bring duplicates back
    (`[auth, digest:u1]` from u1 stores u1 twice, and getACL shows both). Raises InvalidACL as
    ZooKeeper answers -114, NullInACL where its duplicate check throws.
    """
    if not acl:
        raise InvalidACL("empty ACL")
    unique: list[tuple[int, str | None, str | None]] = []
    for entry in acl:
        perms, scheme, ident = entry
        for p, s, i in unique:
            if p != perms:
                continue
            if scheme is None or (scheme == s and ident is None):
                raise NullInACL(f"null in ACL entry {entry}")
            if scheme == s and ident == i:
                break
        else:
            unique.append(entry)
    out: list[AclEntry] = []
    for perms, scheme, ident in unique:
        scheme = scheme or ""
        ident = ident or ""
        if scheme == "auth":
            expanded = [(perms, s, i) for s, i in javahash.identity_order(auth_ids)
                        if s in AUTHENTICATED_SCHEMES]
            if not expanded:
                raise InvalidACL("auth ACL with no authenticated identity")
            out.extend(expanded)
        elif valid_id(scheme, ident):
            out.append((perms, scheme, ident))
        else:
            raise InvalidACL(f"invalid ACL id {scheme}:{ident}")
    return intern_acl(tuple(out))


def _ip_matches(have: str, pattern: str) -> bool:
    """An address of one family never matches a pattern of the other."""
    parsed = _ip_pattern(pattern)
    if parsed is None:
        return False
    addr = _ip_address(have)
    return addr is not None and addr[0] == parsed[0] and addr[1] & parsed[2] == parsed[1]


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
            elif s in _matchers and _matchers[s](i, ident):
                return True
    return False


def mask_digests(acl: AclList) -> AclList:
    """getACL without ADMIN permission hides digest hashes (`user:x`)."""
    return tuple((p, s, i.split(":", 1)[0] + ":x" if s == "digest" else i) for p, s, i in acl)
