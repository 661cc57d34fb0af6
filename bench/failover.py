#!/usr/bin/env python3
"""Start-up and failover of a 3-server ensemble: zkserver against Apache ZooKeeper, side by side.

    python bench/failover.py                     # 5 rounds, both servers alternating: ~3 min
    python bench/failover.py --rounds 20 --only zkserver --no-failover   # 20 starts in a row

Each round starts a fresh 3-server ensemble of each server in turn (never both running; the
order alternates between rounds, so that a burst of other work hits both alike). Both get the
same zoo.cfg per server (`realzk.RealZooKeeper.config_lines`: tickTime=2000, initLimit=10,
syncLimit=5, clientPort, server.1..3 on 127.0.0.1); ZooKeeper runs as `RealZooKeeper` starts it
(its JVM start-up is part of its time, as an operator would see it).

* **start**: from just before the first process is created until every member serves, where
  *serving* is the same test for both: a new session is accepted (ConnectResponse with a
  positive timeout) and getData("/") on it succeeds (polled every 20 ms per member). `srvr`'s
  Mode is not used, so a server that says "follower" but would still refuse clients does not
  count.
* **failover**: 3 writers (raw protocol, one request at a time, each starting on a different
  member) keep creating znodes and record every acknowledged create. Once each has written
  steadily, the leader gets SIGKILL (its whole process group). A watcher polls `srvr` on the
  two survivors every 10 ms to time *notice* (the first survivor stops saying "follower") and
  *elected* (one survivor says "leader", the other "follower"). **first write** = kill ->
  acknowledgement of the first create issued after the kill. A writer whose connection breaks
  or stays silent for 2 s reconnects at once to the next member (no back-off), so the figure
  is the servers', not a client library's retry delays. Then the killed server is restarted,
  the ensemble waits until all serve, and every member is checked (sync, then getChildren) to
  hold every acknowledged create: none may be lost.

Prints one row per round and a summary table (median, min-max) with the ratios
zkserver / ZooKeeper. Standard library only; it does not import the zkserver package.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
import run  # noqa: E402  (bench/ is not a package)
import zkbench  # noqa: E402
from members import free_port_base, srvr_mode  # noqa: E402

realzk = run.realzk  # loaded by path, so a half-edited zkserver package cannot break it

OP_SYNC = 9
REPLY_TIMEOUT = 2.0
N = 3


# --------------------------------------------------------------------------- the clusters


class Cluster:
    """n server processes from the same zoo.cfg layout; `kind` is "zkserver" or "zookeeper"."""

    def __init__(self, kind: str, zk_heap: str, zkserver_cmd: list[str]) -> None:
        self.kind = kind
        self.tmp = Path(tempfile.mkdtemp(prefix=f"zkbench-failover-{kind}-"))
        self.base = free_port_base(N)
        self.layout = realzk.RealZooKeeper(self.tmp, self.base, n=N, heap=zk_heap)
        self.zk_heap = zk_heap
        self.zkserver_cmd = zkserver_cmd
        self.procs: dict[int, subprocess.Popen] = {}
        self.ports = {i: self.base + i for i in range(1, N + 1)}
        for i in self.ports:
            d = self.tmp / f"s{i}"
            (d / "data").mkdir(parents=True)
            (d / "data" / "myid").write_text(f"{i}\n")
            (d / "zoo.cfg").write_text(
                "\n".join(self.layout.config_lines(i, d / "data", self.ports[i])) + "\n")

    def argv(self, i: int) -> list[str]:
        d = self.tmp / f"s{i}"
        if self.kind == "zkserver":
            return [*self.zkserver_cmd, str(d / "zoo.cfg")]
        return ["java", f"-Xmx{self.zk_heap}", *realzk.log_args(d), "-cp", realzk.classpath(),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(d / "zoo.cfg")]

    def spawn(self, i: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        with open(self.tmp / f"s{i}" / "out.log", "ab") as out:
            self.procs[i] = subprocess.Popen(
                self.argv(i), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self, i: int) -> None:
        p = self.procs.get(i)
        if p is not None and p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def check_running(self) -> None:
        for i, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{self.kind} server {i} exited ({p.returncode}); "
                                   f"see {self.tmp}/s{i}/out.log")

    def stop(self, keep: bool) -> None:
        for i in list(self.procs):
            self.kill(i)
        if keep:
            print(f"  logs kept in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- probes


def serves(port: int) -> bool:
    """A new session is accepted and getData("/") answers: this member serves clients."""
    try:
        conn = zkbench.SyncConn(f"127.0.0.1:{port}", timeout=1.0)
    except (OSError, ConnectionError, struct.error):
        return False
    try:
        err, _ = conn.call(zkbench.get_req("/"))
        return err == 0
    except (OSError, ConnectionError, struct.error):
        return False
    finally:
        conn.close()


def wait_all_serving(cluster: Cluster, t0: float, timeout: float) -> dict[int, float]:
    """Seconds from t0 until each member first served (missing: not within timeout)."""
    seen: dict[int, float] = {}
    deadline = t0 + timeout
    while len(seen) < len(cluster.ports) and time.monotonic() < deadline:
        for i, port in cluster.ports.items():
            if i not in seen and serves(port):
                seen[i] = time.monotonic() - t0
        cluster.check_running()
        time.sleep(0.02)
    return seen


# --------------------------------------------------------------------------- writers


class Writer(threading.Thread):
    """Creates /fo/w<j>-<n> one at a time; records (path, issued, acked) of every ack."""

    def __init__(self, j: int, ports: list[int], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.j = j
        self.ports = ports
        self.stop_event = stop
        self.acks: list[tuple[str, float, float]] = []
        self.reconnects = 0

    def _connect(self, k: int) -> tuple[zkbench.SyncConn | None, int]:
        for step in range(len(self.ports)):
            port = self.ports[(k + step) % len(self.ports)]
            try:
                conn = zkbench.SyncConn(f"127.0.0.1:{port}", timeout=1.0)
                conn.sock.settimeout(REPLY_TIMEOUT)
                return conn, k + step
            except (OSError, ConnectionError, struct.error):
                continue
        return None, k + 1

    def run(self) -> None:
        k = self.j
        conn = None
        n = 0
        while not self.stop_event.is_set():
            if conn is None:
                conn, k = self._connect(k)
                if conn is None:
                    time.sleep(0.005)
                    continue
                self.reconnects += 1
            n += 1
            path = f"/fo/w{self.j}-{n}"
            issued = time.monotonic()
            try:
                err, _ = conn.call(zkbench.create_req(path, b"x"))
            except (OSError, ConnectionError, struct.error):
                conn.sock.close()
                conn, k = None, k + 1
                continue
            if err == 0:
                self.acks.append((path, issued, time.monotonic()))
        if conn is not None:
            conn.close()


def children(port: int, path: str, timeout: float = 30.0) -> set[str]:
    """The children of `path` on one member after a sync (retried on a fresh session while
    the member settles: a just-restarted one may still drop connections)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = zkbench.SyncConn(f"127.0.0.1:{port}", timeout=5.0)
            try:
                err, _ = conn.call(zkbench.tail(OP_SYNC, zkbench.ustr(path)))
                if err == 0:
                    return set(conn.children(path))
            finally:
                conn.close()
        except (OSError, ConnectionError, struct.error):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no sync + getChildren answer on port {port}")
        time.sleep(0.1)


