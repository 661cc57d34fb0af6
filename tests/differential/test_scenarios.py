"""Fixed differential scenarios: one per behaviour, each run on a real ZooKeeper and on zkserver.

Every call goes through `Dual.same`, which fails on the first difference (result, exception,
Stat fields, reply zxid); watch events are compared by `check_events` and when sessions close.
The scenarios spell out the corners the generator only reaches by chance: sequence numbers after
deletes, cversion, multi failures of each kind and their error order, ACL checks and INVALIDACL
cases, ephemerals of a closing session, auth that fails.
"""

from __future__ import annotations

import pytest
from kazoo.security import ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Id, make_acl, make_digest_acl
from model import PRIVATE_ACLS
from support import realzk
from zkdiff import Dual

# The oracle is ZooKeeper 3.9.5 unless ZKSERVER_ORACLE=debian (3.8.0): zkserver behaves as 3.9.5,
# so the comparisons where 3.8.0 differs (docs/compatibility-notes.md) are expected to fail there.
ORACLE_38 = pytest.mark.xfail(realzk.DEBIAN, strict=True,
                              reason="3.8.0 differs here; zkserver behaves as 3.9.5")

U1_ALL = make_digest_acl("u1", "pw1", all=True)
U2_READ = make_digest_acl("u2", "pw2", read=True)
AUTH_ALL = ACL(31, Id("auth", ""))


def our_events(d: Dual, session) -> list[tuple]:
    d.check_events([session])
    return list(session.raw["ours"])


@pytest.mark.compat(client="kazoo", feature="basic operations")
def test_create_modes_and_data(fresh: Dual) -> None:
    d = fresh
    base = d.new_base()
    a = d.open("A")
    d.same(a, "create", base, b"root data")
    for i, value in enumerate([b"", None, b"x", bytes(range(256))]):
        d.same(a, "create", f"{base}/p{i}", value)
        d.same(a, "get", f"{base}/p{i}")
        d.same(a, "create", f"{base}/e{i}", value, ephemeral=True)
        d.same(a, "get", f"{base}/e{i}")
        d.same(a, "create", f"{base}/s-", value, sequence=True)
        d.same(a, "create", f"{base}/es-", value, ephemeral=True, sequence=True)
        d.same(a, "create", f"{base}/c{i}", value, include_data=True)
        d.same(a, "create", f"{base}/ce{i}", value, ephemeral=True, sequence=True,
               include_data=True)
    d.same(a, "get_children", base, include_data=True)
    d.same(a, "create", f"{base}/e0/child", b"")  # NOCHILDRENFOREPHEMERALS
    d.same(a, "create", f"{base}/e0/child", b"", sequence=True)
    d.same(a, "create", f"{base}/p0", b"")  # NODEEXISTS
    d.same(a, "create", f"{base}/missing/child", b"")  # NONODE
    d.same(a, "create", f"{base}/deep/er/path", b"v", makepath=True)
    d.same(a, "get", f"{base}/deep/er")
    d.same(a, "create", f"{base}/", b"", sequence=True)  # the node is named by the suffix only
    d.same(a, "create", f"{base}/p1/", b"", sequence=True, ephemeral=True)
    d.same(a, "get_children", f"{base}/p1")
    for odd in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config/x", f"{base}/\u0001",
                f"{base}/a\u007f", f"{base}/\ud7ff", f"{base}/\ue000", f"{base}/\ufff0",
                f"{base}/\U0001F600", f"{base}/\u00e9", f"{base}/...", f"{base}/.x"]:
        d.same(a, "create", odd, b"")
        d.same(a, "exists", odd)
        d.same(a, "get", odd)
        d.same(a, "set", odd, b"")
        d.same(a, "delete", odd)
    d.same(a, "get", "/")
    d.same(a, "get", "/zookeeper")
    d.same(a, "get_children", "/zookeeper", include_data=True)
    d.same(a, "get_acls", "/zookeeper/config")
    d.same(a, "get_acls", "/")


