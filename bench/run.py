#!/usr/bin/env python3
"""Run the whole zkserver vs Apache ZooKeeper comparison and write docs/benchmarks.md.

    python bench/run.py [--secs 5] [--repeat 3] [--modes read,write,mixed,create,latency]
                        [--memory] [--count 1000000] [--out docs/benchmarks.md]
                        [--only zk|zkserver] [--zkserver-cmd "python -m zkserver"]
                        [--procs P] [--zk-heap 2g] [--ensemble 3]

For each server, one after the other (never both running at once), on a fresh data dir:
  * zkserver: `<zkserver-cmd> <tmp>/zoo.cfg` as a subprocess (cwd = repo root), stopped with
    SIGTERM;
  * Apache ZooKeeper (3.9.5 from Maven Central, or Debian's 3.8 with ZKSERVER_ORACLE=debian)
    through tests/support/realzk.py;
both standalone on 127.0.0.1 with forceSync=yes. Each workload of bench/zkbench.py runs
`--repeat` times and the median run (by ops/s; by p50 for latency) is reported. With --memory a
second fresh instance of each server gets `--count` znodes (bench/memory.py).

With --ensemble N the same comparison runs on an N-server ensemble of each (bench/ensemble.py)
instead. The report has one section per kind of run (standalone, ensemble, and recovery from
bench/recovery.py); a run replaces only its own section of --out and keeps the others.

Exit status: 0 when everything ran, 1 when some workload failed, 2 when a server did not start
(then nothing is written).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
import external  # noqa: E402  (bench/ is not a package)
import memory  # noqa: E402
import zkbench  # noqa: E402


def _load_realzk():
    # Load realzk.py by path, so a half-edited zkserver package cannot break the baseline.
    spec = importlib.util.spec_from_file_location(
        "_bench_realzk", REPO / "tests" / "support" / "realzk.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


realzk = _load_realzk()

ALL_MODES = ("read", "write", "mixed", "create", "latency")
LABELS = {
    "read": "read (getData)",
    "write": "write (setData)",
    "mixed": "mixed (90% get / 10% set)",
    "create": "create (sequential)",
    "latency": "latency (1 conn, depth 1)",
}


# Warn when processes other than the server and the generator used more than this (% of one
# core) during a measured window: on a 2-core machine they take CPU from the server.
OTHER_CPU_WARN = 20.0
# Warn when a load generator process is this busy (% of one core): it may be the bottleneck.
GEN_CPU_WARN = 85.0


class StartError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- servers

def git_version() -> str:
    """zkserver's version: the repo's commit, and whether zkserver/ has uncommitted changes."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        rev = out.stdout.strip() if out.returncode == 0 else "no commit"
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                "--untracked-files=no", "zkserver"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"git {rev}{' + uncommitted changes' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return "?"


class _Standalone:
    def workload(self, mode: str, args) -> dict:
        if getattr(args, "generator", None):
            return external.run(args.generator, self.hostport, mode, args, [self.pid])
        return zkbench.run(self.hostport, mode, args.conns, args.depth, args.secs, args.size,
                           args.procs, server_pid=self.pid)


class RealZK(_Standalone):
    name = "ZooKeeper"

    def __init__(self, heap: str, extra: list[str] | None = None) -> None:
        self.heap = heap
        self.extra = list(extra or [])
        self.zk = None
        self.tmp = None

    def start(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="zkbench-zk-")
        if not realzk.available():
            raise StartError("Apache ZooKeeper is not installed (apt-get install zookeeper)")
        try:
            self.zk = realzk.RealZooKeeper(self.tmp, realzk.free_port(),
                                           extra=["forceSync=yes", *self.extra],
                                           heap=self.heap).start()
        except RuntimeError as e:
            raise StartError(str(e)) from e
        self.hostport = self.zk.hosts
        self.pid = self.zk.pids()[0]

    def kill9(self) -> None:
        """SIGKILL the server, keep its data dir (realzk's stop is a SIGKILL)."""
        self.zk.stop()

    def relaunch(self) -> float:
        """Start again on the same data dir and port; seconds until `srvr` answers (realzk
        polls every 0.1 s)."""
        t0 = time.monotonic()
        try:
            self.zk.start(timeout=600.0)
        except RuntimeError as e:
            raise StartError(str(e)) from e
        self.pid = self.zk.pids()[0]
        return time.monotonic() - t0

    def version(self) -> str:
        host, port = zkbench.parse_hostport(self.hostport)
        for line in realzk.four_letter(host, port, "srvr").splitlines():
            if line.lower().startswith("zookeeper version:"):
                return line.split(":", 1)[1].split(",")[0].split("-$")[0].strip()
        return "?"

    def alive(self) -> bool:
        return bool(self.zk and self.zk.procs and self.zk.procs[0].poll() is None)

    def stop(self) -> str | None:
        if self.zk:
            self.zk.stop()
            self.zk = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        return None


