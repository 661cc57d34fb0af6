"""A reconfig request on the leader: ZooKeeper's checks, in ZooKeeper's order, and the config
transaction (new /zookeeper/config data, version -1, NodeDataChanged) a good one becomes."""

from __future__ import annotations

import pytest

from zkserver.config import ServerSpec
from zkserver.prep import Prep, Session
from zkserver.proto import records as R
from zkserver.proto.codes import Err, EventType, Op
from zkserver.quorum.membership import Membership
from zkserver.quorum.reconfig import LeaderView
from zkserver.tree import acl as aclmod
from zkserver.tree.datatree import CONFIG_PATH, DataTree
from zkserver.txn import ErrorTxn, ReconfigTxn, Txn

SID = 0x1000000000001
SUPER = [aclmod.SUPER]
NOBODY: list[aclmod.Identity] = []
V0 = 0x100000000


def spec(sid: int, observer: bool = False) -> ServerSpec:
    return ServerSpec(sid, "127.0.0.1", 2000 + sid, 3000 + sid,
                      "observer" if observer else "participant", None, 4000 + sid)


THREE = Membership({s: spec(s) for s in (1, 2, 3)}, version=V0)


class Leader:
    def __init__(self, *, synced: set[int] | None = None, current: Membership = THREE,
                 last_seen: int | None = None, skip_acl: bool = False) -> None:
        self.tree = DataTree()
        self.prep = Prep(self.tree, reconfig_enabled=True, skip_acl=skip_acl)
        self.prep.restart(self.tree, V0)
        self.view = LeaderView(current, current.version if last_seen is None else last_seen,
                               frozenset({1, 2, 3} if synced is None else synced))
        self.prep.leader_view = lambda: self.view

    def reconfig(self, joining: str | None = None, leaving: str | None = None,
                 members: str | None = None, from_config: int = -1,
                 auth: list[aclmod.Identity] = SUPER) -> Txn:
        req = R.ReconfigRequest(joining, leaving, members, from_config)
        return self.prep.write(Op.RECONFIG, req, Session(SID, auth), 1, 1234)

    def error(self, **kw: object) -> int:
        txn = self.reconfig(**kw)  # type: ignore[arg-type]
        assert isinstance(txn.op, ErrorTxn), txn
        return txn.op.err


def test_disabled_and_not_leading_answer_as_before() -> None:
    tree = DataTree()
    off = Prep(tree)
    off.leader_view = lambda: LeaderView(THREE, V0, frozenset({1, 2, 3}))
    req = R.ReconfigRequest(None, "3", None, -1)
    assert off.write(Op.RECONFIG, req, Session(SID, SUPER), 1, 0).op == \
        ErrorTxn(Err.RECONFIGDISABLED)
    assert Prep(tree, reconfig_enabled=True).write(
        Op.RECONFIG, req, Session(SID, SUPER), 1, 0).op == ErrorTxn(Err.UNIMPLEMENTED)


def test_removing_a_follower() -> None:
    leader = Leader()
    txn = leader.reconfig(leaving="3")
    zxid = V0 + 1
    assert txn.zxid == zxid
    want = (b"server.1=127.0.0.1:2001:3001:participant;0.0.0.0:4001\n"
            b"server.2=127.0.0.1:2002:3002:participant;0.0.0.0:4002\n"
            b"version=100000001")
    assert txn.op == ReconfigTxn(want)
    assert Membership.parse(want, zxid).verifier().voters == {1, 2}
    # Applied: data, mzxid and mtime as a setData with version -1, and watchers told.
    watcher = object()
    leader.tree.watches.add_data(CONFIG_PATH, watcher)
    node, events = leader.tree.apply(txn)
    assert (node.data, node.mzxid, node.mtime, node.version) == (want, zxid, 1234, -1)
    assert events == [(watcher, EventType.NODE_DATA_CHANGED, CONFIG_PATH)]


def test_adding_servers_incrementally_and_a_new_member_list() -> None:
    leader = Leader(synced={1, 2, 3, 4})
    joining = ("server.4=127.0.0.1:2004:3004:participant;4004, "
               "server.5=127.0.0.1:2005:3005:observer;127.0.0.1:4005")
    txn = leader.reconfig(joining=joining)
    new = Membership.parse(txn.op.data, txn.zxid)
    assert new.verifier().voters == {1, 2, 3, 4} and new.verifier().observers == {5}
    assert b"server.5=127.0.0.1:2005:3005:observer;127.0.0.1:4005\n" in txn.op.data

    members = ",".join(f"server.{s}=127.0.0.1:{2000 + s}:{3000 + s};{4000 + s}"
                       for s in (2, 3, 4))
    txn = Leader(synced={2, 3}).reconfig(members=members)
    assert Membership.parse(txn.op.data, txn.zxid).verifier().voters == {2, 3, 4}