def test_sequence_numbers_and_cversion(fresh: Dual) -> None:
    d = fresh
    base = d.new_base()
    a = d.open("A")
    d.same(a, "create", base)
    d.same(a, "create", f"{base}/x", b"")
    d.same(a, "delete", f"{base}/x")
    d.same(a, "exists", base)  # cversion 2 after a create and a delete
    d.same(a, "create", f"{base}/q-", b"", sequence=True)  # q-0000000001: creates count
    for _ in range(3):
        d.same(a, "create", f"{base}/q-", b"", sequence=True, ephemeral=True)
    d.same(a, "delete", f"{base}/q-0000000002")
    d.same(a, "create", f"{base}/", b"", sequence=True)
    d.same(a, "get_children", base, include_data=True)
    d.same(a, "set", base, b"new")  # setData leaves cversion and pzxid alone
    d.same(a, "get", base)
    d.same(a, "set_acls", base, OPEN_ACL_UNSAFE)  # so does setACL (aversion goes up)
    d.same(a, "get_acls", base)

    def failing(t):
        t.create(f"{base}/q-", b"", sequence=True)
        t.check(base, 99)
    d.commit(a, failing, "create q- (sequential), check version 99")
    d.same(a, "get_children", base, include_data=True)  # counters untouched, a zxid used
    d.same(a, "create", f"{base}/q-", b"", sequence=True)
    d.same(a, "get", "/")


@pytest.mark.compat(client="kazoo", feature="basic operations")
def test_versions(fresh: Dual) -> None:
    d = fresh
    base = d.new_base()
    a = d.open("A")
    d.same(a, "create", base, b"0")
    for version in [1, -2, 0, 0, -1, 2, 3]:
        d.same(a, "set", base, b"v%d" % version, version=version)
    d.same(a, "create", f"{base}/c", b"")
    for version in [3, 5, 0, -1]:
        d.same(a, "delete", base, version=version)  # BADVERSION is checked before NOTEMPTY
    for version in [1, 0, -1]:
        d.same(a, "delete", f"{base}/c", version=version)
    for version in [1, 0, 0, -1, 5]:
        d.same(a, "set_acls", base, OPEN_ACL_UNSAFE, version=version)
    d.same(a, "get_acls", base)


@pytest.mark.compat(client="kazoo", feature="watches")
def test_watches_one_session_and_two(fresh: Dual) -> None:
    d = fresh
    base = d.new_base()
    a, b = d.open("A"), d.open("B")
    d.same(a, "create", base)
    for s in (a, b):
        d.same(s, "exists", f"{base}/n", watch=True)  # a watch on a missing node
        d.same(s, "get_children", base, watch=True)
        d.same(s, "get", f"{base}/n", watch=True)  # NONODE: no watch
    d.same(a, "create", f"{base}/n", b"1")
    for s in (a, b):
        d.same(s, "get", f"{base}/n", watch=True)
        d.same(s, "exists", f"{base}/n", watch=True)  # same server-side data watch
        d.same(s, "get_children", f"{base}/n", watch=True)
    d.same(b, "set", f"{base}/n", b"2")
    d.same(a, "set", f"{base}/n", b"3")  # no watch left: nothing fires
    for s in (a, b):
        d.same(s, "get", f"{base}/n", watch=True)
        d.same(s, "get_children", base, watch=True)
    d.same(a, "delete", f"{base}/n")  # one NodeDeleted per connection, then the parent's
    d.same(a, "create", f"{base}/m", b"")
    d.same(b, "exists", f"{base}/m", watch=True)
    d.same(b, "set_acls", f"{base}/m", READ_ACL_UNSAFE)  # setACL fires nothing
    d.same(b, "set", f"{base}/m", b"x", version=7)  # a failed write fires nothing
    d.same(a, "delete", f"{base}/m")
    d.check_events()
    # our notifications carry the zxid of the write that fired them (ZooKeeper 3.9 does too)
    zxids = [z for _, _, z in our_events(d, b)]
    assert all(z > 0 for z in zxids) and zxids == sorted(zxids)


