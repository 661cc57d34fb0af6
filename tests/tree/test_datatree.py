"""The data tree's Stat rules, sans I/O: transactions made by `Prep`, applied by `DataTree`.

These are the rules clients can see (checked against a real ZooKeeper by tests/differential):
the cversion quirk, sequence suffixes, pzxid, the built-in nodes' stats, ephemerals deleted by
one closeSession transaction, and containers/TTL nodes showing ephemeralOwner 0.
"""

from __future__ import annotations

from typing import Any

import pytest

from zkserver.prep import Prep, Session
from zkserver.proto import records as R
from zkserver.proto.codes import EventType, Op
from zkserver.tree import javahash
from zkserver.tree.datatree import CONTAINER_OWNER, DataTree, StatAt, ttl_of, ttl_owner
from zkserver.txn import CloseSessionTxn, CreateSessionTxn, CreateTxn, ErrorTxn, SetDataTxn, Txn

SID = 0x1000000000001
OTHER = 0x1000000000002
T0 = 1_700_000_000_000

# Stat field positions (wire order)
CZXID, MZXID, CTIME, MTIME, VERSION, CVERSION, AVERSION, OWNER, DLEN, NCHILD, PZXID = range(11)


class Core:
    """Prep + DataTree, committing every transaction at once (a standalone server)."""

    def __init__(self, extended_types: bool = False) -> None:
        self.tree = DataTree()
        self.prep = Prep(self.tree, extended_types=extended_types)
        self.now = T0

    def write(self, op: int, req: Any, sid: int = SID) -> tuple[Any, list]:
        self.now += 1
        txn = self.prep.write(op, req, Session(sid, []), 1, self.now)
        return self.apply(txn)

    def apply(self, txn: Any) -> tuple[Any, list]:
        result, events = self.tree.apply(txn)
        self.prep.committed(txn.zxid)
        return result, events

    def create(self, path: str, data: bytes | None = b"", flags: int = 0, sid: int = SID,
               op: int = Op.CREATE) -> Any:
        result, _ = self.write(op, R.CreateRequest(path, data, R.OPEN_ACL_UNSAFE, flags), sid)
        return result

    def delete(self, path: str, version: int = -1) -> Any:
        return self.write(Op.DELETE, R.DeleteRequest(path, version))[0]

    def set(self, path: str, data: bytes | None, version: int = -1) -> Any:
        return self.write(Op.SET_DATA, R.SetDataRequest(path, data, version))[0]

    def stat(self, path: str) -> tuple[int, ...]:
        return self.tree.nodes[path].stat()

    def close(self, sid: int) -> tuple[Any, list]:
        self.now += 1
        return self.apply(self.prep.close_session(sid, 0, self.now))


def test_root_and_zookeeper_initial_stats() -> None:
    tree = DataTree()
    assert sorted(tree.nodes) == ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]
    root = tree.nodes["/"].stat()
    assert root == (0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0)  # cversion -1: /zookeeper never counted
    assert tree.nodes["/zookeeper"].stat() == (0, 0, 0, 0, 0, -2, 0, 0, 0, 2, 0)
    assert tree.nodes["/zookeeper/quota"].stat() == (0,) * 11
    config = tree.nodes["/zookeeper/config"]
    assert config.stat()[AVERSION] == -1 and config.data == b""
    assert config.acl == ((1, "world", "anyone"),)
    assert tree.node_count() == 5  # ZooKeeper's map holds the root twice
    assert tree.last_zxid == 0


def test_create_stat_and_parent_counters() -> None:
    core = Core()
    path, node = core.create("/a", b"xyz")
    assert path == "/a"
    s = node.stat()
    assert (s[CZXID], s[MZXID], s[PZXID]) == (1, 1, 1)
    assert s[CTIME] == s[MTIME] == core.now
    assert (s[VERSION], s[CVERSION], s[AVERSION], s[OWNER], s[DLEN], s[NCHILD]) == \
        (0, 0, 0, 0, 3, 0)
    root = core.stat("/")
    assert root[CVERSION] == 0 and root[PZXID] == 1 and root[NCHILD] == 2
    assert root[MZXID] == 0  # a child create is not a data change


def test_null_and_empty_data_are_kept_apart() -> None:
    core = Core()
    core.create("/null", None)
    core.create("/empty", b"")
    assert core.tree.nodes["/null"].data is None
    assert core.tree.nodes["/empty"].data == b""
    assert core.stat("/null")[DLEN] == core.stat("/empty")[DLEN] == 0


