"""The `zkserver` command as users run it: `python -m zkserver [zoo.cfg]`.

* no arguments: 127.0.0.1:2181, data in ./zkdata, and it says where it listens;
* a standard zoo.cfg (Debian's sample, comments and all);
* SIGTERM and SIGINT stop it promptly with exit status 0;
* a bad configuration, or a port already taken, stops it with a non-zero status and a message
  that names the problem (no traceback).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.kz import kazoo_client, stop_kazoo
from support.realzk import free_port
from support.wire import four_letter

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# Debian's /etc/zookeeper/conf_example/zoo.cfg, with {data} and {port} to fill in.
STANDARD_ZOO_CFG = """\
# The number of milliseconds of each tick
tickTime=2000
# The number of ticks that the initial
# synchronization phase can take
initLimit=10
# The number of ticks that can pass between
# sending a request and getting an acknowledgement
syncLimit=5
# the directory where the snapshot is stored.
dataDir={data}
# the port at which the clients will connect
clientPort={port}
clientPortAddress=127.0.0.1
# the maximum number of client connections.
#maxClientCnxns=60
# The number of snapshots to retain in dataDir
#autopurge.snapRetainCount=3
# Purge task interval in hours
#autopurge.purgeInterval=1
#metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
"""


class Running:
    """`python -m zkserver ...` as a child process whose output lines are collected."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "zkserver", *args], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=_env(), start_new_session=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self.cond = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out),
                                         daemon=True),
                        threading.Thread(target=self._read, args=(self.proc.stderr, self.err),
                                         daemon=True)]
        for t in self.readers:
            t.start()

    def _read(self, stream, into: list[str]) -> None:
        for line in stream:
            with self.cond:
                into.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_listening(self, timeout: float = START_TIMEOUT) -> str | None:
        """The `listening on` line, or None if the process exited first."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.out + self.err:
                    if "listening on" in line:
                        return line
                if self.proc.poll() is not None:
                    for t in self.readers:
                        t.join(0)
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("zkserver neither listened nor exited within "
                                         f"{timeout}s:\n{self.output()}")
                self.cond.wait(min(remaining, 0.1))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        status = self.proc.wait(timeout)
        return status, time.monotonic() - started

    def finish(self, timeout: float = START_TIMEOUT) -> int:
        status = self.proc.wait(timeout)
        for t in self.readers:
            t.join(5)
        return status

    def output(self) -> str:
        with self.cond:
            return "\n".join(self.out + self.err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Run the package from this checkout whatever the cwd.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@pytest.fixture
def run(tmp_path):
    started: list[Running] = []

    def start(*args: str, cwd: Path | None = None) -> Running:
        r = Running(list(args), cwd or tmp_path)
        started.append(r)
        return r

    yield start
    for r in started:
        r.kill()


def _write_cfg(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _assert_serves(port: int) -> None:
    assert "Mode: standalone" in four_letter(port, "srvr")
    zk = kazoo_client(f"127.0.0.1:{port}")
    try:
        zk.create("/cli-check", b"ok")
        assert zk.get("/cli-check")[0] == b"ok"
        zk.delete("/cli-check")
    finally:
        stop_kazoo(zk)


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _assert_clear_error(r: Running, *needles: str) -> None:
    text = r.output()
    assert "Traceback" not in text, f"a traceback instead of an error message:\n{text}"
    lines = [line for line in r.err if line.startswith("zkserver:")]
    assert lines, f"no `zkserver: ...` error line on stderr:\n{text}"
    for needle in needles:
        assert any(needle.lower() in line.lower() for line in lines), (
            f"the error does not mention {needle!r}:\n{text}")


# -- starting -------------------------------------------------------------------------------------

def test_no_arguments_listens_on_2181_with_data_in_zkdata(run, tmp_path):
    r = run()
    line = r.wait_listening()
    if line is None:
        # Something else owns 2181 on this machine: then the failure must say so clearly.
        status = r.finish()
        assert status != 0
        assert _port_in_use(2181), f"zkserver exited although 2181 is free:\n{r.output()}"
        _assert_clear_error(r, "2181", "in use")
        return
    assert re.search(r"listening on 127\.0\.0\.1:2181\b", line), line
    assert str(tmp_path / "zkdata") in line, f"the start line should say where the data is: {line}"
    assert (tmp_path / "zkdata").is_dir()
    assert "zkserver" in four_letter(2181, "srvr").split("\n", 1)[0]  # it is ours on 2181
    _assert_serves(2181)
    status, took = r.stop()
    assert status == 0 and took < 5.0, r.output()


def test_standard_zoo_cfg(run, tmp_path):
    port = free_port()
    data = tmp_path / "data"
    cfg = _write_cfg(tmp_path / "zoo.cfg", STANDARD_ZOO_CFG.format(data=data, port=port))
    r = run(str(cfg))
    line = r.wait_listening()
    assert line is not None, f"zkserver exited:\n{r.output()}"
    assert f"127.0.0.1:{port}" in line and str(data) in line, line
    assert data.is_dir()
    _assert_serves(port)
    # No 4lw.commands.whitelist in the file: ZooKeeper's default allows only srvr.
    assert four_letter(port, "conf") == "conf is not executed because it is not in the whitelist.\n"
    status, _ = r.stop()
    assert status == 0, r.output()


def test_relative_config_path_and_data_dir(run, tmp_path):
    """A relative zoo.cfg path and a relative dataDir resolve against the working directory."""
    port = free_port()
    (tmp_path / "conf").mkdir()
    _write_cfg(tmp_path / "conf" / "zoo.cfg",
               f"tickTime=2000\ndataDir=rel-data\nclientPort={port}\nclientPortAddress=127.0.0.1\n")
    r = run("conf/zoo.cfg")
    assert r.wait_listening() is not None, r.output()
    _assert_serves(port)
    assert (tmp_path / "rel-data").is_dir()
    assert r.stop()[0] == 0


# -- stopping -------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly(run, tmp_path, sig):
    port = free_port()
    cfg = _write_cfg(tmp_path / "zoo.cfg", STANDARD_ZOO_CFG.format(data=tmp_path / "d",
                                                                   port=port))
    r = run(str(cfg))
    assert r.wait_listening() is not None, r.output()
    # With a live session and an open idle connection, it still stops at once.
    zk = kazoo_client(f"127.0.0.1:{port}")
    idle = socket.create_connection(("127.0.0.1", port))
    try:
        zk.create("/busy", b"x", ephemeral=True)
        status, took = r.stop(sig)
    finally:
        idle.close()
        stop_kazoo(zk)
    assert status == 0, f"exit status {status} on {signal.Signals(sig).name}:\n{r.output()}"
    assert took < 5.0, f"took {took:.1f}s to stop"
    assert "Traceback" not in r.output(), r.output()
    assert not _port_in_use(port)


# -- refusing to start ----------------------------------------------------------------------------

BAD_CONFIGS = {
    "clientPort not a number": ("dataDir={data}\nclientPort=abc\n", ["clientPort"]),
    "clientPort out of range": ("dataDir={data}\nclientPort=99999999\n", ["clientPort"]),
    "tickTime negative": ("dataDir={data}\nclientPort={port}\ntickTime=-5\n", ["tickTime"]),
    "no dataDir": ("clientPort={port}\n", ["dataDir"]),
    "min above max session timeout":
        ("dataDir={data}\nclientPort={port}\nminSessionTimeout=9000\nmaxSessionTimeout=5000\n",
         ["minSessionTimeout", "maxSessionTimeout"]),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_nonzero_naming_the_problem(run, tmp_path, case):
    text, needles = BAD_CONFIGS[case]
    cfg = _write_cfg(tmp_path / "zoo.cfg", text.format(data=tmp_path / "d", port=free_port()))
    r = run(str(cfg))
    status = r.finish()
    assert status != 0, f"{case}: exit status 0\n{r.output()}"
    assert r.wait_listening(0.1) is None
    _assert_clear_error(r, *needles)


def test_missing_config_file(run, tmp_path):
    r = run(str(tmp_path / "no-such.cfg"))
    status = r.finish()
    assert status != 0
    _assert_clear_error(r, "no-such.cfg")


def test_port_already_in_use(run, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = _write_cfg(tmp_path / "zoo.cfg", STANDARD_ZOO_CFG.format(data=tmp_path / "d",
                                                                       port=port))
        r = run(str(cfg))
        status = r.finish()
    assert status != 0
    _assert_clear_error(r, str(port), "in use")


def test_member_port_already_in_use_is_named(run, tmp_path):
    """An ensemble member whose quorum port is taken says which address, however deep in its
    nurseries the error was raised (it printed "Exceptions from Trio nursery" before)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        quorum = taken.getsockname()[1]
        cfg = _write_cfg(tmp_path / "zoo.cfg", STANDARD_ZOO_CFG.format(
            data=tmp_path / "d", port=free_port()) + "\n".join([
                "", f"server.1=127.0.0.1:{quorum}:{free_port()}",
                f"server.2=127.0.0.1:{free_port()}:{free_port()}",
                f"server.3=127.0.0.1:{free_port()}:{free_port()}", ""]))
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "myid").write_text("1\n")
        r = run(str(cfg))
        status = r.finish()
    assert status != 0
    _assert_clear_error(r, str(quorum), "in use")
