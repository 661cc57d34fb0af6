"""Run zkserver as a child process, the way users run it, for tests and benchmarks.

    with ZkServerProcess(tmp_path, port=free_port()) as zk:
        KazooClient(zk.hosts)...

It mirrors `RealZooKeeper`, so a test or a benchmark can hold either one. The server gets a
standard zoo.cfg (the same keys `RealZooKeeper` writes), plus any `extra` lines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from zkserver.testing.realzk import four_letter


class ZkServerProcess:
    def __init__(self, base_dir: str | os.PathLike, port: int, extra: list[str] | None = None,
                 command: list[str] | None = None) -> None:
        self.base = Path(base_dir)
        self.port = port
        self.extra = list(extra or [])
        self.command = command or [sys.executable, "-m", "zkserver"]
        self.proc: subprocess.Popen | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_ports(self) -> list[int]:
        return [self.port]

    @property
    def config_path(self) -> Path:
        return self.base / "zoo.cfg"

    @property
    def log_path(self) -> Path:
        return self.base / "out.log"

    def write_config(self) -> None:
        data = self.base / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = ["tickTime=2000", f"dataDir={data}", f"clientPort={self.port}",
                 "clientPortAddress=127.0.0.1", "admin.enableServer=false",
                 "4lw.commands.whitelist=*", "maxClientCnxns=0", *self.extra]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 30.0) -> ZkServerProcess:
        self.base.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*self.command, str(self.config_path)], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if "Mode:" in four_letter("127.0.0.1", self.port, "srvr"):
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"zkserver exited ({self.proc.returncode}); "
                                   f"see {self.log_path}:\n{self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"zkserver did not start on port {self.port}")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait: the clean shutdown path. Returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    stop = kill

    def __enter__(self) -> ZkServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