@pytest.mark.compat(client="kazoo", feature="multi")
def test_multi(fresh: Dual) -> None:
    d = fresh
    base = d.new_base()
    a, b = d.open("A"), d.open("B")
    d.same(a, "create", base, b"")
    d.same(b, "get_children", base, watch=True)
    d.same(b, "exists", f"{base}/x", watch=True)

    def txn(*ops, session=a):
        def build(t):
            for op in ops:
                getattr(t, op[0])(*op[1:])
        return d.commit(session, build, repr(ops))

    txn()  # an empty multi is legal and uses a zxid
    txn(("create", f"{base}/x", b"1"), ("set_data", f"{base}/x", b"2"),
        ("check", f"{base}/x", 1), ("create", f"{base}/x/y", b""),
        ("create", f"{base}/s-", b"", None, False, True),
        ("create", f"{base}/e", b"", None, True, False))
    d.same(a, "get", f"{base}/x")
    d.same(b, "get_children", base, watch=True, include_data=True)
    failing = [
        [("check", f"{base}/x", 5)],
        [("create", f"{base}/z", b""), ("check", f"{base}/x", 0), ("delete", f"{base}/z")],
        [("create", f"{base}/x", b"")],
        [("delete", f"{base}/x")],  # NOTEMPTY
        [("delete", f"{base}/x/y", 3)],
        [("set_data", f"{base}/nope", b"")],
        [("create", f"{base}/e/child", b"")],  # NOCHILDRENFOREPHEMERALS
        [("create", f"{base}/w", b""), ("create", f"{base}/w", b"")],
        [("delete", f"{base}/x/y"), ("delete", f"{base}/x"), ("check", f"{base}/x", -1)],
        [("create", f"{base}/bad\u0001", b"")],
        [("create", f"{base}/q", b"", [ACL(31, Id("world", "x"))])],
        [("create", f"{base}/q", b"", [AUTH_ALL])],
        [("create", f"{base}/q", b""), ("set_data", f"{base}/q", b"", 1),
         ("create", f"{base}/q2", b"")],
        [("delete", "/zookeeper")],
        [("check", f"{base}/\u0001", -1)],
        [("set_data", "/zookeeper/config", b"x")],
    ]
    for ops in failing:
        txn(*ops)
    d.same(a, "get", base)
    txn(("delete", f"{base}/x/y"), ("delete", f"{base}/x"), ("create", f"{base}/x", b"again"),
        ("check", f"{base}/x", 0))
    d.same(a, "get_children", base, include_data=True)
    d.check_events()
    # ops of a multi share one zxid, in sub-op order
    d.same(a, "get", f"{base}/x")