class ZkServer(_Standalone):
    name = "zkserver"

    def __init__(self, cmd: str, start_timeout: float = 30.0,
                 extra: list[str] | None = None) -> None:
        self.cmd = shlex.split(cmd)
        self.start_timeout = start_timeout
        self.extra = list(extra or [])
        self.proc: subprocess.Popen | None = None
        self.tmp = None

    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="zkbench-zkserver-"))
        data = self.tmp / "data"
        data.mkdir()
        self.port = port = realzk.free_port()
        self.cfg = self.tmp / "zoo.cfg"
        self.cfg.write_text("\n".join([
            "tickTime=2000", f"dataDir={data}", f"clientPort={port}",
            "clientPortAddress=127.0.0.1", "maxClientCnxns=0", "4lw.commands.whitelist=*",
            "forceSync=yes", "admin.enableServer=false", *self.extra,
        ]) + "\n")
        self.log_path = self.tmp / "out.log"
        self.hostport = f"127.0.0.1:{port}"
        self.launch()

    def launch(self, poll: float = 0.1) -> float:
        """Run the server on the prepared config; seconds from just before the process is
        created until it answers `srvr` with `Mode:`."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        argv = [*self.cmd, str(self.cfg)]
        t0 = time.monotonic()
        with open(self.log_path, "ab") as out:
            try:
                self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
            except OSError as e:
                raise StartError(f"cannot run {shlex.join(argv)}: {e}") from e
        self.pid = self.proc.pid
        self.killed = False
        deadline = t0 + self.start_timeout
        while True:
            try:
                if "Mode:" in realzk.four_letter("127.0.0.1", self.port, "srvr", timeout=1.0):
                    return time.monotonic() - t0
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise StartError(f"`{shlex.join(argv)}` exited with code {self.proc.returncode} "
                                 f"before answering `srvr` on {self.hostport}.\n"
                                 f"--- last lines of its output ---\n{self._tail()}")
            if time.monotonic() > deadline:
                raise StartError(f"`{shlex.join(argv)}` did not answer the 4lw `srvr` with "
                                 f"`Mode:` on {self.hostport} within {self.start_timeout:.0f} s."
                                 f"\n--- last lines of its output ---\n{self._tail()}")
            time.sleep(poll)

    def kill9(self) -> None:
        """SIGKILL the server (a crash); its data dir stays."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.killed = True

    def relaunch(self, poll: float = 0.1) -> float:
        return self.launch(poll)

    def _tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no output)"

    def version(self) -> str:
        return git_version()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> str | None:
        """SIGTERM, wait; returns a warning if the server did not exit cleanly."""
        warning = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
                    warning = "zkserver did not exit within 15 s of SIGTERM (killed)"
                else:
                    if self.proc.returncode != 0:
                        warning = f"zkserver exited with code {self.proc.returncode} on SIGTERM"
            elif not getattr(self, "killed", False):
                warning = f"zkserver had already exited (code {self.proc.returncode})"
            self.proc = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        return warning


# --------------------------------------------------------------------------- running

def machine_busy_pct(interval: float = 0.5) -> float:
    """CPU used by the whole machine over `interval` s, in % of one core."""
    a = zkbench._host_busy_ticks()
    t = time.monotonic()
    time.sleep(interval)
    b = zkbench._host_busy_ticks()
    if a is None or b is None:
        return 0.0
    return 100 * (b - a) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t)


def wait_idle(max_wait: float) -> None:
    """Wait (at most max_wait s) until the machine, server included, is nearly idle."""
    if max_wait <= 0:
        return
    deadline = time.monotonic() + max_wait
    busy = machine_busy_pct()
    if busy <= OTHER_CPU_WARN:
        return
    log(f"   machine busy ({busy:.0f}% of a core); waiting up to {max_wait:g} s for it to calm")
    while time.monotonic() < deadline:
        busy = machine_busy_pct()
        if busy <= OTHER_CPU_WARN:
            return
    log(f"   still busy ({busy:.0f}% of a core); running anyway")


