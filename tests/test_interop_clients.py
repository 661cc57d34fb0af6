"""Real ZooKeeper clients against zkserver: kazoo (Python), zkCli.sh (Java), cli_mt (C).

Each client creates, reads, lists, watches and deletes nodes. The expected outputs of the two
shells were learned from Apache ZooKeeper 3.8 (Debian); the tests that take both `zk_server` and
`real_zk` run the same session against both and compare, so the expectations stay checked
against the oracle.
"""

from __future__ import annotations

import re
import threading

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, NotEmptyError
from kazoo.protocol.states import EventType, KazooState
from support.clis import CliMt, ZkCli, run_zkcli, zkcli_output
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port
from support.wire import four_letter

EVENT_TIMEOUT = 10.0


@pytest.fixture
def kazoo(zk_server):
    clients: list[KazooClient] = []

    def make(hosts: str | None = None) -> KazooClient:
        zk = kazoo_client(hosts or zk_server.hosts)
        clients.append(zk)
        return zk

    yield make
    for zk in clients:
        stop_kazoo(zk)


@pytest.fixture(params=["zkserver", "zookeeper"])
def any_server(request, tmp_path):
    """zkserver, and the real ZooKeeper to prove the expectations are ZooKeeper's own."""
    if request.param == "zkserver":
        server: ZkServerProcess | RealZooKeeper = ZkServerProcess(tmp_path / "zks", free_port())
    else:
        server = RealZooKeeper(tmp_path / "real", free_port())
    with server:
        yield server


def _assert_alive(server) -> None:
    """The server outlived the client (real clients may reset connections when they quit)."""
    try:
        answer = four_letter(server.port, "ruok")
    except OSError as e:
        answer = repr(e)
    if answer == "imok":
        return
    proc = getattr(server, "proc", None)
    if proc is not None:
        try:
            proc.wait(2.0)
        except Exception:
            pass
        if proc.poll() is not None:
            log = server.log_path.read_text()[-1500:]
            pytest.fail(f"zkserver died (exit status {proc.returncode}) after the client "
                        f"quit; its log ends:\n{log}")
    pytest.fail(f"ruok answered {answer!r}")


def _kazoo_for(hosts: str) -> KazooClient:
    return kazoo_client(hosts)


# -- kazoo -----------------------------------------------------------------------------------------

@pytest.mark.compat(client="kazoo", feature="basic operations")
def test_kazoo_create_get_set_children_delete(zk_server, kazoo):
    zk = kazoo()
    assert zk.create("/kz", b"v0") == "/kz"
    data, stat = zk.get("/kz")
    assert data == b"v0"
    assert (stat.version, stat.numChildren, stat.dataLength, stat.ephemeralOwner) == (0, 0, 2, 0)
    assert stat.czxid == stat.mzxid == stat.pzxid

    stat2 = zk.set("/kz", b"v1")
    assert stat2.version == 1 and stat2.mzxid > stat.mzxid and stat2.czxid == stat.czxid
    with pytest.raises(BadVersionError):
        zk.set("/kz", b"v2", version=0)
    assert zk.get("/kz")[0] == b"v1"

    with pytest.raises(NodeExistsError):
        zk.create("/kz", b"")
    with pytest.raises(NoNodeError):
        zk.create("/missing/child", b"")

    for name in ("c", "a", "b"):
        zk.create(f"/kz/{name}", name.encode())
    seq = zk.create("/kz/s-", b"", sequence=True)
    assert re.fullmatch(r"/kz/s-\d{10}", seq)
    assert sorted(zk.get_children("/kz")) == sorted(["a", "b", "c", seq.rsplit("/", 1)[1]])
    children, pstat = zk.get_children("/kz", include_data=True)
    assert pstat.numChildren == 4 and pstat.cversion == 4

    with pytest.raises(NotEmptyError):
        zk.delete("/kz")
    zk.delete("/kz/a")
    assert zk.exists("/kz/a") is None
    with pytest.raises(NoNodeError):
        zk.get("/kz/a")
    zk.delete("/kz", recursive=True)
    assert zk.exists("/kz") is None
    assert zk.get_children("/") == ["zookeeper"]
    _assert_alive(zk_server)


