"""`zkserver dump-log` and `zkserver dump-snapshot` print what a real server wrote."""

from __future__ import annotations

import subprocess
import sys
import time

from kazoo.client import KazooClient
from support.process import ZkServerProcess
from support.realzk import free_port


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zkserver", *args], capture_output=True,
                          text=True, timeout=30)


def test_dump_tools_read_the_servers_files(tmp_path):
    with ZkServerProcess(tmp_path, free_port(), extra=["snapCount=10"]) as server:
        k = KazooClient(server.hosts)
        k.start()
        for i in range(30):
            k.create(f"/tool{i}", b"payload-%d" % i)
        snap_dir = tmp_path / "data" / "zkserver"
        deadline = time.monotonic() + 10
        while not any(f.name.startswith("snapshot.") and not f.name.endswith(".tmp")
                      for f in snap_dir.iterdir()):
            assert time.monotonic() < deadline, "no snapshot was written"
            time.sleep(0.05)
        k.stop()
        k.close()
        assert server.terminate() == 0
    files = sorted((tmp_path / "data" / "zkserver").iterdir())
    logs = [f for f in files if f.name.startswith("log.")]
    # A snapshot cut short by the shutdown stays a .tmp file, never a snapshot.
    snaps = [f for f in files if f.name.startswith("snapshot.") and not f.name.endswith(".tmp")]
    assert logs and snaps
    out = "".join(run("dump-log", str(f)).stdout for f in logs)
    assert "CreateTxn(path='/tool29'" in out and "EOF reached after" in out
    snap = run("dump-snapshot", "-d", str(snaps[-1]))
    assert snap.returncode == 0
    assert snap.stdout.startswith("snapshot of zxid 0x")
    assert "/zookeeper/config" in snap.stdout and "payload-" in snap.stdout


def test_dump_of_a_damaged_file_names_it(tmp_path):
    bad = tmp_path / "log.0000000000000001"
    bad.write_bytes(b"not a log")
    result = run("dump-log", str(bad))
    assert result.returncode == 1
    assert str(bad) in result.stderr and "offset 0" in result.stderr
