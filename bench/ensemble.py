#!/usr/bin/env python3
"""Ensemble mode of the benchmark: a 3-server zkserver ensemble, then a 3-server Apache
ZooKeeper ensemble, on loopback, with the same load. Used by `python bench/run.py --ensemble 3`
(which writes the "Ensemble" section of docs/benchmarks.md); standard library only, and like
the rest of bench/ it does not import the zkserver package.

Both ensembles get the same zoo.cfg per server (the lines `realzk.RealZooKeeper.config_lines`
writes: tickTime=2000, initLimit=10, syncLimit=5, clientPort, server.1..3 on 127.0.0.1) plus
forceSync=yes.

How the load is spread (the same for both): one generator process, the usual 8 sessions x 64
outstanding requests, and session i connects to server `order[i % 3]` where `order` is
[follower, follower, leader]: 3 sessions on each follower and 2 on the leader, as 8 clients
that each picked a server round-robin would be. Setup, verification and cleanup go through the
leader. Latency (one session, one request at a time) runs twice: through a follower (what most
clients get: a write is forwarded to the leader and comes back committed) and through the
leader.

    python bench/ensemble.py --worker     (internal: a load generator process)
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
import external  # noqa: E402  (bench/ is not a package)
import zkbench  # noqa: E402
from members import free_port_base, packets_sent, srvr_mode  # noqa: E402


def _load_realzk():
    # By path, as run.py does, so a half-edited zkserver package cannot break the baseline.
    spec = importlib.util.spec_from_file_location(
        "_bench_realzk", REPO / "tests" / "support" / "realzk.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


realzk = sys.modules.get("_bench_realzk") or _load_realzk()

# "latency" goes through a follower, "latency-leader" through the leader.
MODES = ("read", "write", "mixed", "create", "latency", "latency-leader")


class _EnsembleBase:
    """What run.run_server needs: start(), stop(), alive(), version(), workload(), hostport,
    pid (a label here), plus the ensemble's layout."""

    n = 3

    def _order(self, ports: list[int], timeout: float) -> None:
        """Wait for one leader and n-1 followers; set hostports = [followers..., leader]."""
        deadline = time.monotonic() + timeout
        while True:
            modes = {p: srvr_mode(p) for p in ports}
            leaders = [p for p, m in modes.items() if m == "leader"]
            followers = [p for p, m in modes.items() if m == "follower"]
            if len(leaders) == 1 and len(followers) == len(ports) - 1:
                break
            self._check_running()
            if time.monotonic() > deadline:
                raise self.start_error(f"{self.name} ensemble not serving after {timeout:.0f} "
                                       f"s: modes by client port {modes}{self.tails()}")
            time.sleep(0.1)
        self.leader_port = leaders[0]
        self.order = [f"127.0.0.1:{p}" for p in followers + leaders]
        self.leader_hostport = self.order[-1]
        self.hostport = ",".join(self.order)
        self.pid = "+".join(str(p) for p in self.pids())

    def _check_running(self) -> None:
        pass

    def tails(self) -> str:
        return ""

    def leader_changed(self) -> str | None:
        mode = srvr_mode(self.leader_port)
        return None if mode == "leader" else f"server on port {self.leader_port} is now {mode}"

    def workload(self, mode: str, args) -> dict:
        kind = "latency" if mode.startswith("latency") else mode
        generator = getattr(args, "generator", None)
        if mode == "latency-leader":
            hps = [self.leader_hostport]
        elif kind == "latency" or generator:  # another generator takes one server
            hps = [self.order[0]]  # a follower
        else:
            hps = self.order
        if generator:
            r = external.run(generator, hps[0], kind, args, self.pids())
        else:
            r = run_multi(hps, kind, conns=args.conns, depth=args.depth, secs=args.secs,
                          size=args.size, procs=args.procs, admin=self.leader_hostport,
                          server_pids=self.pids())
        r["mode"] = mode
        w = self.leader_changed()
        if w:
            r["leader_change"] = w
        return r


