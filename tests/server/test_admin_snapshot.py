"""ZooKeeper 3.9's authenticated admin commands, `snapshot` and `restore`, over real HTTP.

Against Apache ZooKeeper 3.9.5 configured alike: the answers to unauthenticated, badly
authenticated and unauthorized requests (status and JSON) are the same, and so are the
snapshot's headers. A ZooKeeper snapshot restored into zkserver gives ZooKeeper's tree. A
zkserver snapshot restored into a fresh zkserver gives an identical tree: every node's data,
Stat and ACL, before and after a restart; one taken while a client writes is consistent.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl
from support import realzk
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerProcess, side_by_side
from support.realzk import RealZooKeeper, free_port
from support.waiting import wait_for

ADMIN = ["admin.enableServer=true", "admin.serverAddress=127.0.0.1",
         "extendedTypesEnabled=true"]
ALICE = "digest alice:secret"


class Admin:
    def __init__(self, port: int) -> None:
        self.port = port

    def call(self, method: str, name: str, auth: str | None = None, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            h = dict(headers or {})
            if auth is not None:
                h["Authorization"] = auth
            conn.request(method, f"/commands/{name}", body=body, headers=h)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def json(self, method: str, name: str, auth: str | None = None, body: bytes | None = None
             ) -> tuple[int, dict[str, Any]]:
        status, headers, out = self.call(method, name, auth, body)
        assert headers["content-type"].startswith("application/json"), (status, out[:200])
        return status, json.loads(out)

    def snapshot(self, auth: str = ALICE) -> tuple[dict[str, str], bytes]:
        """A snapshot, retried while rate limited (the tests set a short interval)."""
        got: list[tuple[dict[str, str], bytes]] = []

        def once() -> bool:
            status, headers, body = self.call("GET", "snapshot", auth)
            assert status in (200, 429), (status, body[:300])
            if status == 200:
                got.append((headers, body))
            return status == 200
        wait_for(once, 30, "a snapshot that is not rate limited", poll=0.1)
        return got[0]

    def restore(self, body: bytes, auth: str = ALICE) -> dict[str, Any]:
        out: list[dict[str, Any]] = []

        def once() -> bool:
            status, answer = self.json("POST", "restore", auth, body)
            assert status in (200, 429), (status, answer)
            if status == 200:
                out.append(answer)
            return status == 200
        wait_for(once, 30, "a restore that is not rate limited", poll=0.1)
        return out[0]


def _wait_admin(admin: Admin) -> None:
    def up() -> bool:
        try:
            return admin.call("GET", "ruok")[0] == 200
        except OSError:
            return False
    wait_for(up, 30, "the AdminServer")


def _zk(server: Any) -> KazooClient:
    zk = kazoo_client(server.hosts)
    zk.add_auth("digest", "alice:secret")
    return zk


def _build(zk: KazooClient) -> None:
    """A tree with every kind of node, ACLs, binary data, versions and children counts."""
    alice = make_digest_acl("alice", "secret", all=True)
    bob_read = make_digest_acl("bob", "pw", read=True)
    zk.create("/app/cfg", b'{"a": 1}', makepath=True)
    zk.set("/app/cfg", b'{"a": 2}')
    zk.set("/app/cfg", b'{"a": 3}')
    zk.create("/app/bin", bytes(range(256)))
    zk.create("/app/none", None)
    zk.create("/app/secret", b"s", acl=[alice, bob_read])
    zk.set_acls("/app/secret", [alice, bob_read])
    for _ in range(3):
        zk.create("/app/seq-", b"", sequence=True)
    zk.create("/app/eph", b"e", ephemeral=True)
    zk.create("/app/box", b"")
    zk.create("/app/box/in", b"")
    zk.create("/app/gone", b"")
    zk.delete("/app/gone")
    for i in range(120):
        zk.create(f"/many/n{i:03d}", str(i).encode(), makepath=True)


def _tree(zk: KazooClient, path: str = "/") -> dict[str, Any]:
    """Every node under `path`: data, the whole Stat and the ACL."""
    out = {}
    data, stat = zk.get(path)
    acls, _ = zk.get_acls(path)
    out[path] = (data, tuple(stat), sorted((a.perms, a.id.scheme, a.id.id) for a in acls))
    for child in zk.get_children(path):
        out.update(_tree(zk, ("" if path == "/" else path) + "/" + child))
    return out


# -- against ZooKeeper 3.9.5 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sides(tmp_path_factory: Any) -> Iterator[tuple[Admin, Admin, Any, Any]]:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (tests/support/fetch_zookeeper.sh)")
    assert realzk.version().startswith("3.9"), "snapshot/restore are ZooKeeper 3.9 commands"
    base = tmp_path_factory.mktemp("adminsnap")
    ours_admin, real_admin = free_port(), free_port()
    limit = ["admin.rateLimiterIntervalInMS=200"]
    ours = ZkServerProcess(base / "zks", free_port(), extra=[
        *ADMIN, *limit, f"admin.serverPort={ours_admin}"])
    real = RealZooKeeper(base / "real", free_port(), extra=[
        *ADMIN, *limit, f"admin.serverPort={real_admin}"])
    with side_by_side(ours, real):
        a, b = Admin(ours_admin), Admin(real_admin)
        _wait_admin(a)
        _wait_admin(b)
        yield a, b, ours, real


REFUSALS = [
    (None, 401, "Auth info is missing for the command"),
    ("digest", 401, "Not authenticated"),
    ("digest a:b c", 401, "Not authenticated"),
    ("nosuchscheme x", 401, "Not authenticated"),
    ("x509", 401, "Not authenticated"),  # plain HTTP: no certificate
]


@pytest.mark.parametrize("name", ["snapshot", "snap"])
@pytest.mark.parametrize("auth,status,error", REFUSALS)
def test_snapshot_refused_as_zookeeper(sides: Any, name: str, auth: str | None, status: int,
                                       error: str) -> None:
    ours, real, _, _ = sides
    for side in (ours, real):
        assert side.json("GET", name, auth) == (status, {"command": name, "error": error})


@pytest.mark.parametrize("auth,status,error", REFUSALS)
def test_restore_refused_as_zookeeper(sides: Any, auth: str | None, status: int,
                                      error: str) -> None:
    ours, real, _, _ = sides
    for side in (ours, real):
        assert side.json("POST", "restore", auth, b"not a snapshot") == (
            status, {"command": "restore", "error": error})


def test_commands_list_has_snapshot_and_restore(sides: Any) -> None:
    ours, real, _, _ = sides
    for side in (ours, real):
        status, _, body = side.call("GET", "")
        assert status == 200
        assert b'<a href="/commands/snapshot">snapshot</a>' in body
        assert b'<a href="/commands/restore">restore</a>' in body


def test_acl_on_root_decides(sides: Any) -> None:
    """With `/` limited to alice, bob is authenticated but not authorized (403) on both."""
    ours, real, ours_server, real_server = sides
    alice = make_digest_acl("alice", "secret", all=True)
    clients = [_zk(s) for s in (ours_server, real_server)]
    try:
        for zk in clients:
            zk.set_acls("/", [alice])
        for side in (ours, real):
            assert side.json("GET", "snapshot", "digest bob:pw") == (
                403, {"command": "snapshot", "error": "Not authorized"})
            assert side.json("POST", "restore", "digest bob:pw", b"x") == (
                403, {"command": "restore", "error": "Not authorized"})
            assert side.json("GET", "snapshot", "ip") == (
                403, {"command": "snapshot", "error": "Not authorized"})
            headers, body = side.snapshot(ALICE)
            assert headers["content-type"] == "application/octet-stream"
            assert int(headers["snapshot_size"]) == len(body) > 0
            assert headers["last_zxid"].startswith("0x")
    finally:
        for zk in clients:
            zk.set_acls("/", OPEN_ACL_UNSAFE)
            stop_kazoo(zk)


def test_snapshot_without_streaming_answers_json(sides: Any) -> None:
    ours, real, _, _ = sides
    for side in (ours, real):
        got: list[tuple[int, dict[str, str], bytes]] = []

        def once(side: Admin = side, got: list = got) -> bool:
            got[:] = [side.call("GET", "snapshot?streaming=false", ALICE)]
            return got[0][0] != 429
        wait_for(once, 30, "a snapshot that is not rate limited", poll=0.1)
        status, headers, body = got[0]
        assert status == 200
        assert json.loads(body) == {"command": "snapshot", "error": None}
        assert int(headers["snapshot_size"]) > 0 and headers["last_zxid"].startswith("0x")


def test_zookeepers_snapshot_restores_into_zkserver(sides: Any, tmp_path: Path) -> None:
    """`curl zookeeper/snapshot | curl -X POST zkserver/restore`: the same tree."""
    ours, real, ours_server, real_server = sides
    zk_real = _zk(real_server)
    try:
        _build(zk_real)
        _, body = real.snapshot()
        answer = ours.restore(body)
        assert answer["command"] == "restore" and answer["error"] is None
        assert list(answer) == ["last_zxid", "command", "error"]
        zk_ours = _zk(ours_server)
        try:
            mine, theirs = _tree(zk_ours, "/app"), _tree(zk_real, "/app")
            assert mine == theirs
            assert _tree(zk_ours, "/many") == _tree(zk_real, "/many")
        finally:
            stop_kazoo(zk_ours)
    finally:
        stop_kazoo(zk_real)


# -- zkserver to zkserver ----------------------------------------------------------------------


def _server(base: Path, *extra: str) -> tuple[ZkServerProcess, Admin]:
    port = free_port()
    server = ZkServerProcess(base, free_port(), extra=[
        *ADMIN, f"admin.serverPort={port}", *extra])
    return server, Admin(port)


def test_snapshot_restored_on_a_fresh_server_is_identical(tmp_path: Path) -> None:
    source, src_admin = _server(tmp_path / "a", "admin.rateLimiterIntervalInMS=100")
    fresh, dst_admin = _server(tmp_path / "b")
    with source, fresh:
        _wait_admin(src_admin)
        _wait_admin(dst_admin)
        zk = _zk(source)
        try:
            _build(zk)
            assert src_admin.json("GET", "snapshot")[0] == 401
            headers, body = src_admin.snapshot()
            before = _tree(zk)
            answer = dst_admin.restore(body)
            assert answer["last_zxid"] == int(headers["last_zxid"], 16)
            zk2 = _zk(fresh)
            try:
                assert _tree(zk2) == before  # every node, Stat and ACL
                zk2.create("/after", b"new")  # the restored server takes writes
                assert zk2.get("/after")[1].czxid > answer["last_zxid"]
                after = _tree(zk2)
            finally:
                stop_kazoo(zk2)
            # The restore rate limit (default 5 minutes): a second one is refused.
            status, out = dst_admin.json("POST", "restore", ALICE, body)
            assert (status, out) == (429, {"command": "restore", "error": None})
            # Durable: a restart (SIGTERM) finds the restored tree and the write after it.
            assert fresh.terminate() == 0
            fresh.start()
            zk3 = _zk(fresh)
            try:
                # The restored session that owns /app/eph may expire meanwhile: leave out
                # the ephemeral and its parent, compare everything else exactly.
                def durable(tree: dict[str, Any]) -> dict[str, Any]:
                    return {k: v for k, v in tree.items() if k not in ("/app", "/app/eph")}
                assert durable(_tree(zk3)) == durable(after)
            finally:
                stop_kazoo(zk3)
        finally:
            stop_kazoo(zk)


def test_snapshot_taken_during_writes_is_consistent(tmp_path: Path) -> None:
    """A writer creates /w/N and then sets /counter to N; any consistent state has every
    /w/0..counter and at most one more. The snapshot (fuzzy image plus replayed log) must be
    one, however the writes fell between its chunks."""
    source, src_admin = _server(tmp_path / "a", "admin.rateLimiterIntervalInMS=50")
    fresh, dst_admin = _server(tmp_path / "b", "admin.rateLimiterIntervalInMS=50")
    with source, fresh:
        _wait_admin(src_admin)
        _wait_admin(dst_admin)
        zk = _zk(source)
        stop = threading.Event()
        zk.create("/counter", b"-1")
        zk.create("/w")
        zk.create("/pad")
        pending = [zk.create_async(f"/pad/p{i}", b"x" * 100) for i in range(3000)]
        for p in pending:  # enough nodes for the snapshot to take several chunks
            p.get(timeout=30)

        def writer() -> None:
            n = 0
            while not stop.is_set():
                zk.create(f"/w/{n:06d}")
                zk.set("/counter", str(n).encode())
                n += 1

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            checked = 0
            zk2 = _zk(fresh)
            try:
                for _ in range(3):
                    _, body = src_admin.snapshot()
                    dst_admin.restore(body)
                    counter = int(zk2.get("/counter")[0])
                    names = sorted(zk2.get_children("/w"))
                    assert names[:counter + 1] == [f"{i:06d}" for i in range(counter + 1)]
                    assert len(names) in (counter + 1, counter + 2), (counter, len(names))
                    assert len(zk2.get_children("/pad")) == 3000
                    checked += 1
            finally:
                stop_kazoo(zk2)
            assert checked == 3
            # At least one snapshot met writes while it was taken (the path under test).
            assert "by replaying the log" in source.log_path.read_text()
        finally:
            stop.set()
            t.join(10)
            stop_kazoo(zk)


def test_bad_restore_bodies_leave_the_tree_alone(tmp_path: Path) -> None:
    server, admin = _server(tmp_path / "a", "admin.rateLimiterIntervalInMS=10")
    with server:
        _wait_admin(admin)
        zk = _zk(server)
        try:
            zk.create("/keep", b"me")
            before = _tree(zk)
            for body in (b"", b"garbage", b"ZKSSNAP1" + b"\0" * 40, b"ZKSN" + b"\1" * 64):
                def once(body: bytes = body) -> bool:
                    status, out = admin.json("POST", "restore", ALICE, body)
                    if status == 429:
                        return False
                    assert status == 500 and out["command"] == "restore" and out["error"]
                    return True
                wait_for(once, 10, "a restore that is not rate limited")
            assert _tree(zk) == before
            assert admin.json("GET", "restore", ALICE)[0] == 405
            status, out = admin.json("GET", "ruok")
            assert status == 200 and out["error"] is None
        finally:
            stop_kazoo(zk)


def test_disabled_commands(tmp_path: Path) -> None:
    server, admin = _server(tmp_path / "a", "admin.snapshot.enabled=false",
                            "admin.restore.enabled=false")
    with server:
        _wait_admin(admin)
        assert admin.json("GET", "snapshot", ALICE) == (
            503, {"command": "snapshot", "error": None})
        assert admin.json("POST", "restore", ALICE, b"x") == (
            503, {"command": "restore", "error": None})


def test_ensemble_member_snapshots_but_does_not_restore(tmp_path: Path) -> None:
    """A follower's snapshot (its log replayed over the image, as standalone) restores into a
    standalone server as the ensemble's tree; a member refuses `restore`."""
    from support.process import ZkServerEnsemble, free_port_base

    ensemble = ZkServerEnsemble(tmp_path / "ens", free_port_base(3), extra=ADMIN)
    admins = {}
    for i in ensemble.ids:
        admins[i] = Admin(free_port())
        with open(ensemble._node(i).config_path, "a") as f:
            f.write(f"admin.serverPort={admins[i].port}\nadmin.rateLimiterIntervalInMS=10\n")
    fresh, dst_admin = _server(tmp_path / "fresh")
    with ensemble, fresh:
        zk = _zk(ensemble)
        try:
            _build(zk)
            follower = next(i for i, mode in ensemble.modes().items() if mode == "follower")
            _wait_admin(admins[follower])
            _wait_admin(dst_admin)
            stop_kazoo(zk)
            zk = _zk(ensemble.nodes[follower])  # the follower's own view, synced
            zk.sync("/")
            _, body = admins[follower].snapshot()
            status, out = admins[follower].json("POST", "restore", ALICE, body)
            assert (status, out) == (500, {"command": "restore", "error": "restore is only "
                                                                          "supported on a "
                                                                          "standalone server"})
            dst_admin.restore(body)
            zk2 = _zk(fresh)
            try:
                assert _tree(zk2, "/app") == _tree(zk, "/app")
                assert _tree(zk2, "/many") == _tree(zk, "/many")
            finally:
                stop_kazoo(zk2)
        finally:
            stop_kazoo(zk)


def test_unauthorized_restore_is_refused_before_its_body(tmp_path: Path) -> None:
    """A client that may not restore is answered at once, without the server reading (or
    holding) the body it announced; the server serves on."""
    server, admin = _server(tmp_path / "a")
    with server:
        _wait_admin(admin)
        with socket.create_connection(("127.0.0.1", admin.port), timeout=10) as s:
            s.sendall(b"POST /commands/restore HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 500000000\r\n\r\n" + b"x" * 65536)
            answer = b""
            while b"}" not in answer:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 401") and b"Connection: close" in head
        assert json.loads(body) == {"command": "restore",
                                    "error": "Auth info is missing for the command"}
        assert admin.json("GET", "ruok") == (200, {"command": "ruok", "error": None})
