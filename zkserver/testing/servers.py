"""zkserver processes for other projects' tests: one standalone server, or an ensemble.

    with TestServer(tmp_path) as zk:
        KazooClient(zk.hosts)...
    with TestEnsemble(tmp_path, size=3) as ens:
        ens.kill(0); ...; ens.start(0)

These back the pytest fixtures (`zkserver.pytest_plugin`) and the kazoo drop-in
(`zkserver.testing.kazoo`). Each server is a child process (`python -m zkserver zoo.cfg`), the way
users run it, so a test cannot share state with it by accident and a crash in a test cannot take
the server with it. Readiness is the server answering `srvr` with a serving mode, polled with a
deadline; nothing here imports Trio, so a test run that never asks for a server pays nothing.

The tick is short (200 ms) so that session timeouts down to 400 ms are allowed and an ensemble
elects quickly; pass `tick_time=2000` for production-like timing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SERVING = ("leader", "follower", "observer", "standalone")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def four_letter(host: str, port: int, word: str, timeout: float = 1.0) -> str:
    """A four-letter word's answer ("" when the server does not answer)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
    except OSError:
        return ""
    return b"".join(chunks).decode(errors="replace")


def server_mode(host: str, port: int) -> str | None:
    """The server's `Mode:` (leader, follower, standalone...), None while it does not serve."""
    for line in four_letter(host, port, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def free_port_block(n: int) -> int:
    """A base b with b+1..b+n, b+101.. and b+201.. free now (client, quorum, election ports)."""
    from zkserver.devensemble import free_port_base

    return free_port_base(n)


def create_node(host: str, port: int, path: str) -> None:
    """Create `path` (and its parents) on the server, from synchronous code (a fixture)."""
    import trio

    from zkserver import client

    async def create() -> None:
        async with client.connect(f"{host}:{port}") as zk:
            await zk.ensure_path(path)

    trio.run(create)


class TestServer:
    """One zkserver process on loopback: `hosts` ("127.0.0.1:PORT"), `port`, `data_dir`, and
    `start()`, `stop()` (SIGTERM, the clean path), `kill()` (SIGKILL, a crash), `restart()`
    (stop, then start on the same port and data). `config_lines` go into its zoo.cfg as they are.
    """

    __test__ = False  # not a test class, whatever pytest's name patterns say

    def __init__(self, base_dir: str | os.PathLike[str], port: int | None = None, *,
                 host: str = "127.0.0.1", tick_time: int = 200,
                 config_lines: list[str] | None = None, sid: int | None = None) -> None:
        self.base = Path(base_dir)
        self.host = host
        self.port = port if port is not None else free_port_block(1) + 1
        self.sid = sid
        self.tick_time = tick_time
        self.config_lines = list(config_lines or [])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    address = hosts

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def config_path(self) -> Path:
        return self.base / "zoo.cfg"

    @property
    def log_path(self) -> Path:
        """The server's output (its log), appended across restarts."""
        return self.base / "server.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.sid is not None:
            (self.data_dir / "myid").write_text(f"{self.sid}\n")
        lines = [f"tickTime={self.tick_time}", "initLimit=20", "syncLimit=10",
                 f"dataDir={self.data_dir}", f"clientPort={self.port}",
                 f"clientPortAddress={self.host}", "admin.enableServer=false",
                 "4lw.commands.whitelist=*", "maxClientCnxns=0", *self.config_lines]
        self.config_path.write_text("\n".join(lines) + "\n")

    def launch(self) -> None:
        """Start the process without waiting for it to serve (an ensemble starts all first)."""
        if self.running:
            return
        self.base.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            self.write_config()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "zkserver", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def wait_serving(self, timeout: float = START_TIMEOUT,
                     modes: tuple[str, ...] = SERVING) -> str:
        """Until the server answers with one of `modes`; that mode."""
        deadline = time.monotonic() + timeout
        while True:
            mode = server_mode(self.host, self.port)
            if mode in modes:
                return mode
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"zkserver exited with status {self.proc.returncode}; "
                                   f"its log ({self.log_path}) ends:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"zkserver on {self.hosts} not serving after {timeout} s; "
                                   f"its log ({self.log_path}) ends:\n{self.log_tail()}")
            time.sleep(0.01)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self, timeout: float = START_TIMEOUT) -> TestServer:
        self.launch()
        self.wait_serving(timeout)
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM and wait (the server flushes and exits 0); SIGKILL if it does not."""
        if not self.running:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: a crash; what was acknowledged is on disk, the rest is lost."""
        if self.running:
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self, timeout: float = START_TIMEOUT) -> TestServer:
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> TestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class TestEnsemble:
    """`size` zkserver processes forming one ensemble on loopback. `members` are their
    `TestServer`s (member i has server id i + 1); `hosts` is the connection string of all of
    them; `kill(i)` crashes member i, `stop(i)` stops it cleanly, `start(i)` brings it back and
    waits until it serves again."""

    __test__ = False

    def __init__(self, base_dir: str | os.PathLike[str], size: int = 3, *,
                 tick_time: int = 200, config_lines: list[str] | None = None) -> None:
        base = free_port_block(size)
        servers = [f"server.{i}=127.0.0.1:{base + 100 + i}:{base + 200 + i}"
                   for i in range(1, size + 1)]
        self.members = [
            TestServer(Path(base_dir) / f"s{i}", base + i, tick_time=tick_time, sid=i,
                       config_lines=[*servers, *(config_lines or [])])
            for i in range(1, size + 1)]

    @property
    def hosts(self) -> str:
        return ",".join(m.hosts for m in self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):  # noqa: ANN204 (an iterator of TestServer)
        return iter(self.members)

    def __getitem__(self, i: int) -> TestServer:
        return self.members[i]

    def modes(self) -> list[str | None]:
        return [server_mode(m.host, m.port) if m.running else None for m in self.members]

    def leader(self) -> int | None:
        """The index of the member that leads now, if exactly one does."""
        leaders = [i for i, mode in enumerate(self.modes()) if mode == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_serving(self, timeout: float = START_TIMEOUT) -> None:
        """Until one member leads and every running member serves."""
        deadline = time.monotonic() + timeout
        while True:
            modes = self.modes()
            running = [mode for m, mode in zip(self.members, modes, strict=True) if m.running]
            if modes.count("leader") == 1 and all(mode in SERVING for mode in running):
                return
            for m in self.members:
                if m.proc is not None and m.proc.poll() not in (None, -signal.SIGKILL, 0):
                    raise RuntimeError(f"server.{m.sid} exited with status "
                                       f"{m.proc.returncode}; its log ends:\n{m.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ensemble not serving after {timeout} s: {modes}")
            time.sleep(0.02)

    def start(self, i: int | None = None, timeout: float = START_TIMEOUT) -> TestEnsemble:
        """Start member i (every member when i is None) and wait until the ensemble serves."""
        for m in self.members if i is None else [self.members[i]]:
            m.launch()
        self.wait_serving(timeout)
        return self

    def kill(self, i: int) -> None:
        self.members[i].kill()

    def stop(self, i: int | None = None) -> None:
        """Stop member i cleanly (every member when i is None)."""
        for m in self.members if i is None else [self.members[i]]:
            m.stop()

    def __enter__(self) -> TestEnsemble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        for m in self.members:
            m.kill()
