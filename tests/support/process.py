"""Run zkserver as a child process, the way users run it, for the tests.

    with ZkServerProcess(tmp_path, port=free_port()) as zk:
        KazooClient(zk.hosts)...

It mirrors `RealZooKeeper`, so a test or a benchmark can hold either one. The server gets a
standard zoo.cfg (the same keys `RealZooKeeper` writes), plus any `extra` lines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from support.proxy import Proxy
from support.realzk import RealZooKeeper, four_letter
from zkserver import devensemble


class ZkServerProcess:
    def __init__(self, base_dir: str | os.PathLike, port: int, extra: list[str] | None = None,
                 command: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.base = Path(base_dir)
        self.port = port
        self.extra = list(extra or [])
        self.command = command or [sys.executable, "-m", "zkserver"]
        self.env = dict(env or {})  # added to the inherited environment (e.g. libfaketime's)
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

    def start_process(self) -> None:
        """Launch the process without waiting for it to serve. Refused while it still runs:
        a second launch would orphan the first process and keep its port and CPU."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"zkserver on port {self.port} is already running")
        self.base.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*self.command, str(self.config_path)], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **self.env} if self.env else None)
        log.close()

    def start(self, timeout: float = 30.0) -> ZkServerProcess:
        self.start_process()
        assert self.proc is not None
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


@contextlib.contextmanager
def side_by_side(ours: ZkServerProcess, real: RealZooKeeper) -> Iterator[None]:
    """Both servers running for the block, as a differential test holds them: both are
    stopped after it, and ours at once if the real one fails to start."""
    ours.start()
    try:
        real.start()
    except Exception:
        ours.kill()
        raise
    try:
        yield
    finally:
        ours.kill()
        real.stop()


def free_port_base(n: int, proxied: bool = False) -> int:
    """A base port b such that b+1..b+n, b+101..b+100+n and b+201..b+200+n are all free now
    (an ensemble's client, quorum and election ports), and the proxy ports if `proxied`."""
    def proxy_ports(base: int) -> list[int]:
        return [base + off + i * 10 + j for off in (300, 400)
                for i in range(1, n + 1) for j in range(1, n + 1) if i != j]

    return devensemble.free_port_base(n, proxy_ports if proxied else None)