def test_cversion_counts_creates_and_deletes() -> None:
    core = Core()
    core.create("/p")
    for name in "abc":
        core.create(f"/p/{name}")
    assert core.stat("/p")[CVERSION] == 3
    core.delete("/p/b")
    s = core.stat("/p")
    assert (s[CVERSION], s[NCHILD]) == (4, 2)  # reported: 2*creates - children
    assert core.tree.nodes["/p"].cversion == 3  # stored: creates only
    core.delete("/p/a")
    core.delete("/p/c")
    assert core.stat("/p")[CVERSION] == 6


def test_sequence_suffix_uses_the_create_counter() -> None:
    core = Core()
    core.create("/p")
    assert core.create("/p/q-", flags=2)[0] == "/p/q-0000000000"
    core.create("/p/x")
    core.delete("/p/x")
    core.delete("/p/q-0000000000")
    assert core.stat("/p")[CVERSION] == 4
    # deletes don't count: the next suffix is 2, not 4
    assert core.create("/p/q-", flags=3)[0] == "/p/q-0000000002"
    assert core.create("/p/", flags=2)[0] == "/p/0000000003"  # a bare parent plus the suffix


def test_sequence_suffix_of_a_negative_counter() -> None:
    core = Core()
    core.create("/p")
    core.tree.nodes["/p"].cversion = -(1 << 31)  # after 2**31 creates the int wraps
    core.prep.changes.clear()
    assert core.create("/p/n", flags=2)[0] == "/p/n-2147483648"
    core.tree.nodes["/p"].cversion = -1
    assert core.create("/p/m", flags=2)[0] == "/p/m-000000001"


def test_pzxid_follows_child_creates_and_deletes_only() -> None:
    core = Core()
    core.create("/p")
    core.create("/p/c")  # zxid 2
    assert core.stat("/p")[PZXID] == 2
    core.set("/p", b"x")  # zxid 3
    core.set("/p/c", b"y")  # zxid 4
    assert core.stat("/p")[PZXID] == 2 and core.stat("/p")[MZXID] == 3
    core.create("/p/c/g")  # zxid 5: a grandchild doesn't move /p's pzxid
    assert core.stat("/p")[PZXID] == 2
    core.delete("/p/c/g")  # zxid 6
    core.delete("/p/c")  # zxid 7
    assert core.stat("/p")[PZXID] == 7


def test_set_data_moves_version_mzxid_mtime() -> None:
    core = Core()
    core.create("/n", b"a")
    created = core.stat("/n")
    node = core.set("/n", b"bb", 0)
    s = node.stat()
    assert (s[VERSION], s[MZXID], s[CZXID], s[DLEN]) == (1, 2, 1, 2)
    assert s[MTIME] == core.now and s[CTIME] == created[CTIME] and s[MTIME] != s[CTIME]
    assert s[CVERSION] == 0 and s[PZXID] == 1


def test_ephemeral_owner_and_close_session_uses_one_zxid() -> None:
    core = Core()
    core.create("/p")
    core.create("/p/e1", flags=1)
    core.create("/p/e2", flags=3)
    core.create("/e3", flags=1)
    core.create("/o", flags=1, sid=OTHER)
    assert core.stat("/p/e1")[OWNER] == SID
    assert set(core.tree.ephemerals[SID]) == {"/p/e1", "/p/e20000000001", "/e3"}
    watcher = object()
    core.tree.watches.add_data("/p/e1", watcher)
    core.tree.watches.add_child("/p", watcher)
    before = core.tree.last_zxid
    result, events = core.close(SID)
    zxid = before + 1
    assert core.tree.last_zxid == zxid
    assert all(p not in core.tree.nodes for p in ("/p/e1", "/p/e20000000001", "/e3"))
    assert "/o" in core.tree.nodes and SID not in core.tree.ephemerals
    assert core.stat("/p")[PZXID] == zxid and core.stat("/")[PZXID] == zxid
    assert core.stat("/p")[NCHILD] == 0 and core.stat("/p")[CVERSION] == 4
    assert (watcher, EventType.NODE_DELETED, "/p/e1") in events
    assert sum(1 for e in events if e[1] == EventType.NODE_CHILDREN_CHANGED) == 1


def test_ephemerals_of_other_sessions_survive_and_closing_twice_is_harmless() -> None:
    core = Core()
    core.create("/e", flags=1, sid=OTHER)
    core.close(SID)
    assert "/e" in core.tree.nodes
    core.close(OTHER)
    core.close(OTHER)
    assert "/e" not in core.tree.nodes


