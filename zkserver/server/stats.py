"""What the monitoring endpoints show, worked out in one place.

The four-letter words (fourletter.py), the AdminServer (admin.py) and the Prometheus endpoint
(metrics.py) are three renderings of the same figures, in ZooKeeper's three formats. They take
every figure from here; this module alone reads the engine, its tree, its sessions and the
server's counters (server/counters.py), so none of the renderers reaches into the engine or
into another renderer. Values keep ZooKeeper's names where it has one (the `mntr` keys).
"""

from __future__ import annotations

import ipaddress
import os
import platform
import resource
import socket
import sys
from typing import TYPE_CHECKING, Any

import attrs

from zkserver import __version__
from zkserver.engine import handshake
from zkserver.quorum.roles import LearnerStage

if TYPE_CHECKING:
    from zkserver.engine import Client
    from zkserver.server.server import Server

ZK_COMPAT_VERSION = "3.9.2"
VERSION_LINE = f"{ZK_COMPAT_VERSION}-zkserver-{__version__}, built on 2026-11-24 00:00 UTC"


# -- the server as a whole ------------------------------------------------------------------------


@attrs.frozen
class Summary:
    """What `srvr` and `stat` show under the version line."""

    min_latency: int
    avg_latency: float
    max_latency: int
    received: int
    sent: int
    connections: int
    outstanding: int
    zxid: int
    mode: str
    node_count: int


def summary(server: Server) -> Summary:
    engine = server.engine
    counts = engine.stats
    latency = counts.latency
    return Summary(latency.min, latency.average(), latency.max, counts.received, counts.sent,
                   len(engine.clients), outstanding(server), engine.last_zxid, server.mode,
                   engine.tree.node_count())


def outstanding(server: Server) -> int:
    """Requests in hand: every connection's waiting queue."""
    return server.engine.stats.in_hand


def read_only(server: Server) -> bool:
    return server.engine.read_only


def response_sizes(server: Server) -> tuple[int, int, int]:
    """(last, min, max) reply size in bytes; min is -1 before the first reply."""
    counts = server.engine.stats
    return counts.last_response_size, counts.min_response_size, counts.max_response_size


def auth_failed(server: Server) -> int:
    return server.engine.stats.auth_failed


def uptime(server: Server) -> int:
    return server.now() - server.started


def session_timeouts(server: Server) -> tuple[int, int]:
    """(minSessionTimeout, maxSessionTimeout) as in force, defaults applied."""
    return server.engine.min_timeout, server.engine.max_timeout


def digests(server: Server) -> list[tuple[int, int]]:
    """(zxid, digest) of the tree, when it keeps one (an ensemble member)."""
    tree = server.engine.tree
    return [] if tree.digest is None else [(tree.last_zxid, tree.digest)]


def reset_server_stats(server: Server) -> None:
    """`srst`."""
    server.engine.stats.reset()


# -- connections ----------------------------------------------------------------------------------


@attrs.frozen
class Connection:
    """One client connection as `stat`/`cons` and the AdminServer's `connections` show it. The
    session fields mean something only when `session_id` is not 0."""

    remote: tuple[str, int]
    secure: bool
    queued: int
    received: int
    sent: int
    session_id: int
    last_op: str
    established: int  # wall-clock ms
    timeout: int
    last_cxid: int  # -1 before the first request
    last_zxid: int
    last_response: int
    last_latency: int
    min_latency: int
    avg_latency: int  # rounded down, as ZooKeeper's per-connection average
    max_latency: int


def connections(server: Server) -> list[Connection]:
    """Every connection, in the engine's order."""
    engine = server.engine
    secure = server.secure_clients()
    return [_connection(engine.sessions.get(c.session_id) if c.session_id else None,
                        c, c in secure)
            for c in engine.clients]


