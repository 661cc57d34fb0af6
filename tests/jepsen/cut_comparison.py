"""zkserver against Apache ZooKeeper under the same schedule of silent link cuts.

A 3-server ensemble of each (the same zoo.cfg: tickTime 1000, initLimit 5, syncLimit 5),
member-to-member links through the nemesis's proxies, the CAS-register workload through
kazoo, and the same seeded `cut_schedule`: every few seconds a random shape of links is cut
silently (as an iptables DROP) and healed again. Both histories must be linearizable; the
figure of merit is how many operations completed ("ok"): an ensemble that notices a cut
late, elects slowly or leaves a healed member out serves fewer.

Each kazoo client runs in a process of its own and the proxies in one more, as Jepsen's
clients and network are apart from the servers it tests. Run from one process (`--threads`),
six clients and the proxies shared one GIL: that process ran at 0.85-0.92 of a core and an
operation spent 4-6 ms there against about 1 ms in the servers, so the figure measured the
test's own process more than either ensemble.

The tests in test_silent_cuts.py run it; from the command line it is a benchmark:

    PYTHONPATH=$PWD python3 -m tests.jepsen.cut_comparison --duration 120 --seed 1
    PYTHONPATH=$PWD python3 -m tests.jepsen.cut_comparison --only zkserver --timeline
    PYTHONPATH=$PWD python3 -m tests.jepsen.cut_comparison --no-cuts --latency --duration 30
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import support  # noqa: F401 - the tests' helpers, on the path under pytest
except ImportError:  # run with `python -m` from the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.jepsen.linearizability import FAIL, INFO, OK  # noqa: E402
from tests.jepsen.nemesis import (  # noqa: E402
    Ensemble,
    Fault,
    Nemesis,
    cut_schedule,
    real_zookeeper,
    zkserver_ensemble,
)
from tests.jepsen.workloads import FINAL_PROCESS, RegisterWorkload, RunResult, run  # noqa: E402


def _zookeeper(base: Path, n: int, **kw: object) -> Ensemble:
    """ZooKeeper as users run it: the JVM's default compilers and collector, zkServer.sh's
    default heap (the tests' quick JVM would understate its throughput)."""
    return real_zookeeper(base, n, quick=False, **kw)


KINDS = {"zookeeper": _zookeeper, "zkserver": zkserver_ensemble}


@dataclass
class CutRun:
    """One cluster's run: the checked history, the nemesis's log and when the run began."""

    kind: str
    result: RunResult
    nemesis: Nemesis
    start: float  # time.monotonic() when the workers began (connected before)
    duration: float
    wall_start: float  # time.time() at `start`, to line up the servers' logs
    server_cpu: float  # CPU seconds the servers used during the run (all of them)
    client_cpu: float  # CPU seconds of this process and the worker processes (the clients)
    proxy_cpu: float  # CPU seconds of the proxies' process (0: they ran in this one)

    @property
    def linearizable(self) -> bool | None:
        return self.result.checks["linearizable"].valid

    def ops(self, status: str = OK) -> int:
        """Operations of the workload itself with this outcome (the final reads excluded)."""
        return sum(1 for op in self.result.history
                   if op.status == status and op.process < FINAL_PROCESS)

    def per_second(self) -> list[int]:
        """Completed operations per second of the run, by completion time."""
        buckets = [0] * (math.ceil(self.duration) + 1)
        for op in self.result.history:
            if op.status == OK and op.process < FINAL_PROCESS:
                k = int(op.ret - self.start)
                if 0 <= k < len(buckets):
                    buckets[k] += 1
        return buckets

    def stalls(self, threshold: float = 1.0) -> list[tuple[float, float]]:
        """Intervals (seconds from the start, length) longer than `threshold` in which no
        operation completed."""
        rets = sorted(op.ret - self.start for op in self.result.history
                      if op.status == OK and op.process < FINAL_PROCESS)
        out = []
        prev = 0.0
        for r in [*rets, self.duration]:
            if r - prev > threshold:
                out.append((round(prev, 2), round(r - prev, 2)))
            prev = max(prev, r)
        return out

    def latencies(self, clients: int, servers: int = 3) -> dict[tuple[str, int], list[float]]:
        """Completed operations' latencies (ms) by kind and by the server their worker talks
        to first (worker i starts at server i mod `servers`; a worker whose operation ended
        unknown goes on as process i + `clients`)."""
        out: dict[tuple[str, int], list[float]] = {}
        for op in self.result.history:
            if op.status == OK and op.process < FINAL_PROCESS and op.ret != math.inf:
                key = (op.input[1][0], op.process % clients % servers)
                out.setdefault(key, []).append((op.ret - op.call) * 1000)
        return out

    def timeline(self) -> str:
        """The nemesis's events interleaved with the throughput, one line per second."""
        events: dict[int, list[str]] = {}
        for e in self.nemesis.events:
            k = int(e.time - self.start)
            events.setdefault(k, []).append(f"{e.action} {e.fault} {e.nodes} {e.modes}")
        lines = []
        for k, n in enumerate(self.per_second()):
            lines.append(f"{k:4d}s {n:5d} {'#' * (n // 10)} {'; '.join(events.get(k, []))}")
        return "\n".join(lines)


def _cpu_seconds(pids: Sequence[int | None]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


Schedule = Callable[[], Sequence[Fault]]


def _own_and_children_cpu() -> float:
    """CPU seconds of this process and of its children that have been waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_under_cuts(kind: str, base: Path, seed: int = 1, duration: float = 30.0,
                   clients: int = 6, keys: int = 5, schedule: Schedule | None = None,
                   processes: bool = True) -> CutRun:
    """Start a fresh 3-server ensemble of `kind`, run the register workload for `duration`
    seconds under `schedule()` (default: `cut_schedule(seed, duration)`), heal, read back,
    check. `processes`: the clients and the proxies each in processes of their own, so that
    neither shares a GIL with the other (else all in this process, in threads)."""
    cluster: Ensemble = KINDS[kind](base / kind, 3, proxy_process=processes)
    cluster.start()
    try:
        faults = schedule() if schedule is not None else cut_schedule(seed, duration)
        nemesis = Nemesis(cluster, faults, seed=seed, recover=False, repeat=False)
        pids = [cluster.pid(i) for i in range(cluster.n)]
        proxy_pid = [getattr(cluster.network, "pid", None)]
        cpu0, own0, proxy0 = _cpu_seconds(pids), _own_and_children_cpu(), _cpu_seconds(proxy_pid)
        mono0, wall0 = time.monotonic(), time.time()
        result = run(RegisterWorkload(keys=keys), cluster.node_hosts, duration=duration,
                     clients=clients, nemesis=nemesis, seed=seed, processes=processes)
        server_cpu, client_cpu = _cpu_seconds(pids) - cpu0, _own_and_children_cpu() - own0
        proxy_cpu = _cpu_seconds(proxy_pid) - proxy0
    finally:
        cluster.stop()
    start = result.started
    wall_start = wall0 + (start - mono0)
    return CutRun(kind, result, nemesis, start, duration, wall_start, server_cpu, client_cpu,
                  proxy_cpu)


def compare(base: Path, seed: int = 1, duration: float = 30.0, clients: int = 6,
            kinds: Sequence[str] = ("zookeeper", "zkserver"), schedule: Schedule | None = None,
            processes: bool = True) -> dict[str, CutRun]:
    """Each kind in turn (never both at once: they would share the machine's two cores),
    each under a fresh copy of the same schedule."""
    return {kind: run_under_cuts(kind, base, seed, duration, clients, schedule=schedule,
                                 processes=processes)
            for kind in kinds}


def table(runs: dict[str, CutRun]) -> str:
    head = ("| server | ok | info | fail | ok/s | linearizable | cuts | stalls > 1 s "
            "(total s) | server CPU s | client CPU s | proxy CPU s |\n"
            "|---|---:|---:|---:|---:|---|---:|---|---:|---:|---:|")
    rows = []
    for kind, r in runs.items():
        stalls = r.stalls()
        cuts = sum(1 for e in r.nemesis.events if e.action == "inject")
        rows.append(f"| {kind} | {r.ops()} | {r.ops(INFO)} | {r.ops(FAIL)} | "
                    f"{r.ops() / r.duration:.0f} | {r.linearizable} | {cuts} | "
                    f"{len(stalls)} ({sum(s for _, s in stalls):.1f}) | "
                    f"{r.server_cpu:.1f} | {r.client_cpu:.1f} | {r.proxy_cpu:.1f} |")
    return "\n".join([head, *rows])


def latency_table(runs: dict[str, CutRun], clients: int) -> str:
    """p50 / mean latency of each kind of operation, per server the workers start at: where
    a gap in completed operations comes from (a slow follower, slow CAS, ...)."""
    kinds = list(runs)
    head = ("| operation | first server | " + " | ".join(f"{k} p50 / mean ms" for k in kinds)
            + " |\n|---|---:|" + "---:|" * len(kinds))
    tables = {k: r.latencies(clients) for k, r in runs.items()}
    rows = []
    for key in sorted({key for t in tables.values() for key in t}):
        cells = []
        for k in kinds:
            v = sorted(tables[k].get(key, []))
            cells.append(f"{v[len(v) // 2]:.2f} / {sum(v) / len(v):.2f}" if v else "-")
        rows.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join([head, *rows])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--only", choices=sorted(KINDS))
    ap.add_argument("--first", choices=sorted(KINDS), default="zookeeper",
                    help="which ensemble runs first (alternate it: the machine's speed drifts)")
    ap.add_argument("--timeline", action="store_true", help="throughput per second and events")
    ap.add_argument("--latency", action="store_true",
                    help="latency of each kind of operation, per server")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--no-cuts", action="store_true", help="no faults: the base throughput")
    ap.add_argument("--keep", help="run in this directory and keep it (the servers' logs)")
    ap.add_argument("--threads", action="store_true",
                    help="clients and proxies in threads of this process (the old harness)")
    args = ap.parse_args(argv)
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)  # a line per lost connection
    kinds = [args.only] if args.only else sorted(KINDS, key=lambda k: k != args.first)
    schedule: Schedule | None = (lambda: []) if args.no_cuts else None
    if args.keep:
        runs = compare(Path(args.keep), args.seed, args.duration, args.clients, kinds, schedule,
                       not args.threads)
    else:
        with tempfile.TemporaryDirectory(prefix="cuts-") as tmp:
            runs = compare(Path(tmp), args.seed, args.duration, args.clients, kinds, schedule,
                           not args.threads)
    for kind, r in runs.items():
        print(f"== {kind}: {r.result.summary()}")
        wall = time.strftime("%H:%M:%S", time.localtime(r.wall_start))
        print(f"   t0 = {wall}{f'{r.wall_start % 1:.3f}'[1:]} (wall clock, as in the logs)")
        print(f"   stalls: {r.stalls()}")
        net = r.nemesis.cluster.network
        if net is not None:
            print(f"   proxied: {net.bytes_forwarded} bytes, chunks quorum/election "
                  f"{net.chunks_forwarded[False]}/{net.chunks_forwarded[True]}")
        if args.timeline:
            print(r.timeline())
    print(table(runs))
    if args.latency:
        print(latency_table(runs, args.clients))
    if args.json:
        Path(args.json).write_text(json.dumps({
            kind: {"ok": r.ops(), "info": r.ops(INFO), "fail": r.ops(FAIL),
                   "linearizable": r.linearizable, "stalls": r.stalls(),
                   "per_second": r.per_second(),
                   "events": [(round(e.time - r.start, 2), e.action, e.fault, e.nodes, e.modes)
                              for e in r.nemesis.events]}
            for kind, r in runs.items()}, indent=1))
    return 0 if all(r.linearizable for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