@pytest.mark.compat(client="kazoo", feature="watches")
def test_kazoo_data_and_child_watches_fire(zk_server, kazoo):
    zk = kazoo()
    writer = kazoo()
    zk.create("/w", b"one")
    data_events: list = []
    child_events: list = []
    data_fired = threading.Event()
    child_fired = threading.Event()

    def on_data(event):
        data_events.append(event)
        data_fired.set()

    def on_child(event):
        child_events.append(event)
        child_fired.set()

    assert zk.get("/w", watch=on_data)[0] == b"one"
    assert zk.get_children("/w", watch=on_child) == []
    writer.set("/w", b"two")
    assert data_fired.wait(EVENT_TIMEOUT), "data watch did not fire"
    assert [(e.type, e.path) for e in data_events] == [(EventType.CHANGED, "/w")]
    assert not child_fired.is_set()

    writer.create("/w/kid", b"")
    assert child_fired.wait(EVENT_TIMEOUT), "child watch did not fire"
    assert [(e.type, e.path) for e in child_events] == [(EventType.CHILD, "/w")]

    # One-time watches: a second change is not reported again.
    data_fired.clear()
    writer.set("/w", b"three")
    assert zk.get("/w")[0] == b"three"  # the reply comes after any notification would have
    assert len(data_events) == 1

    # An exists watch on a missing node fires NodeCreated.
    created = threading.Event()
    assert zk.exists("/w2", watch=lambda e: created.set() if e.type == EventType.CREATED
                     else None) is None
    writer.create("/w2")
    assert created.wait(EVENT_TIMEOUT), "exists watch did not fire on create"

    # kazoo's DataWatch recipe (re-registering watches) sees every change in order.
    seen: list[bytes | None] = []
    got_three = threading.Event()

    @zk.DataWatch("/w2")
    def _watch(data, stat):
        seen.append(data)
        if data == b"3":
            got_three.set()

    for i in (1, 2, 3):
        writer.set("/w2", str(i).encode())
    assert got_three.wait(EVENT_TIMEOUT), f"DataWatch saw only {seen}"
    assert seen[0] == b"" and seen[-1] == b"3"
    _assert_alive(zk_server)


@pytest.mark.compat(client="kazoo", feature="ephemerals and sessions")
def test_kazoo_ephemeral_gone_after_session_close(zk_server, kazoo):
    owner = kazoo()
    observer = kazoo()
    owner.create("/eph-parent")
    path = owner.create("/eph-parent/e", b"x", ephemeral=True)
    stat = observer.exists(path)
    assert stat is not None and stat.ephemeralOwner == owner.client_id[0]

    deleted = threading.Event()
    children_changed = threading.Event()
    observer.exists(path, watch=lambda e: deleted.set() if e.type == EventType.DELETED
                    else None)
    observer.get_children("/eph-parent", watch=lambda e: children_changed.set())
    owner.stop()
    assert owner.state == KazooState.LOST
    assert deleted.wait(EVENT_TIMEOUT), "NodeDeleted not delivered after the session closed"
    assert children_changed.wait(EVENT_TIMEOUT)
    assert observer.exists(path) is None
    assert observer.get_children("/eph-parent") == []
    _assert_alive(zk_server)


# -- zkCli.sh (Java client) ---------------------------------------------------------------------

@pytest.mark.compat(client="zkCli.sh", feature="basic operations")
def test_zkcli_one_shot_commands(zk_server):
    hosts = zk_server.hosts
    r = run_zkcli(hosts, "create", "/oneshot", "hello")
    assert r.returncode == 0, r.stderr
    assert zkcli_output(r) == ["Created /oneshot"]
    r = run_zkcli(hosts, "get", "/oneshot")
    assert (r.returncode, zkcli_output(r)) == (0, ["hello"])
    r = run_zkcli(hosts, "ls", "/")
    assert (r.returncode, zkcli_output(r)) == (0, ["[oneshot, zookeeper]"])
    r = run_zkcli(hosts, "get", "/nothing-here")
    assert (r.returncode, zkcli_output(r)) == (1, ["Node does not exist: /nothing-here"])
    _assert_alive(zk_server)


