"""Progress on a long `zkserver import-zookeeper`: bars on stderr while a large ZooKeeper
snapshot is parsed, stdout left to the tool's own report. The snapshot is written here in
ZooKeeper's format (the importer's tests check that format against ZooKeeper's own files), so
a million nodes take seconds to make rather than a ZooKeeper run."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from zkserver.migrate import zkfiles
from zkserver.proto.jute import Writer

REPO = Path(__file__).resolve().parents[2]


def write_zk_snapshot(data_dir: Path, nodes: int, zxid: int = 0x100000001) -> Path:
    """A ZooKeeper dataDir whose one snapshot holds `nodes` znodes under /big (open ACL)."""
    w = Writer()
    w.raw(struct.pack(">4siq", zkfiles.SNAP_MAGIC, 2, -1))
    w.int(0)  # sessions
    w.int(0)  # ACL cache (the open ACL, id -1, is implied)

    def node(path: str, data: bytes, children: int) -> None:
        w.ustring(path).buffer(data).long(zkfiles.OPEN_ACL_ID)
        w.long(1).long(zxid).long(1_700_000_000_000).long(1_700_000_000_000)
        w.int(0).int(children).int(0).long(0).long(zxid)

    node("", b"", 2)
    node("/zookeeper", b"", 0)
    node("/big", b"", nodes)
    for i in range(nodes):
        node(f"/big/n{i:07d}", b"v", 0)
    w.ustring("/")
    data = w.getvalue()
    data += struct.pack(">q", zlib.adler32(data)) + Writer().ustring("/").getvalue()
    snap_dir = data_dir / "version-2"
    snap_dir.mkdir(parents=True)
    path = snap_dir / f"snapshot.{zxid:x}"
    path.write_bytes(data)
    return path


# Every update drawn: on a fast machine a 4.5 MB snapshot is read within tqdm's default 0.1 s
# between redraws, and the bar would show only 0% and 100%.
BARS = {"ZKSERVER_PROGRESS": "1", "TQDM_MININTERVAL": "0"}


def import_with_progress(zk_dir: Path, target: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **BARS}
    return subprocess.run([sys.executable, "-m", "zkserver", "import-zookeeper", str(zk_dir),
                           str(target)], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=900)


def check(zk_dir: Path, target: Path, nodes: int) -> None:
    r = import_with_progress(zk_dir, target)
    assert r.returncode == 0, r.stderr[-3000:]
    imported = re.search(r"imported (\d+) nodes", r.stdout)
    assert imported and nodes + 3 <= int(imported.group(1)) <= nodes + 5, r.stdout
    bars = r.stderr.replace("\r", "\n").splitlines()
    reading = [b for b in bars if b.startswith("reading snapshot.100000001")]
    assert reading, r.stderr[-2000:]
    assert "100%" in reading[-1]
    # The bar moved through the file, not only at its end.
    assert len({b.split("%")[0] for b in reading}) > 2, reading


def test_import_and_dump_show_progress(tmp_path: Path) -> None:
    write_zk_snapshot(tmp_path / "zk", 50_000)
    check(tmp_path / "zk", tmp_path / "zkserver", 50_000)
    # The dump of what was written: lines counted on stderr while stdout goes to a pipe.
    written = next((tmp_path / "zkserver" / "zkserver").glob("snapshot.*"))
    env = {**os.environ, "PYTHONPATH": str(REPO), **BARS}
    r = subprocess.run([sys.executable, "-m", "zkserver", "dump-snapshot", str(written)],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(r.stdout.splitlines()) > 50_000
    bars = [b for b in r.stderr.replace("\r", "\n").splitlines()
            if b.startswith(f"dumping {written.name}")]
    assert bars and "50000 lines" in bars[-1], r.stderr[-2000:]


def test_no_bars_when_not_asked(tmp_path: Path) -> None:
    write_zk_snapshot(tmp_path / "zk", 1_000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ZKSERVER_PROGRESS", None)
    r = subprocess.run([sys.executable, "-m", "zkserver", "import-zookeeper",
                        str(tmp_path / "zk"), str(tmp_path / "out")], capture_output=True,
                       text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 0 and r.stderr == ""


@pytest.mark.slow
def test_import_of_a_million_nodes_shows_progress(tmp_path: Path) -> None:
    write_zk_snapshot(tmp_path / "zk", 1_000_000)
    check(tmp_path / "zk", tmp_path / "zkserver", 1_000_000)


@pytest.mark.slow
def test_start_up_recovery_shows_progress(tmp_path: Path, monkeypatch) -> None:
    from kazoo.client import KazooClient

    from zkserver.testing.servers import TestServer

    monkeypatch.setenv("ZKSERVER_PROGRESS", "1")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    server = TestServer(tmp_path).start()
    try:
        kz = KazooClient(server.hosts)
        kz.start()
        kz.create("/w")
        for start in range(0, 25_000, 1_000):
            results = [kz.create_async(f"/w/n{i}") for i in range(start, start + 1_000)]
            for r in results:
                r.get(timeout=30)
        kz.stop()
        kz.close()
        server.kill()  # no snapshot at exit: the next start replays the whole log
        size = server.log_path.stat().st_size
        server.start()
        output = server.log_path.read_text(errors="replace")[size:].replace("\r", "\n")
        bars = [line for line in output.splitlines() if line.startswith("replaying log.")]
        assert bars and "20000" in bars[-1], output[-2000:]
    finally:
        server.kill()


def write_zkserver_snapshot(data_dir: Path, nodes: int) -> Path:
    """A zkserver dataDir whose one snapshot holds `nodes` znodes under /big."""
    from zkserver.storage import snapshot as snapmod
    from zkserver.storage.files import Disk
    from zkserver.tree import acl as aclmod
    from zkserver.tree.datatree import DataTree

    tree = DataTree()
    big = tree.nodes.add("/big", tree.nodes["/"], b"", aclmod.OPEN_ACL, 1, 1_700_000_000_000, 0)
    for i in range(nodes):
        tree.nodes.add(f"/big/n{i:06d}", big, b"v", aclmod.OPEN_ACL, 2, 1_700_000_000_000, 0)
    tree.last_zxid = 2
    snap_dir = data_dir / "zkserver"
    snap_dir.mkdir(parents=True)
    return Path(snapmod.write(Disk(), str(snap_dir), tree, 1_700_000_000_000))


def snapshot_bars(log: Path, snapshot: Path) -> list[str]:
    """The snapshot-load bar's states as drawn into a server's log (its stderr)."""
    lines = log.read_text(errors="replace").replace("\r", "\n").splitlines()
    return [line for line in lines if line.startswith(f"reading {snapshot.name}")]


def check_snapshot_bars(bars: list[str], log: str) -> None:
    assert bars and "100%" in bars[-1], log[-2000:]
    # The bar moved through the file (one update per chunk of nodes), not only at its end.
    assert len({b.split("%")[0] for b in bars}) > 2, bars


def test_start_up_shows_the_snapshot_load(tmp_path: Path, monkeypatch) -> None:
    from kazoo.client import KazooClient

    from zkserver.testing.servers import TestServer

    for name, value in {**BARS, "PYTHONPATH": str(REPO)}.items():
        monkeypatch.setenv(name, value)
    server = TestServer(tmp_path / "standalone")
    snapshot = write_zkserver_snapshot(server.data_dir, 20_000)
    with server:
        check_snapshot_bars(snapshot_bars(server.log_path, snapshot), server.log_tail())
        kz = KazooClient(server.hosts)
        kz.start()
        try:
            assert len(kz.get_children("/big")) == 20_000
        finally:
            kz.stop()
            kz.close()


def test_an_ensemble_member_shows_its_snapshot_load(tmp_path: Path, monkeypatch) -> None:
    """A member recovers at start-up through the same `Server` code as a standalone server,
    before it joins an election: its bar is drawn in full before it listens."""
    from support.waiting import wait_for

    from zkserver.testing.servers import TestEnsemble

    for name, value in {**BARS, "PYTHONPATH": str(REPO)}.items():
        monkeypatch.setenv(name, value)
    member = TestEnsemble(tmp_path / "ensemble")[0]
    snapshot = write_zkserver_snapshot(member.data_dir, 20_000)
    member.launch()  # alone: it recovers, listens, and waits for a quorum
    try:
        wait_for(lambda: "listening on" in member.log_tail(), 30, "the member to recover")
        check_snapshot_bars(snapshot_bars(member.log_path, snapshot), member.log_tail())
    finally:
        member.kill()