def failover(cluster: Cluster, timeout: float) -> dict:
    ports = list(cluster.ports.values())
    setup = zkbench.SyncConn(f"127.0.0.1:{ports[0]}")
    setup.call(zkbench.create_req("/fo", b""))
    setup.close()
    stop = threading.Event()
    writers = [Writer(j, ports, stop) for j in range(N)]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 30
    while any(len(w.acks) < 20 for w in writers):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{cluster.kind}: writers not steady: "
                               f"{[len(w.acks) for w in writers]}")
        time.sleep(0.01)
    leaders = [i for i, p in cluster.ports.items() if srvr_mode(p, 0.5) == "leader"]
    if len(leaders) != 1:
        raise RuntimeError(f"{cluster.kind}: no single leader: {leaders}")
    leader = leaders[0]
    survivors = {i: p for i, p in cluster.ports.items() if i != leader}
    marks: dict[str, float] = {}
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            modes = [srvr_mode(p, 0.5) for p in survivors.values()]
            now = time.monotonic()
            if "notice" not in marks and any(m != "follower" for m in modes):
                marks["notice"] = now
            if "notice" in marks and sorted(modes) == ["follower", "leader"]:
                marks["elected"] = now
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    killed_at = time.monotonic()
    cluster.kill(leader)
    dead_at = time.monotonic()  # reaped: no write issued after this can be its doing
    first = None
    deadline = killed_at + timeout
    while first is None and time.monotonic() < deadline:
        after = [a for w in writers for (_, issued, a) in list(w.acks) if issued > dead_at]
        first = min(after) if after else None
        time.sleep(0.005)
    time.sleep(0.5)  # a few more writes under the new leader
    stop.set()
    watching.set()
    for w in writers:
        w.join(10)
    watcher.join(2)
    cluster.spawn(leader)
    back = wait_all_serving(cluster, time.monotonic(), 60)
    if len(back) < N:
        raise RuntimeError(f"{cluster.kind}: not all serving after the restart: {back}")
    acked = {path.rsplit("/", 1)[1] for w in writers for (path, _, _) in w.acks}
    lost = {}
    for i, port in cluster.ports.items():
        missing = acked - children(port, "/fo")
        if missing:
            lost[i] = sorted(missing)[:5]
    return {
        "first": None if first is None else first - killed_at,
        "notice": marks["notice"] - killed_at if "notice" in marks else None,
        "elected": marks["elected"] - killed_at if "elected" in marks else None,
        "acked": len(acked), "lost": lost, "old_leader": leader,
    }


