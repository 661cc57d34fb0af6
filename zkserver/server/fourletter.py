"""Four-letter words on the client port, in ZooKeeper's output formats.

A four-letter word is recognised only in the first four bytes of a brand-new connection; the
answer is plain text, after which the connection closes. Commands outside
`4lw.commands.whitelist` get ZooKeeper's refusal line. Monitoring tools parse these texts
(`Mode:` in srvr, the tab-separated `mntr`), so the formats follow ZooKeeper's to the character.
"""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

import trio

from zkserver.server import stats
from zkserver.server.stats import VERSION_LINE

if TYPE_CHECKING:
    from zkserver.server.server import Server

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
    if cmd == "isro":  # kazoo's and ZooKeeper's clients move to a server answering "rw"
        if not server.is_serving():
            return "null"
        return "ro" if stats.read_only(server) else "rw"
    if not server.is_serving():
        return "This ZooKeeper instance is not currently serving requests\n"
    return _COMMANDS[cmd](server, rest)


def _hex(n: int) -> str:
    return "0x" + format(n & 0xFFFFFFFFFFFFFFFF, "x")


def _summary(server: Server) -> str:
    s = stats.summary(server)
    return (f"Latency min/avg/max: {s.min_latency}/{s.avg_latency}/{s.max_latency}\n"
            f"Received: {s.received}\n"
            f"Sent: {s.sent}\n"
            f"Connections: {s.connections}\n"
            f"Outstanding: {s.outstanding}\n"
            f"Zxid: {_hex(s.zxid)}\n"
            f"Mode: {s.mode}\n"
            f"Node count: {s.node_count}\n")


def _version(server: Server) -> str:
    text = f"Zookeeper version: {VERSION_LINE}\n"
    if stats.read_only(server):
        text += "READ-ONLY mode; serving only read-only clients\n"
    return text


def _srvr(server: Server, rest: bytes) -> str:
    return _version(server) + _summary(server)


def _client_brief(c: stats.Connection) -> str:
    host, port = c.remote
    return f" /{host}:{port}[1](queued={c.queued},recved={c.received},sent={c.sent}"


def _stat(server: Server, rest: bytes) -> str:
    lines = ["Clients:"] + [_client_brief(c) + ")" for c in stats.connections(server)]
    return _version(server) + "\n".join(lines) + "\n\n" + _summary(server)


def _cons(server: Server, rest: bytes) -> str:
    lines = []
    for c in stats.connections(server):
        s = _client_brief(c)
        if c.session_id:
            s += (f",sid={_hex(c.session_id)},lop={c.last_op},est={c.established},"
                  f"to={c.timeout},")
            if c.last_cxid >= 0:  # ZooKeeper leaves out what it has not seen yet
                s += f"lcxid={_hex(c.last_cxid)},"
            s += (f"lzxid={_hex(c.last_zxid)},lresp={c.last_response},llat={c.last_latency},"
                  f"minlat={c.min_latency},avglat={c.avg_latency},maxlat={c.max_latency}")
        lines.append(s + ")\n")
    return "".join(lines) + "\n"


def _crst(server: Server, rest: bytes) -> str:
    stats.reset_connection_stats(server)
    return "Connection stats reset.\n"


def _srst(server: Server, rest: bytes) -> str:
    stats.reset_server_stats(server)
    return "Server stats reset.\n"


def _conf(server: Server, rest: bytes) -> str:
    cfg = server.config
    min_timeout, max_timeout = stats.session_timeouts(server)
    return (f"clientPort={cfg.client_port}\n"
            f"secureClientPort={cfg.secure_client_port or -1}\n"
            f"dataDir={cfg.data_dir}\ndataDirSize={stats.dir_size(cfg.data_dir)}\n"
            f"dataLogDir={cfg.data_log_dir}\ndataLogSize={stats.dir_size(cfg.data_log_dir)}\n"
            f"tickTime={cfg.tick_time}\nmaxClientCnxns={cfg.max_client_cnxns}\n"
            f"minSessionTimeout={min_timeout}\n"
            f"maxSessionTimeout={max_timeout}\n"
            f"clientPortListenBacklog={cfg.client_port_listen_backlog}\n"
            f"serverId={cfg.server_id if cfg.is_quorum else 0}\n")


def _wchs(server: Server, rest: bytes) -> str:
    w = stats.watch_summary(server)
    return (f"{w.connections} connections watching {w.paths} paths\n"
            f"Total watches:{w.total}\n")


def _wchc(server: Server, rest: bytes) -> str:
    out = []
    for sid, paths in stats.watches_by_session(server):
        out.append(_hex(sid) + "\n")
        out += [f"\t{p}\n" for p in paths]
    return "".join(out) + "\n"


def _wchp(server: Server, rest: bytes) -> str:
    out = []
    for path, sids in stats.watches_by_path(server):
        out.append(path + "\n")
        out += [f"\t{_hex(sid)}\n" for sid in sids]
    return "".join(out) + "\n"


def _dump(server: Server, rest: bytes) -> str:
    expiry = stats.expiry(server)
    lines = ["SessionTracker dump:",
             f"Session Sets ({len(expiry)})/({stats.session_count(server)}):"]
    for at, sids in expiry:
        when = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(server.wall_of(at) / 1000))
        lines.append(f"{len(sids)} expire at {when}:")
        lines += [f"\t{_hex(sid)}" for sid in sids]
    eph = stats.ephemerals(server)
    lines += ["ephemeral nodes dump:", f"Sessions with Ephemerals ({len(eph)}):"]
    for sid, paths in eph:
        lines.append(f"{_hex(sid)}:")
        lines += [f"\t{p}" for p in paths]
    conns = stats.connections(server)
    lines += ["Connections dump:", f"Connections Sets (1)/({len(conns)}):"]
    lines += [f"\tip: /{c.remote[0]}:{c.remote[1]} sessionId: {_hex(c.session_id)}"
              for c in conns]
    return "\n".join(lines) + "\n"


def _envi(server: Server, rest: bytes) -> str:
    return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in stats.environment())


def _dirs(server: Server, rest: bytes) -> str:
    cfg = server.config
    return (f"datadir_size: {stats.dir_size(cfg.data_dir)}\n"
            f"logdir_size: {stats.dir_size(cfg.data_log_dir)}\n")


def _gtmk(server: Server, rest: bytes) -> str:
    return str(server.trace_mask)


def _stmk(server: Server, rest: bytes) -> str:
    server.trace_mask = struct.unpack(">q", rest[:8])[0]
    return str(server.trace_mask)


def _hash(server: Server, rest: bytes) -> str:
    """ZooKeeper's DigestCommand: `<zxid in hex>: <digest as a Java long>` per line (the
    console compares members' digests with it)."""
    return "".join(f"{zxid:x}: {digest - (1 << 64) if digest >> 63 else digest}\n"
                   for zxid, digest in stats.digests(server))


def _mntr(server: Server, rest: bytes) -> str:
    return "".join(f"zk_{k}\t{v}\n" for k, v in stats.mntr(server).items())


_COMMANDS = {
    "srvr": _srvr, "stat": _stat, "cons": _cons, "crst": _crst, "srst": _srst, "conf": _conf,
    "wchs": _wchs, "wchc": _wchc, "wchp": _wchp, "dump": _dump, "envi": _envi, "dirs": _dirs,
    "gtmk": _gtmk, "stmk": _stmk, "mntr": _mntr, "hash": _hash,
}
