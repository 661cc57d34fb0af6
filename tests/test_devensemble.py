"""`zkserver ensemble`: the development ensemble comes up in one command, serves clients on the
addresses it prints, and stops every server when told to, exiting 0.

The tool is run as users run it (`python -m zkserver ensemble ...` in a subprocess); its output
is read line by line with deadlines.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.kz import kazoo_client, stop_kazoo

REPO = Path(__file__).resolve().parent.parent
SERVER_LINE = re.compile(r"^server\.(\d+) (\S+):(\d+) (leader|follower|observer)$")


class Ensemble:
    """The `zkserver ensemble` process and the lines it has printed so far."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen([sys.executable, "-m", "zkserver", "ensemble", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=REPO, env=env)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The next printed line matching `pattern` (earlier lines are kept in `lines`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout}s:\n"
                                     + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError(f"the ensemble exited ({self.proc.wait()}) before "
                                     f"{pattern!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)
            m = re.search(pattern, line)
            if m:
                return m

    def servers(self) -> list[int]:
        """Process ids of the servers: this process's children."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                pids.append(int(entry))
        return pids

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def ensembles() -> Iterator[list[Ensemble]]:
    started: list[Ensemble] = []
    yield started
    for ens in started:
        ens.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _served(ens: Ensemble) -> tuple[dict[int, tuple[str, str]], str]:
    """Wait until every server is announced and the connection string printed."""
    hosts = ens.expect(r"^ensemble serving: (\S+)$").group(1)
    servers = {}
    for line in ens.lines:
        m = SERVER_LINE.match(line)
        if m:
            servers[int(m.group(1))] = (f"{m.group(2)}:{m.group(3)}", m.group(4))
    return servers, hosts


def test_three_servers_serve_then_stop_on_ctrl_c(ensembles, tmp_path) -> None:
    ens = Ensemble("--size", "3", "--dir", str(tmp_path / "ens"))
    ensembles.append(ens)
    servers, hosts = _served(ens)
    assert sorted(servers) == [1, 2, 3]
    assert sorted(mode for _, mode in servers.values()) == ["follower", "follower", "leader"]
    assert hosts.split(",") == [servers[i][0] for i in (1, 2, 3)]
    for i in (1, 2, 3):
        assert (tmp_path / "ens" / f"s{i}" / "zoo.cfg").exists()
        assert (tmp_path / "ens" / f"s{i}" / "server.log").stat().st_size > 0
    assert "tickTime=2000" in (tmp_path / "ens" / "s1" / "zoo.cfg").read_text().splitlines()
    pids = ens.servers()
    assert len(pids) == 3

    writer = kazoo_client(hosts)
    try:
        writer.create("/dev/hello", b"world", makepath=True)
        assert writer.get("/dev/hello")[0] == b"world"
    finally:
        stop_kazoo(writer)
    for address, _ in servers.values():  # every member has it
        reader = kazoo_client(address)
        try:
            reader.sync("/dev/hello")
            assert reader.get("/dev/hello")[0] == b"world"
        finally:
            stop_kazoo(reader)

    ens.proc.send_signal(signal.SIGINT)
    assert ens.proc.wait(30) == 0
    ens.expect(r"^all servers stopped$", timeout=5)
    assert not [pid for pid in pids if _alive(pid)]


def test_observers_and_sigterm(ensembles, tmp_path) -> None:
    ens = Ensemble("--size", "3", "--observers", "1", "--dir", str(tmp_path / "obs"))
    ensembles.append(ens)
    servers, hosts = _served(ens)
    assert servers[3][1] == "observer"
    assert sorted(servers[i][1] for i in (1, 2)) == ["follower", "leader"]
    observer = kazoo_client(servers[3][0])
    try:
        observer.create("/via-observer", b"x")
        assert observer.get("/via-observer")[0] == b"x"
    finally:
        stop_kazoo(observer)
    pids = ens.servers()
    ens.proc.send_signal(signal.SIGTERM)
    assert ens.proc.wait(30) == 0
    assert not [pid for pid in pids if _alive(pid)]
    # The zoo.cfg written (the server keeps it as .bak: with reconfigEnabled its zoo.cfg points
    # at the dynamic file, as ZooKeeper's does).
    assert "peerType=observer" in (tmp_path / "obs" / "s3" / "zoo.cfg.bak").read_text()


def change(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`zkserver ensemble add|remove --dir DIR ...`, as a user runs it from another terminal."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "zkserver", "ensemble", args[0], "--dir",
                           str(directory), *args[1:]], capture_output=True, text=True,
                          timeout=180, cwd=REPO, env=env)


def test_add_and_remove_members_of_a_running_ensemble(ensembles, tmp_path) -> None:
    d = tmp_path / "grow"
    ens = Ensemble("--size", "3", "--tick-time", "300", "--dir", str(d))
    ensembles.append(ens)
    servers, hosts = _served(ens)
    assert len(ens.servers()) == 3

    r = change(d, "add")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("server.4 127.0.0.1:") and ";127.0.0.1:" in out[0]
    assert out[1].startswith("committed version=")
    four = out[0].split()[1]
    assert out[-1] == f"ensemble: {hosts},{four}"
    r = change(d, "add", "--observer")
    assert r.returncode == 0, r.stdout + r.stderr
    five = r.stdout.splitlines()[0].split()[1]
    assert ":observer;" in r.stdout
    ens.expect(rf"^server\.5 {five} (now )?observer$", timeout=60)
    assert len(ens.servers()) == 5

    k = kazoo_client(four)
    try:
        k.create("/grown", b"x")
        config = k.get("/zookeeper/config")[0].decode()
        assert "server.4=" in config and ":observer;" in config
    finally:
        stop_kazoo(k)

    # The first server goes (it may be the leader): the others go on, and it is stopped.
    r = change(d, "remove", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "server.1 " in r.stdout and "removed and stopped" in r.stdout
    assert len(ens.servers()) == 4
    k = kazoo_client(four)
    try:
        k.sync("/grown")
        assert k.get("/grown")[0] == b"x"
        assert "server.1=" not in k.get("/zookeeper/config")[0].decode()
    finally:
        stop_kazoo(k)

    r = change(d, "remove", "9")
    assert (r.returncode, r.stdout) == (1, "no server.9 in this ensemble\n")
    r = change(tmp_path / "nothing-here", "add")
    assert r.returncode == 1 and "no ensemble is running" in r.stderr

    ens.proc.send_signal(signal.SIGTERM)
    assert ens.proc.wait(30) == 0
    assert not (d / "control.sock").exists()
