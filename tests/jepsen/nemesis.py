"""Clusters of real server processes on loopback, and the faults the fault tests inject into them.

Why processes and proxies: the ensemble's promises (no acknowledged write lost, linearizable
histories) are about crashes, pauses and partitions of whole servers, so the tests run the
servers the way users do (one process each, a zoo.cfg each) and break them from outside:

* `kill -9` and restart (the same command again), `SIGSTOP` / `SIGCONT`;
* a partition: every server reaches every other through its own TCP proxy (a link per
  ordered pair of servers and per port, quorum and election), so the test can cut any set of
  links. A cut link stops forwarding bytes in both directions and holds new connections
  without connecting them, like packets dropped by a firewall: TCP does not notice, the
  servers' own timeouts do. `refuse=True` resets connections instead, like a rejecting one.
  `SilentCut` and `cut_schedule` cut and heal such links every few seconds.

What a silent cut models, and why: an iptables DROP on the path between two servers. Nothing
reaches the other side and nothing is acknowledged, yet neither end's TCP notices for many
minutes (Linux retransmits for about 15 minutes, tcp_retries2, and neither ZooKeeper nor
zkserver sets TCP_USER_TIMEOUT or keepalives on member links), so only the servers' own
heartbeats and read timeouts can tell. The proxy stops reading from both sockets of every
connection on a cut link and holds whatever it had already read; the kernel buffers fill and
the senders' writes eventually block, as unacknowledged data fills a send window. On heal
the held bytes go on in order, exactly what TCP's retransmissions deliver once the path is
back; a connection that an endpoint closed meanwhile ends then, as its retransmitted FIN
arrives. We never model the 15-minute TCP give-up: the cuts here last seconds. The one
difference a userspace proxy cannot avoid: a connect() through a cut link completes (the
proxy's kernel answers the SYN) and then carries nothing until the heal, where a dropped SYN
would leave connect() pending; so a server's connect timeout cannot fire and it must rely on
its read timeout instead, which both ZooKeeper (initLimit/syncLimit on learner sockets) and
zkserver have.

`Ensemble` runs n servers from one command template (`real_zookeeper` for Apache ZooKeeper,
`zkserver_ensemble` for ours); `CallbackCluster` adapts anything else that can be started and
killed (e.g. one `ZkServerProcess`). `Nemesis` runs a schedule of faults in a thread and, when
stopped, heals everything and waits for the cluster to serve again.

Nodes are numbered 0..n-1; node i has server id (myid) i+1.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from support.realzk import classpath, four_letter, log_args

from tests.jepsen.network import Network, NetworkProcess

Proxies = Network | NetworkProcess

# --- ports --------------------------------------------------------------------------------------


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def reserve_ports(count: int, rng: random.Random | None = None) -> list[int]:
    """`count` distinct ports that are free now, below the kernel's ephemeral range.

    Why not port 0: a server that is killed and restarted must bind its port again, and a
    port from the ephemeral range may meanwhile have become the local end of some outgoing
    connection (a client reconnecting, a proxy), which makes the restart fail."""
    rng = rng or random.Random()
    high = min(_ephemeral_low(), 32768) - 1
    ports: list[int] = []
    for _ in range(10_000):
        port = rng.randrange(10_000, high)
        if port in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError("no free ports below the ephemeral range")


# --- clusters -----------------------------------------------------------------------------------


class Cluster(Protocol):
    """What workloads and nemeses need from a cluster under test."""

    n: int

    @property
    def node_hosts(self) -> list[str]:
        """One "host:port" client address per node."""
        ...

    def kill(self, i: int) -> None: ...

    def restart(self, i: int) -> None: ...

    def pause(self, i: int) -> None: ...

    def resume(self, i: int) -> None: ...

    def is_running(self, i: int) -> bool: ...

    def mode(self, i: int) -> str | None:
        """"leader", "follower", "standalone", ... as `srvr` says; None if not serving."""
        ...

    def partition(self, groups: Sequence[Collection[int]], refuse: bool = False) -> None: ...

    def isolate(self, nodes: Collection[int], refuse: bool = False) -> None: ...

    def cut(self, pairs: Collection[tuple[int, int]]) -> None: ...

    def heal(self) -> None: ...

    def stop(self) -> None: ...


def _srvr_mode(port: int, timeout: float = 0.5) -> str | None:
    try:
        out = four_letter("127.0.0.1", port, "srvr", timeout=timeout)
    except OSError:
        return None
    for line in out.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


class ClusterBase:
    """Signals, modes and waiting, shared by the concrete clusters. Subclasses provide
    `n`, `client_ports`, `pid(i)`, `kill`, `restart`, and the network if any."""

    n: int
    client_ports: list[int]
    network: Proxies | None = None

    @property
    def node_hosts(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.client_ports]

    @property
    def hosts(self) -> str:
        return ",".join(self.node_hosts)

    def pid(self, i: int) -> int | None:
        raise NotImplementedError

    def is_running(self, i: int) -> bool:
        return self.pid(i) is not None

    def _signal(self, i: int, sig: int) -> None:
        pid = self.pid(i)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)

    def pause(self, i: int) -> None:
        self._signal(i, signal.SIGSTOP)

    def resume(self, i: int) -> None:
        self._signal(i, signal.SIGCONT)

    def mode(self, i: int) -> str | None:
        return _srvr_mode(self.client_ports[i]) if self.is_running(i) else None

    def modes(self) -> list[str | None]:
        return [self.mode(i) for i in range(self.n)]

    def leader(self) -> int | None:
        """The node that says it leads (a standalone server counts), if exactly one does."""
        leaders = [i for i, m in enumerate(self.modes()) if m in ("leader", "standalone")]
        return leaders[0] if len(leaders) == 1 else None

    def wait_leader(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            leader = self.leader()
            if leader is not None:
                return leader
            if time.monotonic() > deadline:
                raise TimeoutError(f"no leader within {timeout}s: {self.modes()}")
            time.sleep(0.1)

    def healthy(self) -> bool:
        modes = self.modes()
        if self.n == 1:
            return modes[0] is not None
        return (all(m in ("leader", "follower", "observer") for m in modes)
                and modes.count("leader") == 1)

    def check_crashes(self) -> None:
        """Raise if a node exited that nobody killed (a server that cannot restart)."""

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Every node serving, and (in an ensemble) one leader."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            self.check_crashes()
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster not healthy within {timeout}s: {self.modes()}")
            time.sleep(0.1)

    def _require_network(self) -> Proxies:
        if self.network is None:
            raise NotImplementedError("this cluster has no proxies between its servers")
        return self.network

    def partition(self, groups: Sequence[Collection[int]], refuse: bool = False) -> None:
        self._require_network().partition(groups, refuse)

    def isolate(self, nodes: Collection[int], refuse: bool = False) -> None:
        self._require_network().isolate(nodes, refuse)

    def cut(self, pairs: Collection[tuple[int, int]]) -> None:
        self._require_network().cut(pairs)

    def heal(self) -> None:
        if self.network is not None:
            self.network.heal()

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        return self.start()  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        self.stop()  # type: ignore[attr-defined]


CommandFactory = Callable[[int, Path, Path], list[str]]  # (node, zoo.cfg, node dir) -> argv


def real_zookeeper_command(heap: str = "256m", quick: bool = True) -> CommandFactory:
    """Apache ZooKeeper's QuorumPeerMain, as `RealZooKeeper` runs it (the oracle's jars:
    3.9.5 from Maven Central, or Debian's with ZKSERVER_ORACLE=debian).

    `quick`: the JVM starts fast and small (the first JIT tier only, the serial collector),
    which suits tests of behaviour. A benchmark against ZooKeeper passes False and a heap
    as zkServer.sh gives it (1000m): the JVM's default compilers and collector, as users run
    ZooKeeper."""
    cp = classpath()
    jvm = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"] if quick else []

    def command(i: int, cfg: Path, node_dir: Path) -> list[str]:
        return ["java", f"-Xmx{heap}", *jvm, *log_args(node_dir), "-cp", cp,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)]

    return command


def zkserver_command(python: str = sys.executable) -> CommandFactory:
    def command(i: int, cfg: Path, node_dir: Path) -> list[str]:
        return [python, "-m", "zkserver", str(cfg)]

    return command


class Ensemble(ClusterBase):
    """n servers from a zoo.cfg each, on loopback, peers optionally through a `Network`.

    Node i's zoo.cfg lists itself at its real quorum/election ports and every other node j at
    the proxy ports of link i->j, so cutting links partitions the ensemble. Standalone when
    n == 1 (no server lines). The same class runs Apache ZooKeeper and zkserver: only the
    command differs. The proxies run in a process of their own unless `proxy_process` is
    False (then in a thread of this one, sharing its GIL with the test's clients)."""

    def __init__(self, base_dir: str | os.PathLike, n: int, command: CommandFactory,
                 proxied: bool = True, tick_ms: int = 1000, init_limit: int = 5,
                 sync_limit: int = 5, extra: Sequence[str] = (),
                 ports: Sequence[int] | None = None, proxy_process: bool = True) -> None:
        self.base = Path(base_dir)
        self.n = n
        self.command = command
        self.tick_ms = tick_ms
        self.init_limit = init_limit
        self.sync_limit = sync_limit
        self.extra = list(extra)
        ports = list(ports) if ports is not None else reserve_ports(3 * n)
        self.client_ports = ports[:n]
        self.quorum_ports = ports[n:2 * n]
        self.election_ports = ports[2 * n:3 * n]
        self.network: Proxies | None = None
        if proxied and n > 1:
            self.network = NetworkProcess() if proxy_process else Network()
        self.procs: list[subprocess.Popen | None] = [None] * n
        self.killed: set[int] = set()  # nodes down on purpose
        self.restarts = 0

    def node_dir(self, i: int) -> Path:
        return self.base / f"node{i + 1}"

    def config_path(self, i: int) -> Path:
        return self.node_dir(i) / "zoo.cfg"

    def log_path(self, i: int) -> Path:
        return self.node_dir(i) / "out.log"

    def _write_configs(self) -> None:
        peer: dict[tuple[int, int], tuple[int, int]] = {}
        for i in range(self.n):
            for j in range(self.n):
                if i == j:
                    peer[i, j] = (self.quorum_ports[j], self.election_ports[j])
                elif self.network is not None:
                    peer[i, j] = (self.network.link(i, j, self.quorum_ports[j]),
                                  self.network.link(i, j, self.election_ports[j], True))
                else:
                    peer[i, j] = (self.quorum_ports[j], self.election_ports[j])
        for i in range(self.n):
            d = self.node_dir(i)
            data = d / "data"
            data.mkdir(parents=True, exist_ok=True)
            lines = [f"tickTime={self.tick_ms}", f"initLimit={self.init_limit}",
                     f"syncLimit={self.sync_limit}",
                     f"dataDir={data}", f"clientPort={self.client_ports[i]}",
                     "clientPortAddress=127.0.0.1", "admin.enableServer=false",
                     "4lw.commands.whitelist=*", "maxClientCnxns=0", *self.extra]
            if self.n > 1:
                (data / "myid").write_text(f"{i + 1}\n")
                lines += [f"server.{j + 1}=127.0.0.1:{peer[i, j][0]}:{peer[i, j][1]}"
                          for j in range(self.n)]
            self.config_path(i).write_text("\n".join(lines) + "\n")

    def _spawn(self, i: int) -> None:
        argv = self.command(i, self.config_path(i), self.node_dir(i))
        with open(self.log_path(i), "ab") as log:
            self.procs[i] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True, cwd=self.node_dir(i))

    def start(self, timeout: float = 90.0) -> Ensemble:
        self.base.mkdir(parents=True, exist_ok=True)
        if self.network is not None:
            self.network.start()
        self._write_configs()
        for i in range(self.n):
            self._spawn(i)
        try:
            deadline = time.monotonic() + timeout
            while not self.healthy():
                self.check_crashes()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"ensemble not healthy within {timeout}s: "
                                       f"{self.modes()}; logs in {self.base}")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def pid(self, i: int) -> int | None:
        p = self.procs[i]
        return p.pid if p is not None and p.poll() is None else None

    def kill(self, i: int) -> None:
        """SIGKILL (the whole process group: a JVM or a Python server and any children)."""
        p = self.procs[i]
        self.killed.add(i)
        if p is not None and p.poll() is None:
            self._signal(i, signal.SIGCONT)  # a paused process dies just the same; be tidy
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def restart(self, i: int) -> None:
        """Start node i again with the same command and data, if it is not running."""
        if not self.is_running(i):
            self._spawn(i)
            self.restarts += 1
        self.killed.discard(i)

    def check_crashes(self) -> None:
        for i, p in enumerate(self.procs):
            if p is not None and i not in self.killed and p.poll() is not None:
                tail = self.log_path(i).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"node {i} exited by itself ({p.returncode}); "
                                   f"{self.log_path(i)} ends:\n{tail}")

    def stop(self) -> None:
        for i in range(self.n):
            self.kill(i)
        if self.network is not None:
            self.network.stop()


