"""Prep: which error a failing write gets (the order of checks), multi rollback, zxids.

The order of checks follows ZooKeeper's PrepRequestProcessor (the reference, §4.2 and §8.3);
tests/differential checks the same orders against a real ZooKeeper through kazoo.
"""

from __future__ import annotations

from typing import Any

import pytest

from zkserver.prep import Prep, Session
from zkserver.proto import records as R
from zkserver.proto.codes import Err, Op
from zkserver.tree import acl as aclmod
from zkserver.tree.datatree import DataTree
from zkserver.txn import (
    CheckTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
)

SID = 0x1000000000001
U1 = aclmod.digest_id("u1:pw1")
U1_IDS = [("ip", "127.0.0.1"), ("digest", U1)]
NOBODY = [("ip", "127.0.0.1")]

OPEN = R.OPEN_ACL_UNSAFE
U1_ALL = [R.ACL.of(31, "digest", U1)]
READ_ONLY = R.READ_ACL_UNSAFE
NO_CREATE = [R.ACL.of(31 & ~4, "world", "anyone")]
NO_DELETE = [R.ACL.of(31 & ~8, "world", "anyone")]
BAD_ACL = [R.ACL.of(31, "world", "nobody")]


class Core:
    def __init__(self, extended_types: bool = False) -> None:
        self.tree = DataTree()
        self.prep = Prep(self.tree, extended_types=extended_types)
        self.now = 1000

    def prepare(self, op: int, req: Any, auth: list | None = None, sid: int = SID) -> Any:
        self.now += 1
        return self.prep.write(op, req, Session(sid, list(auth or NOBODY)), 7, self.now)

    def commit(self, txn: Any) -> Any:
        result, _ = self.tree.apply(txn)
        self.prep.committed(txn.zxid)
        return result

    def do(self, op: int, req: Any, auth: list | None = None, sid: int = SID) -> Any:
        txn = self.prepare(op, req, auth, sid)
        self.commit(txn)
        return txn.op

    def err(self, op: int, req: Any, auth: list | None = None) -> int:
        body = self.do(op, req, auth)
        return body.err if isinstance(body, ErrorTxn) else 0

    def mk(self, path: str, acl: list = OPEN, flags: int = 0, auth: list | None = None) -> None:
        body = self.do(Op.CREATE, R.CreateRequest(path, b"", acl, flags), auth or U1_IDS)
        assert isinstance(body, CreateTxn), body


def create(path: str | None, flags: int = 0, acl: list | None = OPEN) -> R.CreateRequest:
    return R.CreateRequest(path, b"d", acl, flags)


@pytest.fixture
def core() -> Core:
    c = Core()
    c.mk("/p")
    c.mk("/p/kid")
    c.mk("/locked", U1_ALL)
    c.mk("/nocreate", NO_CREATE)
    c.mk("/nodelete", NO_DELETE)
    c.mk("/nodelete/kid")
    c.mk("/eph", flags=1)
    return c


# -- create -------------------------------------------------------------------------------------

@pytest.mark.parametrize("req,err", [
    # 1. flags first: even a missing parent and a bad path come later
    (create("/missing/x\0", flags=9), Err.BADARGUMENTS),
    (create("/missing/x", flags=-1), Err.BADARGUMENTS),
    # 4. no '/' or a NUL, before the ACL is looked at
    (create("noslash", acl=BAD_ACL), Err.BADARGUMENTS),
    (create("/p/a\0b", acl=BAD_ACL), Err.BADARGUMENTS),
    # 5. the ACL before the parent
    (create("/missing/x", acl=BAD_ACL), Err.INVALIDACL),
    (create("/missing/x", acl=[]), Err.INVALIDACL),
    (create("/missing/x", acl=[R.ACL.of(31, "auth", "")]), Err.INVALIDACL),
    # 6. the parent must exist
    (create("/missing/x"), Err.NONODE),
    # 7. CREATE on the parent, before the full path is validated and before NODEEXISTS
    (create("/locked/bad\u0001"), Err.NOAUTH),
    (create("/nocreate/x"), Err.NOAUTH),
    # 9. the full path (with its suffix) is validated, before NODEEXISTS
    (create("/p/bad\u0001"), Err.BADARGUMENTS),
    (create("/p/."), Err.BADARGUMENTS),
    (create("/p/kid/"), Err.BADARGUMENTS),  # a trailing slash is only legal when sequential
    (create("/p/\U0001F600"), Err.BADARGUMENTS),
    # 10. the node exists
    (create("/p/kid"), Err.NODEEXISTS),
    (create("/eph"), Err.NODEEXISTS),
    # 11. then an ephemeral parent
    (create("/eph/x"), Err.NOCHILDRENFOREPHEMERALS),
    (create("/eph/x", flags=3), Err.NOCHILDRENFOREPHEMERALS),
])
def test_create_check_order(core: Core, req: R.CreateRequest, err: int) -> None:
    assert core.err(Op.CREATE, req) == err