@pytest.mark.compat(client="kazoo", feature="ACLs and digest auth")
@ORACLE_38
def test_acls(fresh: Dual) -> None:
    d = fresh
    base = d.new_base()
    a, b = d.open("A"), d.open("B")
    d.same(a, "create", base, b"")
    d.same(a, "add_auth", "digest", "u1:pw1")
    d.same(b, "add_auth", "digest", "u2:pw2")
    d.same(a, "create", f"{base}/u1", b"secret", acl=[U1_ALL])
    d.same(a, "create", f"{base}/auth", b"", acl=[AUTH_ALL])
    d.same(b, "create", f"{base}/auth2", b"", acl=[AUTH_ALL, U2_READ])
    d.same(a, "create", f"{base}/dup", b"", acl=[AUTH_ALL, U1_ALL])
    d.same(a, "create", f"{base}/dup2", b"", acl=[U1_ALL, U1_ALL, AUTH_ALL])
    d.same(a, "create", f"{base}/ro", b"r", acl=READ_ACL_UNSAFE)
    d.same(a, "create", f"{base}/ip", b"", acl=[make_acl("ip", "127.0.0.1", read=True)])
    d.same(a, "create", f"{base}/ipnet", b"", acl=[make_acl("ip", "127.0.0.0/8", all=True)])
    d.same(a, "create", f"{base}/far", b"", acl=[make_acl("ip", "10.0.0.0/8", all=True)])
    d.same(a, "create", f"{base}/admin", b"", acl=[make_digest_acl("u1", "pw1", admin=True)])
    for name in ["u1", "auth", "auth2", "dup", "dup2", "ro", "ip", "ipnet", "far", "admin"]:
        path = f"{base}/{name}"
        for s in (a, b):
            d.same(s, "get", path)
            d.same(s, "get_children", path)
            d.same(s, "get_acls", path)
            d.same(s, "set", path, b"w")
            d.same(s, "create", f"{path}/child", b"")
            d.same(s, "delete", f"{path}/child")
            d.same(s, "set_acls", path, list(OPEN_ACL_UNSAFE), version=5)
    for name in ["far", "admin"]:
        d.same(b, "delete", f"{base}/{name}")  # DELETE is checked on the parent
    d.same(a, "create", f"{base}/nodel", b"", acl=[make_acl("world", "anyone", read=True,
                                                            create=True)])
    d.same(a, "create", f"{base}/nodel/c", b"")
    d.same(a, "delete", f"{base}/nodel/c")  # NOAUTH: no DELETE on the parent
    d.same(a, "delete", f"{base}/nodel/missing")  # NOAUTH comes before NONODE
    d.same(b, "set_acls", f"{base}/ro", [U2_READ])  # NOAUTH
    d.same(a, "set_acls", f"{base}/ro", [U2_READ])  # world has ADMIN? no: NOAUTH too
    d.same(a, "set_acls", f"{base}/ipnet", [U2_READ, make_acl("world", "anyone", admin=True)])
    d.same(a, "get_acls", f"{base}/ipnet")
    d.same(b, "get_acls", f"{base}/ipnet")  # READ: digests of others are masked without ADMIN?
    d.same(a, "add_auth", "digest", "u1:wrong")
    d.same(a, "add_auth", "digest", "u1:pw1")  # the same identity again
    d.same(a, "add_auth", "digest", "nocolon")
    d.same(a, "create", f"{base}/three", b"", acl=[AUTH_ALL])
    d.same(a, "get_acls", f"{base}/three")
    for name, acl in [("world_foo", [ACL(31, Id("world", "foo"))]),
                      ("digest_bad", [ACL(31, Id("digest", "u1"))]),
                      ("digest_colons", [ACL(31, Id("digest", "u:a:b"))]),
                      ("digest_trailing", [ACL(31, Id("digest", "u1:"))]),
                      ("digest_leading", [ACL(31, Id("digest", ":abc"))]),
                      ("ip_bad", [ACL(31, Id("ip", "1.2.3"))]),
                      ("ip_mask_bad", [ACL(31, Id("ip", "10.0.0.0/33"))]),
                      ("ip6", [ACL(31, Id("ip", "::1"))]),
                      ("ip6_net", [ACL(31, Id("ip", "fe80::/64"))]),
                      ("scheme", [ACL(31, Id("sasl", "joe"))]),
                      ("x509", [ACL(31, Id("x509", "CN=joe"))]),
                      ("super", [ACL(31, Id("super", ""))]),
                      ("unknown", [ACL(31, Id("nope", "x"))]),
                      ("perms_big", [ACL(0xFF, Id("world", "anyone"))]),
                      ("perms_negative", [ACL(-1, Id("world", "anyone"))])]:
        d.same(a, "create", f"{base}/{name}", b"", acl=acl)
        d.same(a, "set_acls", f"{base}/ro", acl)
        d.same(a, "set_acls", f"{base}/missing", acl)  # INVALIDACL before NONODE
    d.same(a, "set_acls", f"{base}/ro", [])
    d.same(a, "get_acls", f"{base}/missing")
    c = d.open("C")
    d.same(c, "create", f"{base}/noauth", b"", acl=[AUTH_ALL])  # no authenticated id
    d.same(c, "set_acls", f"{base}/ipnet", [AUTH_ALL])


@ORACLE_38
def test_acl_private_reads(fresh: Dual) -> None:
    """Every READ-denying ACL of the generator, against sessions with and without the id."""
    d = fresh
    base = d.new_base()
    a, b, c = d.open("A"), d.open("B"), d.open("C")
    d.same(a, "add_auth", "digest", "u1:pw1")
    d.same(b, "add_auth", "digest", "u2:pw2")
    d.same(a, "create", base, b"")
    for name, acl in PRIVATE_ACLS.items():
        path = f"{base}/{name}"
        d.same(a, "create", path, b"d", acl=acl)
        d.same(a, "create", f"{path}/kid", b"")
        for s in (a, b, c):
            d.same(s, "exists", path)  # READ checked (3.8.4+/3.9.2+; 3.8.0 checks none)
            d.same(s, "get", path)
            d.same(s, "get_children", path, include_data=True)
            d.same(s, "get_acls", path)
            d.same(s, "set", path, b"e")
            d.same(s, "set_acls", path, acl, version=9)
            d.same(s, "create", f"{path}/c", b"", sequence=True)
        d.same(c, "delete", f"{path}/kid")


