"""The AdminServer: ZooKeeper's HTTP/JSON commands (`/commands/<name>`), on Trio and h11.

    admin.enableServer=true          (ZooKeeper's default up to 3.9; zkserver's built-in
    admin.serverAddress=0.0.0.0       developer config turns it off)
    admin.serverPort=8080
    admin.commandURL=/commands

`GET /commands` lists the commands as ZooKeeper's CommandListServlet does (a link per primary
name); `GET /commands/<name or alias>` runs one and answers a JSON object with the command's
own fields, then `"command"` (the primary name) and `"error"` (null when it worked), laid out
the way Jackson's pretty printer lays it out. An unknown name is answered 200 with an
`"error"`, as ZooKeeper does. Unlike the four-letter words, the admin commands are not limited
by `4lw.commands.whitelist`. `snapshot` (GET) and `restore` (POST) need authentication as in
ZooKeeper 3.9 (`admin_auth.py`, `admin_snapshot.py`); the port speaks HTTPS with
`admin.forceHttps` or `admin.portUnification` (`admin_tls.py`).

The small HTTP/1.1 server here is shared with the Prometheus endpoint (`metrics.py`).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import h11
import trio

from zkserver.server import admin_auth, admin_snapshot, admin_tls, stats
from zkserver.server import tls as tls_mod
from zkserver.server.admin_tls import AdminTLS
from zkserver.tree import acl as aclmod

if TYPE_CHECKING:
    from zkserver.server.server import Server

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 30.0  # admin.idleTimeout
MAX_REQUEST = 64 * 1024

Response = tuple[int, str, bytes]  # status, content type, body
Handler = Callable[[str, str], Response | Awaitable[Response]]
MAX_BODY = 4 * 1024 * 1024  # a mounted application's request body (a znode's data, as a form)


@attrs.frozen
class Request:
    """A whole request, for an application mounted under a prefix (the web console)."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    peer: str = ""  # the client's IP address
    x509: str | None = None  # the `x509` id of a client certificate TLS verified
    secure: bool = False  # came over HTTPS


@attrs.frozen
class Reply:
    """A mounted application's answer: `body` is bytes, or an async iterator of chunks for a
    stream (server-sent events) that ends when the iterator does or the peer goes away."""

    status: int
    content_type: str
    body: bytes | AsyncIterator[bytes]
    headers: tuple[tuple[str, str], ...] = ()


App = Callable[[Request], Awaitable[Reply]]
# Looks at a request before its body is read (`body` is empty): the largest body to accept,
# or a Reply to answer at once without reading it (the connection then closes).
Admission = Callable[[Request], "int | Reply"]
# (path prefix, application[, admission]); without an admission, bodies up to MAX_BODY.
Mount = tuple[str, App] | tuple[str, App, Admission]


# -- a small HTTP/1.1 server ----------------------------------------------------------------------


async def serve_http(handler: Handler, host: str, port: int, what: str, *,
                     mount: Mount | None = None, mounts: Sequence[Mount] = (),
                     tls: AdminTLS | None = None,
                     task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
                     ) -> None:
    """Serve `handler(method, target)` on host:port; started with the bound address. Requests
    under a mount's prefix go whole (headers and body) to its application instead. With `tls`,
    connections speak HTTPS (and plain HTTP too when it is `unified`)."""
    all_mounts = [*mounts, *([mount] if mount is not None else [])]
    try:
        listeners = await trio.open_tcp_listeners(port, host=host or None)
    except OSError as e:
        raise OSError(e.errno, f"{what} {host or '*'}:{port}: {e.strerror}") from e
    address = listeners[0].socket.getsockname()[:2]
    scheme = "http" if tls is None else "https"
    log.info("%s at %s://%s:%d/%s", what, scheme, *address,
             " (and http)" if tls is not None and tls.unified else "")
    task_status.started((str(address[0]), int(address[1])))

    async def connection(stream: trio.SocketStream) -> None:
        peer = _peer_ip(stream)
        try:
            if tls is None:
                await _http_connection(handler, stream, all_mounts, peer)
                return
            secure = await _maybe_tls(stream, tls)
            if secure is None:
                await _http_connection(handler, stream, all_mounts, peer)
                return
            der = secure.getpeercert(binary_form=True)
            x509 = tls_mod.x509_identity(der) if der else None
            await _http_connection(handler, secure, all_mounts, peer, x509, True)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        except Exception:  # one connection's failure must never take the listener down
            log.exception("%s: a connection from %s failed", what, peer)
        finally:
            await trio.aclose_forcefully(stream)

    await trio.serve_listeners(connection, listeners)