def test_create_ttl_checks_come_first() -> None:
    core = Core()
    ttl = R.CreateTTLRequest("/missing/x", b"", OPEN, 5, 1000)
    assert core.err(Op.CREATE_TTL, ttl) == Err.UNIMPLEMENTED  # extended types are off
    core = Core(extended_types=True)
    assert core.err(Op.CREATE_TTL, R.CreateTTLRequest("/x", b"", OPEN, 5, 0)) == \
        Err.BADARGUMENTS
    assert core.err(Op.CREATE_TTL, R.CreateTTLRequest("/x", b"", OPEN, 0, 10)) == \
        Err.BADARGUMENTS  # a non-TTL mode through createTTL needs ttl < 0
    assert core.err(Op.CREATE_TTL, R.CreateTTLRequest("/missing/x", b"", OPEN, 5, 10)) == \
        Err.NONODE


def test_create_sequential_under_a_trailing_slash(core: Core) -> None:
    body = core.do(Op.CREATE, create("/p/", flags=2))
    assert isinstance(body, CreateTxn) and body.path == "/p/0000000001"


def test_auth_acl_expands_to_authenticated_ids_only() -> None:
    core = Core()
    body = core.do(Op.CREATE, create("/a", acl=[R.ACL.of(31, "auth", "")]), U1_IDS)
    assert body.acl == ((31, "digest", U1),)  # the ip identity is not "authenticated"
    # duplicates go before expansion, so an expanded auth entry may repeat an explicit one
    body = core.do(Op.CREATE, create("/b", acl=[R.ACL.of(31, "auth", ""), *U1_ALL, *U1_ALL]),
                   U1_IDS)
    assert body.acl == ((31, "digest", U1), (31, "digest", U1))


def test_auth_acl_expands_in_javas_identity_set_order() -> None:
    u2 = aclmod.digest_id("u2:pw2")
    core = Core()
    ids = [("ip", "127.0.0.1"), ("digest", u2), ("digest", U1)]  # u2 authenticated first
    body = core.do(Op.CREATE, create("/a", acl=[R.ACL.of(31, "auth", "")]), ids)
    assert body.acl == ((31, "digest", U1), (31, "digest", u2))


@pytest.mark.parametrize("acl,err", [
    # ZooKeeper's duplicate check calls Java's equals() on entries of equal perms: a null
    # scheme, or a null id under an equal scheme, throws (MARSHALLINGERROR)
    ([R.ACL.of(31, "auth", None), R.ACL.of(31, "auth", None)], Err.MARSHALLINGERROR),
    ([R.ACL.of(1, "world", "anyone"), R.ACL.of(1, "world", None)], Err.MARSHALLINGERROR),
    ([R.ACL.of(1, "world", "anyone"), R.ACL.of(1, None, "x")], Err.MARSHALLINGERROR),
    ([R.ACL.of(1, "auth", None), R.ACL.of(1, "world", "anyone")], 0),  # schemes differ
    ([R.ACL.of(1, "auth", None), R.ACL.of(3, "auth", None)], 0),  # perms differ
    ([R.ACL.of(1, None, None), R.ACL.of(3, "world", "anyone")], Err.INVALIDACL),
    ([R.ACL.of(1, "auth", "x"), R.ACL.of(1, "auth", "x")], 0),  # a plain duplicate
])
def test_null_strings_in_acls(acl: list, err: int) -> None:
    core = Core()
    zxid = core.prep.last_zxid
    assert core.err(Op.CREATE, create("/missing/n", acl=acl), U1_IDS) in (err, Err.NONODE)
    assert core.err(Op.CREATE, create("/n", acl=acl), U1_IDS) == err
    assert core.err(Op.SET_ACL, R.SetACLRequest("/missing", acl, -1), U1_IDS) in \
        (err, Err.NONODE)
    assert core.prep.last_zxid == zxid + 3