def real_zookeeper(base_dir: str | os.PathLike, n: int = 3, quick: bool = True,
                   **kw: object) -> Ensemble:
    """An Apache ZooKeeper ensemble (the oracle's version), peers through proxies. `quick`:
    see `real_zookeeper_command` (False: tuned as users run it, for benchmarks)."""
    command = real_zookeeper_command() if quick else real_zookeeper_command("1000m", False)
    return Ensemble(base_dir, n, command, **kw)  # type: ignore[arg-type]


def zkserver_ensemble(base_dir: str | os.PathLike, n: int = 3, **kw: object) -> Ensemble:
    """zkserver processes from the same zoo.cfg layout (standalone when n == 1)."""
    return Ensemble(base_dir, n, zkserver_command(), **kw)  # type: ignore[arg-type]


class CallbackCluster(ClusterBase):
    """A cluster from callables, for servers this module does not start itself.

    `start(i)` starts node i (and may block until it serves), `pid(i)` is its process (group
    leader) id or None, `client_ports` its client ports. Kill is SIGKILL to the process group.
    No proxies: `partition` raises."""

    def __init__(self, client_ports: Sequence[int], start: Callable[[int], object],
                 pid: Callable[[int], int | None], stop: Callable[[], object] | None = None
                 ) -> None:
        self.n = len(client_ports)
        self.client_ports = list(client_ports)
        self._start = start
        self._pid = pid
        self._stop = stop

    def pid(self, i: int) -> int | None:
        return self._pid(i)

    def kill(self, i: int) -> None:
        pid = self._pid(i)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)
                os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while self._pid(i) is not None and time.monotonic() < deadline:
                time.sleep(0.01)

    def restart(self, i: int) -> None:
        if self._pid(i) is None:
            self._start(i)

    def start(self) -> CallbackCluster:
        for i in range(self.n):
            self.restart(i)
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
        else:
            for i in range(self.n):
                self.kill(i)


