#!/usr/bin/env python3
"""Scale scenarios, zkserver beside Apache ZooKeeper in one run (issue #13).

    python bench/scale.py watches  [--quick] [--watches 1000000] [--conns 1000] [--fire 10000]
    python bench/scale.py sessions [--quick] [--sessions 19500] [--secs 10]
    python bench/scale.py tree     [--quick] [--nodes 2000000] [--load-secs 60]
    common: [--only zk|zkserver] [--zk-heap 3g] [--out docs/benchmarks.md] [--zkserver-cmd CMD]

Each scenario starts each server fresh in turn (never both at once; the run.py server classes:
standalone, forceSync=yes, 127.0.0.1) and writes its own section of `--out`:

- **watches**: `--conns` sessions held open (and pinged) by a holder process; their heap/RSS is
  the baseline; then each sets an equal share of `--watches` watches on 10,000 nodes: one third
  getData watches (data, one-time), one third getChildren watches (child, one-time), one third
  addWatch PERSISTENT. Bytes per watch = growth / watches (zkserver: VmRSS; ZooKeeper: heap in
  use after a full GC, `jcmd GC.run` + `GC.heap_info`, as bench/memory.py). Then those sessions
  close, `--fire` new sessions each put a getData watch on one node, and the time from just
  before the setData is sent to the last notification received is the fire time.
- **sessions**: the 8x64 mixed load (bench/zkbench.py) for `--secs`, then `--sessions` sessions
  opened by a holder process that pings each one every 10 s (timeout 30 s, phases spread evenly),
  bytes per idle session measured as above, the mixed load again with them held, and at the end
  every session must still answer (an expired one is closed by the server).
- **tree**: fills `--nodes` znodes of mixed depths (3 and 4 levels, 100-byte values) with 8x64
  pipelined creates; RSS and heap after GC; getData p50/p99 of random nodes (8x64, 10 s); then
  the 8x64 mixed load for `--load-secs` while a poller watches the data dir: a snapshot is
  "being written" from when its file appears until its size last changed or, for a file written
  as `.tmp` and renamed (zkserver; ZooKeeper where it syncs snapshots, through its
  AtomicFileOutputStream), until the rename, which comes after the writer's fsync; p99 of the
  replies received inside those windows vs outside. Both servers run with their
  default snapCount (100,000), so snapshots come from the load's own writes. Then kill -9 and a
  restart (from the newest snapshot plus the log after it): time until `srvr` answers, the
  snapshot's size, RSS after the restart.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import multiprocessing
import os
import random
import resource
import select
import socket
import struct
import sys
import threading
import time
from array import array
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import memory  # noqa: E402  (bench/ is not a package)
import run  # noqa: E402
import zkbench  # noqa: E402

OP_GETDATA, OP_SETDATA, OP_GETCHILDREN, OP_PING, OP_ADDWATCH, OP_CLOSE = 4, 5, 8, 11, 106, -11
_I = struct.Struct(">i")
_HDR = struct.Struct(">iqi")  # xid, zxid, err
PING = struct.pack(">iii", 8, -2, OP_PING)
WATCH_NODES = 10_000
_mono = time.monotonic
log = run.log


def raise_nofile() -> None:
    """As many descriptors as allowed: 20,000 sessions are 20,000 sockets here and in the
    server (which inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def memory_now(pid: int) -> dict:
    """VmRSS, and for a JVM the heap in use after a full GC (bytes)."""
    heap = memory.java_heap_used_after_gc(pid) if memory.is_java(pid) else None
    return {"rss": memory.vm_rss_kb(pid) * 1024, "heap": heap}


def grown(before: dict, after: dict, n: int) -> float:
    """Bytes per item: heap growth for a JVM, RSS growth otherwise."""
    key = "heap" if before["heap"] is not None else "rss"
    return round((after[key] - before[key]) / n, 1)


# --------------------------------------------------------------------------- holder process

def open_sessions(hostport: str, n: int, batch: int = 100) -> tuple[list[socket.socket], int]:
    """n sessions (30 s timeout), ConnectRequests pipelined `batch` connections at a time; and
    how many pings were sent meanwhile."""
    addr = zkbench.parse_hostport(hostport)
    body = struct.pack(">iqiq", 0, 0, 30000, 0) + zkbench.jbuf(b"\0" * 16) + b"\0"
    req = _I.pack(len(body)) + body
    socks: list[socket.socket] = []
    pinged, pings = _mono(), 0
    for start in range(0, n, batch):
        if _mono() - pinged > 10.0:
            # Opening can take minutes (ZooKeeper logs each session with an fsync): keep the
            # sessions already open alive; their ping replies are read later, as pongs.
            for s in socks:
                s.sendall(PING)
            pings += len(socks)
            pinged = _mono()
        group = []
        for _ in range(min(batch, n - start)):
            s = socket.create_connection(addr, timeout=60)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(req)
            group.append(s)
        for s in group:
            resp = zkbench._read_frame(s)
            if struct.unpack_from(">i", resp, 4)[0] <= 0:
                raise ConnectionError("session refused")
        socks += group
    for s in socks:
        s.setblocking(False)
    return socks, pings


def watch_requests(i: int, per_session: int, root: str) -> list[bytes]:
    """Session i's watches, split evenly over getData, getChildren and addWatch PERSISTENT,
    each kind on distinct nodes."""
    out = []
    for j in range(per_session):
        kind, k = j % 3, j // 3
        p = zkbench.ustr(f"{root}/n{(i * 1000 + k) % WATCH_NODES}")
        if kind == 0:
            out.append(_I.pack(OP_GETDATA) + p + b"\1")
        elif kind == 1:
            out.append(_I.pack(OP_GETCHILDREN) + p + b"\1")
        else:
            out.append(_I.pack(OP_ADDWATCH) + p + _I.pack(0))
    return out


def holder(chan, hostport: str, n: int, job: tuple) -> None:
    """Hold n sessions, pinging each every 10 s (phases spread), until told to stop.

    job: ("idle",) | ("watches", root, per_session) | ("fire", path). Messages to the parent:
    ("open", secs), then ("set", errors) once the job's requests are answered, ("fired", t_first,
    t_last) once every session got a notification, ("done", {...}) after "stop"."""
    try:
        raise_nofile()
        t0 = _mono()
        socks, open_pings = open_sessions(hostport, n)
        chan.send(("open", round(_mono() - t0, 2)))
        byfd = {s.fileno(): i for i, s in enumerate(socks)}
        bufs = [b""] * n
        outstanding = [0] * n
        pending: list[list[bytes]] = [[] for _ in range(n)]
        ep = select.epoll()
        for s in socks:
            ep.register(s.fileno(), select.EPOLLIN)
        closed: set[int] = set()
        errors = pongs = notes = 0
        pings = open_pings
        t_first = t_last = None
        interval, start, sent_pings = 10.0, _mono(), 0
        xid = [0] * n
        want_set = False

        def feed(i: int) -> None:
            nonlocal want_set
            reqs = pending[i]
            parts = []
            while reqs and outstanding[i] < 64:
                xid[i] += 1
                t = reqs.pop()
                parts.append(struct.pack(">ii", len(t) + 4, xid[i]) + t)
                outstanding[i] += 1
            if parts:
                try:
                    socks[i].send(b"".join(parts))
                except OSError:
                    closed.add(i)
                    outstanding[i], reqs[:] = 0, []

        while True:
            if chan.poll(0):
                msg = chan.recv()
                if msg[0] == "stop":
                    break
                if msg[0] == "go":
                    kind = job[0]
                    for i in range(n):
                        if kind == "watches":
                            pending[i] = watch_requests(i, job[2], job[1])[::-1]
                        elif kind == "fire":
                            pending[i] = [_I.pack(OP_GETDATA) + zkbench.ustr(job[1]) + b"\1"]
                        feed(i)
                    want_set = True
            now = _mono()
            due = int((now - start) / interval * n)
            while sent_pings < due:
                i = sent_pings % n
                sent_pings += 1
                if i not in closed and not outstanding[i]:
                    try:
                        socks[i].send(PING)
                        pings += 1
                    except OSError:
                        closed.add(i)
            for fd, _ev in ep.poll(0.05):
                i = byfd[fd]
                try:
                    data = socks[i].recv(262144)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    closed.add(i)
                    ep.unregister(fd)
                    outstanding[i], pending[i] = 0, []
                    continue
                now = _mono()
                buf = bufs[i] + data
                off = 0
                while len(buf) - off >= 4:
                    end = off + 4 + _I.unpack_from(buf, off)[0]
                    if end > len(buf):
                        break
                    x, _z, err = _HDR.unpack_from(buf, off + 4)
                    if x == -1:
                        notes += 1
                        t_first = t_first or now
                        t_last = now
                    elif x == -2:
                        pongs += 1
                    else:
                        outstanding[i] -= 1
                        errors += err != 0
                    off = end
                bufs[i] = buf[off:]
                if pending[i]:
                    feed(i)
            if want_set and not any(outstanding) and not any(pending):
                want_set = False
                chan.send(("set", errors))
            if job[0] == "fire" and t_last is not None and notes >= n - len(closed):
                chan.send(("fired", t_first, t_last, notes))
                job = ("idle",)
        res = {"closed": len(closed), "pings": pings, "pongs": pongs, "notes": notes}
        close = struct.pack(">iii", 8, 1 << 30, OP_CLOSE)
        for i, s in enumerate(socks):
            if i not in closed:
                try:
                    s.send(close)
                except OSError:
                    pass
        time.sleep(1.0)
        for s in socks:
            s.close()
        chan.send(("done", res))
    except Exception as e:  # reported to the parent
        chan.send(("error", f"{type(e).__name__}: {e}"))


class Holder:
    def __init__(self, hostport: str, n: int, job: tuple = ("idle",)) -> None:
        ctx = multiprocessing.get_context("fork")
        self.chan, child = ctx.Pipe()
        self.proc = ctx.Process(target=holder, args=(child, hostport, n, job), daemon=True)
        self.proc.start()

    def expect(self, what: str, timeout: float) -> tuple:
        if not self.chan.poll(timeout):
            raise RuntimeError(f"holder: no {what!r} within {timeout:g} s")
        msg = self.chan.recv()
        if msg[0] != what:
            raise RuntimeError(f"holder: {msg}")
        return msg

    def stop(self) -> dict:
        self.chan.send(("stop",))
        res = self.expect("done", 120)[1]
        self.proc.join(10)
        return res


# --------------------------------------------------------------------------- scenarios

def make_nodes(hostport: str, paths: list[str], data: bytes, conns: int = 8) -> float:
    """Create `paths` (parents before children within each pump), 8x64 pipelined; ops/s."""
    pconns = [zkbench.PConn.open(hostport) for _ in range(conns)]
    for i, c in enumerate(pconns):
        c.source = functools.partial(
            next, (zkbench.create_req(p, data) for p in paths[i::conns]), None)
    t0 = _mono()
    st = zkbench.pump(pconns, 64, stop_sending=float("inf"), deadline=t0 + 7200)
    el = _mono() - t0
    for c in pconns:
        c.close()
    if st.replies != len(paths) or st.pre_errors:
        raise RuntimeError(f"{st.pre_errors} of {len(paths)} creates failed")
    return len(paths) / el if el else 0.0


def scenario_watches(server, a) -> dict:
    hp = server.hostport
    root = "/scw"
    make_nodes(hp, [root], b"", 1)
    make_nodes(hp, [f"{root}/n{i}" for i in range(WATCH_NODES)], b"x" * 100)
    per = a.watches // a.conns
    h = Holder(hp, a.conns, ("watches", root, per))
    res: dict = {"watches": per * a.conns, "conns": a.conns}
    try:
        res["open_s"] = h.expect("open", 600)[1]
        time.sleep(2)
        m0 = memory_now(server.pid)
        t0 = _mono()
        h.chan.send(("go",))
        res["set_errors"] = h.expect("set", 1200)[1]
        res["set_per_s"] = round(res["watches"] / (_mono() - t0))
        time.sleep(2)
        m1 = memory_now(server.pid)
        res["bytes_per_watch"] = grown(m0, m1, res["watches"])
        res["rss_mib"] = round(m1["rss"] / 2**20)
        res["holder"] = h.stop()
    finally:
        if h.proc.is_alive():
            h.proc.kill()
    # Fire: `fire` sessions with one getData watch each on one node.
    fire = f"{root}/fire"
    make_nodes(hp, [fire], b"x" * 100, 1)
    h = Holder(hp, a.fire, ("fire", fire))
    try:
        res["fire_open_s"] = h.expect("open", 900)[1]
        h.chan.send(("go",))
        h.expect("set", 600)
        conn = zkbench.SyncConn(hp, timeout=120)
        t0 = _mono()
        err, _ = conn.call(zkbench.set_req(fire, b"y" * 100))
        _, first, last, notes = h.expect("fired", 300)
        conn.close()
        res.update({"fire_watchers": a.fire, "fire_first_ms": round((first - t0) * 1000, 1),
                    "fire_last_ms": round((last - t0) * 1000, 1), "fire_notes": notes})
        res["fire_holder"] = h.stop()
    except (OSError, RuntimeError) as e:  # keep the figures measured so far
        res["fire_failed"] = f"{type(e).__name__}: {e}"
    finally:
        if h.proc.is_alive():
            h.proc.kill()
    return res


def mixed(server, secs: float) -> dict:
    r = zkbench.run(server.hostport, "mixed", 8, 64, secs, 100, 1, server_pid=server.pid)
    return {k: r.get(k) for k in ("ops_per_s", "p50_ms", "p99_ms", "errors", "server_cpu_pct",
                                  "other_cpu_pct")}


def scenario_sessions(server, a) -> dict:
    res: dict = {"sessions": a.sessions, "without": mixed(server, a.secs)}
    m0 = memory_now(server.pid)
    h = Holder(server.hostport, a.sessions)
    try:
        res["open_s"] = h.expect("open", 1800)[1]
        time.sleep(3)
        m1 = memory_now(server.pid)
        res["bytes_per_session"] = grown(m0, m1, a.sessions)
        res["rss_mib"] = round(m1["rss"] / 2**20)
        res["with"] = mixed(server, a.secs)
        time.sleep(1)
        res["holder"] = h.stop()
    finally:
        if h.proc.is_alive():
            h.proc.kill()
    res["expired"] = res["holder"]["closed"]
    return res


class SnapshotWatch(threading.Thread):
    """Polls a data dir every 50 ms; records (start, end) of each snapshot file's writing."""

    def __init__(self, root: str) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.seen: dict[str, list] = {}  # base name -> [first seen, last change, size, final]
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.05):
            now = _mono()
            for d, _subs, files in os.walk(self.root):
                for f in files:
                    if not f.startswith("snapshot."):
                        continue
                    try:
                        size = os.path.getsize(os.path.join(d, f))
                    except OSError:
                        continue
                    key = f.removesuffix(".tmp")
                    rec = self.seen.get(key)
                    if rec is None:
                        # final size: None while only the .tmp file was seen, so that the
                        # window runs on to the rename (after the writer's fsync)
                        self.seen[key] = [now, now, size, size if f == key else None]
                    elif size != rec[2] or (f == key and rec[3] is None):
                        rec[1], rec[2] = now, size
                    if f == key:
                        rec = self.seen[key]
                        rec[3] = size

    def windows(self) -> list[tuple[float, float]]:
        return [(r[0], r[1]) for r in self.seen.values()]