def test_null_acl_fails_the_whole_multi() -> None:
    core = Core()
    bad = [R.ACL.of(31, "auth", None), R.ACL.of(31, "auth", None)]
    txn = core.prepare(Op.MULTI, [(Op.CREATE, create("/x")), (Op.CREATE, create("/y", acl=bad)),
                                  (Op.CREATE, create("/z"))], U1_IDS)
    assert txn.op == ErrorTxn(Err.MARSHALLINGERROR)  # a header error, not per-op results
    assert core.prep.record("/x") is None  # rolled back
    core.commit(txn)
    assert "/x" not in core.tree.nodes


@pytest.mark.parametrize("scheme,ident,ok", [
    ("world", "anyone", True), ("world", "someone", False),
    ("digest", "u:hash", True), ("digest", "u", False), ("digest", "u:a:b", False),
    ("digest", "u:", False), ("digest", ":hash", True),
    ("ip", "10.0.0.1", True), ("ip", "10.0.0.0/8", True), ("ip", "010.0.0.1", True),
    ("ip", "10.0.0.0/33", False), ("ip", "10.0.0.0/-1", False), ("ip", "1.2.3", False),
    ("ip", "300.0.0.1", False), ("ip", "::1", True),  # IPv6 as 3.9.4+ (3.8: IPv4 only)
    ("ip", "::ffff:1.2.3.4", False), ("ip", "fe80::/129", False),
    ("sasl", "joe", False), ("super", "", False), ("nope", "x", False), ("", "", False),
])
def test_acl_ids_the_schemes_accept(scheme: str, ident: str, ok: bool) -> None:
    core = Core()
    err = core.err(Op.CREATE, create("/n", acl=[R.ACL.of(31, scheme, ident)]))
    assert err == (0 if ok else Err.INVALIDACL)


def test_ip_acls_match_by_prefix() -> None:
    acl = ((31, "ip", "127.0.0.0/8"),)
    assert aclmod.check(acl, 1, [("ip", "127.1.2.3")])
    assert not aclmod.check(acl, 1, [("ip", "128.0.0.1")])
    assert aclmod.check(((1, "ip", "0.0.0.0/0"),), 1, [("ip", "10.9.8.7")])
    assert not aclmod.check(((1, "ip", "127.0.0.1"),), 1, [("ip", "::1")])


# -- delete, setData, setACL, check -------------------------------------------------------------

@pytest.mark.parametrize("path,version,err", [
    ("noslash", -1, Err.BADARGUMENTS),
    ("/zookeeper", -1, Err.BADARGUMENTS),  # system nodes, before anything else
    ("/zookeeper/config", -1, Err.BADARGUMENTS),
    ("/", -1, Err.BADARGUMENTS),
    ("/missing/x", -1, Err.NONODE),  # the parent
    ("/nodelete/kid", 5, Err.NOAUTH),  # DELETE on the parent, before the node's version
    ("/nodelete/missing", -1, Err.NOAUTH),  # ... and before the node's existence
    ("/p/missing", -1, Err.NONODE),
    ("/p", 3, Err.BADVERSION),  # version before children
    ("/p", 0, Err.NOTEMPTY),
    ("/locked", -1, 0),  # the node's own ACL is not consulted
])
def test_delete_check_order(core: Core, path: str, version: int, err: int) -> None:
    assert core.err(Op.DELETE, R.DeleteRequest(path, version)) == err


@pytest.mark.parametrize("path,version,err", [
    ("/p/bad\u0001", -1, Err.BADARGUMENTS),  # the path before existence
    ("/missing", -1, Err.NONODE),
    ("/locked", 7, Err.NOAUTH),  # WRITE before the version
    ("/p", 7, Err.BADVERSION),
    ("/p", 0, 0),
    ("/zookeeper/config", -1, Err.NOAUTH),  # world:anyone READ only
])
def test_set_data_check_order(core: Core, path: str, version: int, err: int) -> None:
    assert core.err(Op.SET_DATA, R.SetDataRequest(path, b"", version)) == err


@pytest.mark.parametrize("path,acl,version,err", [
    ("/p/bad\u0001", BAD_ACL, -1, Err.BADARGUMENTS),
    ("/missing", BAD_ACL, -1, Err.INVALIDACL),  # the ACL before existence
    ("/missing", [], -1, Err.INVALIDACL),
    ("/missing", OPEN, -1, Err.NONODE),
    ("/locked", OPEN, 5, Err.NOAUTH),  # ADMIN before the aversion
    ("/p", OPEN, 5, Err.BADVERSION),
    ("/p", OPEN, 0, 0),
])
def test_set_acl_check_order(core: Core, path: str, acl: list, version: int, err: int) -> None:
    assert core.err(Op.SET_ACL, R.SetACLRequest(path, acl, version)) == err