def zkserver_process_cluster(server) -> CallbackCluster:  # noqa: ANN001 - ZkServerProcess
    """Adapt one `ZkServerProcess` (standalone zkserver): kill -9 and restart keep its data
    directory, so acknowledged writes must survive."""

    def pid(i: int) -> int | None:
        pids = server.pids()
        return pids[0] if pids else None

    def start(i: int) -> None:
        if server.proc is not None and server.proc.poll() is not None:
            server.proc.wait()
        server.start()

    return CallbackCluster(server.client_ports, start, pid, server.kill)


# --- faults and the nemesis ---------------------------------------------------------------------

Target = str | Callable[[ClusterBase, random.Random], list[int]]


def choose(cluster: ClusterBase, target: Target, rng: random.Random) -> list[int]:
    """Nodes for a fault: "leader", "follower" (a random non-leader), "minority" (random,
    not the leader), "majority" (the leader and enough others), "random", "all", or a
    callable(cluster, rng). Falls back to random nodes while no leader is known. A target
    with no candidate (the follower of a standalone server) is empty: the fault does
    nothing."""
    if callable(target):
        return list(target(cluster, rng))
    nodes = list(range(cluster.n))
    leader = cluster.leader()
    others = [i for i in nodes if i != leader]
    if target == "leader":
        return [leader] if leader is not None else [rng.choice(nodes)]
    if target == "follower":
        return rng.sample(others, min(1, len(others)))
    if target == "minority":
        return rng.sample(others, min(len(others), max(1, (cluster.n - 1) // 2)))
    if target == "majority":
        k = cluster.n // 2 + 1
        first = [leader] if leader is not None else []
        return first + rng.sample(others, k - len(first))
    if target == "random":
        return [rng.choice(nodes)]
    if target == "all":
        return nodes
    raise ValueError(f"unknown target {target!r}")


class Fault:
    """Something that goes wrong for a while, then is repaired."""

    name = "fault"

    def __init__(self, target: Target = "random", active: float | None = None,
                 quiet: float | None = None) -> None:
        """`active`: how long the fault lasts; `quiet`: how long the cluster runs unharmed
        before it (None: the nemesis's defaults)."""
        self.target = target
        self.active = active
        self.quiet = quiet
        self.nodes: list[int] = []

    def inject(self, cluster: ClusterBase, rng: random.Random) -> list[int]:
        self.nodes = choose(cluster, self.target, rng)
        self._inject(cluster, self.nodes)
        return self.nodes

    def heal(self, cluster: ClusterBase) -> None:
        self._heal(cluster, self.nodes)
        self.nodes = []

    def _inject(self, cluster: ClusterBase, nodes: list[int]) -> None:
        raise NotImplementedError

    def _heal(self, cluster: ClusterBase, nodes: list[int]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.name}({self.target if isinstance(self.target, str) else 'custom'})"


class Kill(Fault):
    """kill -9, then start again from the same data."""

    name = "kill"

    def _inject(self, cluster: ClusterBase, nodes: list[int]) -> None:
        for i in nodes:
            cluster.kill(i)  # type: ignore[attr-defined]

    def _heal(self, cluster: ClusterBase, nodes: list[int]) -> None:
        for i in nodes:
            cluster.restart(i)  # type: ignore[attr-defined]


class Pause(Fault):
    """SIGSTOP, then SIGCONT: a process that stops answering without closing anything (a GC
    pause, a VM migration), the fault that timeouts rather than resets have to catch."""

    name = "pause"

    def _inject(self, cluster: ClusterBase, nodes: list[int]) -> None:
        for i in nodes:
            cluster.pause(i)

    def _heal(self, cluster: ClusterBase, nodes: list[int]) -> None:
        for i in nodes:
            cluster.resume(i)


class Isolate(Fault):
    """Cut the chosen nodes off from the rest of the ensemble (clients still reach them)."""

    name = "partition"

    def __init__(self, target: Target = "leader", active: float | None = None,
                 refuse: bool = False) -> None:
        super().__init__(target, active)
        self.refuse = refuse

    def _inject(self, cluster: ClusterBase, nodes: list[int]) -> None:
        cluster.isolate(nodes, self.refuse)

    def _heal(self, cluster: ClusterBase, nodes: list[int]) -> None:
        cluster.heal()


class SilentCut(Fault):
    """Silently cut member-to-member links (see the module's docstring for what that
    models), in one of these shapes, relative to whoever leads when it strikes:

    * "leader": a minority that holds the leader, cut from the rest (the majority must
      notice and elect; the old leader must step down);
    * "follower": a minority of followers cut from the rest (they must stop serving, then
      rejoin after the heal);
    * "link": only the links between the leader and one follower (not a partition into
      groups: the follower still reaches the others, who still follow the leader);
    * "bridge": only the links between two followers (the leader keeps its quorum; an
      election during it must still converge).

    Clients are untouched: each keeps talking to its own server, and must move when that
    server stops serving."""

    name = "cut"
    SHAPES = ("leader", "follower", "link", "bridge")

    def __init__(self, shape: str, active: float | None = None,
                 quiet: float | None = None) -> None:
        if shape not in self.SHAPES:
            raise ValueError(f"unknown cut shape {shape!r}")
        super().__init__(shape, active, quiet)
        self.shape = shape
        self.name = f"cut:{shape}"
        self.pairs: list[tuple[int, int]] = []

    def inject(self, cluster: ClusterBase, rng: random.Random) -> list[int]:
        """Cut; returns the nodes cut off (a minority), or the two ends of a single link."""
        self.pairs = cut_pairs(self.shape, cluster.n, cluster.leader(), rng)
        cluster.cut(self.pairs)
        if self.shape in ("leader", "follower"):
            self.nodes = sorted({i for i, _ in self.pairs})
        else:
            self.nodes = sorted({i for pair in self.pairs for i in pair})
        return self.nodes

    def _heal(self, cluster: ClusterBase, nodes: list[int]) -> None:
        cluster.heal()
        self.pairs = []

    def __repr__(self) -> str:
        return f"cut({self.shape}, {self.active}s after {self.quiet}s)"


def cut_pairs(shape: str, n: int, leader: int | None, rng: random.Random
              ) -> list[tuple[int, int]]:
    """The node pairs whose links a `SilentCut` of `shape` cuts. While no leader is known
    (an election in progress), a random node stands in for it."""
    nodes = list(range(n))
    if leader is None:
        leader = rng.choice(nodes)
    others = [i for i in nodes if i != leader]
    minority = max(1, (n - 1) // 2)
    if shape == "leader":
        side = {leader, *rng.sample(others, minority - 1)}
    elif shape == "follower":
        side = set(rng.sample(others, minority))
    elif shape == "link":
        return [(leader, rng.choice(others))]
    elif shape == "bridge":
        if len(others) < 2:
            return []
        a, b = rng.sample(others, 2)
        return [(a, b)]
    else:
        raise ValueError(f"unknown cut shape {shape!r}")
    return [(i, j) for i in sorted(side) for j in nodes if j not in side]


def cut_schedule(seed: int, duration: float, active: tuple[float, float] = (2.0, 8.0),
                 quiet: tuple[float, float] = (1.0, 4.0),
                 shapes: Sequence[str] = SilentCut.SHAPES) -> list[SilentCut]:
    """A seeded schedule of silent cuts filling `duration` seconds: each waits a random
    `quiet` time, then cuts links of a random shape for a random `active` time. It depends
    only on the seed, never on the cluster, so two clusters run with the same seed get the
    same cuts at the same times (which follower a cut picks may differ, the shapes not).

    The default durations straddle the failure detectors of the test ensembles (syncLimit x
    tickTime = 5 s): some cuts heal before anyone notices, the others force an election or
    a rejoin."""
    rng = random.Random(seed)
    faults: list[SilentCut] = []
    t = 0.0
    while t < duration:
        q = round(rng.uniform(*quiet), 2)
        a = round(rng.uniform(*active), 2)
        faults.append(SilentCut(rng.choice(list(shapes)), active=a, quiet=q))
        t += q + a
    return faults


@dataclass
class Event:
    """One thing the nemesis did, on the same clock as the histories (time.monotonic())."""

    time: float
    action: str  # "inject" or "heal"
    fault: str
    nodes: list[int]
    modes: list[str | None]


class Nemesis:
    """Runs `faults` in turn in a thread: wait `quiet` seconds, inject one fault, wait
    `active` seconds, heal it; repeat until stopped (`repeat=False`: go through the list
    once). A fault's own `quiet` and `active` override the defaults. With `recover` it also
    waits, after each heal, until the cluster is healthy again, so that every fault hits a
    working cluster rather than one still electing after the previous fault; without, the
    schedule runs on the clock alone (the same for every cluster). `stop()` heals whatever
    is broken and waits until the cluster serves again, so that a workload's final reads see
    every node."""

    def __init__(self, cluster: ClusterBase, faults: Sequence[Fault], quiet: float = 2.0,
                 active: float = 3.0, seed: int = 0, settle_timeout: float = 90.0,
                 recover: bool = True, repeat: bool = True) -> None:
        self.cluster = cluster
        self.faults = list(faults)
        self.quiet = quiet
        self.active = active
        self.rng = random.Random(seed)
        self.settle_timeout = settle_timeout
        self.recover = recover
        self.repeat = repeat
        self.events: list[Event] = []
        self.errors: list[BaseException] = []
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: Fault | None = None
        self._lock = threading.Lock()

    def _record(self, action: str, fault: Fault, nodes: list[int]) -> None:
        self.events.append(Event(time.monotonic(), action, fault.name, list(nodes),
                                 self.cluster.modes()))

    def start(self) -> Nemesis:
        self._thread = threading.Thread(target=self._run, daemon=True, name="nemesis")
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            k = 0
            while self.faults and (self.repeat or k < len(self.faults)):
                fault = self.faults[k % len(self.faults)]
                k += 1
                if self._halt.wait(self.quiet if fault.quiet is None else fault.quiet):
                    break
                with self._lock:
                    if self._halt.is_set():
                        break
                    nodes = fault.inject(self.cluster, self.rng)
                    self._current = fault
                    self._record("inject", fault, nodes)
                self._halt.wait(self.active if fault.active is None else fault.active)
                with self._lock:
                    if self._current is fault:
                        fault.heal(self.cluster)
                        self._current = None
                        self._record("heal", fault, nodes)
                if self.recover:
                    self._wait_recovered()
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.errors.append(e)

    def _wait_recovered(self) -> None:
        deadline = time.monotonic() + self.settle_timeout
        while not self._halt.is_set() and not self.cluster.healthy():
            self.cluster.check_crashes()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no recovery within {self.settle_timeout}s: "
                                   f"{self.cluster.modes()}")
            self._halt.wait(0.1)
        if not self._halt.is_set():
            self.events.append(Event(time.monotonic(), "healthy", "-", [], self.cluster.modes()))

    def stop(self) -> None:
        """Heal, and wait for the cluster to serve on every node again."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(self.settle_timeout)
        with self._lock:
            if self._current is not None:
                nodes = self._current.nodes
                self._current.heal(self.cluster)
                self._record("heal", self._current, nodes)
                self._current = None
        self.cluster.heal()
        for i in range(self.cluster.n):
            self.cluster.resume(i)
            if not self.cluster.is_running(i):
                self.cluster.restart(i)  # type: ignore[attr-defined]
        self.cluster.wait_healthy(self.settle_timeout)
        if self.errors:
            raise RuntimeError(f"nemesis failed: {self.errors[0]!r}") from self.errors[0]

    def describe(self, t0: float | None = None) -> str:
        t0 = self.events[0].time if t0 is None and self.events else (t0 or 0.0)
        return "\n".join(f"{e.time - t0:7.2f}s {e.action:6} {e.fault:9} nodes={e.nodes} "
                         f"modes={e.modes}" for e in self.events)