class TimedLat(array):
    """A latency array that also notes when each reply arrived (zkbench.pump appends)."""

    def __new__(cls):
        self = super().__new__(cls, "d")
        self.at = array("d")
        return self

    def append(self, v: float) -> None:
        super().append(v)
        self.at.append(_mono())


def tree_paths(n: int) -> tuple[list[str], list[str]]:
    """(parents, leaves): /sct/d<j> and /sct/d<j>/e<k>, leaves at depth 3 or 4."""
    parents = ["/sct"] + [f"/sct/d{j}" for j in range(100)]
    parents += [f"/sct/d{j}/e{k}" for j in range(100) for k in range(100)]
    leaves = []
    for i in range(n - len(parents)):
        j, k = i % 100, (i // 100) % 100
        leaves.append(f"/sct/d{j}/n{i}" if i % 3 == 0 else f"/sct/d{j}/e{k}/n{i}")
    return parents, leaves


def pct(vals, f: float) -> float | None:
    if not len(vals):
        return None
    s = sorted(vals)
    return round(s[min(len(s) - 1, int(f * len(s)))] * 1000, 2)


def scenario_tree(server, a) -> dict:
    hp = server.hostport
    parents, leaves = tree_paths(a.nodes)
    watch = SnapshotWatch(str(server.tmp))
    watch.start()
    data = b"x" * 100
    m0 = memory_now(server.pid)
    for depth in (1, 2, 3):
        make_nodes(hp, [p for p in parents if p.count("/") == depth], data, 1 if depth < 3 else 8)
    t0 = _mono()
    make_nodes(hp, leaves, data)
    res: dict = {"nodes": a.nodes, "create_per_s": round(len(leaves) / (_mono() - t0))}
    m = memory_now(server.pid)
    res["rss_mib"] = round(m["rss"] / 2**20)
    res["heap_mib"] = None if m["heap"] is None else round(m["heap"] / 2**20)
    res["bytes_per_znode"] = grown(m0, m, a.nodes)
    # Reads of random nodes.
    rnd = random.Random(1)
    pconns = [zkbench.PConn.open(hp) for _ in range(8)]
    for c in pconns:
        c.source = lambda: zkbench.get_req(rnd.choice(leaves))
    t0 = _mono()
    st = zkbench.pump(pconns, 64, stop_sending=t0 + 10.5, deadline=t0 + 60, win0=t0 + 0.5,
                      win1=t0 + 10.5)
    res["read"] = {"ops_per_s": round(st.ops / 10), "p50_ms": pct(st.lat, 0.5),
                   "p99_ms": pct(st.lat, 0.99), "errors": st.errors}
    # Mixed load while snapshots happen.
    setup = zkbench.SyncConn(hp)
    root = "/scmix"
    setup.call(zkbench.create_req(root, b""))
    for i in range(8):
        setup.call(zkbench.create_req(f"{root}/c{i}", data))
    setup.close()
    for i, c in enumerate(pconns):
        c.source = zkbench._throughput_sources("mixed", root, i, data)
    st = zkbench.Stats()
    st.lat = TimedLat()
    t0 = _mono()
    w0, w1 = t0 + 0.5, t0 + 0.5 + a.load_secs
    zkbench.pump(pconns, 64, stop_sending=w1, deadline=w1 + 60, win0=w0, win1=w1, stats=st)
    for c in pconns:
        c.close()
    wins = [(s, e) for s, e in watch.windows() if e > w0 and s < w1]
    inside = [lat for lat, at in zip(st.lat, st.lat.at, strict=True)
              if any(s <= at <= e for s, e in wins)]
    outside = [lat for lat, at in zip(st.lat, st.lat.at, strict=True)
               if not any(s <= at <= e for s, e in wins)]
    res["mixed"] = {"ops_per_s": round(st.ops / a.load_secs), "errors": st.errors,
                    "snapshots": len(wins),
                    "snapshot_secs": [round(e - s, 1) for s, e in wins],
                    "p99_inside_ms": pct(inside, 0.99), "p99_outside_ms": pct(outside, 0.99),
                    "p50_inside_ms": pct(inside, 0.5), "p50_outside_ms": pct(outside, 0.5),
                    "replies_inside": len(inside)}
    watch.halt.set()
    watch.join()
    all_snaps = [(r[1] - r[0], r[3]) for r in watch.seen.values() if r[3]]
    if all_snaps:
        secs, size = all_snaps[-1]
        res["last_snapshot"] = {"secs": round(secs, 1), "mib": round(size / 2**20, 1)}
    # Restart after kill -9 (a big tree takes longer than run.py's 30 s start-up allowance).
    server.kill9()
    server.start_timeout = 1800.0
    res["restart_s"] = round(server.relaunch(), 2)
    time.sleep(2)
    res["rss_after_restart_mib"] = round(memory.vm_rss_kb(server.pid) / 1024)
    snaps = []
    for d, _subs, files in os.walk(str(server.tmp)):
        snaps += [os.path.getsize(os.path.join(d, f)) for f in files
                  if f.startswith("snapshot.") and not f.endswith(".tmp")]
    res["snapshot_mib"] = round(max(snaps) / 2**20, 1) if snaps else None
    c = zkbench.SyncConn(hp)
    err, body = c.call(zkbench.get_req(leaves[-1]))
    c.close()
    res["after_restart_ok"] = err == 0
    return res


# --------------------------------------------------------------------------- report

def cpu_us(r: dict) -> float | None:
    """Server CPU time per reply (µs): steadier than ops/s on a shared machine."""
    if not r.get("ops_per_s") or r.get("server_cpu_pct") is None:
        return None
    return round(r["server_cpu_pct"] / 100 / r["ops_per_s"] * 1e6, 1)


def render(kind: str, a, results: dict, started: str, load: tuple, elapsed: float) -> str:
    zk, us = results.get("ZooKeeper", {}), results.get("zkserver", {})
    mi = run.machine_info()
    head = [f"## Scale: {kind}", "",
            f"- Date: {started} (took {elapsed / 60:.1f} min)",
            f"- Machine: {mi['nproc']} CPUs, {mi['mem']} RAM; load average {load[0]:.2f} / "
            f"{load[1]:.2f} / {load[2]:.2f} at the start (shared with other sessions' work)",
            f"- Command: `python bench/scale.py {' '.join(sys.argv[1:])}`",
            f"- ZooKeeper {run.realzk.version()}, -Xmx{a.zk_heap}; zkserver {run.git_version()}; "
            "both standalone, forceSync=yes", ""]

    def row(label, f):
        def g(r):
            try:
                v = f(r)
            except (KeyError, TypeError):
                return "—"
            if v is None:
                return "—"
            if isinstance(v, bool):
                return "yes" if v else "NO"
            return f"{v:,}" if isinstance(v, (int, float)) else str(v)
        return f"| {label} | {g(zk)} | {g(us)} |"

    lines = ["| | ZooKeeper | zkserver |", "|---|---:|---:|"]
    if kind == "watches":
        lines += [row("watches (data, child, persistent) / sessions",
                      lambda r: f"{r['watches']:,} / {r['conns']:,}"),
                  row("bytes per watch (ZK: heap after full GC; zkserver: RSS)",
                      lambda r: r["bytes_per_watch"]),
                  row("watches set per s", lambda r: r["set_per_s"]),
                  row("RSS with the watches, MiB", lambda r: r["rss_mib"]),
                  row("watchers on the fired node", lambda r: r["fire_watchers"]),
                  row("setData to first notification, ms", lambda r: r["fire_first_ms"]),
                  row("setData to last notification, ms", lambda r: r["fire_last_ms"]),
                  row("notifications received", lambda r: r["fire_notes"])]
    elif kind == "sessions":
        lines += [row("sessions held", lambda r: r["sessions"]),
                  row("seconds to open them (100 at a time)", lambda r: r["open_s"]),
                  row("bytes per idle session (ZK: heap after GC; zkserver: RSS)",
                      lambda r: r["bytes_per_session"]),
                  row("mixed 8x64 ops/s without / with them",
                      lambda r: f"{r['without']['ops_per_s']:,} / {r['with']['ops_per_s']:,}"),
                  row("mixed p99 ms without / with them",
                      lambda r: f"{r['without']['p99_ms']} / {r['with']['p99_ms']}"),
                  row("server CPU % without / with", lambda r: (
                      f"{r['without']['server_cpu_pct']} / {r['with']['server_cpu_pct']}")),
                  row("server CPU µs per op without / with", lambda r: (
                      f"{cpu_us(r['without'])} / {cpu_us(r['with'])}")),
                  row("pings sent / answered", lambda r: (
                      f"{r['holder']['pings']:,} / {r['holder']['pongs']:,}")),
                  row("sessions closed by the server (expired)", lambda r: r["expired"])]
    else:
        lines += [row("znodes (depth 3 and 4, 100-byte values)", lambda r: r["nodes"]),
                  row("create ops/s (8x64)", lambda r: r["create_per_s"]),
                  row("RSS after the fill, MiB", lambda r: r["rss_mib"]),
                  row("Java heap after full GC, MiB", lambda r: r["heap_mib"]),
                  row("bytes per znode (ZK: heap after GC; zkserver: RSS growth)",
                      lambda r: r["bytes_per_znode"]),
                  row("random getData ops/s (8x64)", lambda r: r["read"]["ops_per_s"]),
                  row("random getData p50 / p99 ms",
                      lambda r: f"{r['read']['p50_ms']} / {r['read']['p99_ms']}"),
                  row("mixed 8x64 ops/s", lambda r: r["mixed"]["ops_per_s"]),
                  row("snapshots during the mixed load (seconds each)", lambda r: (
                      f"{r['mixed']['snapshots']} "
                      f"({', '.join(map(str, r['mixed']['snapshot_secs']))})")),
                  row("mixed p99 ms outside / inside a snapshot", lambda r: (
                      f"{r['mixed']['p99_outside_ms']} / {r['mixed']['p99_inside_ms']}")),
                  row("mixed p50 ms outside / inside a snapshot", lambda r: (
                      f"{r['mixed']['p50_outside_ms']} / {r['mixed']['p50_inside_ms']}")),
                  row("replies inside a snapshot", lambda r: r["mixed"]["replies_inside"]),
                  row("last snapshot: seconds to write, MiB", lambda r: (
                      f"{r['last_snapshot']['secs']} s, {r['last_snapshot']['mib']} MiB")),
                  row("restart after kill -9 until `srvr` answers, s", lambda r: r["restart_s"]),
                  row("largest snapshot file, MiB", lambda r: r["snapshot_mib"]),
                  row("RSS after the restart, MiB", lambda r: r["rss_after_restart_mib"]),
                  row("data back after the restart", lambda r: r["after_restart_ok"])]
    errs = [f"- **{name} failed**: {r['failed']}" for name, r in results.items() if "failed" in r]
    return "\n".join(head + lines + ([""] + errs if errs else [])) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", choices=("watches", "sessions", "tree"))
    ap.add_argument("--quick", action="store_true", help="small sizes: a minute or two")
    ap.add_argument("--watches", type=int, default=1_000_000)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--fire", type=int, default=10_000)
    ap.add_argument("--sessions", type=int, default=19_500,
                    help="sessions held (19500: each is a descriptor in the server too, and "
                         "20,000 needs a hard limit (ulimit -Hn) above 20,000)")
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--nodes", type=int, default=2_000_000)
    ap.add_argument("--load-secs", type=float, default=60.0)
    ap.add_argument("--only", choices=("zk", "zkserver"))
    ap.add_argument("--zk-heap", default="3g")
    ap.add_argument("--out", default="docs/benchmarks.md")
    ap.add_argument("--zkserver-cmd", default=f"{sys.executable} -m zkserver")
    ap.add_argument("--zkserver-cfg", action="append", default=[], metavar="LINE",
                    help="an extra zoo.cfg line for zkserver (repeatable), to try a setting")
    a = ap.parse_args(argv)
    if a.quick:
        a.watches, a.conns, a.fire = 30_000, 100, 1000
        a.sessions, a.secs = 1000, 3.0
        a.nodes, a.load_secs = 100_000, 20.0
    raise_nofile()
    extra_zk = extra_us = []
    if a.scenario == "tree" and a.quick:
        extra_zk = extra_us = ["snapCount=20000"]
    servers = []
    if a.only != "zkserver":
        servers.append(run.RealZK(a.zk_heap, extra_zk))
    if a.only != "zk":
        servers.append(run.ZkServer(a.zkserver_cmd, extra=[*extra_us, *a.zkserver_cfg]))
    fn = {"watches": scenario_watches, "sessions": scenario_sessions,
          "tree": scenario_tree}[a.scenario]
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    t0 = _mono()
    results: dict = {}
    for s in servers:
        log(f"== {a.scenario} on {s.name}")
        try:
            s.start()
            results[s.name] = fn(s, a)
        except (OSError, RuntimeError, ConnectionError) as e:
            results[s.name] = {"failed": f"{type(e).__name__}: {e}"}
        finally:
            s.stop()
        log(f"   {results[s.name]}")
    text = render(a.scenario, a, results, started, load, _mono() - t0)
    print(text)
    if a.out:
        run.write_sections(run.REPO / a.out, {f"scale-{a.scenario}": text})
    return 1 if any("failed" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