class ZkServerEnsemble(_EnsembleBase):
    """n `<cmd> <zoo.cfg>` processes forming one ensemble (the runner's own launcher, so that
    --zkserver-cmd applies and no zkserver module is imported)."""

    name = "zkserver"

    def __init__(self, cmd: str, n: int = 3, start_error=RuntimeError,
                 start_timeout: float = 60.0, git_version=lambda: "?") -> None:
        self.git_version = git_version
        self.cmd = shlex.split(cmd)
        self.n = n
        self.start_error = start_error
        self.start_timeout = start_timeout
        self.procs: list[subprocess.Popen] = []
        self.tmp: Path | None = None

    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="zkbench-ens-zkserver-"))
        base = free_port_base(self.n)
        layout = realzk.RealZooKeeper(self.tmp, base, n=self.n, extra=["forceSync=yes"])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        for i, port in enumerate(layout.client_ports, start=1):
            d = self.tmp / f"s{i}"
            data = d / "data"
            data.mkdir(parents=True)
            (data / "myid").write_text(f"{i}\n")
            cfg = d / "zoo.cfg"
            cfg.write_text("\n".join(layout.config_lines(i, data, port)) + "\n")
            with open(d / "out.log", "wb") as out:
                try:
                    self.procs.append(subprocess.Popen(
                        [*self.cmd, str(cfg)], cwd=REPO, env=env, stdout=out,
                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        start_new_session=True))
                except OSError as e:
                    raise self.start_error(f"cannot run {shlex.join(self.cmd)}: {e}") from e
        self.ports = layout.client_ports
        self._order(self.ports, self.start_timeout)

    def _check_running(self) -> None:
        for i, p in enumerate(self.procs, start=1):
            if p.poll() is not None:
                raise self.start_error(
                    f"zkserver {i} (`{shlex.join(self.cmd)} {self.tmp}/s{i}/zoo.cfg`) exited "
                    f"with code {p.returncode}.\n--- last lines of its output ---\n"
                    f"{self.tail(i)}")

    def tails(self) -> str:
        return "".join(f"\n--- last lines of server {i}'s output ---\n{self.tail(i, 15)}"
                       for i in range(1, self.n + 1))

    def tail(self, i: int, n: int = 30) -> str:
        try:
            text = (self.tmp / f"s{i}" / "out.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-n:])
        except OSError:
            return "(no output)"

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def alive(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def version(self) -> str:
        return self.git_version()

    def problems_in_logs(self) -> list[str]:
        """Tracebacks and ERROR/CRITICAL lines the servers printed (for the report)."""
        out = []
        for i in range(1, self.n + 1):
            try:
                lines = (self.tmp / f"s{i}" / "out.log").read_text(errors="replace").splitlines()
            except OSError:
                continue
            bad = [ln for ln in lines if "Traceback" in ln or " ERROR " in ln
                   or "CRITICAL" in ln or ln.startswith("ERROR")]
            if bad:
                out.append(f"server {i} printed {len(bad)} error line(s), first: {bad[0][:300]}")
        return out

    def stop(self) -> str | None:
        warnings = []
        if self.tmp is not None:
            warnings += self.problems_in_logs()
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for i, p in enumerate(self.procs, start=1):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                warnings.append(f"zkserver {i} did not exit within 15 s of SIGTERM (killed)")
            else:
                if p.returncode != 0:
                    warnings.append(f"zkserver {i} exited with code {p.returncode} on SIGTERM")
        self.procs = []
        if self.tmp is not None:
            if warnings and os.environ.get("ZKBENCH_KEEP_LOGS"):
                log_dir = Path(tempfile.mkdtemp(prefix="zkbench-ens-logs-"))
                for i in range(1, self.n + 1):
                    shutil.copy(self.tmp / f"s{i}" / "out.log", log_dir / f"s{i}.log")
                warnings.append(f"server logs kept in {log_dir}")
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        return "; ".join(warnings) or None


class RealZKEnsemble(_EnsembleBase):
    name = "ZooKeeper"

    def __init__(self, heap: str, n: int = 3, start_error=RuntimeError) -> None:
        self.heap = heap
        self.n = n
        self.start_error = start_error
        self.zk = None
        self.tmp = None

    def start(self) -> None:
        if not realzk.available():
            raise self.start_error("Apache ZooKeeper is not installed (apt-get install zookeeper)")
        self.tmp = tempfile.mkdtemp(prefix="zkbench-ens-zk-")
        try:
            self.zk = realzk.RealZooKeeper(self.tmp, free_port_base(self.n), n=self.n,
                                                extra=["forceSync=yes"], heap=self.heap).start()
        except RuntimeError as e:
            raise self.start_error(str(e)) from e
        self._order(self.zk.client_ports, 60.0)

    def pids(self) -> list[int]:
        return self.zk.pids() if self.zk else []

    def alive(self) -> bool:
        return bool(self.zk and self.zk.procs and all(p.poll() is None for p in self.zk.procs))

    def version(self) -> str:
        text = realzk.four_letter("127.0.0.1", self.leader_port, "srvr")
        for line in text.splitlines():
            if line.lower().startswith("zookeeper version:"):
                return line.split(":", 1)[1].split(",")[0].split("-$")[0].strip()
        return "?"

    def stop(self) -> str | None:
        if self.zk:
            self.zk.stop()
            self.zk = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        return None


# --------------------------------------------------------------------------- load

def _wait_visible(hostports: list[str], path: str, timeout: float = 30.0) -> None:
    """Until every server answers getData(path): setup went through the leader, and a
    follower applies it a moment later."""
    deadline = time.monotonic() + timeout
    for hp in dict.fromkeys(hostports):
        c = zkbench.SyncConn(hp)
        try:
            while True:
                err, _ = c.call(zkbench.get_req(path))
                if err == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path} not visible on {hp} after {timeout:.0f} s "
                                       f"(err {err})")
                time.sleep(0.01)
        finally:
            c.close()