async def _maybe_tls(stream: trio.SocketStream, tls: AdminTLS) -> trio.SSLStream | None:
    """The connection's TLS stream after the handshake; None: a plain HTTP client on a
    unified port. Raises BrokenResourceError when the handshake fails or times out."""
    if tls.unified:
        with trio.move_on_after(IDLE_TIMEOUT):
            first = await stream.socket.recv(1, socket.MSG_PEEK)
        if not first:
            raise trio.BrokenResourceError("closed before a request")
        if first[0] != admin_tls.TLS_HANDSHAKE_RECORD:
            return None
    secure = trio.SSLStream(stream, tls.context, server_side=True)
    with trio.move_on_after(IDLE_TIMEOUT):
        await secure.do_handshake()
        return secure
    raise trio.BrokenResourceError("TLS handshake timed out")


def _peer_ip(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except OSError:
        return ""


def _mount_for(mounts: Sequence[Mount], target: str) -> Mount | None:
    for m in mounts:
        if _under(target, m[0]):
            return m
    return None


async def _http_connection(handler: Handler, stream: trio.abc.Stream,
                           mounts: Sequence[Mount] = (), peer: str = "",
                           x509: str | None = None, secure: bool = False) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
    extra = (("Strict-Transport-Security", admin_tls.STS),) if secure else ()
    while True:
        request = None
        mount: Mount | None = None
        limit = 0
        body = bytearray()
        with trio.move_on_after(IDLE_TIMEOUT):
            try:
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await stream.receive_some(16384)
                        conn.receive_data(data)
                        continue
                    if isinstance(event, h11.Request):
                        request = event
                        mount = _mount_for(mounts, request.target.decode("latin-1"))
                        limit = MAX_BODY
                        if mount is not None and len(mount) > 2:
                            admitted = mount[2](_request(request, b"", peer, x509, secure))
                            if isinstance(admitted, Reply):
                                await _send_reply(stream, conn, attrs.evolve(
                                    admitted, headers=(*admitted.headers, *extra,
                                                       ("Connection", "close"))),
                                    request.method)
                                return
                            limit = admitted
                    elif isinstance(event, h11.Data):
                        if mount is None:
                            continue  # the plain handler takes no body
                        body += event.data
                        if len(body) > limit:
                            await _send(stream, conn, 413, "text/plain",
                                        b"request body too large\n", b"GET")
                            return
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                        return
            except h11.RemoteProtocolError as e:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await _send(stream, conn, e.error_status_hint, "text/plain",
                                f"{e}\n".encode(), b"GET")
                return
        if request is None:
            return  # idle for too long
        method = request.method.decode("latin-1")
        target = request.target.decode("latin-1")
        if mount is not None:
            reply = await mount[1](_request(request, bytes(body), peer, x509, secure))
            if extra:
                reply = attrs.evolve(reply, headers=(*reply.headers, *extra))
            if not await _send_reply(stream, conn, reply, request.method):
                return
        else:
            if method not in ("GET", "HEAD", "POST"):
                status, ctype, out = 405, "text/plain", b"method not allowed\n"
            else:
                result = handler(method, target)
                if not isinstance(result, tuple):
                    result = await result
                status, ctype, out = result
            await _send(stream, conn, status, ctype, out, request.method, extra)
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return


def _request(request: h11.Request, body: bytes, peer: str, x509: str | None,
             secure: bool) -> Request:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
    return Request(request.method.decode("latin-1"), request.target.decode("latin-1"),
                   headers, body, peer, x509, secure)


async def _send(stream: trio.abc.Stream, conn: h11.Connection, status: int, ctype: str,
                body: bytes, method: bytes, extra: Sequence[tuple[str, str]] = ()) -> None:
    headers = [("Content-Type", ctype), ("Content-Length", str(len(body))),
               ("Server", "zkserver"), *extra]
    out = conn.send(h11.Response(status_code=status, headers=headers))
    if method != b"HEAD":
        out += conn.send(h11.Data(data=body))
    out += conn.send(h11.EndOfMessage())
    await stream.send_all(out)


def _under(target: str, prefix: str) -> bool:
    path = urlsplit(target).path
    return path == prefix or path.startswith(prefix + "/")


async def _send_reply(stream: trio.abc.Stream, conn: h11.Connection, reply: Reply,
                      method: bytes) -> bool:
    """Send a mounted application's reply; False when the connection cannot be reused."""
    headers = [("Content-Type", reply.content_type), ("Server", "zkserver"), *reply.headers]
    if isinstance(reply.body, bytes):
        headers.append(("Content-Length", str(len(reply.body))))
        out = conn.send(h11.Response(status_code=reply.status, headers=headers))
        if method != b"HEAD":
            out += conn.send(h11.Data(data=reply.body))
        out += conn.send(h11.EndOfMessage())
        await stream.send_all(out)
        return True
    # A stream: chunked, and the connection is not reused after it. It ends when the
    # application's iterator does, or as soon as the peer closes its side (read here, so a
    # browser that went away frees what the stream holds at once, not at the next send).
    headers += [("Cache-Control", "no-store"), ("Connection", "close")]
    await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers)))
    chunks = reply.body
    try:
        if method == b"HEAD":
            await stream.send_all(conn.send(h11.EndOfMessage()))
            return False
        async with trio.open_nursery() as nursery:
            async def until_peer_closes() -> None:
                try:
                    while await stream.receive_some(4096):
                        pass
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(until_peer_closes)
            try:
                async for chunk in chunks:
                    await stream.send_all(conn.send(h11.Data(data=chunk)))
                await stream.send_all(conn.send(h11.EndOfMessage()))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass  # the peer went away mid-send: the stream simply ends
            nursery.cancel_scope.cancel()
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with trio.CancelScope(shield=True):
                await aclose()
    return False