# --------------------------------------------------------------------------- rounds


def one_round(kind: str, args) -> dict:
    cluster = Cluster(kind, args.zk_heap, args.zkserver_cmd)
    keep = args.keep_logs
    try:
        t0 = time.monotonic()
        for i in cluster.ports:
            cluster.spawn(i)
        seen = wait_all_serving(cluster, t0, args.start_timeout)
        res = {"members": seen, "start": max(seen.values()) if len(seen) == N else None}
        if res["start"] is None:
            keep = True
            return res
        if not args.no_failover:
            res.update(failover(cluster, args.failover_timeout))
            keep = keep or bool(res["lost"]) or res["first"] is None
        return res
    except Exception:
        keep = True
        raise
    finally:
        cluster.stop(keep)


def fmt(x: float | None, unit: str = "s") -> str:
    """Seconds as a number in `unit` ("s": 2 decimals, "ms": whole), "-" if missing."""
    if x is None:
        return "-"
    return f"{x:.2f}" if unit == "s" else f"{x * 1000:.0f}"


def summary(values: list[float | None], unit: str) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    med = statistics.median(got)
    extra = "" if len(got) == len(values) else f", {len(values) - len(got)} missing"
    return f"{fmt(med, unit)} ({fmt(min(got), unit)}-{fmt(max(got), unit)}{extra})"


def median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if len(got) == len(values) and got else None


ROWS = [("start -> every member serving, s", "start", "s"),
        ("leader kill -> survivors notice, ms", "notice", "ms"),
        ("leader kill -> new leader and follower serving, ms", "elected", "ms"),
        ("**leader kill -> first acknowledged write, ms**", "first", "ms")]


def table(results: dict[str, list[dict]], rows: list[tuple[str, str, str]]) -> list[str]:
    kinds = list(results)
    both = len(kinds) == 2
    names = {"zkserver": "zkserver", "zookeeper": "ZooKeeper"}
    lines = ["| median (min-max) | " + " | ".join(names[k] for k in kinds)
             + (" | zkserver / ZooKeeper |" if both else " |"),
             "|---" + "|---:" * (len(kinds) + both) + "|"]
    for label, key, unit in rows:
        cells = [summary([res.get(key) for res in results[k]], unit) for k in kinds]
        line = f"| {label} | " + " | ".join(cells)
        if both:
            a = median([res.get(key) for res in results["zkserver"]])
            b = median([res.get(key) for res in results["zookeeper"]])
            line += f" | {a / b:.2f}" if a is not None and b else " | -"
        lines.append(line + " |")
        each = [", ".join(fmt(res.get(key), unit) for res in results[k]) for k in kinds]
        lines.append("| ... each round | " + " | ".join(each) + (" | |" if both else " |"))
    return lines


