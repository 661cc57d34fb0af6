"""What the generators know about the tree they are driving, and the ACL choices they pick from.

The model is *not* an oracle: the real ZooKeeper is. It only steers the generators towards
interesting paths and versions: nodes that exist (updated from the oracle's answers), their
versions, and which session owns which ephemerals.

The oracle is Apache ZooKeeper 3.9.5 (or, with ZKSERVER_ORACLE=debian, Debian's 3.8.0-11+deb12u2,
which carries the CVE-2024-23944 fix too: no watch event about a node the watcher may not READ).
zkserver behaves as 3.9.5: `exists` checks READ (3.8.4+/3.9.2+, ZOOKEEPER-2590; 3.8.0 checks
none, so against Debian's oracle the generated sequences may find that documented difference).
ACLs that deny READ may go anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kazoo.security import (
    ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
)

READ = 1

CREDENTIALS = ("u1:pw1", "u2:pw2", "u1:wrong")


def digest_of(credential: str) -> str:
    user, password = credential.split(":", 1)
    return make_digest_acl_credential(user, password)


def _digest(user: str, password: str, **perms: bool) -> ACL:
    return make_digest_acl(user, password, **perms)


# ACLs that let every session in the suite READ.
READABLE_ACLS: dict[str, list[ACL] | None] = {
    "open": None,  # kazoo's default, OPEN_ACL_UNSAFE
    "open_explicit": list(OPEN_ACL_UNSAFE),
    "world_read": list(READ_ACL_UNSAFE),
    "world_read_create_delete": [make_acl("world", "anyone", read=True, create=True,
                                          delete=True)],
    "world_read_u1_all": [READ_ACL_UNSAFE[0], _digest("u1", "pw1", all=True)],
    "ip_local_all": [make_acl("ip", "127.0.0.1", all=True)],
    "ip_net_read_write": [make_acl("ip", "127.0.0.0/8", read=True, write=True)],
    "duplicates": [READ_ACL_UNSAFE[0], READ_ACL_UNSAFE[0], OPEN_ACL_UNSAFE[0]],
}

# ACLs that deny READ (or more) to some sessions.
PRIVATE_ACLS: dict[str, list[ACL]] = {
    "u1_all": [_digest("u1", "pw1", all=True)],
    "u2_read_write": [_digest("u2", "pw2", read=True, write=True)],
    "u1_all_u2_read": [_digest("u1", "pw1", all=True), _digest("u2", "pw2", read=True)],
    "u1_admin_only": [_digest("u1", "pw1", admin=True)],
    "auth_all": [ACL(31, Id("auth", ""))],
    "auth_read_create": [ACL(READ | 4, Id("auth", ""))],
    "ip_remote_all": [make_acl("ip", "10.1.2.3", all=True)],
    "world_create_delete": [make_acl("world", "anyone", create=True, delete=True)],
    "world_no_perms": [ACL(0, Id("world", "anyone"))],
    "world_write_u1_read": [make_acl("world", "anyone", write=True, create=True),
                            _digest("u1", "pw1", read=True)],
}

# ACLs every server must refuse (checked before the node is even looked up).
INVALID_ACLS: dict[str, list[ACL]] = {
    "world_not_anyone": [ACL(31, Id("world", "someone"))],
    "digest_no_colon": [ACL(31, Id("digest", "u1"))],
    "digest_two_colons": [ACL(31, Id("digest", "u1:a:b"))],
    "digest_trailing_colon": [ACL(31, Id("digest", "u1:"))],
    "ip_bad": [ACL(31, Id("ip", "300.1.1.1"))],
    "unknown_scheme": [ACL(31, Id("foo", "bar"))],
    "valid_then_invalid": [OPEN_ACL_UNSAFE[0], ACL(31, Id("world", "x"))],
    "empty": [],  # only reachable through set_acls: kazoo's create turns [] into the default
    # kazoo sends "" as null, and ZooKeeper's duplicate check then throws: MARSHALLINGERROR
    "auth_twice": [ACL(31, Id("auth", "")), ACL(31, Id("auth", ""))],
    "world_null_id_twice": [ACL(1, Id("world", "anyone")), ACL(1, Id("world", ""))],
}

ALL_ACLS = {**READABLE_ACLS, **PRIVATE_ACLS, **INVALID_ACLS}


def expand(acl: list[ACL] | None, digests: set[str]) -> tuple | None:
    """The ACL the server stores (auth entries expanded), or None if it refuses it."""
    if acl is None:
        acl = list(OPEN_ACL_UNSAFE)
    if not acl:
        return None
    out = []
    for a in acl:
        scheme, ident = a.id.scheme, a.id.id
        if scheme == "auth":
            if not digests:
                return None
            out += [(a.perms, "digest", d) for d in sorted(digests)]
        else:
            out.append((a.perms, scheme, ident))
    return tuple(out)


@dataclass
class NodeInfo:
    acl: tuple | None
    version: int = 0
    aversion: int = 0
    owner: str | None = None  # label of the session owning an ephemeral


@dataclass
class Model:
    base: str
    nodes: dict[str, NodeInfo] = field(default_factory=dict)

    def created(self, path: str, acl: tuple | None, owner: str | None) -> None:
        self.nodes[path] = NodeInfo(acl, owner=owner)

    def deleted(self, path: str) -> None:
        self.nodes.pop(path, None)

    def deleted_tree(self, path: str) -> None:
        for p in [p for p in self.nodes if p == path or p.startswith(path + "/")]:
            del self.nodes[p]

    def session_closed(self, label: str) -> None:
        for p in [p for p, n in self.nodes.items() if n.owner == label]:
            del self.nodes[p]

    def open_subtree(self, path: str) -> bool:
        """Every node from `path` down lets anyone READ and DELETE (as far as the model knows).

        kazoo's recursive delete walks the children in the order the server lists them, which
        ZooKeeper leaves unspecified (Java hash order; zkserver's differs, see
        docs/compatibility-notes.md). Where a NOAUTH can stop the walk half-way, how much was
        deleted depends on that order, so the generator only deletes open subtrees this way.
        """
        for p, node in self.nodes.items():
            if p == path or p.startswith(path + "/"):
                if node.acl is None or not any(
                        perms & 9 == 9 and scheme == "world" and ident == "anyone"
                        for perms, scheme, ident in node.acl):
                    return False
        return True