def test_close_session_deletes_in_java_hash_set_order() -> None:
    """ZooKeeper iterates a clone of its HashSet; watchers see the deletions in that order."""
    core = Core()
    paths = [core.create(f"/e{i}-", flags=3)[0] for i in range(5)]
    txn = core.prep.close_session(SID, 0, core.now)
    assert isinstance(txn.op, CloseSessionTxn)
    # a clone of 5 entries has 8 buckets; within a bucket the source's order (16 buckets)
    expected = javahash.iteration_order(javahash.iteration_order(paths, 16), 8)
    assert list(txn.op.paths) == expected
    assert sorted(expected) == sorted(paths)


def test_java_hash_order_helpers() -> None:
    assert javahash.string_hash("") == 0
    assert javahash.string_hash("a") == 97
    assert javahash.string_hash("/zookeeper") == 954481661  # "/zookeeper".hashCode() in Java
    assert javahash.clone_capacity(0) == 16
    assert [javahash.clone_capacity(n) for n in (1, 2, 3, 5, 6, 11, 12)] == \
        [2, 4, 8, 8, 16, 16, 32]
    assert javahash.grown_capacity(12, 16) == 16 and javahash.grown_capacity(13, 16) == 32
    # one bucket keeps insertion order; buckets go in index order
    assert javahash.iteration_order(["b", "a"], 1) == ["b", "a"]
    assert javahash.iteration_order(["b", "a"], 16) == ["a", "b"]


def test_identity_order_is_a_concurrent_hash_map_order() -> None:
    """Values checked against Java: Id.hashCode() and a ConcurrentHashMap-backed set."""
    u1 = ("digest", "u1:cO3JQ7NLKx81M3VewVIrTBCVEVo=")
    u2 = ("digest", "u2:4Stp4FP2yVYM3T4fX3ahWx1yyT4=")
    ids = [("ip", "127.0.0.1"), u2, u1, ("digest", "u1:x"), ("digest", "a:b"),
           ("digest", "zz:q")]
    assert javahash.id_hash("digest", "u1:x") == -2032593129 & 0xFFFFFFFF
    assert javahash.identity_order(ids) == [("digest", "a:b"), u1, u2, ("digest", "zz:q"),
                                            ("ip", "127.0.0.1"), ("digest", "u1:x")]


def test_hash_table_growth_is_remembered_for_the_session() -> None:
    core = Core()
    for i in range(13):
        core.create(f"/n{i}", flags=1)
    assert core.tree.ephemeral_capacity[SID] == 32
    for i in range(12):
        core.delete(f"/n{i}")
    assert core.tree.ephemeral_capacity[SID] == 32  # a HashSet never shrinks
    core.close(SID)
    assert SID not in core.tree.ephemeral_capacity


def test_container_and_ttl_owner_encoding_is_shown_as_zero() -> None:
    core = Core(extended_types=True)
    core.create("/c", op=Op.CREATE_CONTAINER, flags=4)
    assert core.tree.nodes["/c"].owner == CONTAINER_OWNER
    assert core.stat("/c")[OWNER] == 0
    assert "/c" in core.tree.containers
    req = R.CreateTTLRequest("/t", b"", R.OPEN_ACL_UNSAFE, 5, 5000)
    core.write(Op.CREATE_TTL, req)
    owner = core.tree.nodes["/t"].owner
    assert owner == ttl_owner(5000) and ttl_of(owner) == 5000 and ttl_of(CONTAINER_OWNER) is None
    assert core.stat("/t")[OWNER] == 0
    assert "/t" in core.tree.ttls
    # containers and TTL nodes may have children (only real ephemerals may not)
    assert core.create("/c/kid")[0] == "/c/kid"
    assert core.create("/t/kid")[0] == "/t/kid"


def test_multi_results_show_each_ops_stat_as_it_left_the_node() -> None:
    core = Core()
    ops = [(Op.CREATE, R.CreateRequest("/m", b"1", R.OPEN_ACL_UNSAFE, 0)),
           (Op.SET_DATA, R.SetDataRequest("/m", b"22", -1)),
           (Op.CREATE2, R.CreateRequest("/m/k", b"", R.OPEN_ACL_UNSAFE, 0)),
           (Op.SET_DATA, R.SetDataRequest("/m", b"333", -1))]
    results, _ = core.write(Op.MULTI, ops)
    zxid = core.tree.last_zxid
    first_set, second_set = results[1], results[3]
    assert isinstance(first_set, StatAt)
    assert first_set.stat()[VERSION] == 1 and first_set.stat()[NCHILD] == 0
    assert first_set.stat()[DLEN] == 2
    assert second_set.stat()[VERSION] == 2 and second_set.stat()[NCHILD] == 1
    assert results[2][1].stat()[CZXID] == zxid
    assert all(core.stat(p)[CZXID] == zxid for p in ("/m", "/m/k"))