@pytest.mark.compat(client="kazoo", feature="ephemerals and sessions")
def test_ephemerals_of_a_closing_session(fresh: Dual) -> None:
    d = fresh
    base = d.new_base()
    a = d.open("A")
    d.same(a, "create", base, b"")
    d.same(a, "create", f"{base}/p", b"")
    for n in (1, 2, 3, 5, 8, 13, 20):
        e = d.open(f"E{n}")
        paths = []
        for i in range(n):
            parent = base if i % 2 else f"{base}/p"
            paths.append(d.same(e, "create", f"{parent}/e{n}-", b"", ephemeral=True,
                                sequence=True))
        d.same(e, "create", f"{base}/persist{n}", b"")  # stays
        if n == 8:
            d.same(e, "delete", paths[0])
            d.same(e, "create", paths[0], b"again", ephemeral=True)
        for path in paths:
            d.same(a, "exists", path, watch=True)
            d.same(e, "get", path, watch=True)  # the closing session's own watches
        d.same(a, "get_children", base, watch=True)
        d.same(a, "get_children", f"{base}/p", watch=True)
        d.same(e, "get_children", base, watch=True)
        d.close(e)  # compares E's own events too, after the close
        d.same(a, "get_children", base, include_data=True)
        d.same(a, "get", f"{base}/p")
        d.check_events([a])
    d.same(a, "get", "/")


def test_many_ephemerals_grow_the_hash_table(fresh: Dual) -> None:
    """More than 12 ephemerals grow ZooKeeper's HashSet: the close order follows its size."""
    d = fresh
    base = d.new_base()
    a = d.open("A")
    d.same(a, "create", base, b"")
    e = d.open("E")
    paths = [d.same(e, "create", f"{base}/n{i}", b"", ephemeral=True) for i in range(40)]
    for path in paths[:30]:
        d.same(e, "delete", path)
    for path in paths[30:]:
        d.same(a, "exists", path, watch=True)
    d.close(e)
    d.check_events([a])


def test_sync_and_odd_reads(fresh: Dual) -> None:
    d = fresh
    base = d.new_base()
    a = d.open("A")
    # reconfig is a write: refused (reconfigEnabled=false), it still uses up a zxid
    d.same(a, "reconfig", None, "2", None)
    d.same(a, "reconfig", "server.2=127.0.0.1:1234:1235", None, None, from_config=7)
    for path in ["/", base, f"{base}/missing", "/zookeeper", f"{base}/bad\u0001", "/\u00e9"]:
        d.same(a, "sync", path)
        d.same(a, "exists", path)
        d.same(a, "get_children", path)
        d.same(a, "get_acls", path)


def test_second_session_sees_first_sessions_writes(fresh: Dual) -> None:
    d = fresh
    base = d.new_base()
    a, b = d.open("A"), d.open("B")
    d.same(a, "create", base, b"")
    for i in range(20):
        d.same(a if i % 2 else b, "create", f"{base}/n{i}", b"%d" % i,
               ephemeral=bool(i % 3 == 0))
        d.same(b if i % 2 else a, "get", f"{base}/n{i}", watch=True)
        d.same(a, "set", f"{base}/n{i}", b"x")
    d.same(b, "get_children", base, include_data=True)
    d.close(b)  # its ephemerals go, A sees them deleted
    d.same(a, "get_children", base, include_data=True)


@pytest.mark.parametrize("scheme", ["nosuchscheme"])
def test_auth_with_an_unknown_scheme_fails(zk_server, real_zk, scheme: str) -> None:
    """AUTHFAILED, then the server closes the connection: kazoo gives up on the session.

    Fresh servers of its own: the session is left behind to expire, on each server's clock.
    """
    from kazoo.client import KazooClient
    from kazoo.exceptions import AuthFailedError

    outcomes = []
    for server in (real_zk, zk_server):
        client = KazooClient(server.hosts, timeout=10)
        client.start(timeout=10)
        try:
            client.add_auth(scheme, "x")
            outcomes.append("ok")
        except AuthFailedError:
            outcomes.append("AuthFailedError")
        outcomes.append(client.state)
        client.stop()
        client.close()
    assert outcomes[:2] == outcomes[2:]