def _connection(info: Any, c: Client, secure: bool) -> Connection:
    counts = c.stats
    latency = counts.latency
    return Connection(
        c.remote, secure, len(c.queue), counts.received, counts.sent, c.session_id,
        counts.last_op, c.established, info.timeout if info else 0, counts.last_cxid,
        counts.last_zxid, c.last_response, counts.last_latency, latency.min,
        latency.total // latency.count if latency.count else 0, latency.max)


def reset_connection_stats(server: Server) -> None:
    """`crst`."""
    for c in server.engine.clients:
        c.stats.reset()


def non_mtls_connections(server: Server) -> tuple[int, int]:
    """(local, remote) connections without a client certificate (ZooKeeper's non_mtls_*)."""
    local = remote = 0
    for c in server.engine.clients:
        if any(scheme == "x509" for scheme, _ in c.auth_ids):
            continue
        try:
            loopback = ipaddress.ip_address(c.remote[0]).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            local += 1
        else:
            remote += 1
    return local, remote


# -- watches (data watches, as ZooKeeper's wchs/wchc/wchp count them) ---------------------------


@attrs.frozen
class WatchSummary:
    connections: int
    paths: int
    total: int


def watch_summary(server: Server) -> WatchSummary:
    table = server.engine.tree.watches.data
    return WatchSummary(len(table.by_watcher), len(table.by_path), table.count())


def watches_by_session(server: Server) -> list[tuple[int, list[str]]]:
    """(session id, its watched paths sorted), one per watching connection."""
    table = server.engine.tree.watches.data
    return [(w.session_id, sorted(paths)) for w, paths in table.by_watcher.items()]


def watches_by_path(server: Server) -> list[tuple[str, list[int]]]:
    """(path, the session ids watching it), by path."""
    table = server.engine.tree.watches.data
    return [(path, [w.session_id for w in watchers])
            for path, watchers in sorted(table.by_path.items())]


# -- sessions and ephemerals (dump) ---------------------------------------------------------------


def session_count(server: Server) -> int:
    return len(server.engine.sessions.sessions)


def expiry(server: Server) -> list[tuple[int, list[int]]]:
    """(deadline on the monotonic clock, the session ids due then, sorted), by deadline."""
    return [(at, sorted(sids)) for at, sids in sorted(server.engine.sessions.buckets.items())]


def ephemerals(server: Server) -> list[tuple[int, list[str]]]:
    """(session id, its ephemeral paths sorted), by session id."""
    return [(sid, sorted(paths)) for sid, paths in sorted(server.engine.tree.ephemerals.items())]


# -- the machine ----------------------------------------------------------------------------------


def environment() -> list[tuple[str, str]]:
    """`envi`: ZooKeeper's Java property names, answered with this process's own values."""
    return [
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


def dir_size(path: str) -> int:
    """Bytes in the files under `path` (dataDirSize, dataLogSize)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


# -- the metric sets ------------------------------------------------------------------------------


def mntr(server: Server) -> dict[str, object]:
    """The values of `mntr`, in ZooKeeper's names (without `zk_`)."""
    engine = server.engine
    counts = engine.stats
    tree = engine.tree
    last, smallest, largest = response_sizes(server)
    local = len(handshake.local_sessions(engine)) if engine.read_only else 0
    return {
        "version": VERSION_LINE,
        "server_state": server.mode,
        "avg_latency": counts.latency.average(),
        "max_latency": counts.latency.max,
        "min_latency": counts.latency.min,
        "packets_received": counts.received,
        "packets_sent": counts.sent,
        "num_alive_connections": len(engine.clients),
        "outstanding_requests": outstanding(server),
        "uptime": uptime(server),
        "znode_count": tree.node_count(),
        "watch_count": tree.watches.data.count() + tree.watches.child.count(),
        "ephemerals_count": sum(len(p) for p in tree.ephemerals.values()),
        "approximate_data_size": tree.approximate_data_size(),
        "global_sessions": session_count(server) - local,
        "local_sessions": local,
        "open_file_descriptor_count": _open_fds(),
        "max_file_descriptor_count": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "connection_drop_probability": 0.0,
        "auth_failed_count": counts.auth_failed,
        "outstanding_tls_handshake": 0,
        "last_client_response_size": last,
        "min_client_response_size": smallest,
        "max_client_response_size": largest,
        **server.commit_path.metrics(),
    }


def gauges(server: Server) -> dict[str, object]:
    """mntr's values with the live TLS and certificate figures: the Prometheus gauges."""
    values = mntr(server)
    values["outstanding_tls_handshake"] = server.tls_handshakes_in_progress
    local, remote = non_mtls_connections(server)
    values["non_mtls_remote_conn_count"] = remote
    values["non_mtls_local_conn_count"] = local
    return values


def counters(server: Server) -> dict[str, int]:
    """Counters ZooKeeper keeps in ServerMetrics where zkserver has the same event."""
    return {
        "bytes_received_count": server.bytes_received,
        "connection_request_count": server.connections_accepted,
        "connection_rejected": server.connections_rejected,
        "unsuccessful_handshake": server.unsuccessful_handshakes,
    }


def monitor(server: Server) -> dict[str, object]:
    """The AdminServer's `monitor`: the gauges, the counters, and each summary (fsynctime) as
    avg/min/max/cnt/sum."""
    out: dict[str, object] = {**gauges(server), **counters(server)}
    for s in server.metrics.summaries:
        out[f"avg_{s.name}"] = round(s.total / s.count, 4) if s.count else 0.0
        out[f"min_{s.name}"] = round(s.min or 0)
        out[f"max_{s.name}"] = round(s.max or 0)
        out[f"cnt_{s.name}"] = s.count
        out[f"sum_{s.name}"] = round(s.total)
    return out


# -- the ensemble ---------------------------------------------------------------------------------


def last_snapshot(server: Server) -> tuple[int, int]:
    """(zxid, file mtime in s) of the newest snapshot; (-1, -1) when there is none."""
    from zkserver.storage import snapshot as snapmod

    snaps = snapmod.snapshots(server.disk, server.snap_dir)
    if not snaps:
        return -1, -1
    zxid, path = snaps[0]
    try:
        stamp = int(os.path.getmtime(path))
    except OSError:
        stamp = -1
    return zxid, stamp


@attrs.frozen
class Leader:
    is_leader: bool
    leader_id: int  # -1 while there is none
    leader_ip: str


def leader(server: Server) -> Leader | None:
    """Who leads the ensemble; None on a standalone server."""
    peer = getattr(server.commit_path, "peer", None)
    if peer is None:
        return None
    lead = peer.leader
    spec = server.config.servers.get(lead) if lead is not None else None
    return Leader(server.mode == "leader", lead if lead is not None else -1,
                  spec.host if spec is not None else "")


def synced_observers(server: Server) -> list[int]:
    """The server ids of the observers synced with this leader (none unless it leads)."""
    peer = getattr(server.commit_path, "peer", None)
    if peer is None or server.mode != "leader":
        return []
    return [sid for sid, lr in sorted(peer.learners.items())
            if lr.observer and lr.stage == LearnerStage.ACKED]


def zab_state(server: Server) -> tuple[bool, str] | None:
    """(voting, ZAB phase: election, synchronization or broadcast); None when standalone."""
    peer = getattr(server.commit_path, "peer", None)
    if peer is None:
        return None
    voting = server.config.peer_type == "participant"
    if server.mode in ("looking", "read-only"):
        state = "election"
    elif peer.serving:
        state = "broadcast"
    else:
        state = "synchronization"
    return voting, state
