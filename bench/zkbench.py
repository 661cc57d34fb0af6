#!/usr/bin/env python3
"""zkbench: a raw-protocol, pipelined load generator for any server that speaks the ZooKeeper
client wire protocol (Apache ZooKeeper, zkserver, ...). Standard library only, and it does not
import the zkserver package, so it measures every server the same way.

    python bench/zkbench.py HOST:PORT MODE [--conns 8] [--depth 64] [--secs 5] [--size 100]
                            [--procs P] [--warmup 0.5] [--server-pid PID]

MODE
  read     getData on one 100-byte znode per connection
  write    setData (version -1) on one znode per connection
  mixed    90% getData / 10% setData (every 10th request on a connection is a setData)
  create   persistent sequential creates under one parent per connection
  latency  one connection, depth 1, cycles create/set/get/delete on a fresh znode; p50/p99 per
           op kind and overall

Each connection keeps `depth` requests outstanding. The connections are split over `procs`
worker processes (the parent only coordinates), so on a small machine the generator is not the
bottleneck. After `warmup` seconds every worker counts the replies it receives in the same
`secs`-long window; ops_per_s = replies in the window / secs, and latencies are those of the
replies in the window (send -> receive, per request). Replies with a non-zero err in the reply
header are counted in `errors` (and in `ops`).

Prints one JSON line: mode, ops_per_s, p50_ms, p99_ms, errors, ops and some context
(conns, depth, procs, secs, size; gen_cpu_pct: CPU used by the generator workers in % of one
core; host_cpu_pct: CPU used by the whole machine; with --server-pid also server_cpu_pct and
other_cpu_pct = host - server - generator, i.e. other processes competing for the cores;
per_op in latency mode). All CPU figures are over the measured window.

Library use:  run(hostport, mode, conns=8, depth=64, secs=5, size=100, procs=...) -> dict

Each run works under its own root znode /zkbench-<pid>-<n> and deletes what it made (best effort).
"""

from __future__ import annotations

import argparse
import base64
import functools
import itertools
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import time
from array import array

# Number of worker processes. Measured against Apache ZooKeeper 3.8 on a 2-core machine: see
# bench/README.md ("Choosing --procs").
DEFAULT_PROCS = 1
MODES = ("read", "write", "mixed", "create", "latency")
WARMUP = 0.5

# opcodes (ZooDefs.OpCode)
OP_CREATE, OP_DELETE, OP_GETDATA, OP_SETDATA, OP_GETCHILDREN, OP_CLOSE = 1, 2, 4, 5, 8, -11
PERSISTENT, PERSISTENT_SEQUENTIAL = 0, 2
ERR_NONODE, ERR_NODEEXISTS = -101, -110

_I = struct.Struct(">i")
_II = struct.Struct(">ii")
_REPLY = struct.Struct(">iqi")  # xid, zxid, err
_mono = time.monotonic

_run_counter = itertools.count()


# --------------------------------------------------------------------------- jute encoding

def ustr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return _I.pack(len(b)) + b


def jbuf(b: bytes) -> bytes:
    return _I.pack(len(b)) + b


OPEN_ACL = _I.pack(1) + _I.pack(31) + ustr("world") + ustr("anyone")


def tail(op: int, body: bytes) -> bytes:
    """The part of a request frame after the xid: opcode and request record."""
    return _I.pack(op) + body


def create_req(path: str | bytes, data: bytes, flags: int = PERSISTENT) -> bytes:
    return tail(OP_CREATE, ustr(path) + jbuf(data) + OPEN_ACL + _I.pack(flags))


def delete_req(path: str | bytes) -> bytes:
    return tail(OP_DELETE, ustr(path) + _I.pack(-1))


def get_req(path: str | bytes) -> bytes:
    return tail(OP_GETDATA, ustr(path) + b"\0")


def set_req(path: str | bytes, data: bytes) -> bytes:
    return tail(OP_SETDATA, ustr(path) + jbuf(data) + _I.pack(-1))


def children_req(path: str | bytes) -> bytes:
    return tail(OP_GETCHILDREN, ustr(path) + b"\0")