# -- JSON as ZooKeeper's Jackson writes it ---------------------------------------------------------


def jackson(value: Any, indent: int = 0) -> str:
    """Jackson's default pretty printer: `"key" : value`, arrays inline, two-space indent."""
    if isinstance(value, dict):
        if not value:
            return "{ }"
        pad = "  " * (indent + 1)
        items = [f"{pad}{json.dumps(str(k), ensure_ascii=False)} : {jackson(v, indent + 1)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(jackson(v, indent) for v in value) + " ]"
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else '"NaN"'
    return json.dumps(value, ensure_ascii=False)


# -- the commands -------------------------------------------------------------------------------


def _hex(n: int) -> str:
    return format(n & 0xFFFFFFFFFFFFFFFF, "x")


def _client_response(server: Server) -> dict[str, int]:
    last, smallest, largest = stats.response_sizes(server)
    return {"last_buffer_size": last, "min_buffer_size": smallest, "max_buffer_size": largest}


def _server_stats(server: Server) -> dict[str, Any]:
    s = stats.summary(server)
    cfg = server.config
    local, remote = stats.non_mtls_connections(server)
    return {
        "packets_sent": s.sent,
        "packets_received": s.received,
        "fsync_threshold_exceed_count": 0,
        "client_response_stats": _client_response(server),
        "uptime": stats.uptime(server),
        "data_dir_size": stats.dir_size(cfg.data_dir),
        "log_dir_size": stats.dir_size(cfg.data_log_dir),
        "provider_null": False,
        "server_state": s.mode,
        "last_processed_zxid": s.zxid,
        "outstanding_requests": s.outstanding,
        "avg_latency": s.avg_latency,
        "max_latency": s.max_latency,
        "min_latency": s.min_latency,
        "num_alive_client_connections": s.connections,
        "auth_failed_count": stats.auth_failed(server),
        "non_mtlsremote_conn_count": remote,
        "non_mtlslocal_conn_count": local,
    }