def new_result() -> dict:
    return {"modes": {}, "runs": {}, "errors": {}, "warnings": []}


def run_round(server, args, modes: list[str], out: dict, times: int, label: str = "") -> None:
    """Start the server fresh, run every workload `times` times (collected in out["runs"]),
    stop it."""
    log(f"== {server.name}{label}: starting")
    t0 = time.monotonic()
    server.start()
    out.setdefault("start_s", round(time.monotonic() - t0, 1))
    try:
        out["version"] = server.version()
        log(f"== {server.name} {out['version']} on {server.hostport} (pid {server.pid})")
        for mode in modes:
            runs = out["runs"].setdefault(mode, [])
            for _ in range(times):
                if mode in out["errors"]:
                    break
                i = len(runs)
                if not server.alive():
                    out["errors"][mode] = f"{server.name} is no longer running"
                    break
                wait_idle(args.idle_wait)
                try:
                    r = server.workload(mode, args)
                except (OSError, RuntimeError) as e:
                    out["errors"][mode] = str(e)
                    log(f"   {mode:8} FAILED: {e}")
                    break
                runs.append(r)
                if r.get("leader_change"):
                    out["warnings"].append(f"{mode} run {i + 1}: the leader changed during the "
                                           f"run ({r['leader_change']})")
                if r.get("verified") is False:
                    out["warnings"].append(f"{mode} run {i + 1}: replies failed the sanity "
                                           f"check: {r.get('verify_error')}")
                per_proc = r.get("gen_cpu_pct", 0.0) / max(1, r.get("procs", 1))
                if per_proc > GEN_CPU_WARN:
                    out["warnings"].append(
                        f"{mode} run {i + 1}: each generator process used {per_proc:.0f}% of a "
                        "core; the generator may be the bottleneck (try --procs 2)")
                for k in ("undrained", "cleanup_left"):
                    if r.get(k):
                        out["warnings"].append(f"{mode} run {i + 1}: {k} = {r[k]}")
                log(f"   {mode:8} run {i + 1}/{args.repeat}: {r['ops_per_s']:>8,} ops/s  "
                    f"p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  errors {r['errors']}  "
                    f"server cpu {r.get('server_cpu_pct', '?')}%  "
                    f"generator cpu {r.get('gen_cpu_pct', '?')}%  "
                    f"other cpu {r.get('other_cpu_pct', '?')}%"
                    + (f"  verified {r['verified']}" if "verified" in r else ""))
                time.sleep(0.5)
    finally:
        w = server.stop()
        if w:
            out["warnings"].append(w)
            log(f"   warning: {w}")