@pytest.mark.parametrize("kw,err", [
    ({"joining": "some thing"}, Err.BADARGUMENTS),
    ({"joining": "server.4=127.0.0.1:2004"}, Err.BADARGUMENTS),  # one port
    ({"joining": "server.4=127.0.0.1:2004:3004"}, Err.BADARGUMENTS),  # no client port
    ({"joining": "server.4=127.0.0.1:2001:3004;4004"}, Err.BADARGUMENTS),  # 1's quorum port
    ({"joining": "server.x=127.0.0.1:2004:3004;4004"}, Err.MARSHALLINGERROR),
    ({"leaving": "three"}, Err.MARSHALLINGERROR),
    ({"leaving": "2,3"}, Err.BADARGUMENTS),  # one voter left
    ({"members": "server.1=127.0.0.1:2001:3001;4001,tickTime=2000"}, Err.BADARGUMENTS),
    ({"members": "server.1=127.0.0.1:2001:3001:observer;4001"}, Err.MARSHALLINGERROR),
    ({"members": "server.1=127.0.0.1:2001:3001;4001,group.1=1:9"}, Err.BADARGUMENTS),
    ({"joining": "server.4=127.0.0.1:2004:3004;4004,server.5=127.0.0.1:2005:3005;4005"},
     Err.NEWCONFIGNOQUORUM),  # 4 and 5 are not synced: 3 of 5 would be
    ({"leaving": "3", "from_config": V0 + 7}, Err.BADVERSION),
    ({"leaving": "3", "auth": NOBODY}, Err.NOAUTH),
])
def test_refusals(kw: dict, err: int) -> None:
    leader = Leader(synced={1, 2, 3} if err != Err.NEWCONFIGNOQUORUM else {1, 2})
    assert leader.error(**kw) == err


def test_the_order_of_the_checks() -> None:
    """In flight beats a bad version, a bad version beats bad arguments, no quorum beats the
    ACL: a caller learns of the earliest problem as ZooKeeper would tell it."""
    assert Leader(last_seen=V0 + 9).error(leaving="x", from_config=5, auth=NOBODY) == \
        Err.RECONFIGINPROGRESS
    assert Leader().error(joining="junk", from_config=5, auth=NOBODY) == Err.BADVERSION
    assert Leader().error(joining="junk", auth=NOBODY) == Err.BADARGUMENTS
    assert Leader(synced={1}).error(leaving="3", auth=NOBODY) == Err.NEWCONFIGNOQUORUM
    assert Leader().reconfig(leaving="3", from_config=V0).op.data.endswith(b"version=100000001")


def test_skip_acl_and_an_open_config_acl_let_anyone_reconfigure() -> None:
    assert isinstance(Leader(skip_acl=True).reconfig(leaving="3", auth=NOBODY).op, ReconfigTxn)
    leader = Leader()
    leader.tree.nodes[CONFIG_PATH].acl = aclmod.OPEN_ACL
    assert isinstance(leader.reconfig(leaving="3", auth=NOBODY).op, ReconfigTxn)


def test_one_reconfiguration_at_a_time() -> None:
    """A second reconfig prepared before the first commits is in progress; after it commits
    (the driver's view moves on) the next one may start."""
    leader = Leader()
    first = leader.reconfig(leaving="3")
    assert leader.error(leaving="2") == Err.RECONFIGINPROGRESS
    leader.tree.apply(first)
    leader.prep.committed(first.zxid)
    new = Membership.parse(first.op.data, first.zxid)
    leader.view = LeaderView(new, first.zxid, frozenset({1, 2}))
    assert leader.error(leaving="2") == Err.BADARGUMENTS  # one voter would be left
    txn = leader.reconfig(joining="server.3=127.0.0.1:2003:3003;4003")
    assert Membership.parse(txn.op.data, txn.zxid).verifier().voters == {1, 2, 3}


def test_incremental_needs_a_majority_configuration() -> None:
    hier = Membership({s: spec(s) for s in (1, 2, 3)}, {1: frozenset({1, 2, 3})}, {},
                      version=V0)
    assert Leader(current=hier).error(leaving="3") == Err.BADARGUMENTS