class ZkServerEnsemble:
    """n zkserver processes forming one ensemble on loopback (client ports port+1..port+n),
    with the nemesis operations tests need: kill -9, restart, SIGSTOP and SIGCONT per server.

    `links` optionally maps (i, j) to the port server i should use to reach server j's quorum
    and election ports (a proxy the test controls, for partitions); by default servers talk
    directly.
    """

    def __init__(self, base_dir: str | os.PathLike, port: int, n: int = 3, observers: int = 0,
                 extra: list[str] | None = None, tick_time: int = 300,
                 proxied: bool = False, env: dict[str, str] | None = None) -> None:
        self.proxied = proxied
        self.env = dict(env or {})
        self.proxies: dict[tuple[int, int, str], Proxy] = {}
        self.base = Path(base_dir)
        self.port = port
        self.n = n
        self.observers = observers
        self.extra = list(extra or [])
        self.tick_time = tick_time
        self.nodes: dict[int, ZkServerProcess] = {}

    @property
    def ids(self) -> list[int]:
        return list(range(1, self.n + 1))

    @property
    def client_ports(self) -> list[int]:
        return [self.port + i for i in self.ids]

    @property
    def hosts(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def quorum_port(self, i: int) -> int:
        return self.port + 100 + i

    def election_port(self, i: int) -> int:
        return self.port + 200 + i

    def proxy_port(self, i: int, j: int, kind: str) -> int:
        """Where server i reaches server j's quorum ("q") or election ("e") port when proxied."""
        return self.port + (300 if kind == "q" else 400) + i * 10 + j

    def server_lines(self, me: int) -> list[str]:
        lines = []
        for j in self.ids:
            kind = ":observer" if j > self.n - self.observers else ""
            q, e = self.quorum_port(j), self.election_port(j)
            if self.proxied and j != me:
                q, e = self.proxy_port(me, j, "q"), self.proxy_port(me, j, "e")
            lines.append(f"server.{j}=127.0.0.1:{q}:{e}{kind}")
        return lines

    def partition(self, side: set[int]) -> None:
        """Cut every link between `side` and the other servers (needs `proxied=True`)."""
        for (i, j, _), proxy in self.proxies.items():
            if (i in side) != (j in side):
                proxy.cut()

    def heal(self) -> None:
        for proxy in self.proxies.values():
            proxy.heal()

    def start(self, timeout: float = 60.0) -> ZkServerEnsemble:
        if self.proxied:
            for i in self.ids:
                for j in self.ids:
                    if i != j:
                        self.proxies[(i, j, "q")] = Proxy(self.proxy_port(i, j, "q"),
                                                          self.quorum_port(j))
                        self.proxies[(i, j, "e")] = Proxy(self.proxy_port(i, j, "e"),
                                                          self.election_port(j))
        try:
            for i in self.ids:
                self._node(i).start_process()
            self.wait_serving(timeout)
        except BaseException:
            self.stop()  # nothing outlives a start that failed (it held ports for later tests)
            raise
        return self

    def _node(self, i: int) -> ZkServerProcess:
        node = self.nodes.get(i)
        if node is None:
            d = self.base / f"s{i}"
            # Generous limits (3 s at the default tick): a loaded 2-core CI machine may stall a
            # server for a second, which must not look like a failure.
            extra = [f"tickTime={self.tick_time}", "initLimit=20", "syncLimit=10",
                     *self.server_lines(i), *self.extra]
            node = self.nodes[i] = ZkServerProcess(d, self.port + i, extra=extra, env=self.env)
            node.base.mkdir(parents=True, exist_ok=True)
            (node.base / "data").mkdir(exist_ok=True)
            (node.base / "data" / "myid").write_text(f"{i}\n")
            node.write_config()
        return node

    def modes(self) -> dict[int, str]:
        out = {}
        for i in self.ids:
            try:
                text = four_letter("127.0.0.1", self.port + i, "srvr", timeout=1.0)
            except OSError:
                out[i] = "down"
                continue
            mode = [ln.split(":", 1)[1].strip() for ln in text.splitlines()
                    if ln.startswith("Mode:")]
            out[i] = mode[0] if mode else "not serving"
        return out

    def leader(self) -> int | None:
        leaders = [i for i, m in self.modes().items() if m == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_serving(self, timeout: float = 60.0, ids: list[int] | None = None) -> None:
        """Until one leader leads and every (listed, running) server follows or observes."""
        deadline = time.monotonic() + timeout
        while True:
            modes = self.modes()
            want = [i for i in (ids or self.ids) if self.nodes[i].pids()]
            if list(modes.values()).count("leader") == 1 and all(
                    modes[i] in ("leader", "follower", "observer") for i in want):
                return
            if time.monotonic() > deadline:
                exited = {i: node.log_path.read_text()[-500:] for i, node in self.nodes.items()
                          if node.proc is not None and node.proc.poll() is not None}
                raise RuntimeError(f"ensemble not serving after {timeout}s: {modes}; "
                                   f"exited, with the end of their logs: {exited}")
            time.sleep(0.05)

    def kill(self, i: int) -> None:
        self.nodes[i].kill()

    def restart(self, i: int) -> None:
        self.nodes[i].start_process()

    def pause(self, i: int) -> None:
        proc = self.nodes[i].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)

    def resume(self, i: int) -> None:
        proc = self.nodes[i].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGCONT)

    def pids(self) -> list[int]:
        return [p for node in self.nodes.values() for p in node.pids()]

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()
        for node in self.nodes.values():
            proc = node.proc
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
            node.kill()

    def __enter__(self) -> ZkServerEnsemble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