def _srvr(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return {
        "version": stats.VERSION_LINE,
        "read_only": stats.read_only(server),
        "server_stats": _server_stats(server),
        "client_response": _client_response(server),
        "node_count": stats.summary(server).node_count,
    }


def _brief(c: stats.Connection) -> dict[str, Any]:
    host, port = c.remote
    return {"remote_socket_address": f"{host}:{port}", "interest_ops": 1,
            "outstanding_requests": c.queued, "packets_received": c.received,
            "packets_sent": c.sent}


def _full(c: stats.Connection) -> dict[str, Any]:
    out = _brief(c)
    if c.session_id:
        out.update({
            "session_id": c.session_id,
            "last_operation": c.last_op,
            "established": c.established,
            "session_timeout": c.timeout,
            "last_cxid": c.last_cxid,
            "last_zxid": c.last_zxid,
            "last_response_time": c.last_response,
            "last_latency": c.last_latency,
            "min_latency": c.min_latency,
            "avg_latency": c.avg_latency,
            "max_latency": c.max_latency,
        })
    return out


def _split_clients(server: Server) -> tuple[list[stats.Connection], list[stats.Connection]]:
    conns = sorted(stats.connections(server), key=lambda c: c.remote)
    return [c for c in conns if not c.secure], [c for c in conns if c.secure]


def _stat(server: Server, args: dict[str, str]) -> dict[str, Any]:
    plain, secure = _split_clients(server)
    return {**_srvr(server, args), "connections": [_brief(c) for c in plain],
            "secure_connections": [_brief(c) for c in secure]}


def _cons(server: Server, args: dict[str, str]) -> dict[str, Any]:
    plain, secure = _split_clients(server)
    return {"connections": [_full(c) for c in plain],
            "secure_connections": [_full(c) for c in secure]}


def _conf(server: Server, args: dict[str, str]) -> dict[str, Any]:
    cfg = server.config
    min_timeout, max_timeout = stats.session_timeouts(server)
    out: dict[str, Any] = {
        "client_port": cfg.client_port if cfg.client_port is not None else -1,
        "data_dir": os.path.join(cfg.data_dir, "zkserver"),
        "data_log_dir": os.path.join(cfg.data_log_dir, "zkserver"),
        "tick_time": cfg.tick_time,
        "max_client_cnxns": cfg.max_client_cnxns,
        "min_session_timeout": min_timeout,
        "max_session_timeout": max_timeout,
        "server_id": cfg.server_id if cfg.is_quorum else 0,
        "client_port_listen_backlog": cfg.client_port_listen_backlog,
    }
    if cfg.secure_client_port is not None:
        out["secure_client_port"] = cfg.secure_client_port
    return out


def _crst(server: Server, args: dict[str, str]) -> dict[str, Any]:
    stats.reset_connection_stats(server)
    return {}


def _srst(server: Server, args: dict[str, str]) -> dict[str, Any]:
    stats.reset_server_stats(server)
    return {}


def _dirs(server: Server, args: dict[str, str]) -> dict[str, Any]:
    cfg = server.config
    return {"datadir_size": stats.dir_size(cfg.data_dir),
            "logdir_size": stats.dir_size(cfg.data_log_dir)}


def _dump(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return {
        "expiry_time_to_session_ids": {str(at): sids for at, sids in stats.expiry(server)},
        "session_id_to_ephemeral_paths": {str(sid): paths
                                          for sid, paths in stats.ephemerals(server)},
    }


def _envi(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return dict(stats.environment())


def _hash(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return {"digests": [{"zxid": zxid, "digest": digest}
                        for zxid, digest in stats.digests(server)]}


def _gtmk(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return {"tracemask": server.trace_mask}


def _stmk(server: Server, args: dict[str, str]) -> dict[str, Any]:
    try:
        server.trace_mask = int(args["traceMask"])
    except (KeyError, ValueError):
        return {"error": "setTraceMask requires long traceMask argument"}
    return {"tracemask": server.trace_mask}


def _icfg(server: Server, args: dict[str, str]) -> dict[str, Any]:
    source = server.config.source
    text = ""
    if source and os.path.isfile(source):
        with open(source, encoding="utf-8", errors="replace") as f:
            text = f.read()
    return {"initial_configuration": text}


def _isro(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return {"read_only": stats.read_only(server)}


def _lsnp(server: Server, args: dict[str, str]) -> dict[str, Any]:
    zxid, stamp = stats.last_snapshot(server)
    return {"zxid": _hex(zxid), "timestamp": stamp}


def _lead(server: Server, args: dict[str, str]) -> dict[str, Any]:
    lead = stats.leader(server)
    if lead is None:
        return {"error": "server is not initialized"}
    return {"is_leader": lead.is_leader, "leader_id": lead.leader_id,
            "leader_ip": lead.leader_ip}


def _monitor(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return stats.monitor(server)


def _obsr(server: Server, args: dict[str, str]) -> dict[str, Any]:
    observers = [{"sid": sid} for sid in stats.synced_observers(server)]
    return {"synced_observers": len(observers), "observers": observers}


def _orst(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return {}


def _ruok(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return {}


def _sysp(server: Server, args: dict[str, str]) -> dict[str, Any]:
    props = {k: v for k, v in sorted(server.config.properties.items())
             if k.startswith("zookeeper.")}
    props.update({"os.name": platform.system(), "os.arch": platform.machine(),
                  "python.version": platform.python_version(), "python.executable":
                  sys.executable, "user.dir": os.getcwd()})
    return props


def _voting_view(server: Server, args: dict[str, str]) -> dict[str, Any]:
    cfg = server.config
    view = {}
    if cfg.is_quorum:
        for sid, s in sorted(cfg.servers.items()):
            client = f"{s.client_host or '0.0.0.0'}:{s.client_port}" if s.client_port else ""
            view[str(sid)] = (f"{s.host}:{s.quorum_port}:{s.election_port}:{s.peer_type}"
                              + (f";{client}" if client else ""))
    return {"current_config": view}


def _wchs(server: Server, args: dict[str, str]) -> dict[str, Any]:
    w = stats.watch_summary(server)
    return {"num_connections": w.connections, "num_paths": w.paths,
            "num_total_watches": w.total}


def _wchc(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return {"session_id_to_watched_paths": {
        str(sid): paths for sid, paths in stats.watches_by_session(server)}}


def _wchp(server: Server, args: dict[str, str]) -> dict[str, Any]:
    return {"path_to_session_ids": {
        path: sorted(sids) for path, sids in stats.watches_by_path(server)}}


def _zabstate(server: Server, args: dict[str, str]) -> dict[str, Any]:
    zab = stats.zab_state(server)
    if zab is None:
        return {"voting": False, "zabstate": ""}
    voting, state = zab
    return {"voting": voting, "zabstate": state}


Command = Callable[["Server", dict[str, str]], dict[str, Any]]

# (names, needs a serving server, function): the first name is the primary one.
COMMANDS: list[tuple[tuple[str, ...], bool, Command]] = [
    (("configuration", "conf", "config"), True, _conf),
    (("connection_stat_reset", "crst"), True, _crst),
    (("connections", "cons"), True, _cons),
    (("dirs",), True, _dirs),
    (("dump",), True, _dump),
    (("environment", "env", "envi"), False, _envi),
    (("get_trace_mask", "gtmk"), False, _gtmk),
    (("hash",), True, _hash),
    (("initial_configuration", "icfg"), True, _icfg),
    (("is_read_only", "isro"), True, _isro),
    (("last_snapshot", "lsnp"), True, _lsnp),
    (("leader", "lead"), True, _lead),
    (("monitor", "mntr"), False, _monitor),
    (("observer_connection_stat_reset", "orst"), True, _orst),
    (("observers", "obsr"), True, _obsr),
    (("ruok",), True, _ruok),
    (("server_stats", "srvr"), True, _srvr),
    (("set_trace_mask", "stmk"), False, _stmk),
    (("stat_reset", "srst"), True, _srst),
    (("stats", "stat"), True, _stat),
    (("system_properties", "sysp"), False, _sysp),
    (("voting_view",), True, _voting_view),
    (("watch_summary", "wchs"), True, _wchs),
    (("watches", "wchc"), True, _wchc),
    (("watches_by_path", "wchp"), True, _wchp),
    (("zabstate",), True, _zabstate),
]
_BY_NAME = {name: (names[0], needs, fn) for names, needs, fn in COMMANDS for name in names}
PRIMARY_NAMES = sorted(names[0] for names, _, _ in COMMANDS)


def run_command(server: Server, name: str, args: dict[str, str] | None = None
                ) -> dict[str, Any]:
    """One admin command's JSON object (as a dict), ZooKeeper's fields and order."""
    found = _BY_NAME.get(name)
    if found is None:
        return {"command": name, "error": f"Unknown command: {name}"}
    primary, needs_server, fn = found
    if needs_server and not server.is_serving():
        return {"command": primary,
                "error": "This ZooKeeper instance is not currently serving requests"}
    out = fn(server, args or {})
    if "error" in out:  # the command failed: ZooKeeper puts "error" first
        return {"error": out["error"], "command": primary,
                **{k: v for k, v in out.items() if k != "error"}}
    return {**out, "command": primary, "error": None}


# Commands that need authentication (ZooKeeper 3.9): names, HTTP method, ACL permission on "/".
SNAPSHOT_NAMES = ("snapshot", "snap")
RESTORE_NAMES = ("restore", "rest")
AUTH_COMMANDS = {name: names for names in (SNAPSHOT_NAMES, RESTORE_NAMES) for name in names}
PRIMARY_NAMES = sorted([*PRIMARY_NAMES, SNAPSHOT_NAMES[0], RESTORE_NAMES[0]])
RATE_LIMIT_MS = 300_000  # admin.rateLimiterIntervalInMS
MAX_RESTORE = 1 << 30  # the largest snapshot a restore accepts (it is held in memory)


def command_list(base: str) -> str:
    return "".join(f'<a href="{base}/{name}">{name}</a>\n<br/>\n' for name in PRIMARY_NAMES)


def _json(status: int, out: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()
          ) -> Reply:
    return Reply(status, "application/json", (jackson(out) + "\n").encode(), headers)


def _answer(command: str, status: int = 200, error: str | None = None,
            data: dict[str, Any] | None = None,
            headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """ZooKeeper's CommandResponse as JSON: the command's own fields, "command", "error"."""
    return _json(status, {**(data or {}), "command": command, "error": error}, headers)


def _flag(server: Server, key: str, default: bool) -> bool:
    value = server.config.properties.get(f"zookeeper.{key}")
    return default if value is None else value.strip().lower() == "true"


class Commands:
    """The `/commands` application: every command, with 3.9's authenticated ones; it holds
    their rate limiters for the life of the AdminServer."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.base = "/" + server.config.admin_command_url.strip("/")
        props = server.config.properties
        try:
            interval = int(props.get("zookeeper.admin.rateLimiterIntervalInMS", RATE_LIMIT_MS))
        except ValueError:
            interval = RATE_LIMIT_MS
        self.snapshot_limit = admin_snapshot.RateLimiter(interval / 1000)
        self.restore_limit = admin_snapshot.RateLimiter(interval / 1000)
        self.restoring = trio.Lock()  # one restore at a time, even with a short rate limit
        self.auth = admin_auth.Settings(
            super_digest=server.config.super_digest,
            x509_super_user=server.x509_super_user,
            use_x_forwarded_for=_flag(server, "IPAuthenticationProvider.usexforwardedfor",
                                      False),
            skip_acl=server.config.skip_acl)

    @property
    def mount(self) -> Mount:
        return (self.base, self.handle, self.admit)

    def _name(self, target: str) -> str:
        return (unquote(urlsplit(target).path).rstrip("/") or "/")[len(self.base) + 1:]

    def _refusal(self, name: str, request: Request) -> Reply | None:
        """ZooKeeper's checks before an authenticated command runs, as a reply (or None)."""
        if not self.server.is_serving():
            return _answer(name, 200, "This ZooKeeper instance is not currently serving "
                                      "requests")
        refusal = admin_auth.authorize(
            request.headers.get("authorization"),
            admin_auth.Caller(request.peer, request.headers.get("x-forwarded-for"),
                              request.x509),
            self.auth, self.server.engine.tree.nodes["/"].acl)
        if refusal is None:
            return None
        log.warning("admin command %s refused to %s: %s", name, request.peer, refusal.error)
        return _answer(name, refusal.status, refusal.error)

    def admit(self, request: Request) -> int | Reply:
        """Only an authorized restore may send a snapshot's worth of body; anyone else who
        sends one to restore is refused before it is read."""
        name = self._name(request.target)
        if request.method == "POST" and name in RESTORE_NAMES:
            refusal = self._refusal(name, request)
            return MAX_RESTORE if refusal is None else refusal
        return MAX_BODY

    async def handle(self, request: Request) -> Reply:
        url = urlsplit(request.target)
        path = unquote(url.path).rstrip("/") or "/"
        if path == self.base:
            return Reply(200, "text/html", command_list(self.base).encode())
        name = path[len(self.base) + 1:]
        if request.method not in ("GET", "HEAD", "POST"):
            return Reply(405, "text/plain", b"method not allowed\n")
        post = request.method == "POST"
        names = AUTH_COMMANDS.get(name)
        if names is None:
            if post and name in _BY_NAME:
                return _answer(name, 405, "this command is run with GET")
            args = {k: v[-1] for k, v in parse_qs(url.query).items()}
            return _json(200, run_command(self.server, name, args))
        refusal = self._refusal(name, request)
        if refusal is not None:
            return refusal
        if names is SNAPSHOT_NAMES:
            if post:
                return _answer(name, 405, "snapshot is run with GET")
            return await self._snapshot(url.query)
        if not post:
            return _answer(name, 405, "restore takes the snapshot as a POST body")
        return await self._restore(request.body)

    async def _snapshot(self, query: str) -> Reply:
        name = SNAPSHOT_NAMES[0]
        if not _flag(self.server, "admin.snapshot.enabled", True):
            return _answer(name, 503)
        if not self.snapshot_limit.allow():
            log.warning("snapshot request was rate limited")
            return _answer(name, 429)
        args = {k: v[-1] for k, v in parse_qs(query).items()}
        streaming = args.get("streaming", "true").lower() == "true"  # Boolean.parseBoolean
        try:
            zxid, data = await admin_snapshot.take(self.server)
        except admin_snapshot.SnapshotError as e:
            log.warning("snapshot command failed: %s", e)
            return _answer(name, 500, str(e))
        except Exception as e:  # e.g. a log segment that cannot be read: this request fails
            log.exception("snapshot command failed")
            return _answer(name, 500, f"snapshot failed: {e}")
        headers = (("last_zxid", "0x" + _hex(zxid)), ("snapshot_size", str(len(data))))
        log.info("snapshot command: %d bytes at zxid %#x%s", len(data), zxid,
                 " streamed" if streaming else "")
        if streaming:
            return Reply(200, "application/octet-stream", data, headers)
        return _answer(name, headers=headers)

    async def _restore(self, body: bytes) -> Reply:
        name = RESTORE_NAMES[0]
        if not _flag(self.server, "admin.restore.enabled", True):
            return _answer(name, 503)
        if not self.restore_limit.allow():
            log.warning("restore request was rate limited")
            return _answer(name, 429)
        try:
            async with self.restoring:
                zxid = await admin_snapshot.restore(self.server, body)
        except admin_snapshot.SnapshotError as e:
            log.warning("restore command failed: %s", e)
            return _answer(name, 500, str(e))
        except Exception as e:  # a body the readers did not foresee: this request fails
            log.exception("restore command failed")
            return _answer(name, 500, f"restore failed: {e}")
        log.info("restore command: the tree was replaced (zxid now %#x)", zxid)
        return _answer(name, data={"last_zxid": zxid})


def _not_found(method: str, target: str) -> Response:
    return 404, "text/plain", b"not found\n"


async def serve(server: Server, *,
                task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
                ) -> None:
    cfg = server.config
    tls = admin_tls.from_config(cfg.properties, cfg.ssl)
    if tls is not None:
        aclmod.register_scheme("x509", tls_mod.valid_dn)  # identities HTTPS can prove
    commands = Commands(server)
    if not cfg.admin_console_enabled:
        await serve_http(_not_found, cfg.admin_server_address, cfg.admin_server_port,
                         "admin server", mounts=[commands.mount], tls=tls,
                         task_status=task_status)
        return
    from zkserver.console.app import Console  # the web console lives on the same port

    async with Console.running(server) as console:
        mounts = [commands.mount, *([(console.PREFIX, console.handle)] if console else [])]
        await serve_http(_not_found, cfg.admin_server_address, cfg.admin_server_port,
                         "admin server", mounts=mounts, tls=tls, task_status=task_status)
