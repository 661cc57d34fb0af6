"""A leader's answers to reconfig requests, zkserver's checks against Apache ZooKeeper's.

A 3-server Apache ZooKeeper ensemble (reconfigEnabled, a superDigest) takes a series of
reconfig requests from kazoo, good and bad, with and without the super user; the same requests
go to zkserver's prep with a leader view of that same ensemble (its /zookeeper/config, all three
synced). Every error code must match, and every accepted request must produce byte for byte the
configuration ZooKeeper replies with (at ZooKeeper's zxid, which versions it), the reply's Stat
showing version -1 and mzxid = that zxid. The ensemble's configuration moves on with each
accepted change, and so does the view.

This covers the checks and the configuration text; the replication of a reconfiguration is the
ZAB core's (tests/simulation/test_zab_reconfig.py).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from support import realzk
from support.process import free_port_base
from support.realzk import RealZooKeeper

from zkserver.prep import Prep, Session
from zkserver.proto import records as R
from zkserver.proto.codes import Err, Op
from zkserver.quorum.membership import Membership
from zkserver.quorum.reconfig import LeaderView
from zkserver.tree import acl as aclmod
from zkserver.tree.datatree import DataTree
from zkserver.txn import ErrorTxn

PASSWORD = "reconfig-test"


def super_digest() -> str:
    sha = hashlib.sha1(f"super:{PASSWORD}".encode()).digest()
    return f"super:{base64.b64encode(sha).decode()}"


def zk_answer(client: KazooClient, req: R.ReconfigRequest) -> tuple[int, bytes | None, tuple]:
    try:
        data, stat = client.reconfig(req.joiningServers, req.leavingServers, req.newMembers,
                                     req.curConfigId)
    except KazooException as e:
        return getattr(e, "code", None), None, ()
    return 0, data, (stat.version, stat.mzxid, stat.aversion)


def our_answer(current: bytes, req: R.ReconfigRequest, super_user: bool, zxid: int) -> tuple:
    tree = DataTree()
    prep = Prep(tree, reconfig_enabled=True)
    membership = Membership.parse(current)
    prep.restart(tree, zxid - 1)
    prep.leader_view = lambda: LeaderView(membership, membership.version,
                                          frozenset(membership.servers))
    auth = [aclmod.SUPER] if super_user else []
    txn = prep.write(Op.RECONFIG, req, Session(0x100, auth), 1, 0)
    if isinstance(txn.op, ErrorTxn):
        return txn.op.err, None
    return 0, txn.op.data


def test_reconfig_answers_as_zookeeper(tmp_path: Path) -> None:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not available (tests/run.sh fetches it)")
    base = free_port_base(3)
    extra = ["reconfigEnabled=true", f"DigestAuthenticationProvider.superDigest={super_digest()}"]
    obs = f"127.0.0.1:{base + 150}:{base + 250}"
    with RealZooKeeper(tmp_path / "zk", base, n=3, extra=extra) as zk:
        plain = KazooClient(zk.hosts, timeout=15)
        admin = KazooClient(zk.hosts, timeout=15, auth_data=[("digest", f"super:{PASSWORD}")])
        plain.start(timeout=60)
        admin.start(timeout=60)
        try:
            line = f"server.4={obs}:participant"
            cases: list[tuple[bool, R.ReconfigRequest]] = [
                (False, R.ReconfigRequest(None, "3", None, -1)),  # NOAUTH
                (True, R.ReconfigRequest("some thing", None, None, -1)),
                (True, R.ReconfigRequest(f"server.4=127.0.0.1:{base + 150}", None, None, -1)),
                (True, R.ReconfigRequest(line, None, None, -1)),  # no client port
                (True, R.ReconfigRequest(None, "2,3", None, -1)),  # one voter left
                (True, R.ReconfigRequest(None, "3", None, 12345)),  # BADVERSION
                (True, R.ReconfigRequest(None, None, "server.1=127.0.0.1:1:2;3,tickTime=2", -1)),
                (True, R.ReconfigRequest(
                    ",".join(f"server.{s}=127.0.0.1:{base + 140 + s}:{base + 240 + s};"
                             f"{base + 40 + s}" for s in (4, 5, 6)), None, None, -1)),
                (True, R.ReconfigRequest(None, "three", None, -1)),  # MARSHALLINGERROR
                (True, R.ReconfigRequest(f"server.x={obs};{base + 50}", None, None, -1)),
                # accepted: an observer that is not running joins, and leaves again
                (True, R.ReconfigRequest(f"server.100={obs}:observer;0.0.0.0:{base + 50}",
                                         None, None, -1)),
                (True, R.ReconfigRequest(None, "100", None, -1)),
                (True, R.ReconfigRequest(None, "100", None, -1)),  # already gone: same list
            ]
            answered = []
            for super_user, req in cases:
                current, _ = admin.get("/zookeeper/config")
                code, data, stat = zk_answer(admin if super_user else plain, req)
                version = stat[1] if stat else Membership.parse(current).version + 1
                ours = our_answer(current, req, super_user, version)
                answered.append(code)
                assert ours == (code, data), (req, (code, data), ours)
                if code == 0:
                    assert stat == (-1, version, -1)
            # The whole member list given anew (what Curator's and zkCli's -members send).
            current, _ = admin.get("/zookeeper/config")
            members = ",".join(ln for ln in current.decode().splitlines()
                               if ln.startswith("server."))
            req = R.ReconfigRequest(None, None, members, Membership.parse(current).version)
            code, data, stat = zk_answer(admin, req)
            assert code == 0
            assert our_answer(current, req, True, stat[1]) == (0, data)
        finally:
            plain.stop()
            admin.stop()
    assert answered[:8] == [Err.NOAUTH] + [Err.BADARGUMENTS] * 4 + [Err.BADVERSION,
                                                                     Err.BADARGUMENTS,
                                                                     Err.NEWCONFIGNOQUORUM]
    assert answered[8:] == [Err.MARSHALLINGERROR] * 2 + [0, 0, 0]