# The scripted session: (command, output lines after `_normalise`). Learned from ZooKeeper 3.8
# on a fresh server (zxids included: a fresh server and the same writes give the same zxids).
STAT_APP = ["cZxid = 0x2", "ctime = <date>", "mZxid = 0x2", "mtime = <date>", "pZxid = 0x5",
            "cversion = 3", "dataVersion = 0", "aclVersion = 0", "ephemeralOwner = 0x0",
            "dataLength = 2", "numChildren = 3"]
ZKCLI_SCRIPT: list[tuple[str, list[str]]] = [
    ("create /app v1", ["Created /app"]),
    ("create -e /app/eph e", ["Created /app/eph"]),
    ("create -s /app/seq- s", ["Created /app/seq-0000000001"]),
    ("create -c /app/cont", ["Created /app/cont"]),
    ("create /app/cont/child x", ["Created /app/cont/child"]),
    ("ls /app", ["[cont, eph, seq-0000000001]"]),
    ("ls -s /app", ["[cont, eph, seq-0000000001]", *STAT_APP]),
    ("get /app", ["v1"]),
    ("get -s /app", ["v1", *STAT_APP]),
    ("set /app v2", []),
    ("stat /app", [line.replace("mZxid = 0x2", "mZxid = 0x7").replace(
        "dataVersion = 0", "dataVersion = 1") for line in STAT_APP]),
    ("stat /app/eph", ["cZxid = 0x3", "ctime = <date>", "mZxid = 0x3", "mtime = <date>",
                       "pZxid = 0x3", "cversion = 0", "dataVersion = 0", "aclVersion = 0",
                       "ephemeralOwner = <session>", "dataLength = 1", "numChildren = 0"]),
    ("getAcl /app", ["'world,'anyone", ": cdrwa"]),
    ("addauth digest alice:secret", []),
    ("create /app/secret s", ["Created /app/secret"]),
    ("setAcl /app/secret auth:alice:cdrwa", []),
    ("getAcl /app/secret", ["'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=", ": cdrwa"]),
    ("whoami", ["Auth scheme: User", "digest: alice", "ip: 127.0.0.1"]),
    ("getEphemerals", ["[/app/eph]"]),
    ("getEphemerals /app/s", ["[]"]),
    ("getAllChildrenNumber /app", ["5"]),
    ("getAllChildrenNumber /", ["9"]),
    ("sync /app", ["Sync is OK"]),
    ("delete /app/cont/child", []),
    ("deleteall /app/cont", []),
    ("stat /nonexistent", ["Node does not exist: /nonexistent"]),
    ("delete /app", ["Node not empty: /app"]),
    ("create /app/eph/x", ["Ephemerals cannot have children: /app/eph/x"]),
    ("create /nope/x", ["Node does not exist: /nope/x"]),
    ("set -v 0 /app v3", ["version No is not valid : /app"]),
    ("ls -R /app", ["/app", "/app/eph", "/app/secret", "/app/seq-0000000001"]),
    ("deleteall /app", []),
    ("ls /", ["[zookeeper]"]),
    ("ls -s /", ["[zookeeper]", "cZxid = 0x0", "ctime = <date>", "mZxid = 0x0",
                 "mtime = <date>", "pZxid = 0x10", "cversion = 1", "dataVersion = 0",
                 "aclVersion = 0", "ephemeralOwner = 0x0", "dataLength = 0",
                 "numChildren = 1"]),
]
_UNORDERED = {"whoami"}  # ZooKeeper keeps a connection's identities in a hash set