def test_error_precedence(fresh: Dual) -> None:
    """The orders of checks that tests/test_prep.py pins down, against the real server."""
    d = fresh
    base = d.new_base()
    a = d.open("A")
    d.same(a, "add_auth", "digest", "u1:pw1")
    nobody = d.open("N")
    bad_acl = [ACL(31, Id("world", "nobody"))]
    d.same(a, "create", base, b"")
    d.same(a, "create", f"{base}/p", b"")
    d.same(a, "create", f"{base}/p/kid", b"")
    d.same(a, "create", f"{base}/locked", b"", acl=[U1_ALL])
    d.same(a, "create", f"{base}/nocreate", b"", acl=[make_acl("world", "anyone", read=True,
                                                               write=True, delete=True,
                                                               admin=True)])
    d.same(a, "create", f"{base}/nodelete", b"", acl=[make_acl("world", "anyone", read=True,
                                                               write=True, create=True,
                                                               admin=True)])
    d.same(a, "create", f"{base}/nodelete/kid", b"")
    d.same(a, "create", f"{base}/eph", b"", ephemeral=True)
    for path, kwargs in [
        (f"{base}/p/a\0b", {"acl": bad_acl}),
        (f"{base}/missing/x", {"acl": bad_acl}),
        (f"{base}/missing/x", {"acl": [AUTH_ALL]}),
        (f"{base}/missing/x", {}),
        (f"{base}/locked/bad\u0001", {}),
        (f"{base}/nocreate/x", {}),
        (f"{base}/p/bad\u0001", {}),
        (f"{base}/p/\U0001F600", {}),
        (f"{base}/p/kid", {}),
        (f"{base}/eph", {}),
        (f"{base}/eph/x", {}),
        (f"{base}/eph/x", {"sequence": True, "ephemeral": True}),
        (f"{base}/eph/", {"sequence": True}),
    ]:
        d.same(nobody, "create", path, b"d", **kwargs)
    for path, version in [("/zookeeper", -1), ("/zookeeper/config", -1), ("/", -1),
                          ("/zookeeper/quota", 5), (f"{base}/missing/x", -1),
                          (f"{base}/nodelete/kid", 5), (f"{base}/nodelete/missing", -1),
                          (f"{base}/p/missing", -1), (f"{base}/p", 3), (f"{base}/p", 0),
                          (f"{base}/p/a\0b", -1), (f"{base}/p/bad\u0001", -1)]:
        d.same(nobody, "delete", path, version=version)
    for path, version in [(f"{base}/p/bad\u0001", -1), (f"{base}/missing", -1),
                          (f"{base}/locked", 7), (f"{base}/p", 7), ("/zookeeper/config", -1),
                          (f"{base}/p/a\0b", -1)]:
        d.same(nobody, "set", path, b"", version=version)
    for path, acl, version in [(f"{base}/p/bad\u0001", bad_acl, -1),
                               (f"{base}/missing", bad_acl, -1),
                               (f"{base}/missing", [], -1),
                               (f"{base}/missing", list(OPEN_ACL_UNSAFE), -1),
                               (f"{base}/locked", list(OPEN_ACL_UNSAFE), 5),
                               (f"{base}/p", list(OPEN_ACL_UNSAFE), 5)]:
        d.same(nobody, "set_acls", path, acl, version=version)
    for ident in ["010.0.0.1", "10.0.0.0/-1", "+10.0.0.1", "10.0.0.1/+8", "10.0.0.1/08",
                  "1.2.3.4.5", "1.2.3.", "0.0.0.0/0", "127.0.0.1/32", " 1.2.3.4"]:
        d.same(a, "create", f"{base}/ip-", b"", sequence=True,
               acl=[ACL(1, Id("ip", ident))])
    d.same(a, "get_children", base)

    def txn(*ops):
        def build(t):
            for op in ops:
                getattr(t, op[0])(*op[1:])
        return d.commit(nobody, build, repr(ops))

    txn(("check", f"{base}/locked", -1))  # check needs READ
    txn(("check", f"{base}/p/bad\u0001", -1))
    txn(("create", f"{base}/m", b""), ("create", f"{base}/m/x", b"", bad_acl),
        ("create", f"{base}/n", b""))
    txn(("delete", f"{base}/p/kid"), ("delete", f"{base}/p"), ("check", f"{base}/p", -1))
    txn(("set_data", f"{base}/locked", b""))
    txn(("create", f"{base}/m", b""), ("check", f"{base}/m", 1), ("delete", f"{base}/p/kid"))


@pytest.mark.parametrize("timeout", [0.5, 4.0, 10.0, 39.0, 100.0])
def test_session_timeout_negotiation(fresh: Dual, timeout: float) -> None:
    """min(max(requested, 2 x tickTime), 20 x tickTime), the same on both (Dual.open checks)."""
    s = fresh.open("T", timeout=timeout)
    fresh.same(s, "exists", "/")
    assert s.negotiated["ours"] == [min(max(timeout * 1000, 4000), 40000)]