def summarize(out: dict, modes: list[str]) -> dict:
    """Pick the median run of each workload into out["modes"]."""
    for mode in modes:
        runs = out["runs"].get(mode, [])
        if mode in out["errors"] or not runs:
            out["modes"][mode] = {"error": out["errors"].get(mode, "no runs"), "runs": runs}
            continue
        lat = mode.startswith("latency")
        key = (lambda r: r["p50_ms"]) if lat else (lambda r: r["ops_per_s"])
        ranked = sorted(runs, key=key)
        med = dict(ranked[(len(ranked) - 1) // 2] if lat else ranked[len(ranked) // 2])
        med["all_ops_per_s"] = [r["ops_per_s"] for r in runs]
        med["all_p50_ms"] = [r["p50_ms"] for r in runs]
        med["max_other_cpu_pct"] = max((r.get("other_cpu_pct", 0.0) for r in runs),
                                       default=0.0)
        if med["max_other_cpu_pct"] > OTHER_CPU_WARN:
            out["warnings"].append(
                f"{mode}: other processes on this machine used up to "
                f"{med['max_other_cpu_pct']}% of a core during a measured window; "
                "its numbers are likely too low and noisy")
        out["modes"][mode] = med
    return out


def run_memory(server, args, out: dict) -> None:
    log(f"== {server.name}: fresh instance for memory ({args.count:,} znodes)")
    server.start()
    try:
        wait_idle(args.idle_wait)
        out["memory"] = memory.measure(server.hostport, server.pid, count=args.count,
                                       conns=args.conns, depth=args.depth, size=args.size,
                                       keep=True)
        log(f"   memory: {out['memory']}")
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        out["memory"] = {"error": str(e)}
        log(f"   memory FAILED: {e}")
    finally:
        w = server.stop()
        if w:
            out["warnings"].append(w)


def run_all(servers, args, modes: list[str]) -> dict:
    """Every server's workloads (and memory): one server after the other, or with
    args.interleave in rounds (each round starts each server fresh in turn and runs every
    workload once), so that noise from other processes hits both servers alike."""
    results = {key: new_result() for key, _ in servers}
    if args.interleave:
        for rnd in range(args.repeat):
            for key, server in servers:
                run_round(server, args, modes, results[key], 1,
                          f" (round {rnd + 1}/{args.repeat})")
    else:
        for key, server in servers:
            run_round(server, args, modes, results[key], args.repeat)
    for key, server in servers:
        summarize(results[key], modes)
        if args.memory and not args.ensemble:
            run_memory(server, args, results[key])
    return results


# --------------------------------------------------------------------------- report

def _cmd_out(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_info() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    java = _cmd_out(["java", "-version"]).splitlines()
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "mem": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": java[0] if java else "?",
    }


def _n(v) -> str:
    return "—" if v is None else f"{v:,}"


def _ms(r: dict | None) -> str:
    if not r or "error" in r:
        return "—"
    return f"{r['p50_ms']} / {r['p99_ms']}"


def _ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}"


ORDER = ("standalone", "ensemble", "recovery", "failover")
MARK = "<!-- section: {} -->"
HEADER = """# Benchmarks: zkserver vs Apache ZooKeeper

Written by `bench/run.py` (Standalone: `python bench/run.py --memory`; Ensemble:
`python bench/run.py --ensemble 3`), `bench/recovery.py` (Recovery) and `bench/failover.py`
(Failover). Each run replaces only
its own section and says when, how and on how busy a machine it ran. See `bench/README.md` for
what the numbers mean and how to rerun them. Higher ops/s is better; lower latency is better.
"""


def write_sections(path: Path, sections: dict[str, str]) -> None:
    """Put `sections` (key -> markdown) into the report at `path`, keeping its other sections."""
    old: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        text = ""
    parts = text.split("<!-- section: ")
    for part in parts[1:]:
        key, _, body = part.partition(" -->")
        old[key.strip()] = body.strip("\n")
    if text and len(parts) == 1:
        log(f"note: {path} has no section markers (old format); replacing all of it")
    old.update({k: v.strip("\n") for k, v in sections.items()})
    keys = [k for k in ORDER if k in old] + [k for k in old if k not in ORDER]
    out = HEADER + "".join(f"\n{MARK.format(k)}\n\n{old[k]}\n" for k in keys)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out)


def load_note(busiest: float, loadavg: tuple[float, float, float]) -> str:
    return (f"- Machine load: load average {loadavg[0]:.2f} / {loadavg[1]:.2f} / "
            f"{loadavg[2]:.2f} (1 / 5 / 15 min) at the start; other processes used at most "
            f"{busiest:.0f}% of one core during any measured window")