def run_multi(hostports: list[str], mode: str, conns: int = 8, depth: int = 64,
              secs: float = 5.0, size: int = 100, procs: int = 1, *,
              warmup: float = zkbench.WARMUP, admin: str | None = None,
              server_pids: list[int] | None = None) -> dict:
    """zkbench.run over several servers: session i connects to hostports[i % len]. Setup,
    verification and cleanup go through `admin` (default hostports[0]). Same result dict as
    zkbench.run; server_cpu_pct is the sum over server_pids."""
    admin = admin or hostports[0]
    if mode == "latency":
        conns, depth, procs = 1, 1, 1
    procs = max(1, min(procs, conns))
    root = f"/zkbench-{os.getpid()}-{next(zkbench._run_counter)}"
    setup = zkbench.SyncConn(admin)
    try:
        err, _ = setup.call(zkbench.create_req(root, b""))
        if err:
            raise RuntimeError(f"cannot create {root}: err {err}")
        last = root
        if mode != "latency":
            data = b"x" * size
            for i in range(conns):
                last = f"{root}/c{i}"
                err, _ = setup.call(zkbench.create_req(last, data))
                if err:
                    raise RuntimeError(f"cannot create {last}: err {err}")
        setup.close()
        setup = None
        _wait_visible(hostports, last)
    except BaseException:
        zkbench._cleanup(admin, root, setup)
        raise
    ports = [int(hp.rsplit(":", 1)[1]) for hp in dict.fromkeys(hostports)]
    try:
        sent0 = [packets_sent(p) for p in ports]
        res = _run_workers(hostports, mode, root, conns, depth, secs, size, procs, warmup,
                           server_pids or [])
        sent1 = [packets_sent(p) for p in ports]
        asked = sum(res["_sent"].values())
        setup = zkbench.SyncConn(admin)
        zkbench._verify(setup, res, root, size)
        _check_server_count(res, asked, sent0, sent1)
    finally:
        zkbench._cleanup(admin, root, setup)
    res["servers"] = len(set(hostports))
    return res