def render(args, results: dict[str, list[dict]], rows, started: str, elapsed: float,
           loadavg: tuple[float, float, float]) -> str:
    minfo = run.machine_info()
    lost = {k: sum(1 for res in results[k] if res.get("lost")) for k in results}
    acked = {k: sum(res.get("acked", 0) for res in results[k]) for k in results}
    lines = [
        "## Failover (3 servers)",
        "",
        f"- Date: {started} (took {elapsed / 60:.1f} min)",
        f"- Machine: {minfo['nproc']} CPUs ({minfo['cpu']}), {minfo['mem']} RAM, "
        f"Linux {minfo['kernel']}",
        f"- Machine load: load average {loadavg[0]:.2f} / {loadavg[1]:.2f} / {loadavg[2]:.2f} "
        "(1 / 5 / 15 min) at the start",
        f"- Command: `{' '.join(['python', 'bench/failover.py', *args.argv])}`",
        f"- {args.rounds} rounds; in each, a fresh 3-server ensemble of each server in turn "
        "(order alternating), every member on 127.0.0.1 with the same zoo.cfg: tickTime=2000, "
        f"initLimit=10, syncLimit=5. ZooKeeper {realzk.ORACLE} with -Xmx{args.zk_heap}, its JVM "
        f"start included; zkserver `{' '.join(args.zkserver_cmd)}` ({run.git_version()}).",
        "- Serving = a new session is accepted and getData(\"/\") answers on that member "
        "(polled every 20 ms). Start = from just before the first process is created until "
        "every member serves.",
        "- Failover: 3 raw-protocol writers (one create at a time, each starting on another "
        "member, reconnecting at once to the next member when a connection breaks or stays "
        "silent 2 s) write steadily; then SIGKILL to the leader's process group. Notice = the "
        "first survivor whose `srvr` stops saying follower; elected = one survivor says "
        "leader, the other follower (both polled every 10 ms); first write = the first create "
        "issued after the leader was dead, acknowledged. Then the killed server restarts and "
        "every member is checked (sync + getChildren) for every acknowledged create.",
        "",
        *table(results, rows),
        "",
        "Acknowledged creates lost: " + ", ".join(
            f"{k} {lost[k]} round(s) of {len(results[k])} ({acked[k]:,} acknowledged)"
            for k in results) + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", choices=("zkserver", "zookeeper"))
    ap.add_argument("--no-failover", action="store_true", help="time the starts only")
    ap.add_argument("--start-timeout", type=float, default=60.0)
    ap.add_argument("--failover-timeout", type=float, default=30.0)
    ap.add_argument("--zk-heap", default="1g")
    ap.add_argument("--zkserver-cmd", default=f"{sys.executable} -m zkserver")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--out", default="docs/benchmarks.md",
                    help="report path, relative to the repo root ('' to skip); only a full "
                    "run (both servers, with failover) writes it")
    ap.add_argument("--json", action="store_true",
                    help="end with one JSON line: the medians per server, in seconds")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.zkserver_cmd = args.zkserver_cmd.split()
    kinds = [args.only] if args.only else ["zkserver", "zookeeper"]
    if "zookeeper" in kinds and not realzk.available():
        ap.error("Apache ZooKeeper is not installed (apt-get install zookeeper)")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    loadavg = os.getloadavg()
    t0 = time.monotonic()
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        order = kinds if r % 2 == 0 else kinds[::-1]
        for kind in order:
            res = one_round(kind, args)
            results[kind].append(res)
            members = " ".join(f"{i}:{t:.2f}" for i, t in sorted(res["members"].items()))
            line = f"round {r + 1} {kind:9} start {fmt(res['start'])} s [{members}]"
            if "first" in res:
                line += (f" | leader {res['old_leader']} killed: notice "
                         f"{fmt(res['notice'], 'ms')} ms, elected {fmt(res['elected'], 'ms')} "
                         f"ms, first write {fmt(res['first'], 'ms')} ms, {res['acked']} acked, "
                         f"lost {res['lost'] or 'none'}")
            print(line, file=sys.stderr, flush=True)
    rows = ROWS[:1] if args.no_failover else ROWS
    report = render(args, results, rows, started, time.monotonic() - t0, loadavg)
    print(report)
    if args.out and not args.only and not args.no_failover:
        out = Path(args.out)
        if not out.is_absolute():
            out = REPO / out
        run.write_sections(out, {"failover": report})
        print(f"wrote the failover section of {out}", file=sys.stderr)
    if args.json:
        print(json.dumps({k: {key: median([res.get(key) for res in results[k]])
                              for _, key, _ in rows} for k in kinds}))
    lost = sum(1 for k in kinds for res in results[k] if res.get("lost"))
    missing = sum(1 for k in kinds for res in results[k] if res["start"] is None)
    if lost or missing:
        print(f"PROBLEMS: {lost} round(s) lost acknowledged writes, "
              f"{missing} start(s) left a member out", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