def render(args, modes, results: dict, minfo: dict, started: str, elapsed: float,
           loadavg: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> str:
    """The markdown of one section (standalone, or ensemble with args.ensemble)."""
    zk, zs = results.get("zk"), results.get("zkserver")
    ens = args.ensemble
    busiest = max((r.get("max_other_cpu_pct", 0.0) for res in (zk, zs) if res
                   for r in res["modes"].values()), default=0.0)
    if ens:
        title = f"## Ensemble ({ens} servers)"
        kind = (f"{ens}-server ensemble (tickTime=2000, initLimit=10, syncLimit=5), "
                "forceSync=yes")
    else:
        title = "## Standalone"
        kind = "standalone, forceSync=yes"
    if args.generator:
        title += f", cross-checked with {Path(args.generator).name}"
    lines = [
        title,
        "",
        f"- Date: {started} (took {elapsed / 60:.1f} min)",
        f"- Machine: {minfo['nproc']} CPUs ({minfo['cpu']}), {minfo['mem']} RAM, "
        f"Linux {minfo['kernel']}",
        load_note(busiest, loadavg),
        f"- Python {minfo['python']}; {minfo['java']}",
        f"- Command: `{shlex.join(['python', 'bench/run.py', *args.argv])}`",
    ]
    if zk and "version" in zk:
        lines.append(f"- ZooKeeper: Apache ZooKeeper {zk['version']} (tests/support/realzk.py: "
                     f"Maven Central unless ZKSERVER_ORACLE=debian), {kind}, -Xmx{args.zk_heap}")
    if zs and "version" in zs:
        lines.append(f"- zkserver: `{args.zkserver_cmd}` ({zs['version']}), {kind}")
    banner = []
    if busiest > OTHER_CPU_WARN:
        banner = ["", f"> **Warning: other processes used up to {busiest:.0f}% of a core while "
                  "this ran** (see \"max other CPU %\" below). On a 2-core machine that takes "
                  "CPU from the server, so the throughput and latency figures are low and noisy; "
                  "rerun on an idle machine before quoting them."]
    if args.generator:
        gen = Path(args.generator).name
        load = (f"- Load: `{gen}` (a generator we did not write; bench/external.py runs it), "
                f"{args.conns} connections x {args.depth} outstanding requests, {args.size}-byte "
                f"values, {args.procs} generator process(es), no warm-up, {args.secs:g} s "
                f"measured as {gen} counts them; server CPU over its whole run, setup included; "
                f"each workload run {args.repeat} time(s), median run shown.")
    else:
        load = (f"- Load: `bench/zkbench.py`'s engine, {args.conns} connections x {args.depth} "
                f"outstanding requests, {args.size}-byte values, {args.procs} generator "
                f"process(es), {zkbench.WARMUP} s warm-up + {args.secs:g} s measured; each "
                f"workload run {args.repeat} time(s), median run shown.")
    if args.interleave:
        load += (f" Interleaved: {args.repeat} rounds, each starting each server fresh in turn "
                 "and running every workload once, so that noise from other processes hits "
                 "both alike.")
    if ens and args.generator:
        load += (f" {gen} takes one server: every session of the throughput workloads on the "
                 "same follower (the latency rows: a follower, and the leader). Both ensembles "
                 "on 127.0.0.1, never both at once, each started fresh. Server CPU is the sum "
                 f"over the {ens} server processes.")
    elif ens:
        load += (f" Session i connects to server i mod {ens} of [followers..., leader], i.e. "
                 f"{_spread(args.conns, ens)} sessions per server with the leader last (the "
                 "same for both; a client spread like round-robin clients would be); setup, "
                 "checks and cleanup go through the leader. Both ensembles on 127.0.0.1, never "
                 "both at once, each started fresh. Server CPU is the sum over the "
                 f"{ens} server processes.")
    else:
        load += " Both servers on 127.0.0.1, never both at once, each started fresh."
    lines += [
        load,
        *banner,
        "",
        "| workload | ZooKeeper ops/s | zkserver ops/s | ratio (zkserver / ZooKeeper) "
        "| ZooKeeper p50 / p99 ms | zkserver p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = dict(LABELS)
    if ens:
        labels["latency"] = "latency via a follower (1 conn, depth 1)"
        labels["latency-leader"] = "latency via the leader (1 conn, depth 1)"

    def get(res, mode):
        if not res:
            return None
        return res["modes"].get(mode)

    for mode in modes:
        a, b = get(zk, mode), get(zs, mode)
        ops_a = a.get("ops_per_s") if a and "error" not in a else None
        ops_b = b.get("ops_per_s") if b and "error" not in b else None
        fa = "FAILED" if a and "error" in a else _n(ops_a)
        fb = "FAILED" if b and "error" in b else _n(ops_b)
        if mode.startswith("latency"):
            pa = a.get("p50_ms") if a and "error" not in a else None
            pb = b.get("p50_ms") if b and "error" not in b else None
            ratio = f"{_ratio(pb, pa)} (ratio of p50s; lower is better)"
            lines.append(f"| {labels[mode]}: sequential ops/s | {fa} | {fb} | {ratio} "
                         f"| {_ms(a)} | {_ms(b)} |")
        else:
            lines.append(f"| {labels[mode]} | {fa} | {fb} | {_ratio(ops_b, ops_a)} "
                         f"| {_ms(a)} | {_ms(b)} |")

    for mode in [m for m in modes if m.startswith("latency")]:
        la, lb = get(zk, mode), get(zs, mode)
        if (la and "per_op" in la) or (lb and "per_op" in lb):
            via = ""
            if ens:
                via = " through the leader" if mode == "latency-leader" else " through a follower"
            lines += ["", f"Latency workload{via}, per operation (one connection, one request "
                      "at a time, ms; lower is better):", "",
                      "| op | ZooKeeper p50 / p99 | zkserver p50 / p99 | ratio of p50s |",
                      "|---|---:|---:|---:|"]
            for k in zkbench.LAT_KINDS:
                ka = la["per_op"][k] if la and "per_op" in la else None
                kb = lb["per_op"][k] if lb and "per_op" in lb else None
                lines.append(f"| {k} | {_ms(ka)} | {_ms(kb)} | "
                             f"{_ratio(kb and kb['p50_ms'], ka and ka['p50_ms'])} |")

    if args.memory and not ens:
        lines += ["", f"Memory, {args.count:,} znodes with {args.size}-byte values "
                  "(bench/memory.py; fresh server; bytes per znode; for ZooKeeper compare the "
                  "Java heap row, for zkserver the RSS row):", "",
                  "| | ZooKeeper | zkserver |", "|---|---:|---:|"]
        ma = (zk or {}).get("memory") or {}
        mb = (zs or {}).get("memory") or {}

        def mv(m, k):
            if "error" in m:
                return "FAILED"
            return _n(m.get(k))
        lines += [
            f"| RSS growth / znode | {mv(ma, 'rss_bytes_per_znode')} "
            f"| {mv(mb, 'rss_bytes_per_znode')} |",
            f"| Java heap after full GC / znode | {mv(ma, 'heap_bytes_per_znode')} "
            f"| {mv(mb, 'heap_bytes_per_znode')} |",
            f"| RSS after the fill, MiB | "
            f"{_n(ma.get('rss_after_kb') and round(ma['rss_after_kb'] / 1024))} | "
            f"{_n(mb.get('rss_after_kb') and round(mb['rss_after_kb'] / 1024))} |",
            f"| create ops/s during the fill | {mv(ma, 'create_ops_per_s')} "
            f"| {mv(mb, 'create_ops_per_s')} |",
        ]

    lines += ["", "Details (all runs' ops/s; CPU in % of one core over the measured window of "
              "the median run; other CPU = the rest of the machine, i.e. noise from other "
              "processes, highest over the runs; errors = replies with a non-zero error code):",
              "",
              "| server | workload | ops/s of each run | errors | server CPU % "
              "| generator CPU % | max other CPU % |", "|---|---|---|---:|---:|---:|---:|"]
    for key, res in (("ZooKeeper", zk), ("zkserver", zs)):
        if not res:
            continue
        for mode in modes:
            r = res["modes"].get(mode)
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {key} | {mode} | FAILED: {r['error'].splitlines()[0]} "
                             "| | | | |")
                continue
            lines.append(f"| {key} | {mode} | {', '.join(f'{x:,}' for x in r['all_ops_per_s'])} "
                         f"| {r['errors']} | {r.get('server_cpu_pct', '—')} "
                         f"| {r.get('gen_cpu_pct', '—')} | {r.get('max_other_cpu_pct', '—')} |")
    warnings = [f"{k}: {w}" for k, res in (("ZooKeeper", zk), ("zkserver", zs)) if res
                for w in res.get("warnings", [])]
    if warnings:
        lines += ["", "Warnings:", ""] + [f"- {w}" for w in warnings]
    if args.only:
        lines += ["", f"Only {'Apache ZooKeeper' if args.only == 'zk' else 'zkserver'} was run "
                  f"(`--only {args.only}`)."]
    return "\n".join(lines) + "\n"


def _spread(conns: int, n: int) -> str:
    return " / ".join(str(len(range(i, conns, n))) for i in range(n))


def estimate_minutes(args, modes, nservers: int) -> float:
    per_run = args.secs + zkbench.WARMUP + 1.5
    t = nservers * (len(modes) * args.repeat * per_run + 10)
    if "create" in modes:
        t += nservers * args.repeat * args.secs * 1.0  # deleting what create made
    if args.memory and not args.ensemble:
        t += nservers * (20 + args.count / 20000)
    return t / 60


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--secs", type=float, default=5.0, help="measured seconds per run (5)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per workload; median shown (3)")
    ap.add_argument("--modes", default=None,
                    help=f"comma-separated subset of {','.join(ALL_MODES)} (with --ensemble "
                    "also latency-leader; default: all)")
    ap.add_argument("--memory", action="store_true", help="also measure bytes per znode")
    ap.add_argument("--count", type=int, default=1_000_000, help="znodes for --memory (1e6)")
    ap.add_argument("--out", default="docs/benchmarks.md",
                    help="report path, relative to the repo root ('' to skip)")
    ap.add_argument("--only", choices=("zk", "zkserver"), help="run one server only")
    ap.add_argument("--zkserver-cmd", default=f"{shlex.quote(sys.executable)} -m zkserver",
                    help="command that starts zkserver; the zoo.cfg path is appended "
                    "(default: python -m zkserver)")
    ap.add_argument("--procs", type=int, default=zkbench.DEFAULT_PROCS,
                    help=f"load generator processes ({zkbench.DEFAULT_PROCS})")
    ap.add_argument("--conns", type=int, default=8, help=argparse.SUPPRESS)
    ap.add_argument("--depth", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=100, help=argparse.SUPPRESS)
    ap.add_argument("--zk-heap", default="2g", help="ZooKeeper's -Xmx (2g)")
    ap.add_argument("--generator", metavar="PATH",
                    help="cross-check: load from this generator (zkload.py's command line and "
                         "JSON line) instead of zkbench.py; its own section of the report")
    ap.add_argument("--idle-wait", type=float, default=10.0,
                    help="before each run wait up to this many s for the machine to be idle (10)")
    ap.add_argument("--interleave", action=argparse.BooleanOptionalAction, default=True,
                    help="run in rounds, each server fresh in each round, so that noise hits "
                    "both alike (default); --no-interleave: all runs of one server, then the "
                    "other's")
    ap.add_argument("--ensemble", type=int, default=0, metavar="N",
                    help="compare N-server ensembles (N odd, >= 3) instead of standalone servers")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.ensemble and (args.ensemble < 3 or args.ensemble % 2 == 0):
        ap.error("--ensemble N needs an odd N >= 3")
    if args.ensemble and args.memory:
        ap.error("--memory is measured on standalone servers only")
    allowed = ALL_MODES + (("latency-leader",) if args.ensemble else ())
    modes = [m.strip() for m in (args.modes or ",".join(allowed)).split(",") if m.strip()]
    bad = [m for m in modes if m not in allowed]
    if bad or not modes:
        ap.error(f"unknown mode(s) {bad}; choose from {','.join(allowed)}")
    args.repeat = max(1, args.repeat)

    servers = []
    if args.ensemble:
        import ensemble  # bench/ is not a package: found through sys.path
        if args.only != "zk":
            servers.append(("zkserver", ensemble.ZkServerEnsemble(
                args.zkserver_cmd, args.ensemble, start_error=StartError,
                git_version=git_version)))
        if args.only != "zkserver":
            servers.append(("zk", ensemble.RealZKEnsemble(args.zk_heap, args.ensemble,
                                                          start_error=StartError)))
    else:
        if args.only != "zk":
            servers.append(("zkserver", ZkServer(args.zkserver_cmd)))
        if args.only != "zkserver":
            servers.append(("zk", RealZK(args.zk_heap)))
    what = f"{args.ensemble}-server ensembles" if args.ensemble else "standalone"
    log(f"zkserver benchmark ({what}): {len(servers)} server(s), modes {','.join(modes)}, "
        f"{args.repeat} x {args.secs:g} s each; about "
        f"{estimate_minutes(args, modes, len(servers)):.0f} min")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    loadavg = os.getloadavg()
    t0 = time.monotonic()
    # zkserver goes first so that a server that cannot start fails fast.
    try:
        results = run_all(servers, args, modes)
    except StartError as e:
        for _key, server in servers:
            w = server.stop()
            if w:
                log(f"({server.name}: {w})")
        log(f"\nERROR: a server failed to start: {e}")
        log("No report written.")
        return 2
    report = render(args, modes, results, machine_info(), started, time.monotonic() - t0,
                    loadavg)
    print(report)
    if args.out:
        out = Path(args.out)
        if not out.is_absolute():
            out = REPO / out
        key = "ensemble" if args.ensemble else "standalone"
        if args.generator:
            key += "-" + Path(args.generator).stem
        write_sections(out, {key: report})
        log(f"wrote the {key} section of {out}")
    failed = [f"{k} {m}" for k, res in results.items() for m, r in res["modes"].items()
              if "error" in r]
    failed += [f"{k} memory" for k, res in results.items() if "error" in res.get("memory", {})]
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