def _check_server_count(res: dict, asked: int, sent0: list, sent1: list) -> None:
    """The servers' own count of the replies they sent (`srvr`'s Sent:) must cover every
    request the generator made: a second witness, beside the reply bytes `_verify` adds up,
    that each counted operation was answered by a server (a read served at 10x ZooKeeper's
    rate looked too good to take on the generator's word). Adds "server_replies"; a shortfall
    becomes a verification failure."""
    if any(v is None for v in sent0 + sent1):
        return
    served = sum(sent1) - sum(sent0)
    res["server_replies"] = served
    if served < asked and not res.get("undrained"):
        res["verified"] = False
        res["verify_error"] = f"the servers sent {served} replies for {asked} requests"


def _worker(chan, hostports: list[str], mode: str, root: str, idxs: list[int], depth: int,
            size: int) -> None:
    """Like zkbench._worker, but session i connects to hostports[i % len(hostports)]."""
    try:
        data = b"x" * size
        if mode == "latency":
            conn = zkbench.SyncConn(hostports[0])
            chan.send(("ready", os.getpid()))
            t0, win0, win1 = chan.recv()
            chan.send(("done", zkbench._latency_loop(conn, root, data, t0, win0, win1)))
            conn.close()
            return
        conns = [zkbench.PConn.open(hostports[i % len(hostports)]) for i in idxs]
        for c, i in zip(conns, idxs, strict=True):
            c.source = zkbench._throughput_sources(mode, root, i, data)
            if mode == "create":
                c.created = []
        chan.send(("ready", os.getpid()))
        t0, win0, win1 = chan.recv()
        while time.monotonic() < t0:
            time.sleep(min(0.01, max(0.0, t0 - time.monotonic())))
        st = zkbench.pump(conns, depth, stop_sending=win1, deadline=win1 + 30.0, win0=win0,
                          win1=win1)
        res = {"ops": st.ops, "errors": st.errors, "lat": st.lat.tobytes(),
               "pre_errors": st.pre_errors, "undrained": st.undrained, "cleanup_left": 0,
               "rx_bytes": st.rx_bytes,
               "sent": [[i, c.xid] for i, c in zip(idxs, conns, strict=True)]}
        if mode == "create":
            todo = []
            for c in conns:
                c.source = functools.partial(next, iter([zkbench.delete_req(p)
                                                         for p in c.created]), None)
                todo.append(len(c.created))
                c.created = None
            cst = zkbench.pump(conns, depth, stop_sending=float("inf"),
                               deadline=time.monotonic() + 180.0)
            res["cleanup_left"] = sum(todo) - (cst.replies - cst.pre_errors)
        for c in conns:
            c.close()
        chan.send(("done", res))
    except Exception as e:  # reported to the parent
        chan.send(("error", f"{type(e).__name__}: {e}"))


def _worker_main() -> int:
    chan = zkbench._Chan(sys.stdin, sys.stdout)
    job = chan.recv()
    _worker(chan, job["hostports"], job["mode"], job["root"], job["idxs"], job["depth"],
            job["size"])
    return 0