def test_set_acl_bumps_aversion_only(core: Core) -> None:
    body = core.do(Op.SET_ACL, R.SetACLRequest("/p", READ_ONLY, 0))
    assert isinstance(body, SetACLTxn) and body.version == 1
    node = core.tree.nodes["/p"]
    assert node.stat()[6] == 1 and node.stat()[4] == 0 and node.acl == ((1, "world", "anyone"),)
    assert core.err(Op.SET_DATA, R.SetDataRequest("/p", b"", -1)) == Err.NOAUTH


def _multi(*ops: tuple[int, Any]) -> list[tuple[int, Any]]:
    return list(ops)


# -- multi ----------------------------------------------------------------------------------------

def test_multi_success_shares_one_zxid(core: Core) -> None:
    before = core.prep.last_zxid
    txn = core.prepare(Op.MULTI, _multi(
        (Op.CREATE, create("/m")), (Op.CREATE, create("/m/k")),
        (Op.SET_DATA, R.SetDataRequest("/m", b"x", 0)), (Op.CHECK, R.CheckVersionRequest("/m", 1)),
        (Op.DELETE, R.DeleteRequest("/m/k", 0))))
    assert txn.zxid == before + 1
    assert [type(t) for t in txn.op.txns] == [CreateTxn, CreateTxn, SetDataTxn, CheckTxn,
                                             DeleteTxn]
    core.commit(txn)
    assert core.tree.nodes["/m"].czxid == core.tree.nodes["/m"].mzxid == txn.zxid
    assert "/m/k" not in core.tree.nodes and core.tree.nodes["/m"].stat()[5] == 2


@pytest.mark.parametrize("ops,failed,err", [
    ([(Op.CHECK, R.CheckVersionRequest("/p", 9))], 0, Err.BADVERSION),
    ([(Op.CREATE, create("/m")), (Op.CHECK, R.CheckVersionRequest("/m", 1)),
      (Op.DELETE, R.DeleteRequest("/p/kid", -1))], 1, Err.BADVERSION),
    ([(Op.CREATE, create("/m")), (Op.CREATE, create("/m"))], 1, Err.NODEEXISTS),
    ([(Op.DELETE, R.DeleteRequest("/p", -1))], 0, Err.NOTEMPTY),
    ([(Op.DELETE, R.DeleteRequest("/p/kid", -1)), (Op.DELETE, R.DeleteRequest("/p", -1)),
      (Op.CHECK, R.CheckVersionRequest("/p", -1))], 2, Err.NONODE),
    ([(Op.SET_DATA, R.SetDataRequest("/locked", b"", -1))], 0, Err.NOAUTH),
    ([(Op.CHECK, R.CheckVersionRequest("/locked", -1))], 0, Err.NOAUTH),  # check needs READ
    ([(Op.CHECK, R.CheckVersionRequest("/p/bad\u0001", -1))], 0, Err.BADARGUMENTS),
    ([(Op.CREATE, create("/m")), (Op.CREATE, create("/m/x", acl=BAD_ACL)),
      (Op.CREATE, create("/n"))], 1, Err.INVALIDACL),
])
def test_multi_failure_results_and_rollback(core: Core, ops: list, failed: int,
                                            err: int) -> None:
    before_nodes = {p: n.stat() for p, n in core.tree.nodes.items()}
    zxid = core.prep.last_zxid
    txn = core.prepare(Op.MULTI, ops)
    assert txn.zxid == zxid + 1  # a failed multi takes a zxid too
    assert isinstance(txn.op, MultiTxn)
    codes = [t.err for t in txn.op.txns]
    assert codes == [0] * failed + [err] + [Err.RUNTIMEINCONSISTENCY] * (len(ops) - failed - 1)
    assert all(isinstance(t, ErrorTxn) for t in txn.op.txns)
    # the pending view forgot whatever the failed multi had prepared
    assert core.prep.record("/m") is None
    assert core.prep.record("/p").num_children == 1
    follow = core.prepare(Op.CREATE, create("/m"))
    assert isinstance(follow.op, CreateTxn) and follow.zxid == zxid + 2
    core.commit(txn)
    assert {p: n.stat() for p, n in core.tree.nodes.items()} == before_nodes
    core.commit(follow)
    assert core.tree.nodes["/m"].czxid == zxid + 2


