"""ACL helpers: the standard lists and digest credentials.

ZooKeeper's digest scheme stores `user:base64(sha1("user:password"))` in the ACL while the
connection authenticates with the plain `user:password`; getting that hash right by hand is a
classic source of NoAuthError, hence `digest_acl`.
"""

from __future__ import annotations

import base64
import hashlib

from zkserver.proto.codes import Perm
from zkserver.proto.records import ACL, CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Id

__all__ = ["ACL", "CREATOR_ALL_ACL", "OPEN_ACL_UNSAFE", "READ_ACL_UNSAFE", "Id", "Perm",
           "digest_acl", "digest_id", "world_acl"]


def digest_id(user: str, password: str) -> str:
    """The id a digest ACL names for `user` with `password`."""
    digest = hashlib.sha1(f"{user}:{password}".encode()).digest()
    return f"{user}:{base64.b64encode(digest).decode()}"


def digest_acl(user: str, password: str, perms: int = Perm.ALL) -> ACL:
    return ACL(perms, Id("digest", digest_id(user, password)))


def world_acl(perms: int = Perm.ALL) -> ACL:
    return ACL(perms, Id("world", "anyone"))