def _normalise(command: str, lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = re.sub(r"^(c|m)time = .*", r"\1time = <date>", line)
        line = re.sub(r"^ephemeralOwner = 0x(?!0$)[0-9a-f]+$", "ephemeralOwner = <session>", line)
        out.append(line)
    return sorted(out) if command.split()[0] in _UNORDERED else out


def _zkcli_script(cli: ZkCli) -> list[tuple[str, list[str]]]:
    return [(cmd, _normalise(cmd, cli.run(cmd))) for cmd, _ in ZKCLI_SCRIPT]


@pytest.mark.compat(client="zkCli.sh", feature="basic operations")
def test_zkcli_interactive_session(zk_server):
    with ZkCli(zk_server.hosts) as cli:
        transcript = _zkcli_script(cli)
        cli.close()
    diffs = [f"`{cmd}`: got {got}, want {_normalise(cmd, want)}"
             for (cmd, got), (_, want) in zip(transcript, ZKCLI_SCRIPT, strict=True)
             if got != _normalise(cmd, want)]
    assert not diffs, "unexpected zkCli output:\n" + "\n".join(diffs)
    _assert_alive(zk_server)


@pytest.mark.compat(client="zkCli.sh", feature="basic operations")
def test_zkcli_session_matches_real_zookeeper(zk_server, real_zk):
    with ZkCli(real_zk.hosts) as cli:
        theirs = _zkcli_script(cli)
        cli.close()
    with ZkCli(zk_server.hosts) as cli:
        ours = _zkcli_script(cli)
        cli.close()
    diffs = [f"`{cmd}`: zkserver {got} != ZooKeeper {want}"
             for (cmd, got), (_, want) in zip(ours, theirs, strict=True) if got != want]
    assert not diffs, "zkCli output differs from ZooKeeper's:\n" + "\n".join(diffs)
    _assert_alive(zk_server)


@pytest.mark.compat(client="zkCli.sh", feature="watches")
@pytest.mark.compat(client="zkCli.sh", feature="ephemerals and sessions")
def test_zkcli_watches_and_ephemerals(any_server):
    kz = _kazoo_for(any_server.hosts)
    try:
        with ZkCli(any_server.hosts) as cli:
            assert cli.run("create /zw d") == ["Created /zw"]
            assert cli.run("get -w /zw") == ["d"]
            kz.set("/zw", b"changed")
            cli.wait_event("NodeDataChanged", "/zw")

            assert cli.run("ls -w /zw") == ["[]"]
            kz.create("/zw/kid")
            cli.wait_event("NodeChildrenChanged", "/zw")

            assert cli.run("stat -w /zw/later") == ["Node does not exist: /zw/later"]
            kz.create("/zw/later")
            cli.wait_event("NodeCreated", "/zw/later")

            assert cli.run("addWatch -m PERSISTENT_RECURSIVE /zw") == []
            kz.create("/zw/kid/grandkid", b"")
            cli.wait_event("NodeCreated", "/zw/kid/grandkid")
            kz.set("/zw/kid/grandkid", b"x")
            cli.wait_event("NodeDataChanged", "/zw/kid/grandkid")
            kz.set("/zw/kid/grandkid", b"y")  # persistent: fires again
            mark = len(cli.lines)
            kz.delete("/zw/kid/grandkid")
            cli.wait_event("NodeDeleted", "/zw/kid/grandkid", start=mark)
            events = [e for e in cli.events() if "grandkid" in e]
            assert events == [
                "WatchedEvent state:SyncConnected type:NodeCreated path:/zw/kid/grandkid",
                "WatchedEvent state:SyncConnected type:NodeDataChanged path:/zw/kid/grandkid",
                "WatchedEvent state:SyncConnected type:NodeDataChanged path:/zw/kid/grandkid",
                "WatchedEvent state:SyncConnected type:NodeDeleted path:/zw/kid/grandkid",
            ]

            assert cli.run("create -e /zw/mine e") == ["Created /zw/mine"]
            assert kz.exists("/zw/mine").ephemeralOwner != 0
            gone = threading.Event()
            kz.exists("/zw/mine", watch=lambda e: gone.set())
            cli.close()
        assert "WatchedEvent state:Closed type:None path:null" in cli.lines
        assert gone.wait(EVENT_TIMEOUT), "zkCli's ephemeral survived its session"
        assert kz.exists("/zw/mine") is None
        _assert_alive(any_server)
    finally:
        stop_kazoo(kz)


# -- cli_mt (C client) -----------------------------------------------------------------------------

@pytest.mark.compat(client="cli_mt", feature="basic operations")
@pytest.mark.compat(client="cli_mt", feature="watches")
@pytest.mark.compat(client="cli_mt", feature="ephemerals and sessions")
def test_cli_mt_session(any_server):
    """The C shell: create, get, set, ls, watches, sequential/ephemeral/container, delete.

    cli_mt's `create` takes no data (it always writes "new"), `get` and `ls` leave a watch, and
    completions print asynchronously, so the test waits for each expected line."""
    name = r"^\tname = "
    owner = r"^\tephemeralOwner = "
    kz = _kazoo_for(any_server.hosts)
    try:
        with CliMt(any_server.hosts) as c:
            c.command("create /cm")
            c.expect(r"^Creating \[/cm\] node \(mode: 0\)$")
            i, _ = c.expect(r"^\[/cm\]: rc = 0$")
            assert c.block_after(i, name) == ["\tname = /cm"]

            c.command("get /cm")
            i, _ = c.expect(r"^/cm: rc = 0$")
            block = c.block_after(i, owner)
            assert block[:3] == [" value_len = 3", "new", "Stat:"]
            assert [re.sub(r"=.*", "=", s) for s in block[3:]] == [
                "\tctime =", "\tczxid=", "\tmtime=", "\tmzxid=", "\tversion=", "\tephemeralOwner ="]
            assert block[7:] == ["\tversion=0\taversion=0", "\tephemeralOwner = 0"]

            kz.set("/cm", b"from kazoo")  # fires the watch `get` left
            c.expect(r"^Watcher CHANGED_EVENT state = CONNECTED_STATE for path /cm$")

            c.command("set /cm hello")
            i, _ = c.expect(r"^/cm: rc = 0 Stat:$")
            assert "\tversion=2\taversion=0" in c.block_after(i, owner)
            assert kz.get("/cm")[0] == b"hello"

            c.command("get /cm")
            i, _ = c.expect(r"^/cm: rc = 0$")
            assert c.block_after(i, owner)[:2] == [" value_len = 5", "hello"]

            kz.create("/cm/k1")
            kz.create("/cm/k2")
            c.command("ls /cm")
            i, _ = c.expect(r"^/cm: rc = 0$")
            assert sorted(c.block_after(i, r"^time = \d+ msec$")[:-1]) == ["\tk1", "\tk2"]
            kz.create("/cm/k3")
            c.expect(r"^Watcher CHILD_EVENT state = CONNECTED_STATE for path /cm$")

            c.command("wexists /cm/later")
            c.expect(r"^Error -101 for /cm/later$")
            kz.create("/cm/later")
            c.expect(r"^Watcher CREATED_EVENT state = CONNECTED_STATE for path /cm/later$")

            c.command("create +s /cm/s-")
            i, _ = c.expect(r"^\[/cm/s-\]: rc = 0$")
            assert re.fullmatch(r"\tname = /cm/s-\d{10}", c.block_after(i, name)[0])
            c.command("create +e /cm/e")
            c.expect(r"^Creating \[/cm/e\] node \(mode: 1\)$")
            c.expect(r"^\[/cm/e\]: rc = 0$")
            c.command("create +c /cm/c")
            c.expect(r"^Creating \[/cm/c\] node \(mode: 4\)$")
            c.expect(r"^\[/cm/c\]: rc = 0$")
            c.command("create2 /cm/c2")
            i, _ = c.expect(r"^\[/cm/c2\]: rc = 0$")
            block = c.block_after(i, owner)
            assert block[0] == "\tname = /cm/c2" and block[5:] == [
                "\tversion=0\taversion=0", "\tephemeralOwner = 0"]

            c.command("sync /cm")
            i, _ = c.expect(r"^\[/cm\]: rc = 0$")
            assert c.block_after(i, name) == ["\tname = /cm"]

            c.command("delete /cm/c2")
            c.expect(r"^/cm/c2: rc = 0$")
            c.command("delete /cm/absent")
            c.expect(r"^/cm/absent: rc = -101$")
            c.command("get /cm/absent")
            c.expect(r"^/cm/absent: rc = -101$")
            c.command("delete /cm")
            c.expect(r"^/cm: rc = -111$")

            assert kz.exists("/cm/e").ephemeralOwner != 0
            assert kz.exists("/cm/c") is not None
            gone = threading.Event()
            kz.exists("/cm/e", watch=lambda e: gone.set())
            c.close()
            assert "Quitting..." in c.lines
        assert gone.wait(EVENT_TIMEOUT), "cli_mt's ephemeral survived its session"
        assert kz.exists("/cm/e") is None
        _assert_alive(any_server)
    finally:
        stop_kazoo(kz)