def test_multi_rollback_keeps_earlier_pending_changes(core: Core) -> None:
    first = core.prepare(Op.SET_DATA, R.SetDataRequest("/p", b"a", 0))  # not committed yet
    failed = core.prepare(Op.MULTI, [(Op.SET_DATA, R.SetDataRequest("/p", b"b", 1)),
                                     (Op.CHECK, R.CheckVersionRequest("/p", 7))])
    assert [t.err for t in failed.op.txns] == [0, Err.BADVERSION]
    assert core.prep.record("/p").version == 1  # the first setData is still pending
    nxt = core.prepare(Op.SET_DATA, R.SetDataRequest("/p", b"c", 1))
    assert isinstance(nxt.op, SetDataTxn) and nxt.op.version == 2
    for txn in (first, failed, nxt):
        core.commit(txn)
    assert core.tree.nodes["/p"].version == 2 and core.tree.nodes["/p"].data == b"c"


def test_multi_rollback_restores_the_last_of_an_earlier_multis_changes(core: Core) -> None:
    """Found by the differential suite (pipelined multis): an earlier multi's changes to one
    path share a zxid, and the last of them is the one that must show again."""
    first = core.prepare(Op.MULTI, [(Op.DELETE, R.DeleteRequest("/p/kid", -1)),
                                    (Op.CREATE, create("/p/r"))])  # /p: -1 child, then +1
    failed = core.prepare(Op.MULTI, [(Op.CREATE, create("/p/s")),
                                     (Op.CHECK, R.CheckVersionRequest("/p", 7))])
    assert failed.op.txns[1].err == Err.BADVERSION
    rec = core.prep.record("/p")
    assert (rec.cversion, rec.num_children) == (2, 1)
    nxt = core.prepare(Op.CREATE, create("/p/s"))
    assert nxt.op.parent_cversion == 3
    for txn in (first, failed, nxt):
        core.commit(txn)
    p = core.tree.nodes["/p"]
    assert p.stat()[5] == 2 * 3 - 2 and p.pzxid == nxt.zxid and p.child_count() == 2


def test_empty_multi_is_a_transaction(core: Core) -> None:
    zxid = core.prep.last_zxid
    txn = core.prepare(Op.MULTI, [])
    assert txn.zxid == zxid + 1 and txn.op == MultiTxn(())


# -- zxids and the pending view ------------------------------------------------------------------

def test_failed_writes_consume_a_zxid(core: Core) -> None:
    zxid = core.prep.last_zxid
    for op, req in [(Op.CREATE, create("/p")), (Op.DELETE, R.DeleteRequest("/nope", -1)),
                    (Op.SET_DATA, R.SetDataRequest("/p", b"", 99)),
                    (Op.SET_ACL, R.SetACLRequest("/p", [], -1))]:
        txn = core.prepare(op, req)
        zxid += 1
        assert txn.zxid == zxid and isinstance(txn.op, ErrorTxn)
        core.commit(txn)
        assert core.tree.last_zxid == zxid


@pytest.mark.parametrize("enabled,err", [(False, Err.RECONFIGDISABLED), (True, Err.UNIMPLEMENTED)])
def test_reconfig_is_a_refused_write(enabled: bool, err: int) -> None:
    tree = DataTree()
    prep = Prep(tree, reconfig_enabled=enabled)
    txn = prep.write(Op.RECONFIG, R.ReconfigRequest("server.2=h:1:2", None, None, -1),
                     Session(SID, NOBODY), 1, 0)
    assert txn.zxid == 1 and txn.op == ErrorTxn(err)


def test_pending_writes_see_each_other(core: Core) -> None:
    a = core.prepare(Op.CREATE, create("/q"))
    b = core.prepare(Op.CREATE, create("/q/r", flags=2))
    c = core.prepare(Op.CREATE, create("/q/r", flags=2))
    assert (b.op.path, c.op.path) == ("/q/r0000000000", "/q/r0000000001")
    d = core.prepare(Op.DELETE, R.DeleteRequest("/q", -1))
    assert d.op.err == Err.NOTEMPTY
    for txn in (a, b, c, d):
        core.commit(txn)
    assert core.tree.nodes["/q"].stat()[9] == 2


def test_close_session_while_its_create_is_pending(core: Core) -> None:
    pending = core.prepare(Op.CREATE, create("/e2", flags=1))
    close = core.prep.close_session(SID, 0, core.now)
    assert set(close.op.paths) == {"/eph", "/e2"}
    core.commit(pending)
    core.commit(close)
    assert "/eph" not in core.tree.nodes and "/e2" not in core.tree.nodes
    assert core.tree.nodes["/"].pzxid == close.zxid
