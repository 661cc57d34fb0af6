#!/usr/bin/env python3
"""Start-up (recovery) time after a crash, with a million transactions in the log.

    python bench/recovery.py [--txns 1000000] [--creates 100000] [--size 100]
                             [--only zk|zkserver] [--out docs/benchmarks.md]
                             [--zkserver-cmd "python -m zkserver"] [--zk-heap 2g]

For each server (zkserver first, then Apache ZooKeeper; never both running), standalone on
127.0.0.1 with forceSync=yes and snapCount=2000000 (so no snapshot is taken while writing and
every transaction stays in the log to be replayed; both servers snapshot after between
snapCount/2 and snapCount transactions):

1. start it on a fresh data dir and time that (an empty start, for reference);
2. write `--txns` transactions (default 1,000,000) with the zkbench engine, 8 sessions x 64
   pipelined: `--creates` persistent znodes with `--size`-byte values under 8 parents, then
   setData (`--size` bytes) round-robin over them for the rest (plus the root and the 8
   parents: creates + setData + 9 = txns; session create/close transactions come on top);
3. note `srvr`'s Zxid and Node count, the process's RSS and what is in the data dir;
4. kill -9 it; then (both servers filled, in turn) start it again on the same data dir and
   time from just before the process is created until `srvr` answers with `Mode:` (polled
   every 0.1 s), check that the Zxid and Node count came back, kill -9; `--restarts` times,
   alternating between the servers, each time deleting the snapshot the previous start wrote
   so that the whole log is replayed again;
5. then `--restarts` more timed starts, alternating, from the snapshot the server wrote at
   start-up (both servers snapshot what they replayed before serving).

Writes the "Recovery" section of --out (other sections are kept). Exit status 0, 1 when a
check failed (recovered state differs), 2 when a server did not start.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run  # noqa: E402  (bench/ is not a package)
import zkbench  # noqa: E402

log = run.log


def srvr(hostport: str) -> dict:
    host, port = zkbench.parse_hostport(hostport)
    out = {}
    for line in run.realzk.four_letter(host, port, "srvr").splitlines():
        key, _, val = line.partition(":")
        if key in ("Zxid", "Node count", "Mode"):
            out[key] = val.strip()
    return out


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


def data_files(root: Path) -> dict:
    """Sizes of the transaction logs and snapshots under a data dir."""
    logs = snaps = 0
    nlogs, snap_names = 0, []
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        if p.name.startswith("log."):
            logs += p.stat().st_size
            nlogs += 1
        elif p.name.startswith("snapshot."):
            snaps += p.stat().st_size
            snap_names.append(p.name)
    return {"log_mb": round(logs / 1e6, 1), "logs": nlogs, "snap_mb": round(snaps / 1e6, 1),
            "snapshots": sorted(snap_names)}


def fill(hostport: str, txns: int, creates: int, size: int, conns: int = 8,
         depth: int = 64) -> dict:
    """Write exactly `txns` data transactions; returns counts and the rate."""
    root = "/zkrec"
    data = b"r" * size
    setup = zkbench.SyncConn(hostport)
    for p in [root] + [f"{root}/c{i}" for i in range(conns)]:
        err, _ = setup.call(zkbench.create_req(p, b""))
        if err:
            raise RuntimeError(f"cannot create {p}: err {err}")
    setup.close()
    sets = txns - creates - 1 - conns
    if creates < conns or sets < 0:
        raise ValueError("need creates >= conns and creates + 9 <= txns")

    def source(i: int):
        n_create = len(range(i, creates, conns))
        n_set = len(range(i, sets, conns))
        names = [f"{root}/c{i}/n{k:07d}".encode() for k in range(n_create)]
        for name in names:
            yield zkbench.create_req(name, data)
        for k in range(n_set):
            yield zkbench.set_req(names[k % n_create], data)

    pcs = [zkbench.PConn.open(hostport) for _ in range(conns)]
    for i, c in enumerate(pcs):
        c.source = functools.partial(next, source(i), None)
    t0 = time.monotonic()
    st = zkbench.pump(pcs, depth, stop_sending=float("inf"), deadline=t0 + 3600)
    secs = time.monotonic() - t0
    for c in pcs:
        c.close()
    if st.pre_errors or st.undrained:
        raise RuntimeError(f"fill: {st.pre_errors} error replies, {st.undrained} unanswered")
    return {"txns": txns, "creates": creates, "sets": sets, "replies": st.replies,
            "fill_s": round(secs, 1), "fill_ops_per_s": round(st.replies / secs)}


def data_dir(server) -> Path:
    return Path(server.tmp) / ("data" if server.name == "zkserver" else "zk1/data")


def prepare(server, args) -> dict:
    """Empty start (timed), the fill, the state before the kill, kill -9. The data dir stays."""
    out: dict = {}
    log(f"== {server.name}: empty start")
    run.wait_idle(args.idle_wait)
    t0 = time.monotonic()
    server.start()
    out["empty_start_s"] = round(time.monotonic() - t0, 2)
    if server.name == "ZooKeeper":
        out["version"] = server.version()
    run.wait_idle(args.idle_wait)
    log(f"   started in {out['empty_start_s']} s; writing {args.txns:,} transactions")
    out["fill"] = fill(server.hostport, args.txns, args.creates, args.size)
    log(f"   {out['fill']}")
    out["before"] = srvr(server.hostport)
    out["rss_before_mib"] = rss_mib(server.pid)
    out["files_before"] = data_files(data_dir(server))
    log(f"   before the kill: {out['before']}, RSS {out['rss_before_mib']} MiB, "
        f"{out['files_before']}")
    out.update(recovery_runs=[], snap_runs=[], busy_pcts=[], recovered=True, recovered2=True)
    server.kill9()
    log("   killed (SIGKILL)")
    return out


def timed_start(server, args, out: dict, from_log: bool) -> None:
    """One timed start on the data dir as the kill left it (from_log: without the snapshot
    that an earlier start wrote, so the whole log is replayed), checked, then kill -9."""
    if from_log:
        for name in set(data_files(data_dir(server))["snapshots"]) - \
                set(out["files_before"]["snapshots"]):
            for p in data_dir(server).rglob(name):
                p.unlink()
    run.wait_idle(args.idle_wait)
    out["busy_pcts"].append(round(run.machine_busy_pct(1.0)))
    t = round(server.relaunch(), 2)
    after = srvr(server.hostport)
    ok = all(after.get(k) == out["before"].get(k) for k in ("Zxid", "Node count"))
    rss = rss_mib(server.pid)
    if from_log:
        out["recovered"] &= ok
        if not out["recovery_runs"]:
            out["after"] = after
            out["rss_after_mib"] = rss
            out["files_after"] = data_files(data_dir(server))
        out["recovery_runs"].append(t)
    else:
        out["recovered2"] &= ok
        out["snap_runs"].append(t)
    log(f"   {server.name}: {'replayed the log' if from_log else 'from the snapshot'}: "
        f"serving after {t} s: {after}, RSS {rss} MiB")
    server.kill9()


def measure_all(servers, args) -> tuple[dict, int]:
    """Fill each server in turn, then time the starts alternating between the servers (one
    running at a time), so that noise from other processes hits both alike."""
    res: dict = {}
    status = 0
    ready = []
    try:
        for key, server in servers:
            try:
                res[key] = prepare(server, args)
                ready.append((key, server))
            except run.StartError as e:
                log(f"\nERROR: {server.name} did not start: {e}")
                res[key] = {"error": f"did not start: {str(e).splitlines()[0]}"}
                status = 2
            except (OSError, RuntimeError, ValueError) as e:
                log(f"\nERROR: {server.name}: {e}")
                res[key] = {"error": str(e)}
                status = max(status, 1)
        for from_log in (True, False):
            for _ in range(args.restarts):
                for key, server in list(ready):
                    try:
                        timed_start(server, args, res[key], from_log)
                    except (run.StartError, OSError, RuntimeError) as e:
                        log(f"\nERROR: {server.name}: {e}")
                        res[key]["error"] = str(e).splitlines()[0]
                        ready.remove((key, server))
                        status = max(status, 1)
    finally:
        for key, server in servers:
            w = server.stop()
            if w and key in res:
                res[key]["warning"] = w
    for r in res.values():
        if r.get("recovery_runs"):
            r["recovery_s"] = statistics.median(r["recovery_runs"])
        if r.get("snap_runs"):
            r["snap_restart_s"] = statistics.median(r["snap_runs"])
        r["busy_before_pct"] = max(r.get("busy_pcts") or [0])
        if not r.get("recovered", True) or not r.get("recovered2", True):
            status = max(status, 1)
    return res, status


def render(args, res: dict, started: str, elapsed: float, loadavg) -> str:
    zk, zs = res.get("zk") or {}, res.get("zkserver") or {}
    minfo = run.machine_info()
    busy = max((r.get("busy_before_pct", 0) for r in (zk, zs)), default=0)

    def v(r, *keys, fmt="{:,}"):
        x = r
        for k in keys:
            x = x.get(k) if isinstance(x, dict) else None
        return "—" if x is None else fmt.format(x)

    def ratio(key):
        a, b = zk.get(key), zs.get(key)
        return f"{b / a:.2f}" if a and b else "—"

    def runs(r, key):
        return ", ".join(str(x) for x in r.get(key, [])) or "—"

    def ok(r, key):
        if key not in r:
            return "—"
        return "yes" if r[key] else "**NO**"

    lines = [
        "## Recovery",
        "",
        f"- Date: {started} (took {elapsed / 60:.1f} min)",
        f"- Machine: {minfo['nproc']} CPUs ({minfo['cpu']}), {minfo['mem']} RAM, "
        f"Linux {minfo['kernel']}",
        f"- Machine load: load average {loadavg[0]:.2f} / {loadavg[1]:.2f} / {loadavg[2]:.2f} "
        f"(1 / 5 / 15 min) at the start; the whole machine used up to {busy}% of a core in "
        "the second before a timed start (the servers were down then: that is other "
        "processes' load)",
        f"- Command: `{shlex.join(['python', 'bench/recovery.py', *args.argv])}`",
        f"- Both standalone on 127.0.0.1, forceSync=yes, snapCount=2000000; ZooKeeper "
        f"{zk.get('version', '?')} with -Xmx{args.zk_heap}; zkserver `{args.zkserver_cmd}` "
        f"({run.git_version()}).",
        f"- Workload: {args.txns:,} transactions from 8 pipelined sessions: {args.creates:,} "
        f"creates of znodes with {args.size}-byte values, then setData ({args.size} bytes) "
        "round-robin over them (and 9 creates of parents), then kill -9. Start-up time = from "
        "just before the process is created until the 4lw `srvr` answers with `Mode:` "
        f"(polled every 0.1 s). Each start is timed {args.restarts} times: from the log (before "
        "each repeat the snapshot the previous start wrote is deleted, so the data dir is as "
        "it was at the kill), then from the snapshot the server writes at start-up; each "
        "start ends with kill -9. Both servers are filled first, then the timed starts "
        "alternate between them (one server running at a time), so that other processes' "
        "load hits both alike.",
        "",
        "| | ZooKeeper | zkserver | zkserver / ZooKeeper |",
        "|---|---:|---:|---:|",
        f"| start-up, empty data dir, s | {v(zk, 'empty_start_s')} | {v(zs, 'empty_start_s')} "
        f"| {ratio('empty_start_s')} |",
        f"| **start-up after kill -9, {args.txns:,} txns in the log, s** (median) "
        f"| **{v(zk, 'recovery_s')}** | **{v(zs, 'recovery_s')}** | {ratio('recovery_s')} |",
        f"| ... each start, s | {runs(zk, 'recovery_runs')} | {runs(zs, 'recovery_runs')} | |",
        f"| start-up after kill -9 from the start-up snapshot, s (median) "
        f"| {v(zk, 'snap_restart_s')} | {v(zs, 'snap_restart_s')} | {ratio('snap_restart_s')} |",
        f"| ... each start, s | {runs(zk, 'snap_runs')} | {runs(zs, 'snap_runs')} | |",
        f"| Zxid and node count back after every restart (log / snapshot) "
        f"| {ok(zk, 'recovered')} / {ok(zk, 'recovered2')} "
        f"| {ok(zs, 'recovered')} / {ok(zs, 'recovered2')} | |",
        f"| Zxid before the kill | {v(zk, 'before', 'Zxid', fmt='{}')} "
        f"| {v(zs, 'before', 'Zxid', fmt='{}')} | |",
        f"| node count | {v(zk, 'before', 'Node count', fmt='{}')} "
        f"| {v(zs, 'before', 'Node count', fmt='{}')} | |",
        f"| transaction log on disk, MB (files) | {v(zk, 'files_before', 'log_mb')} "
        f"({v(zk, 'files_before', 'logs')}) | {v(zs, 'files_before', 'log_mb')} "
        f"({v(zs, 'files_before', 'logs')}) | |",
        f"| snapshots before the kill | "
        f"{', '.join(zk.get('files_before', {}).get('snapshots', [])) or '—'} | "
        f"{', '.join(zs.get('files_before', {}).get('snapshots', [])) or '—'} | |",
        f"| RSS before the kill / after recovery, MiB | {v(zk, 'rss_before_mib')} / "
        f"{v(zk, 'rss_after_mib')} | {v(zs, 'rss_before_mib')} / {v(zs, 'rss_after_mib')} | |",
        f"| write rate while filling, txns/s | {v(zk, 'fill', 'fill_ops_per_s')} "
        f"| {v(zs, 'fill', 'fill_ops_per_s')} | {_fill_ratio(zk, zs)} |",
    ]
    warns = [f"{k}: {r['warning']}" for k, r in (("ZooKeeper", zk), ("zkserver", zs))
             if r.get("warning")]
    warns += [f"{k}: {r['error']}" for k, r in (("ZooKeeper", zk), ("zkserver", zs))
              if r.get("error")]
    if warns:
        lines += ["", "Warnings:", ""] + [f"- {w}" for w in warns]
    return "\n".join(lines) + "\n"


def _fill_ratio(zk: dict, zs: dict) -> str:
    a = zk.get("fill", {}).get("fill_ops_per_s")
    b = zs.get("fill", {}).get("fill_ops_per_s")
    return f"{b / a:.2f}" if a and b else "—"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--txns", type=int, default=1_000_000, help="transactions (1,000,000)")
    ap.add_argument("--creates", type=int, default=100_000,
                    help="of which creates (100,000); the rest are setData")
    ap.add_argument("--size", type=int, default=100, help="value size, bytes (100)")
    ap.add_argument("--restarts", type=int, default=3,
                    help="timed starts from the log and from the snapshot, median shown (3)")
    ap.add_argument("--only", choices=("zk", "zkserver"), help="run one server only")
    ap.add_argument("--out", default="docs/benchmarks.md",
                    help="report path, relative to the repo root ('' to skip)")
    ap.add_argument("--zkserver-cmd", default=f"{shlex.quote(sys.executable)} -m zkserver")
    ap.add_argument("--zk-heap", default="2g", help="ZooKeeper's -Xmx (2g)")
    ap.add_argument("--idle-wait", type=float, default=10.0,
                    help="wait up to this many s for an idle machine before filling and "
                    "before each kill (10)")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.restarts = max(1, args.restarts)
    extra = ["snapCount=2000000"]
    servers = []
    if args.only != "zk":
        servers.append(("zkserver", run.ZkServer(args.zkserver_cmd, start_timeout=600.0,
                                                 extra=extra)))
    if args.only != "zkserver":
        servers.append(("zk", run.RealZK(args.zk_heap, extra=extra)))
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    loadavg = os.getloadavg()
    t0 = time.monotonic()
    res, status = measure_all(servers, args)
    report = render(args, res, started, time.monotonic() - t0, loadavg)
    print(report)
    if args.out:
        out = Path(args.out)
        if not out.is_absolute():
            out = run.REPO / out
        run.write_sections(out, {"recovery": report})
        log(f"wrote the recovery section of {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