def parse_hostport(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _connect(hostport: str, timeout: float = 10.0) -> socket.socket:
    """TCP connect + ConnectRequest/ConnectResponse handshake; returns a blocking socket."""
    sock = socket.create_connection(parse_hostport(hostport), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = struct.pack(">iqiq", 0, 0, 30000, 0) + jbuf(b"\0" * 16) + b"\0"
    sock.sendall(_I.pack(len(body)) + body)
    resp = _read_frame(sock)
    _proto, timeout_ms, _sid = struct.unpack_from(">iiq", resp)
    if timeout_ms <= 0:
        sock.close()
        raise ConnectionError(f"{hostport}: server refused the session (timeOut={timeout_ms})")
    return sock


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        b = sock.recv(n - got)
        if not b:
            raise ConnectionError("server closed the connection")
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _read_frame(sock: socket.socket) -> bytes:
    (n,) = _I.unpack(_recv_exact(sock, 4))
    return _recv_exact(sock, n)


class SyncConn:
    """A blocking, one-request-at-a-time session: setup, cleanup and latency mode."""

    def __init__(self, hostport: str, timeout: float = 10.0) -> None:
        self.sock = _connect(hostport, timeout)
        self.xid = 0

    def call(self, req_tail: bytes) -> tuple[int, bytes]:
        """Send one request; return (err, response body) of its reply."""
        self.xid += 1
        self.sock.sendall(_II.pack(len(req_tail) + 4, self.xid) + req_tail)
        while True:
            frame = _read_frame(self.sock)
            xid, _zxid, err = _REPLY.unpack_from(frame)
            if xid == self.xid:
                return err, frame[16:]
            # xid -1 (watch event) / -2 (ping): not ours, skip

    def children(self, path: str) -> list[str]:
        err, body = self.call(children_req(path))
        if err:
            return []
        (count,) = _I.unpack_from(body)
        out, off = [], 4
        for _ in range(max(count, 0)):
            (n,) = _I.unpack_from(body, off)
            out.append(body[off + 4:off + 4 + n].decode())
            off += 4 + n
        return out

    def rmr(self, path: str) -> None:
        """Recursive delete, best effort."""
        err, _ = self.call(delete_req(path))
        if err in (0, ERR_NONODE):
            return
        for child in self.children(path):
            self.rmr(f"{path}/{child}")
        self.call(delete_req(path))

    def close(self) -> None:
        try:
            self.sock.settimeout(2.0)
            self.call(tail(OP_CLOSE, b""))
        except OSError:
            pass
        self.sock.close()


# --------------------------------------------------------------------------- pipelined engine

class PConn:
    """One pipelined session driven by pump()."""

    __slots__ = ("sock", "xid", "sent", "inbuf", "outbuf", "source", "created", "dead")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.xid = 0
        self.sent: dict[int, float] = {}
        self.inbuf = b""
        self.outbuf = b""
        self.source = None  # callable -> request tail, or None when there is no more work
        self.created: list[bytes] | None = None  # paths from successful create replies
        self.dead = False

    @classmethod
    def open(cls, hostport: str) -> PConn:
        return cls(_connect(hostport))

    def close(self, send_close: bool = True) -> None:
        if send_close and not self.dead:
            try:
                self.sock.setblocking(True)
                self.sock.settimeout(2.0)
                self.xid += 1
                self.sock.sendall(_II.pack(8, self.xid) + _I.pack(OP_CLOSE))
                while True:
                    xid, _z, _e = _REPLY.unpack_from(_read_frame(self.sock))
                    if xid == self.xid:
                        break
            except OSError:
                pass
        self.sock.close()


class Stats:
    __slots__ = ("ops", "errors", "lat", "replies", "pre_errors", "undrained", "rx_bytes")

    def __init__(self) -> None:
        self.ops = 0          # replies received inside the window
        self.errors = 0       # ... of which had err != 0
        self.lat = array("d")  # latencies (s) of the replies inside the window
        self.replies = 0      # all replies
        self.pre_errors = 0   # errors outside the window
        self.undrained = 0    # requests still unanswered when pump() gave up
        self.rx_bytes = 0     # bytes received (replies, with their length prefixes)


def pump(conns: list[PConn], depth: int, stop_sending: float, deadline: float,
         win0: float = 0.0, win1: float = 0.0, stats: Stats | None = None) -> Stats:
    """Keep `depth` requests outstanding on each connection (taken from conn.source) until
    `stop_sending` (or until every source is exhausted), then wait for the outstanding replies,
    giving up at `deadline`. Replies received in [win0, win1) are counted and timed."""
    st = stats or Stats()
    lat_append = st.lat.append
    sel = selectors.DefaultSelector()
    pack_hdr = _II.pack
    unpack_len = _I.unpack_from
    unpack_reply = _REPLY.unpack_from
    live = [c for c in conns if not c.dead]
    for c in live:
        sel.register(c.sock, selectors.EVENT_READ, c)

    def refill(c: PConn, now: float) -> None:
        sent = c.sent
        want = depth - len(sent)
        if want <= 0 or c.source is None or now >= stop_sending:
            return
        parts = []
        src = c.source
        xid = c.xid
        for _ in range(want):
            t = src()
            if t is None:
                c.source = None
                break
            xid += 1
            parts.append(pack_hdr(len(t) + 4, xid))
            parts.append(t)
            sent[xid] = now
        c.xid = xid
        if not parts:
            return
        data = b"".join(parts)
        if c.outbuf:
            c.outbuf += data
            return
        try:
            n = c.sock.send(data)
        except BlockingIOError:
            n = 0
        if n < len(data):
            c.outbuf = data[n:]
            sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    now = _mono()
    active = 0
    for c in live:
        refill(c, now)
        if c.sent:
            active += 1
        else:
            sel.unregister(c.sock)
    try:
        while active:
            now = _mono()
            if now >= deadline:
                break
            events = sel.select(min(0.05, deadline - now))
            now = _mono()
            inwin = win0 <= now < win1
            for key, mask in events:
                c = key.data
                if mask & selectors.EVENT_WRITE and c.outbuf:
                    try:
                        n = c.sock.send(c.outbuf)
                    except BlockingIOError:
                        n = 0
                    c.outbuf = c.outbuf[n:]
                    if not c.outbuf:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                if not mask & selectors.EVENT_READ:
                    continue
                try:
                    data = c.sock.recv(262144)
                except BlockingIOError:
                    continue
                except OSError as e:
                    raise ConnectionError(f"connection lost: {e}") from e
                if not data:
                    raise ConnectionError("server closed the connection")
                st.rx_bytes += len(data)
                buf = c.inbuf + data if c.inbuf else data
                blen = len(buf)
                off = 0
                sent = c.sent
                created = c.created
                while blen - off >= 4:
                    end = off + 4 + unpack_len(buf, off)[0]
                    if end > blen:
                        break
                    xid, _zxid, err = unpack_reply(buf, off + 4)
                    t0 = sent.pop(xid, None)
                    if t0 is not None:
                        st.replies += 1
                        if inwin:
                            st.ops += 1
                            lat_append(now - t0)
                            if err:
                                st.errors += 1
                        elif err:
                            st.pre_errors += 1
                        if created is not None and not err:
                            created.append(buf[off + 24:end])
                    off = end
                c.inbuf = buf[off:] if off < blen else b""
                refill(c, now)
                if not c.sent and (c.source is None or now >= stop_sending):
                    sel.unregister(c.sock)
                    active -= 1
    except ConnectionError:
        for c in live:
            c.dead = True
        raise
    finally:
        sel.close()
    st.undrained += sum(len(c.sent) for c in live)
    for c in live:
        c.sent.clear()
    return st


# --------------------------------------------------------------------------- workers

def _throughput_sources(mode: str, root: str, idx: int, data: bytes):
    p = f"{root}/c{idx}"
    g, s = get_req(p), set_req(p, data)
    if mode == "read":
        return functools.partial(next, itertools.repeat(g))
    if mode == "write":
        return functools.partial(next, itertools.repeat(s))
    if mode == "mixed":
        return functools.partial(next, itertools.cycle([g] * 9 + [s]))
    if mode == "create":
        return functools.partial(next, itertools.repeat(create_req(p + "/s-", data,
                                                                   PERSISTENT_SEQUENTIAL)))
    raise ValueError(f"unknown mode {mode!r}")


def cpu_ticks_split(pid: int) -> tuple[int, int] | None:
    """(user, system) clock ticks (all threads) of a process and of the children it has
    reaped: a server's own helper processes (zkserver's snapshot writer) are its CPU, not noise
    from other processes."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[13]), int(fields[12]) + int(fields[14])
    except (OSError, IndexError, ValueError):
        return None


def _cpu_ticks(pid: int) -> int | None:
    """User + system clock ticks of a process (see `cpu_ticks_split`)."""
    split = cpu_ticks_split(pid)
    return None if split is None else split[0] + split[1]


def _host_busy_ticks() -> int | None:
    """Busy ticks of the whole machine (all CPUs) from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal
    except (OSError, ValueError, IndexError):
        return None


def _worker(chan, hostport: str, mode: str, root: str, idxs: list[int], depth: int,
            size: int) -> None:
    """Worker process: connect, report ready, wait for the window, run, report results."""
    try:
        data = b"x" * size
        if mode == "latency":
            conn = SyncConn(hostport)
            chan.send(("ready", os.getpid()))
            t0, win0, win1 = chan.recv()
            chan.send(("done", _latency_loop(conn, root, data, t0, win0, win1)))
            conn.close()
            return
        conns = [PConn.open(hostport) for _ in idxs]
        for c, i in zip(conns, idxs, strict=True):
            c.source = _throughput_sources(mode, root, i, data)
            if mode == "create":
                c.created = []
        chan.send(("ready", os.getpid()))
        t0, win0, win1 = chan.recv()
        while _mono() < t0:
            time.sleep(min(0.01, max(0.0, t0 - _mono())))
        st = pump(conns, depth, stop_sending=win1, deadline=win1 + 30.0, win0=win0, win1=win1)
        res = {"ops": st.ops, "errors": st.errors, "lat": st.lat.tobytes(),
               "pre_errors": st.pre_errors, "undrained": st.undrained, "cleanup_left": 0,
               "rx_bytes": st.rx_bytes,
               "sent": [[i, c.xid] for i, c in zip(idxs, conns, strict=True)]}
        if mode == "create":
            # delete exactly the nodes this worker created, pipelined on the same sessions
            todo = []
            for c in conns:
                c.source = functools.partial(next, iter([delete_req(p) for p in c.created]),
                                             None)
                todo.append(len(c.created))
                c.created = None
            cst = pump(conns, depth, stop_sending=float("inf"), deadline=_mono() + 120.0)
            res["cleanup_left"] = sum(todo) - (cst.replies - cst.pre_errors)
        for c in conns:
            c.close()
        chan.send(("done", res))
    except Exception as e:  # reported to the parent
        chan.send(("error", f"{type(e).__name__}: {e}"))


LAT_KINDS = ("create", "set", "get", "delete")


def _latency_loop(conn: SyncConn, root: str, data: bytes, t0: float, win0: float,
                  win1: float) -> dict:
    lats = {k: array("d") for k in LAT_KINDS}
    errors = pre_errors = 0
    while _mono() < t0:
        time.sleep(0.005)
    n = 0
    while _mono() < win1:
        p = f"{root}/n{n}"
        n += 1
        for kind, req in zip(LAT_KINDS, (create_req(p, data), set_req(p, data), get_req(p),
                                         delete_req(p)), strict=True):
            ta = _mono()
            err, _ = conn.call(req)
            tb = _mono()
            if win0 <= tb < win1:
                lats[kind].append(tb - ta)
                errors += bool(err)
            else:
                pre_errors += bool(err)
    allc = array("d")
    for a in lats.values():
        allc.extend(a)
    return {"ops": len(allc), "errors": errors, "lat": allc.tobytes(),
            "kinds": {k: a.tobytes() for k, a in lats.items()},
            "pre_errors": pre_errors, "undrained": 0, "cleanup_left": 0, "rx_bytes": 0,
            "sent": []}


# --------------------------------------------------------------------------- coordinator

def _pct(sorted_lat, f: float) -> float | None:
    if not sorted_lat:
        return None
    return round(sorted_lat[min(len(sorted_lat) - 1, int(f * len(sorted_lat)))] * 1000, 3)


def run(hostport: str, mode: str, conns: int = 8, depth: int = 64, secs: float = 5.0,
        size: int = 100, procs: int = DEFAULT_PROCS, *, warmup: float = WARMUP,
        server_pid: int | None = None) -> dict:
    """Run one workload against hostport and return the result dict (see module doc)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if mode == "latency":
        conns, depth, procs = 1, 1, 1
    procs = max(1, min(procs, conns))
    root = f"/zkbench-{os.getpid()}-{next(_run_counter)}"
    setup = SyncConn(hostport)
    try:
        err, _ = setup.call(create_req(root, b""))
        if err:
            raise RuntimeError(f"cannot create {root}: err {err}")
        if mode != "latency":
            data = b"x" * size
            for i in range(conns):
                err, _ = setup.call(create_req(f"{root}/c{i}", data))
                if err:
                    raise RuntimeError(f"cannot create {root}/c{i}: err {err}")
    except BaseException:
        _cleanup(hostport, root, setup)
        raise
    # An idle session would expire during a long run: close it, use a new one afterwards.
    setup.close()
    setup = None
    try:
        res = _run_workers(hostport, mode, root, conns, depth, secs, size, procs, warmup,
                           server_pid)
        setup = SyncConn(hostport)
        _verify(setup, res, root, size)
    finally:
        _cleanup(hostport, root, setup)
    return res


def _cleanup(hostport: str, root: str, conn: SyncConn | None) -> None:
    """Delete the run's root znode and what is left under it; best effort."""
    try:
        conn = conn or SyncConn(hostport)
        try:
            conn.rmr(root)
        finally:
            conn.close()
    except OSError:
        pass


GETDATA_REPLY = 4 + 16 + 4 + 68  # frame length prefix, reply header, data length, Stat
SETDATA_REPLY = 4 + 16 + 68


def _verify(setup: SyncConn, res: dict, root: str, size: int) -> None:
    """Cheap end-to-end checks that the server really did the work, when every request was
    answered without error: the bytes of all replies have the right total size (read, write,
    mixed), and each node's version equals the number of setData requests sent to it (write,
    mixed). Adds "verified": true/false and, on a mismatch, "verify_error"."""
    sent, rx = res.pop("_sent"), res.pop("_rx_bytes")
    mode = res["mode"]
    if mode not in ("read", "write", "mixed") or res["errors"] or res.get("pre_errors") \
            or res.get("undrained"):
        return
    sets = {i: 0 if mode == "read" else n if mode == "write" else n // 10
            for i, n in sent.items()}
    want_rx = sum(sets[i] * SETDATA_REPLY + (n - sets[i]) * (GETDATA_REPLY + size)
                  for i, n in sent.items())
    problems = []
    if rx != want_rx:
        problems.append(f"replies total {rx} bytes, expected {want_rx}")
    if mode != "read":
        for i, want in sorted(sets.items()):
            err, body = setup.call(get_req(f"{root}/c{i}"))
            if err:
                problems.append(f"getData {root}/c{i}: err {err}")
                continue
            (dlen,) = _I.unpack_from(body)
            (version,) = _I.unpack_from(body, 4 + max(dlen, 0) + 32)
            if version != want:
                problems.append(f"{root}/c{i} has version {version} after {want} setData")
    res["verified"] = not problems
    if problems:
        res["verify_error"] = "; ".join(problems[:3])


class _Chan:
    """Line-delimited JSON over a worker's stdin/stdout (bytes values as base64 strings)."""

    def __init__(self, rfile, wfile) -> None:
        self.r, self.w = rfile, wfile

    def send(self, obj) -> None:
        self.w.write(json.dumps(obj, default=_b64) + "\n")
        self.w.flush()

    def recv(self):
        line = self.r.readline()
        if not line:
            raise EOFError("channel closed")
        return json.loads(line)


def _b64(o):
    if isinstance(o, bytes | bytearray):
        return base64.b64encode(o).decode()
    raise TypeError(type(o))


def _worker_main() -> int:
    """Entry point of a worker process: `zkbench.py --worker` with its job on stdin."""
    chan = _Chan(sys.stdin, sys.stdout)
    job = chan.recv()
    _worker(chan, job["hostport"], job["mode"], job["root"], job["idxs"], job["depth"],
            job["size"])
    return 0


def _run_workers(hostport, mode, root, conns, depth, secs, size, procs, warmup, server_pid):
    # Workers are plain subprocesses running this file (not multiprocessing), so run() works
    # from any caller: no __main__ guard needed, no fork of a threaded or Trio process.
    groups = [list(range(conns))[i::procs] for i in range(procs)]
    workers: list[tuple[subprocess.Popen, _Chan]] = []
    deadline = _mono() + 60

    def recv(chan: _Chan, p: subprocess.Popen, what: str):
        try:
            msg = chan.recv()
        except (EOFError, ValueError):
            raise RuntimeError(f"worker {what}: it exited with code {p.wait()}") from None
        if msg[0] == "error":
            raise RuntimeError(f"worker failed {what}: {msg[1]}")
        return msg

    try:
        for g in groups:
            p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            chan = _Chan(p.stdout, p.stdin)
            chan.send({"hostport": hostport, "mode": mode, "root": root, "idxs": g,
                       "depth": depth, "size": size})
            workers.append((p, chan))
        pids = []
        for p, chan in workers:
            pids.append(recv(chan, p, "during setup")[1])
        if _mono() > deadline:
            raise RuntimeError("workers took more than 60 s to connect")
        t0 = _mono() + 0.05
        win0 = t0 + warmup
        win1 = win0 + secs
        for _p, chan in workers:
            chan.send([t0, win0, win1])
        time.sleep(max(0.0, win0 - _mono()))
        cpu0 = [_cpu_ticks(pid) for pid in pids]
        srv0 = _cpu_ticks(server_pid) if server_pid else None
        host0 = _host_busy_ticks()
        tm0 = _mono()
        time.sleep(max(0.0, win1 - _mono()))
        cpu1 = [_cpu_ticks(pid) for pid in pids]
        srv1 = _cpu_ticks(server_pid) if server_pid else None
        host1 = _host_busy_ticks()
        span = _mono() - tm0
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
        "mode": mode,
        "ops_per_s": round(ops / secs),
        "p50_ms": _pct(lat, 0.50),
        "p99_ms": _pct(lat, 0.99),
        "errors": sum(r["errors"] for r in results),
        "ops": ops,
        "conns": conns, "depth": depth, "procs": procs, "secs": secs, "size": size,
    }
    if all(c is not None for c in cpu0 + cpu1):
        out["gen_cpu_pct"] = round(100 * (sum(cpu1) - sum(cpu0)) / hz / span, 1)
    if srv0 is not None and srv1 is not None:
        out["server_cpu_pct"] = round(100 * (srv1 - srv0) / hz / span, 1)
    if host0 is not None and host1 is not None:
        # CPU used by everything on the machine; with --server-pid also what is left after the
        # server and the generator: other processes competing for the cores (noise).
        out["host_cpu_pct"] = round(100 * (host1 - host0) / hz / span, 1)
        if "server_cpu_pct" in out and "gen_cpu_pct" in out:
            out["other_cpu_pct"] = round(max(0.0, out["host_cpu_pct"] - out["server_cpu_pct"]
                                             - out["gen_cpu_pct"]), 1)
    extra = {k: sum(r[k] for r in results) for k in ("pre_errors", "undrained", "cleanup_left")}
    out.update({k: v for k, v in extra.items() if v})
    out["_sent"] = dict(p for r in results for p in r["sent"])  # conn index -> requests sent
    out["_rx_bytes"] = sum(r["rx_bytes"] for r in results)
    if mode == "latency":
        per = {}
        for kind in LAT_KINDS:
            a = array("d")
            for r in results:
                a.frombytes(r["kinds"][kind])
            s = sorted(a)
            per[kind] = {"p50_ms": _pct(s, 0.5), "p99_ms": _pct(s, 0.99), "n": len(s)}
        out["per_op"] = per
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hostport", help="HOST:PORT of the server")
    ap.add_argument("mode", choices=MODES)
    ap.add_argument("--conns", type=int, default=8, help="sessions (default 8)")
    ap.add_argument("--depth", type=int, default=64,
                    help="outstanding requests per session (default 64)")
    ap.add_argument("--secs", type=float, default=5.0, help="measured seconds (default 5)")
    ap.add_argument("--size", type=int, default=100, help="value size in bytes (default 100)")
    ap.add_argument("--procs", type=int, default=DEFAULT_PROCS,
                    help=f"worker processes sharing the sessions (default {DEFAULT_PROCS})")
    ap.add_argument("--warmup", type=float, default=WARMUP,
                    help=f"seconds of load before measuring (default {WARMUP})")
    ap.add_argument("--server-pid", type=int, help="also report this process's CPU use")
    a = ap.parse_args(argv)
    try:
        res = run(a.hostport, a.mode, a.conns, a.depth, a.secs, a.size, a.procs,
                  warmup=a.warmup, server_pid=a.server_pid)
    except (OSError, RuntimeError) as e:
        print(f"zkbench: {a.mode} against {a.hostport} failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main() if sys.argv[1:] == ["--worker"] else main())
