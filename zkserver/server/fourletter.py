"""Four-letter words on the client port, in ZooKeeper's output formats.

A four-letter word is recognised only in the first four bytes of a brand-new connection; the
answer is plain text, after which the connection closes. Commands outside
`4lw.commands.whitelist` get ZooKeeper's refusal line. Monitoring tools parse these texts
(`Mode:` in srvr, the tab-separated `mntr`), so the formats follow ZooKeeper's to the character.
"""

from __future__ import annotations

import os
import platform
import resource
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING

import trio

from zkserver import __version__

if TYPE_CHECKING:
    from zkserver.server.server import Server

ZK_COMPAT_VERSION = "3.9.2"
VERSION_LINE = f"{ZK_COMPAT_VERSION}-zkserver-{__version__}, built on 2026-11-24 00:00 UTC"

COMMANDS = frozenset({"ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "wchs",
                      "wchc", "wchp", "dump", "envi", "isro", "dirs", "gtmk", "stmk", "hash"})


async def answer(server: Server, stream: trio.SocketStream, cmd: str, rest: bytes) -> None:
    if cmd == "stmk":
        while len(rest) < 8:
            more = await stream.receive_some(8 - len(rest))
            if not more:
                return
            rest += more
    text = run(server, cmd, bytes(rest))
    await stream.send_all(text.encode())


def run(server: Server, cmd: str, rest: bytes = b"") -> str:
    if cmd not in server.config.four_letter_whitelist:
        return f"{cmd} is not executed because it is not in the whitelist.\n"
    if cmd == "ruok":
        return "imok"
    if cmd == "isro":
        return "ro" if server.engine.read_only else "rw"
    if not server.is_serving():
        return "This ZooKeeper instance is not currently serving requests\n"
    return _COMMANDS[cmd](server, rest)


def _hex(n: int) -> str:
    return "0x" + format(n & 0xFFFFFFFFFFFFFFFF, "x")


def _latency(s: object) -> str:
    count = s.count  # type: ignore[attr-defined]
    avg = s.total / count if count else 0.0  # type: ignore[attr-defined]
    return f"{s.min}/{avg}/{s.max}"  # type: ignore[attr-defined]


def _outstanding(server: Server) -> int:
    return sum(len(c.queue) for c in server.engine.clients)


def _summary(server: Server) -> str:
    e = server.engine
    return (f"Latency min/avg/max: {_latency(e.stats.latency)}\n"
            f"Received: {e.stats.received}\n"
            f"Sent: {e.stats.sent}\n"
            f"Connections: {len(e.clients)}\n"
            f"Outstanding: {_outstanding(server)}\n"
            f"Zxid: {_hex(e.last_zxid)}\n"
            f"Mode: {server.mode}\n"
            f"Node count: {e.tree.node_count()}\n")


def _srvr(server: Server, rest: bytes) -> str:
    return f"Zookeeper version: {VERSION_LINE}\n" + _summary(server)


def _client_brief(c: object) -> str:
    host, port = c.remote  # type: ignore[attr-defined]
    return (f" /{host}:{port}[1](queued={len(c.queue)},"  # type: ignore[attr-defined]
            f"recved={c.stats.received},sent={c.stats.sent}")  # type: ignore[attr-defined]


def _stat(server: Server, rest: bytes) -> str:
    lines = [f"Zookeeper version: {VERSION_LINE}", "Clients:"]
    lines += [_client_brief(c) + ")" for c in server.engine.clients]
    return "\n".join(lines) + "\n\n" + _summary(server)


def _cons(server: Server, rest: bytes) -> str:
    lines = []
    for c in server.engine.clients:
        s = _client_brief(c)
        if c.session_id:
            avg = c.stats.latency.total // c.stats.latency.count if c.stats.latency.count else 0
            info = server.engine.sessions.get(c.session_id)
            s += (f",sid={_hex(c.session_id)},lop={c.stats.last_op},est={c.established},"
                  f"to={info.timeout if info else 0},")
            if c.stats.last_cxid >= 0:  # ZooKeeper leaves out what it has not seen yet
                s += f"lcxid={_hex(c.stats.last_cxid)},"
            s += (f"lzxid={_hex(c.stats.last_zxid)},lresp={c.last_response},"
                  f"llat={c.stats.last_latency},"
                  f"minlat={c.stats.latency.min},avglat={avg},maxlat={c.stats.latency.max}")
        lines.append(s + ")\n")
    return "".join(lines) + "\n"


def _crst(server: Server, rest: bytes) -> str:
    for c in server.engine.clients:
        c.stats.reset()
    return "Connection stats reset.\n"


def _srst(server: Server, rest: bytes) -> str:
    server.engine.stats.reset()
    return "Server stats reset.\n"


def _conf(server: Server, rest: bytes) -> str:
    cfg = server.config
    size = _dir_size(cfg.data_dir)
    log_size = _dir_size(cfg.data_log_dir)
    return (f"clientPort={cfg.client_port}\n"
            f"secureClientPort={cfg.secure_client_port or -1}\n"
            f"dataDir={cfg.data_dir}\ndataDirSize={size}\n"
            f"dataLogDir={cfg.data_log_dir}\ndataLogSize={log_size}\n"
            f"tickTime={cfg.tick_time}\nmaxClientCnxns={cfg.max_client_cnxns}\n"
            f"minSessionTimeout={server.engine.min_timeout}\n"
            f"maxSessionTimeout={server.engine.max_timeout}\n"
            f"clientPortListenBacklog={cfg.client_port_listen_backlog}\n"
            f"serverId={cfg.server_id if cfg.is_quorum else 0}\n")


def _data_watch_paths(server: Server) -> dict[str, dict]:
    return server.engine.tree.watches.data.by_path