def test_deliberate_divergences_stay_as_documented(fresh: Dual) -> None:
    """The corners where zkserver answers differently on purpose (docs/compatibility-notes.md).

    The generator keeps out of them; this test pins down both sides' answers, so a change on
    either side (a newer oracle, a zkserver regression) shows up here.
    """
    d = fresh
    base = d.new_base()
    a = d.open("A")
    d.same(a, "add_auth", "digest", "u1:pw1")
    d.same(a, "create", base, b"")
    d.same(a, "create", f"{base}/secret", b"s", acl=[U1_ALL])
    # 1. notifications carry the zxid of the write that fired them (3.9); 3.8.0 sends -1
    w = d.open("W")
    d.same(w, "get", f"{base}/secret", watch=True)  # A's u1 identity is not W's: NOAUTH
    d.same(w, "exists", f"{base}/new", watch=True)
    d.same(a, "create", f"{base}/new", b"")
    created = d.same(a, "exists", f"{base}/new")["czxid"]
    d.check_events([w])
    assert [z for *_, z in w.raw["zk"]] == [-1 if realzk.DEBIAN else created]
    assert [z for *_, z in w.raw["ours"]] == [created]
    # 2. sync echoes its path; 3.8.0 encodes a character beyond U+FFFF as two 3-byte
    # surrogates (CESU-8), which kazoo cannot decode
    real, ours = d.run(a, "sync", f"{base}/\U0001F600")
    assert real == "UnicodeDecodeError" and ours == f"{base}/\U0001F600"


def test_get_acls_masks_digests_without_admin(fresh: Dual) -> None:
    d = fresh
    base = d.new_base()
    a, b = d.open("A"), d.open("B")
    d.same(a, "add_auth", "digest", "u1:pw1")
    d.same(a, "create", base, b"")
    d.same(a, "create", f"{base}/rd", b"", acl=[READ_ACL_UNSAFE[0], U1_ALL])
    d.same(a, "create", f"{base}/adm", b"", acl=[make_acl("world", "anyone", admin=True),
                                                 U1_ALL, U2_READ])
    for s in (a, b):
        d.same(s, "get_acls", f"{base}/rd")  # b: READ without ADMIN
        d.same(s, "get_acls", f"{base}/adm")  # b: ADMIN without READ


@ORACLE_38
def test_watch_events_need_read_permission(fresh: Dual) -> None:
    """CVE-2024-23944: no event about a node the watcher may not READ (Debian backported it).

    The watch is used up all the same. NodeChildrenChanged is checked against the parent's ACL,
    NodeDeleted against the deleted node's, NodeCreated against the new node's.
    """
    d = fresh
    base = d.new_base()
    a, spy = d.open("A"), d.open("SPY")
    d.same(a, "add_auth", "digest", "u1:pw1")
    d.same(a, "create", base, b"")
    d.same(a, "create", f"{base}/open", b"o")
    d.same(a, "create", f"{base}/dir", b"")
    d.same(a, "create", f"{base}/dir/k", b"")
    d.same(a, "create", f"{base}/secret", b"s", acl=[U1_ALL])
    d.same(spy, "exists", f"{base}/secret", watch=True)  # NOAUTH (3.9.2+), no watch
    d.same(spy, "get", f"{base}/open", watch=True)
    d.same(spy, "get_children", f"{base}/dir", watch=True)
    d.same(spy, "get", f"{base}/dir/k", watch=True)
    d.same(spy, "exists", f"{base}/new", watch=True)
    d.same(spy, "get_children", base, watch=True)
    d.same(a, "set_acls", f"{base}/open", [U1_ALL])
    d.same(a, "set_acls", f"{base}/dir", [U1_ALL])
    d.same(a, "set", f"{base}/open", b"changed")  # not delivered
    d.same(a, "set", f"{base}/secret", b"changed")  # not delivered
    d.same(a, "delete", f"{base}/dir/k")  # NodeDeleted yes (k is open), the parent's no
    d.same(a, "create", f"{base}/new", b"", acl=[U1_ALL])  # NodeCreated no, / children yes
    d.check_events()
    for path in ("open", "secret", "new"):  # the watches were used up
        d.same(a, "set_acls", f"{base}/{path}", list(OPEN_ACL_UNSAFE))
        d.same(a, "set", f"{base}/{path}", b"again")
    d.same(spy, "exists", f"{base}/secret", watch=True)
    d.same(a, "delete", f"{base}/secret")  # open again: delivered