def test_watch_events_of_create_set_delete() -> None:
    core = Core()
    w = object()
    tree = core.tree
    tree.watches.add_data("/n", w)  # exists() on a missing node
    tree.watches.add_child("/", w)
    _, events = core.write(Op.CREATE, R.CreateRequest("/n", b"", R.OPEN_ACL_UNSAFE, 0))
    assert events == [(w, EventType.NODE_CREATED, "/n"), (w, EventType.NODE_CHILDREN_CHANGED, "/")]
    tree.watches.add_data("/n", w)
    tree.watches.add_child("/n", w)
    _, events = core.write(Op.SET_DATA, R.SetDataRequest("/n", b"x", -1))
    assert events == [(w, EventType.NODE_DATA_CHANGED, "/n")]
    _, events = core.write(Op.DELETE, R.DeleteRequest("/n", -1))
    assert events == [(w, EventType.NODE_DELETED, "/n")]  # one event for both watches
    _, events = core.write(Op.SET_DATA, R.SetDataRequest("/n", b"x", -1))
    assert events == []  # a failed write fires nothing


def test_events_only_for_watchers_that_may_read_the_node() -> None:
    """`apply`'s can_see (the READ check on delivery, CVE-2024-23944) decides per watcher."""
    core = Core()
    secret = [R.ACL.of(1, "digest", "alice:x"), R.ACL.of(30, "world", "anyone")]  # READ: alice
    core.write(Op.CREATE, R.CreateRequest("/s", b"", secret, 0))
    alice, bob = "alice", "bob"
    for w in (alice, bob):
        core.tree.watches.add_data("/s", w)
    asked: list[tuple[str, tuple]] = []

    def can_see(watcher: Any, acl: Any) -> bool:
        asked.append((watcher, acl))
        return watcher == "alice"

    core.now += 1
    txn = core.prep.write(Op.SET_DATA, R.SetDataRequest("/s", b"x", -1), Session(SID, []), 1,
                          core.now)
    _, events = core.tree.apply(txn, can_see)
    assert events == [(alice, EventType.NODE_DATA_CHANGED, "/s")]
    assert {w for w, _ in asked} == {alice, bob}
    core.tree.watches.add_data("/s", bob)
    _, events = core.write(Op.SET_DATA, R.SetDataRequest("/s", b"y", -1))
    assert events == [(bob, EventType.NODE_DATA_CHANGED, "/s")]  # no can_see: everyone is told


def test_failed_write_takes_a_zxid_and_changes_nothing() -> None:
    core = Core()
    core.create("/n")
    before = {p: n.stat() for p, n in core.tree.nodes.items()}
    result, events = core.write(Op.SET_DATA, R.SetDataRequest("/n", b"x", 7))
    assert isinstance(result, ErrorTxn) and events == []
    assert core.tree.last_zxid == 2
    assert {p: n.stat() for p, n in core.tree.nodes.items()} == before


@pytest.mark.parametrize("version,after", [(0x7FFFFFFE, 0x7FFFFFFF), (0x7FFFFFFF, -(1 << 31)),
                                           (-2, 0)])
def test_version_wraps_like_a_java_int_and_skips_minus_one(version: int, after: int) -> None:
    core = Core()
    core.create("/n")
    core.tree.nodes["/n"].version = version
    assert core.set("/n", b"", version).stat()[VERSION] == after


def test_the_digest_of_a_known_tree_stays_what_every_version_computed():
    """Members compare digests after every commit, so a member running older code must compute
    the same value: a change to how nodes are hashed would stop a mixed ensemble."""
    t = DataTree()
    t.track_digest()
    t.apply(Txn(1, 1_700_000_000_000, 5, 1, CreateSessionTxn(6000)))
    t.apply(Txn(2, 1_700_000_000_001, 5, 2,
                CreateTxn("/a", b"x" * 10, ((31, "world", "anyone"),), 0, 1)))
    t.apply(Txn(3, 1_700_000_000_002, 5, 3,
                CreateTxn("/a/e", None, ((1, "digest", "u:h"),), 5, 1)))
    t.apply(Txn(4, 1_700_000_000_003, 5, 4, SetDataTxn("/a", b"", 1)))
    assert t.digest == 0xCD09F3B679518162
    assert t.digest == t.track_digest()  # kept per transaction = computed afresh