def _run_workers(hostports, mode, root, conns, depth, secs, size, procs, warmup, server_pids):
    """zkbench._run_workers with a list of servers (the same window, CPU and result logic)."""
    groups = [list(range(conns))[i::procs] for i in range(procs)]
    workers: list[tuple[subprocess.Popen, zkbench._Chan]] = []

    def recv(chan, p, what: str):
        try:
            msg = chan.recv()
        except (EOFError, ValueError):
            raise RuntimeError(f"worker {what}: it exited with code {p.wait()}") from None
        if msg[0] == "error":
            raise RuntimeError(f"worker failed {what}: {msg[1]}")
        return msg

    def ticks(pids):
        v = [zkbench._cpu_ticks(p) for p in pids]
        return None if any(x is None for x in v) else sum(v)

    try:
        for g in groups:
            p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            chan = zkbench._Chan(p.stdout, p.stdin)
            chan.send({"hostports": hostports, "mode": mode, "root": root, "idxs": g,
                       "depth": depth, "size": size})
            workers.append((p, chan))
        pids = [recv(chan, p, "during setup")[1] for p, chan in workers]
        t0 = time.monotonic() + 0.05
        win0 = t0 + warmup
        win1 = win0 + secs
        for _p, chan in workers:
            chan.send([t0, win0, win1])
        time.sleep(max(0.0, win0 - time.monotonic()))
        gen0, srv0, host0 = ticks(pids), ticks(server_pids), zkbench._host_busy_ticks()
        tm0 = time.monotonic()
        time.sleep(max(0.0, win1 - time.monotonic()))
        gen1, srv1, host1 = ticks(pids), ticks(server_pids), zkbench._host_busy_ticks()
        span = time.monotonic() - tm0
        results = []
        for p, chan in workers:
            r = recv(chan, p, "during the run")[1]
            r["lat"] = base64.b64decode(r["lat"])
            if "kinds" in r:
                r["kinds"] = {k: base64.b64decode(v) for k, v in r["kinds"].items()}
            results.append(r)
            p.stdin.close()
            p.wait(10)
    finally:
        for p, _chan in workers:
            if p.poll() is None:
                p.kill()
                p.wait()
            for f in (p.stdin, p.stdout):
                try:
                    f.close()
                except OSError:
                    pass

    hz = os.sysconf("SC_CLK_TCK")
    lat = array("d")
    for r in results:
        lat.frombytes(r["lat"])
    lat = sorted(lat)
    ops = sum(r["ops"] for r in results)
    out = {
        "mode": mode, "ops_per_s": round(ops / secs), "p50_ms": zkbench._pct(lat, 0.50),
        "p99_ms": zkbench._pct(lat, 0.99), "errors": sum(r["errors"] for r in results),
        "ops": ops, "conns": conns, "depth": depth, "procs": procs, "secs": secs, "size": size,
    }
    if gen0 is not None and gen1 is not None:
        out["gen_cpu_pct"] = round(100 * (gen1 - gen0) / hz / span, 1)
    if server_pids and srv0 is not None and srv1 is not None:
        out["server_cpu_pct"] = round(100 * (srv1 - srv0) / hz / span, 1)
    if host0 is not None and host1 is not None:
        out["host_cpu_pct"] = round(100 * (host1 - host0) / hz / span, 1)
        if "server_cpu_pct" in out and "gen_cpu_pct" in out:
            out["other_cpu_pct"] = round(max(0.0, out["host_cpu_pct"] - out["server_cpu_pct"]
                                             - out["gen_cpu_pct"]), 1)
    extra = {k: sum(r[k] for r in results) for k in ("pre_errors", "undrained", "cleanup_left")}
    out.update({k: v for k, v in extra.items() if v})
    out["_sent"] = {i: n for r in results for i, n in r["sent"]}
    out["_rx_bytes"] = sum(r["rx_bytes"] for r in results)
    if mode == "latency":
        per = {}
        for kind in zkbench.LAT_KINDS:
            a = array("d")
            for r in results:
                a.frombytes(r["kinds"][kind])
            s = sorted(a)
            per[kind] = {"p50_ms": zkbench._pct(s, 0.5), "p99_ms": zkbench._pct(s, 0.99),
                         "n": len(s)}
        out["per_op"] = per
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_worker_main())
    sys.exit("use `python bench/run.py --ensemble 3` (this file's --worker is internal)")