def test_null_acl_entries(fresh: Dual) -> None:
    """kazoo sends "" as a null string; ZooKeeper's duplicate check throws on some of them."""
    d = fresh
    base = d.new_base()
    a, b = d.open("A"), d.open("B")
    d.same(a, "add_auth", "digest", "u1:pw1")
    d.same(a, "create", base, b"")
    d.same(b, "get_children", base, watch=True)
    for acl in ([AUTH_ALL, AUTH_ALL], [AUTH_ALL, ACL(1, Id("auth", ""))],
                [ACL(1, Id("world", "anyone")), ACL(1, Id("world", ""))],
                [ACL(31, Id("world", "anyone")), ACL(31, Id("", "x"))],
                [ACL(1, Id("auth", "")), ACL(1, Id("world", "anyone"))],
                [ACL(1, Id("world", "anyone")), ACL(1, Id("auth", ""))],
                [ACL(1, Id("", "")), ACL(3, Id("world", "anyone"))],
                [ACL(31, Id("auth", "x")), ACL(31, Id("auth", "x"))]):
        d.same(a, "create", f"{base}/n-", b"", sequence=True, acl=acl)
        d.same(a, "create", f"{base}/missing/n", b"", acl=acl)  # before the parent's check
        d.same(a, "set_acls", base, acl)
        d.same(a, "get_acls", base)

    def build(t):
        t.create(f"{base}/x", b"")
        t.create(f"{base}/y", b"", acl=[AUTH_ALL, AUTH_ALL])
        t.create(f"{base}/z", b"")
    d.commit(a, build, "create x, y with [auth, auth], z")  # the whole multi fails
    d.same(a, "create", f"{base}/x", b"")  # nothing of it is left behind
    d.same(a, "get_children", base, include_data=True)


def test_payload_size_limit(fresh: Dual) -> None:
    """A request frame over jute.maxbuffer (1 MiB - 1) makes the server drop the connection:
    kazoo sees ConnectionLoss, reconnects to the same session, and nothing was written."""
    d = fresh
    base = d.new_base()
    a = d.open("A")
    d.same(a, "create", base, b"")
    for n in (1024 * 1024 - 200, 1024 * 1024 - 40, 1024 * 1024, 2 * 1024 * 1024):
        d.same(a, "create", f"{base}/n-", b"x" * n, sequence=True)
        d.same(a, "exists", base)  # (kazoo has reconnected by now)
    d.same(a, "get", f"{base}/n-0000000000")
    assert a.states["zk"] == a.states["ours"]
    assert a.states["ours"].count("SUSPENDED") == 3
    for side in a.states:
        a.states[side][:] = ["CONNECTED"]  # the drops were the point


def test_pipelined_writes_see_each_other(fresh: Dual) -> None:
    """Requests sent before any answer is read: each write is checked against the ones before
    it that are not committed yet (ZooKeeper's outstanding changes, zkserver's pending view)."""
    d = fresh
    base = d.new_base()
    a, b = d.open("A"), d.open("B")
    d.same(b, "exists", f"{base}/p", watch=True)
    d.batch(a, [
        ("create", (base, b""), {}),
        ("create", (f"{base}/p", b"1"), {}),
        ("create", (f"{base}/p/q-", b""), {"sequence": True}),
        ("create", (f"{base}/p/q-", b""), {"sequence": True, "ephemeral": True}),
        ("delete", (f"{base}/p",), {}),  # NOTEMPTY: its children are pending
        ("set", (f"{base}/p", b"2"), {"version": 0}),
        ("set", (f"{base}/p", b"3"), {"version": 0}),  # BADVERSION against the pending set
        ("transaction", (("delete", f"{base}/p/q-0000000000", -1),
                         ("check", f"{base}/p", 1), ("create", f"{base}/p/r", b"")), {}),
        ("transaction", (("create", f"{base}/p/s", b""), ("check", f"{base}/p", 7)), {}),
        ("create", (f"{base}/p/s", b""), {}),  # the failed multi's create is forgotten
        ("get_children", (f"{base}/p",), {"include_data": True}),
        ("delete", (f"{base}/p/q-0000000001",), {"version": 0}),
        ("get", (f"{base}/p",), {}),
    ])
    d.same(a, "get_children", f"{base}/p", include_data=True)
