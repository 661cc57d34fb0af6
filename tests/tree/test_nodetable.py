"""The node table, native and in Python: the same interface, the same answers."""

from __future__ import annotations

import importlib
import pickle
import random
import struct
from types import ModuleType

import pytest

from zkserver.tree import nodetable

OPEN = ((31, "world", "anyone"),)
READ = ((1, "world", "anyone"),)
CONTAINER = -(1 << 63)
TTL = -(1 << 56) | 5000
ROOT = "/"


@pytest.fixture(params=["zkserver.tree._nodetable", "zkserver.tree.pynodetable"],
                ids=["native", "python"])
def impl(request) -> ModuleType:
    return importlib.import_module(request.param)


def table(impl: ModuleType, *paths: str):
    t = impl.NodeTable()
    t.restore(ROOT, b"", OPEN, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    for i, p in enumerate(paths, 1):
        t.add(p, t[p[:p.rfind("/")] or "/"], b"d" + p.encode(), OPEN, i, 1000 + i, 0)
    return t


def fields(n) -> tuple:
    return (n.data, n.acl, n.czxid, n.mzxid, n.ctime, n.mtime, n.version, n.cversion,
            n.aversion, n.owner, n.pzxid)


def test_the_native_table_is_built():
    """The install compiles it (setup.py); zkserver runs on the Python one only where it
    could not, at twice the memory per znode."""
    assert nodetable.NATIVE


def test_read_as_a_mapping(impl):
    t = table(impl, "/a", "/a/b", "/c")
    assert len(t) == 4
    assert "/a/b" in t and "/x" not in t
    assert t.get("/x") is None and t.get("/x", 7) == 7
    assert t["/a"].data == b"d/a"
    with pytest.raises(KeyError):
        t["/nope"]
    assert list(t) == ["/", "/a", "/a/b", "/c"]  # insertion order while nothing was removed
    assert [p for p, _ in t.items()] == list(t)
    assert [n.czxid for n in t.values()] == [0, 1, 2, 3]


def test_a_new_node_has_zookeepers_initial_stat(impl):
    t = table(impl, "/a")
    assert fields(t["/a"]) == (b"d/a", OPEN, 1, 1, 1001, 1001, 0, 0, 0, 0, 1)
    assert t["/a"].stat() == (1, 1, 1001, 1001, 0, 0, 0, 0, 3, 0, 1)


def test_every_field_keeps_what_is_set(impl):
    t = table(impl, "/a")
    n = t["/a"]
    n.mzxid, n.mtime, n.pzxid, n.version, n.cversion, n.aversion = 9, 2000, 8, 3, 4, 5
    n.owner, n.data, n.acl = 0x1234, b"new", READ
    assert fields(t["/a"]) == (b"new", READ, 1, 9, 1001, 2000, 3, 4, 5, 0x1234, 8)
    n.mzxid, n.mtime, n.version = 1, 1001, 0  # back to the values a new node has
    assert fields(t["/a"]) == (b"new", READ, 1, 1, 1001, 1001, 0, 4, 5, 0x1234, 8)
    n.czxid, n.ctime = 50, 60  # the fields that start equal to them stay as they were
    assert (n.czxid, n.mzxid, n.pzxid, n.ctime, n.mtime) == (50, 1, 8, 60, 1001)


def test_no_data_is_not_empty_data(impl):
    t = table(impl)
    a = t.add("/none", t[ROOT], None, OPEN, 1, 1, 0)
    b = t.add("/empty", t[ROOT], b"", OPEN, 2, 2, 0)
    assert a.data is None and b.data == b""
    assert a.stat()[8] == 0 and b.stat()[8] == 0
    a.data, b.data = b"", None
    assert t["/none"].data == b"" and t["/empty"].data is None


@pytest.mark.parametrize("owner", [0, 1, 0x7FFFFFFFFFFFFFFF, CONTAINER, TTL, -1])
def test_owners_and_what_stat_shows(impl, owner):
    t = table(impl)
    n = t.add("/e", t[ROOT], b"", OPEN, 1, 1, owner)
    assert n.owner == owner
    assert n.stat()[7] == (owner if owner > 0 else 0)


def test_the_limits_of_each_field(impl):
    t = table(impl, "/a")
    n = t["/a"]
    for name in ("version", "cversion", "aversion"):
        for v in (-(1 << 31), -1, (1 << 31) - 1):
            setattr(n, name, v)
            assert getattr(t["/a"], name) == v
    for name in ("czxid", "mzxid", "ctime", "mtime", "pzxid", "owner"):
        for v in (-(1 << 63), -1, (1 << 63) - 1):
            setattr(n, name, v)
            assert getattr(t["/a"], name) == v


def test_a_large_value_and_a_unicode_path(impl):
    t = table(impl)
    big = bytes(range(256)) * 4096  # 1 MiB, jute.maxbuffer's default
    t.add("/ключ", t[ROOT], big, OPEN, 1, 1, 0)
    t.add("/ключ/子", t["/ключ"], b"", OPEN, 2, 2, 0)
    assert t["/ключ"].data == big
    assert t["/ключ"].child_names("/ключ") == ["子"]
    assert list(t["/ключ"].child_paths()) == ["/ключ/子"]


def test_children_are_filed_and_unfiled(impl):
    t = table(impl, "/a", "/a/x", "/a/y", "/b")
    a = t["/a"]
    assert sorted(a.child_names("/a")) == ["x", "y"]
    assert sorted(a.child_paths()) == ["/a/x", "/a/y"]
    assert sorted(t[ROOT].child_names(ROOT)) == ["a", "b"]
    assert a.child_count() == 2 and a.stat()[9] == 2
    gone = t.remove("/a/x", a)
    assert gone is not None and gone.data == b"d/a/x"  # still readable
    assert "/a/x" not in t and t["/a"].child_names("/a") == ["y"]
    assert t.remove("/a/x", a) is None


def test_removing_children_of_a_large_parent(impl):
    t = table(impl, "/p")
    parent = t["/p"]
    paths = [f"/p/n{i:06d}" for i in range(20_000)]
    for i, p in enumerate(paths):
        t.add(p, parent, b"", OPEN, i, i, 0)
    random.Random(1).shuffle(paths)
    for p in paths[:19_990]:
        t.remove(p, parent)
    assert sorted(t["/p"].child_paths()) == sorted(paths[19_990:])
    assert t["/p"].child_count() == 10 and len(t) == 2 + 10


def test_a_snapshot_may_list_a_child_before_its_parent(impl):
    t = impl.NodeTable()
    t.restore("/a/b", b"1", OPEN, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    t.restore("/a", b"2", OPEN, 1, 1, 1, 1, 0, 1, 0, 0, 2)
    t.restore(ROOT, b"", OPEN, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    t.link()
    assert t[ROOT].child_names(ROOT) == ["a"] and t["/a"].child_names("/a") == ["b"]
    assert fields(t["/a/b"]) == (b"1", OPEN, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    t.link()  # again: nothing filed twice
    assert t["/a"].child_count() == 1


def test_a_removed_node_stays_readable_and_its_path_free(impl):
    t = table(impl, "/a")
    held = t["/a"]
    removed = t.remove("/a", t[ROOT])
    assert removed == held
    t.add("/a", t[ROOT], b"again", OPEN, 9, 9, 0)
    assert held.data == b"d/a" and held.czxid == 1
    held.version = 5  # writes to the removed node touch nothing stored
    assert t["/a"].version == 0 and t["/a"].data == b"again"
    assert t[ROOT].child_count() == 1


def test_two_reads_of_one_node_are_equal_and_share_changes(impl):
    t = table(impl, "/a", "/b")
    x, y = t["/a"], t["/a"]
    assert x == y and x != t["/b"] and len({x, y}) == 1
    x.version = 3
    assert y.version == 3


def test_many_reads_of_one_node_held_at_once(impl):
    t = table(impl, "/a")
    held = [t["/a"] for _ in range(70_000)]  # past a 16-bit count of handles
    t.remove("/a", t[ROOT])
    assert all(n.data == b"d/a" for n in held[::1000])
    del held
    t.add("/a", t[ROOT], b"", OPEN, 2, 2, 0)
    assert t["/a"].czxid == 2


def test_the_table_may_not_change_size_while_iterated(impl):
    t = table(impl, "/a", "/b")
    for n in t.values():
        n.version += 1  # fields may change
    assert [n.version for n in t.values()] == [1, 1, 1]
    with pytest.raises(RuntimeError):
        for p in t:
            if p == "/a":
                t.add("/c", t[ROOT], b"", OPEN, 3, 3, 0)


def test_pickled_and_back(impl):
    t = table(impl, "/a", "/a/b")
    t["/a/b"].owner = CONTAINER
    t["/a"].data = None
    back = pickle.loads(pickle.dumps(t))
    back.link()
    assert {p: fields(n) for p, n in back.items()} == {p: fields(n) for p, n in t.items()}
    assert back["/a"].child_names("/a") == ["b"]


def test_clear(impl):
    t = table(impl, "/a", "/a/b")
    held = t["/a/b"]
    t.clear()
    assert len(t) == 0 and list(t) == [] and held.data == b"d/a/b"
    t.restore(ROOT, b"", OPEN, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert list(t) == [ROOT]


def test_random_changes_against_a_dict(impl):
    rng = random.Random(7)
    t = table(impl)
    model: dict[str, tuple] = {ROOT: (b"", 0)}
    for step in range(20_000):
        path = f"/n{rng.randrange(300)}"
        action = rng.random()
        if path not in model and action < 0.5:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
            t.add(path, t[ROOT], data, OPEN, step, step, 0)
            model[path] = (data, 0)
        elif path in model and action < 0.7:
            assert t.remove(path, t[ROOT]).data == model.pop(path)[0]
        elif path in model:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
            t[path].data, t[path].version = data, step
            model[path] = (data, step)
    assert {p: (n.data, n.version) for p, n in t.items()} == model
    assert sorted(t[ROOT].child_paths()) == sorted(p for p in model if p != ROOT)


@pytest.mark.parametrize("data", [b"same len", b"longer than before", b"", None])
def test_a_setdata_changes_four_fields_at_once(impl, data):
    t = table(impl, "/a", "/a/b")
    n = t["/a"]
    n.pzxid, n.owner = 7, CONTAINER
    for version, mzxid, mtime in ((0, 1, 1001), (1, 20, 3000), (-(1 << 31), 21, 3001)):
        n.set_data(data, version, mzxid, mtime)
        assert fields(t["/a"]) == (data, OPEN, 1, mzxid, 1001, mtime, version, 0, 0,
                                   CONTAINER, 7)
        n.set_data(b"d/a", version, mzxid, mtime)  # the stored value's length again
        assert t["/a"].data == b"d/a"
    assert t["/a"].child_names("/a") == ["b"] and t["/a/b"].data == b"d/a/b"


def test_the_packed_fields_are_the_digests_layout(impl):
    t = table(impl, "/a")
    n = t["/a"]
    n.mzxid, n.mtime, n.version, n.cversion, n.aversion = -2, 1 << 40, -(1 << 31), 5, -1
    n.owner, n.pzxid = TTL, (1 << 63) - 1
    assert n.packed_fields() == struct.pack(">qqqqiiiqq", 1, -2, 1001, 1 << 40, -(1 << 31), 5,
                                            -1, TTL, (1 << 63) - 1)