def _wchs(server: Server, rest: bytes) -> str:
    table = server.engine.tree.watches.data
    return (f"{len(table.by_watcher)} connections watching {len(table.by_path)} paths\n"
            f"Total watches:{table.count()}\n")


def _wchc(server: Server, rest: bytes) -> str:
    out = []
    for watcher, paths in server.engine.tree.watches.data.by_watcher.items():
        out.append(_hex(watcher.session_id) + "\n")
        out += [f"\t{p}\n" for p in sorted(paths)]
    return "".join(out) + "\n"


def _wchp(server: Server, rest: bytes) -> str:
    out = []
    for path, watchers in sorted(_data_watch_paths(server).items()):
        out.append(path + "\n")
        out += [f"\t{_hex(w.session_id)}\n" for w in watchers]
    return "".join(out) + "\n"


def _dump(server: Server, rest: bytes) -> str:
    e = server.engine
    buckets = e.sessions.buckets
    lines = ["SessionTracker dump:",
             f"Session Sets ({len(buckets)})/({len(e.sessions.sessions)}):"]
    for at in sorted(buckets):
        when = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(server.wall_of(at) / 1000))
        lines.append(f"{len(buckets[at])} expire at {when}:")
        lines += [f"\t{_hex(sid)}" for sid in sorted(buckets[at])]
    eph = e.tree.ephemerals
    lines += ["ephemeral nodes dump:", f"Sessions with Ephemerals ({len(eph)}):"]
    for sid in sorted(eph):
        lines.append(f"{_hex(sid)}:")
        lines += [f"\t{p}" for p in sorted(eph[sid])]
    lines += ["Connections dump:", f"Connections Sets (1)/({len(e.clients)}):"]
    lines += [f"\tip: /{c.remote[0]}:{c.remote[1]} sessionId: {_hex(c.session_id)}"
              for c in e.clients]
    return "\n".join(lines) + "\n"


def _envi(server: Server, rest: bytes) -> str:
    items = [
        ("zookeeper.version", VERSION_LINE), ("host.name", socket.gethostname()),
        ("java.version", platform.python_version()), ("java.vendor", "CPython (zkserver)"),
        ("java.home", sys.prefix), ("java.class.path", ":".join(sys.path)),
        ("java.library.path", ""), ("java.io.tmpdir", os.environ.get("TMPDIR", "/tmp")),
        ("java.compiler", "<NA>"), ("os.name", platform.system()),
        ("os.arch", platform.machine()), ("os.version", platform.release()),
        ("user.name", os.environ.get("USER", "")), ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
        *_memory(),
    ]
    return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in items)


def _memory() -> list[tuple[str, str]]:
    """The JVM's free/max/total memory lines, answered with this process's own figures."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    try:
        with open("/proc/meminfo") as f:
            info = {ln.split(":")[0]: int(ln.split()[1]) // 1024 for ln in f}
        total, free = info.get("MemTotal", 0), info.get("MemAvailable", 0)
    except OSError:
        total = free = 0
    return [("os.memory.free", f"{free}MB"), ("os.memory.max", f"{total}MB"),
            ("os.memory.total", f"{rss}MB")]


def _dir_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def _dirs(server: Server, rest: bytes) -> str:
    cfg = server.config
    return (f"datadir_size: {_dir_size(cfg.data_dir)}\n"
            f"logdir_size: {_dir_size(cfg.data_log_dir)}\n")


def _gtmk(server: Server, rest: bytes) -> str:
    return str(server.trace_mask)


def _stmk(server: Server, rest: bytes) -> str:
    server.trace_mask = struct.unpack(">q", rest[:8])[0]
    return str(server.trace_mask)


def _hash(server: Server, rest: bytes) -> str:
    return ""


def metrics(server: Server) -> dict[str, object]:
    """The values of `mntr` (and the admin server's `monitor`), in ZooKeeper's names."""
    e = server.engine
    s = e.stats
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = 0
    data_table = e.tree.watches.data
    return {
        "version": VERSION_LINE,
        "server_state": server.mode,
        "avg_latency": s.latency.average(),
        "max_latency": s.latency.max,
        "min_latency": s.latency.min,
        "packets_received": s.received,
        "packets_sent": s.sent,
        "num_alive_connections": len(e.clients),
        "outstanding_requests": _outstanding(server),
        "uptime": server.now() - server.started,
        "znode_count": e.tree.node_count(),
        "watch_count": data_table.count() + e.tree.watches.child.count(),
        "ephemerals_count": sum(len(p) for p in e.tree.ephemerals.values()),
        "approximate_data_size": e.tree.approximate_data_size(),
        "global_sessions": len(e.sessions.sessions),
        "local_sessions": 0,
        "open_file_descriptor_count": fds,
        "max_file_descriptor_count": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "connection_drop_probability": 0.0,
        "auth_failed_count": s.auth_failed,
        "outstanding_tls_handshake": 0,
        "last_client_response_size": s.last_response_size,
        "min_client_response_size": s.min_response_size,
        "max_client_response_size": s.max_response_size,
        **server.quorum_metrics(),
    }


def _mntr(server: Server, rest: bytes) -> str:
    return "".join(f"zk_{k}\t{v}\n" for k, v in metrics(server).items())


_COMMANDS = {
    "srvr": _srvr, "stat": _stat, "cons": _cons, "crst": _crst, "srst": _srst, "conf": _conf,
    "wchs": _wchs, "wchc": _wchc, "wchp": _wchp, "dump": _dump, "envi": _envi, "dirs": _dirs,
    "gtmk": _gtmk, "stmk": _stmk, "mntr": _mntr, "hash": _hash,
}
