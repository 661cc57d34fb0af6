"""The request engine: ZooKeeper's request pipeline as a plain object, with no I/O and no clock.

Connections hand it decoded frames (`handshake`, `handle`) with the time, twice over: `now`,
milliseconds on the monotonic clock, for every deadline and latency, and `wall`, the wall-clock
time a write's transaction carries (ctime/mtime), so that a step of the wall clock moves
nothing but the timestamps ZooKeeper shows. It answers by appending bytes to each `Client.out`
and calling `Client.wake()`. Writes become transactions (`prep`) queued in `to_commit`; whoever
drives the engine makes them durable (or replicated) and then calls `apply_committed`, which
changes the tree, queues watch notifications on the watching connections at that moment, and
sends the writer its reply.

Order on a connection is strict: a request arriving while an earlier write of the same connection
is still uncommitted waits in `Client.queue` and runs (a read) or is answered (a write) in
arrival order. Notifications go straight out, so a client always sees an event before any reply
that reflects the change.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from zkserver.prep import Prep, Session
from zkserver.proto import records as R
from zkserver.proto.codes import (
    AUTH_XID,
    PING_XID,
    AddWatchMode,
    Err,
    EventType,
    Op,
    Perm,
    WatcherType,
)
from zkserver.proto.frames import notification, reply
from zkserver.proto.jute import JuteError, Reader, Writer
from zkserver.sessions import SessionTracker
from zkserver.tree import acl as aclmod
from zkserver.tree.datatree import DataTree, Node
from zkserver.txn import CloseSessionTxn, CreateSessionTxn, ErrorTxn, Txn

_STAT = struct.Struct(">qqqqiiiqiiq")
_pack_stat = _STAT.pack
_INT = struct.Struct(">i")
_pack_int = _INT.pack
_NULL = b"\xff\xff\xff\xff"

WRITE_OPS = frozenset({Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL, Op.DELETE,
                       Op.SET_DATA, Op.SET_ACL, Op.MULTI, Op.CLOSE_SESSION,
                       Op.RECONFIG})
CREATE_OPS = frozenset({Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL})
OP_NAMES = {
    Op.CREATE: "CREA", Op.CREATE2: "CREA", Op.CREATE_CONTAINER: "CREA", Op.CREATE_TTL: "CREA",
    Op.DELETE: "DELE", Op.EXISTS: "EXIS", Op.GET_DATA: "GETD", Op.SET_DATA: "SETD",
    Op.GET_ACL: "GACL", Op.SET_ACL: "SACL", Op.GET_CHILDREN: "GETC", Op.GET_CHILDREN2: "GETC",
    Op.SYNC: "SYNC", Op.PING: "PING", Op.MULTI: "MULT", Op.MULTI_READ: "MLTR",
    Op.CLOSE_SESSION: "CLOS", Op.AUTH: "AUTH", Op.SET_WATCHES: "SETW", Op.SET_WATCHES2: "STW2",
    Op.ADD_WATCH: "ADDW", Op.REMOVE_WATCHES: "REMW", Op.CHECK_WATCHES: "CHKW",
    Op.GET_EPHEMERALS: "GETE", Op.GET_ALL_CHILDREN_NUMBER: "GETACN", Op.WHO_AM_I: "HOMI",
}


def _buffer(b: bytes | None) -> bytes:
    return _NULL if b is None else _pack_int(len(b)) + b


def _ustring(s: str) -> bytes:
    b = s.encode()
    return _pack_int(len(b)) + b


def _strings(items: Any) -> bytes:
    parts = [_pack_int(len(items))]
    for s in items:
        b = s.encode()
        parts.append(_pack_int(len(b)))
        parts.append(b)
    return b"".join(parts)


def _acl_bytes(acl: aclmod.AclList) -> bytes:
    w = Writer().int(len(acl))
    for perms, scheme, ident in acl:
        w.int(perms).ustring(scheme).ustring(ident)
    return w.getvalue()


class Entry:
    """A request waiting its turn on a connection: an uncommitted write or a read behind one."""

    __slots__ = ("xid", "op", "req", "data", "write", "arrived")

    def __init__(self, xid: int, op: int, req: Any, write: bool, arrived: int) -> None:
        self.xid = xid
        self.op = op
        self.req = req
        self.write = write
        self.data: bytes | None = None  # the reply, once known
        self.arrived = arrived


class Client:
    """What the engine knows of one client connection."""

    __slots__ = ("remote", "out", "queue", "session_id", "auth_ids", "close_after_flush",
                 "closed", "wake", "received", "sent", "last_op", "last_cxid", "last_zxid",
                 "last_latency", "lat_min", "lat_max", "lat_sum", "lat_count", "established",
                 "last_response", "read_only_aware", "__weakref__")

    def __init__(self, remote: tuple[str, int], wake: Callable[[], None], now: int,
                 wall: int) -> None:
        self.remote = remote
        self.out = bytearray()
        self.queue: deque[Entry] = deque()
        self.session_id = 0
        self.auth_ids: list[aclmod.Identity] = [("ip", remote[0])]
        self.close_after_flush = False
        self.closed = False
        self.wake = wake
        self.established = wall  # shown as a date (cons, AdminServer), as ZooKeeper does
        self.last_response = now  # ZooKeeper's lresp: its elapsed-time clock
        self.read_only_aware = True
        self.reset_stats()

    def reset_stats(self) -> None:
        self.received = self.sent = 0
        self.last_op = "NA"
        self.last_cxid = self.last_zxid = -1
        self.last_latency = 0
        self.lat_min = self.lat_max = self.lat_sum = self.lat_count = 0

    def can_read(self, acl: aclmod.AclList) -> bool:
        return aclmod.check(acl, Perm.READ, self.auth_ids)

    def latency(self, ms: int) -> None:
        self.last_latency = ms
        if self.lat_count == 0 or ms < self.lat_min:
            self.lat_min = ms
        if ms > self.lat_max:
            self.lat_max = ms
        self.lat_sum += ms
        self.lat_count += 1


class ServerStats:
    __slots__ = ("received", "sent", "lat_min", "lat_max", "lat_sum", "lat_count",
                 "auth_failed", "last_response_size", "min_response_size", "max_response_size")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.received = self.sent = 0
        self.lat_min = self.lat_max = self.lat_sum = self.lat_count = 0
        self.auth_failed = 0
        self.last_response_size = self.max_response_size = 0
        self.min_response_size = -1

    def latency(self, ms: int) -> None:
        if self.lat_count == 0 or ms < self.lat_min:
            self.lat_min = ms
        if ms > self.lat_max:
            self.lat_max = ms
        self.lat_sum += ms
        self.lat_count += 1

    def sent_one(self, size: int) -> None:
        self.sent += 1
        self.last_response_size = size
        if size > self.max_response_size:
            self.max_response_size = size
        if size < self.min_response_size or self.min_response_size < 0:
            self.min_response_size = size


class Engine:
    def __init__(self, *, tree: DataTree | None = None, tick_time: int = 2000,
                 min_session_timeout: int | None = None, max_session_timeout: int | None = None,
                 server_id: int = 1, wall: int = 0,
                 extended_types: bool = False, skip_acl: bool = False,
                 super_digest: str | None = None, reconfig_enabled: bool = False,
                 max_buffer: int = 0xFFFFF) -> None:
        self.tree = tree or DataTree()
        self.prep = Prep(self.tree, extended_types=extended_types, skip_acl=skip_acl,
                         reconfig_enabled=reconfig_enabled)
        self.sessions = SessionTracker(tick_time, server_id, wall)  # wall seeds session ids
        self.min_timeout = min_session_timeout or 2 * tick_time
        self.max_timeout = max_session_timeout or 20 * tick_time
        self.skip_acl = skip_acl
        self.super_digest = super_digest
        self.reconfig_enabled = reconfig_enabled
        self.max_buffer = max_buffer
        self.read_only = False  # an ensemble member cut off from its quorum (readonlymode)
        self.clients: set[Client] = set()
        self.by_session: dict[int, Client] = {}
        self.to_commit: list[tuple[Txn, Client | None, Entry | None]] = []
        self.stats = ServerStats()
        self._reads: dict[int, Callable[[Client, Any], tuple[int, bytes]]] = {
            Op.EXISTS: self._exists, Op.GET_DATA: self._get_data,
            Op.GET_CHILDREN: self._get_children, Op.GET_CHILDREN2: self._get_children2,
            Op.GET_ACL: self._get_acl, Op.SYNC: self._sync,
            Op.GET_ALL_CHILDREN_NUMBER: self._all_children_number,
            Op.GET_EPHEMERALS: self._get_ephemerals, Op.WHO_AM_I: self._who_am_i,
            Op.CHECK_WATCHES: self._check_watches, Op.REMOVE_WATCHES: self._remove_watches,
            Op.ADD_WATCH: self._add_watch, Op.SET_WATCHES: self._set_watches,
            Op.SET_WATCHES2: self._set_watches, Op.MULTI_READ: self._multi_read,
        }

    @property
    def tree(self) -> DataTree:
        return self._tree

    @tree.setter
    def tree(self, tree: DataTree) -> None:
        """The tree served from now on; it keeps its quota stats from here (tree/quota.py)."""
        self._tree = tree
        tree.track_quotas()

    @property
    def last_zxid(self) -> int:
        return self.tree.last_zxid

    # -- connections --------------------------------------------------------------------------

    def connect(self, remote: tuple[str, int], wake: Callable[[], None], now: int,
                wall: int) -> Client:
        client = Client(remote, wake, now, wall)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        """The socket is gone: drop its watches and pending replies; the session lives on."""
        if client.closed:
            return
        client.closed = True
        self.clients.discard(client)
        self.tree.watches.remove_watcher(client)
        if self.by_session.get(client.session_id) is client:
            del self.by_session[client.session_id]
        client.queue.clear()

    def _close(self, client: Client) -> None:
        """Send what is queued, then close (the connection layer does the closing)."""
        client.close_after_flush = True
        client.wake()

    def _send(self, client: Client, data: bytes) -> None:
        client.out += data
        client.sent += 1
        self.stats.sent_one(len(data))
        client.wake()

    def handshake(self, client: Client, data: bytes, now: int, wall: int) -> bool:
        """A ConnectRequest. Returns False if the connection must close at once, unanswered."""
        try:
            req = R.ConnectRequest.decode(data, self.max_buffer)
        except JuteError:
            return False
        client.read_only_aware = req.read_only is not None
        client.received += 1
        self.stats.received += 1
        if req.last_zxid_seen > self.tree.last_zxid:
            return False  # the client has seen a future we don't know: it must try elsewhere
        if self.read_only and not req.read_only:
            return False  # a read-only server takes only clients that accept one
        timeout = min(max(req.timeout, self.min_timeout), self.max_timeout)
        read_only = self.read_only if req.read_only is not None else None
        if req.session_id == 0:
            sid = self.sessions.new_id()
            self.sessions.add(sid, timeout, now)
            client.session_id = sid
            self.by_session[sid] = client
            resp = R.ConnectResponse(0, timeout, sid, self.sessions.password(sid), read_only)
            if self.read_only:  # a local session: nothing to commit while cut off
                self._send(client, _frame_bytes(resp.encode()))
                return True
            entry = Entry(0, Op.CREATE_SESSION, resp, True, now)
            client.queue.append(entry)
            self.new_session(client, sid, timeout, entry, wall)
            return True
        sid = req.session_id
        old = self.by_session.get(sid)
        if old is not None and old is not client:
            self.disconnect(old)
            self._close(old)
        info = self.sessions.get(sid)
        if info is None or info.closing or not self.sessions.check_password(sid, req.passwd):
            resp = R.ConnectResponse(0, 0, 0, b"\0" * 16, read_only)
            self._send(client, _frame_bytes(resp.encode()))
            self._close(client)
            return True
        info.timeout = timeout
        self.sessions.touch(sid, now)
        client.session_id = sid
        self.by_session[sid] = client
        resp = R.ConnectResponse(0, timeout, sid, self.sessions.password(sid), read_only)
        self._send(client, _frame_bytes(resp.encode()))
        return True

    # -- requests -----------------------------------------------------------------------------

    def handle(self, client: Client, data: bytes, now: int, wall: int) -> None:
        """One request frame (header + body) from an established connection."""
        if client.close_after_flush or client.closed:
            return
        client.received += 1
        self.stats.received += 1
        if len(data) < 8:
            self._close(client)
            return
        xid, op = struct.unpack_from(">ii", data)
        sid = client.session_id
        self.sessions.touch(sid, now)
        if xid >= 0:
            client.last_cxid = xid
        if op in WRITE_OPS:
            if self.read_only:
                self._queue_or_run_reply(client, xid, Err.NOTREADONLY, now)
                return
            self._write(client, xid, op, data, now, wall)
            return
        if op == Op.PING:
            self._queue_or_run(client, Entry(PING_XID, op, None, False, now), now)
            return
        if op == Op.AUTH:
            self._queue_or_run(client, Entry(AUTH_XID, op, data, False, now), now)
            return
        if op not in self._reads and op != Op.SASL:
            # Unknown opcodes (and a stand-alone check): UNIMPLEMENTED, then close.
            self._send(client, reply(xid, self.tree.last_zxid, Err.UNIMPLEMENTED))
            self._close(client)
            return
        self._queue_or_run(client, Entry(xid, op, data, False, now), now)

    def _queue_or_run(self, client: Client, entry: Entry, now: int) -> None:
        if client.queue:
            client.queue.append(entry)
        else:
            self._run_read(client, entry, now)

    def _run_read(self, client: Client, entry: Entry, now: int) -> None:
        op = entry.op
        xid = entry.xid
        client.last_op = OP_NAMES.get(op, "NA")
        if op == Op.PING:
            self._send(client, reply(PING_XID, self.tree.last_zxid, 0))
            return
        if op == Op.AUTH:
            self._auth(client, entry.req)
            return
        if op == Op.SASL:
            self._send(client, reply(xid, 0, Err.AUTHFAILED))
            self._close(client)
            return
        r = Reader(entry.req, 8, max_buffer=self.max_buffer)
        try:
            err, body = self._reads[op](client, r)
        except JuteError:
            err, body = Err.MARSHALLINGERROR, b""
        zxid = self.tree.last_zxid
        client.last_zxid = zxid
        if xid != PING_XID:
            self.stats.latency(0)
            client.latency(0)
        self._send(client, reply(xid, zxid, err, body if err == 0 else b""))

    def _auth(self, client: Client, data: bytes) -> None:
        try:
            pkt = R.AuthPacket.decode_from(Reader(data, 8, max_buffer=self.max_buffer))
        except JuteError:
            self._send(client, reply(AUTH_XID, 0, Err.MARSHALLINGERROR))
            return
        scheme = pkt.scheme or ""
        auth = (pkt.auth or b"").decode("utf-8", "replace")
        if scheme == "digest":
            ident = aclmod.digest_id(auth)
            if ("digest", ident) not in client.auth_ids:
                client.auth_ids.append(("digest", ident))
            if self.super_digest is not None and ident == self.super_digest:
                if aclmod.SUPER not in client.auth_ids:
                    client.auth_ids.append(aclmod.SUPER)
            self._send(client, reply(AUTH_XID, 0, 0))
        elif scheme == "ip":
            self._send(client, reply(AUTH_XID, 0, 0))
        else:
            self.stats.auth_failed += 1
            self._send(client, reply(AUTH_XID, 0, Err.AUTHFAILED))
            self._close(client)

    def _write(self, client: Client, xid: int, op: int, data: bytes, now: int,
               wall: int) -> None:
        decoded = self.decode_write(op, data)
        if decoded is None:
            self._queue_or_run_reply(client, xid, Err.MARSHALLINGERROR, now)
            return
        req, subops = decoded
        entry = Entry(xid, op, subops, True, now)
        client.queue.append(entry)
        self.submit_write(client, entry, req, data, wall)

    def decode_write(self, op: int, data: bytes) -> tuple[Any, list[int] | None] | None:
        """A write's request record (and a multi's sub-op codes); None if it doesn't parse."""
        if op == Op.CLOSE_SESSION:
            return None, None
        r = Reader(data, 8, max_buffer=self.max_buffer)
        try:
            if op == Op.MULTI:
                req: Any = R.decode_multi(r, R.MULTI_WRITE_OPS)
                return req, [sub for sub, _ in req]
            return R.REQUEST_RECORDS[op].decode_from(r), None
        except JuteError:
            return None

    def prep_write(self, sid: int, auth_ids: list[aclmod.Identity], xid: int, op: int,
                   req: Any, wall: int) -> Txn:
        prep = self.prep
        if op == Op.CLOSE_SESSION:
            self.sessions.set_closing(sid)
            return prep.close_session(sid, xid, wall)
        if not self.sessions.alive(sid):
            return prep.error(sid, xid, wall, Err.SESSIONEXPIRED)
        return prep.write(op, req, Session(sid, auth_ids), xid, wall)

    def submit_write(self, client: Client, entry: Entry, req: Any, data: bytes,
                     wall: int) -> None:
        """Prepare the write here (standalone, or the leader); an ensemble follower forwards."""
        txn = self.prep_write(client.session_id, client.auth_ids, entry.xid, entry.op, req, wall)
        self.to_commit.append((txn, client, entry))

    def new_session(self, client: Client, sid: int, timeout: int, entry: Entry,
                    wall: int) -> None:
        self.to_commit.append((self.prep.create_session(sid, timeout, wall), client, entry))

    def _queue_or_run_reply(self, client: Client, xid: int, err: int, now: int) -> None:
        entry = Entry(xid, Op.ERROR, None, True, now)
        entry.data = reply(xid, self.tree.last_zxid, err)
        client.queue.append(entry)
        self._drain(client, now)

    # -- commit -------------------------------------------------------------------------------

    def take_commits(self) -> list[tuple[Txn, Client | None, Entry | None]]:
        batch = self.to_commit
        self.to_commit = []
        return batch

    def apply_committed(self, batch: list[tuple[Txn, Client | None, Entry | None]],
                        now: int) -> None:
        """Apply transactions that are now durable, in zxid order, and answer their writers."""
        tree = self.tree
        for txn, client, entry in batch:
            result, events = tree.apply(txn, Client.can_read)
            self.prep.committed(txn.zxid)
            zxid = txn.zxid
            for watcher, etype, path in events:
                if not watcher.closed:
                    self._send(watcher, notification(zxid, etype, path))
            op = txn.op
            if type(op) is CloseSessionTxn:
                self._session_closed(txn.session_id)
            if client is None or entry is None or client.closed:
                continue
            if type(op) is CreateSessionTxn:
                entry.data = _frame_bytes(entry.req.encode())
            else:
                entry.data = self._write_reply(entry, zxid, result)
                ms = now - entry.arrived
                self.stats.latency(ms)
                client.latency(ms)
                client.last_zxid = zxid
                client.last_op = OP_NAMES.get(entry.op, "NA")
            self._drain(client, now)
            if entry.op == Op.CLOSE_SESSION:
                self._close(client)

    def _session_closed(self, sid: int) -> None:
        self.sessions.remove(sid)
        client = self.by_session.pop(sid, None)
        if client is not None:
            self._close(client)

    def _drain(self, client: Client, now: int) -> None:
        """Send every reply at the head of the queue that is ready; run reads whose turn came."""
        queue = client.queue
        while queue:
            head = queue[0]
            if head.write:
                if head.data is None:
                    return
                queue.popleft()
                client.out += head.data
                client.sent += 1
                self.stats.sent_one(len(head.data))
                client.wake()
            else:
                queue.popleft()
                self._run_read(client, head, now)

    def _write_reply(self, entry: Entry, zxid: int, result: Any) -> bytes:
        op = entry.op
        xid = entry.xid
        if type(result) is ErrorTxn:
            return reply(xid, zxid, result.err)
        if op == Op.SET_DATA or op == Op.SET_ACL:
            return reply(xid, zxid, 0, _pack_stat(*result.stat()))
        if op == Op.CREATE:
            return reply(xid, zxid, 0, _ustring(result[0]))
        if op in CREATE_OPS:
            return reply(xid, zxid, 0, _ustring(result[0]) + _pack_stat(*result[1].stat()))
        if op == Op.MULTI:
            return reply(xid, zxid, 0, _multi_reply(entry.req, result))
        return reply(xid, zxid, 0)

    # -- reads ----------------------------------------------------------------------------------

    def _exists(self, client: Client, r: Reader) -> tuple[int, bytes]:
        """No ACL check, as in ZooKeeper up to 3.8.3/3.9.1 (3.8.4+/3.9.2+ check READ since
        ZOOKEEPER-2590, a hardening that is not a CVE fix; docs/compatibility-notes.md)."""
        path = r.ustring()
        watch = r.bool()
        if path is not None and "\0" in path:
            return Err.BADARGUMENTS, b""
        node = self.tree.nodes.get(path) if path else None
        if node is None:
            if watch and path:
                self.tree.watches.add_data(path, client)
            return Err.NONODE, b""
        if watch:
            self.tree.watches.add_data(path, client)
        return 0, _pack_stat(*node.stat())

    def _readable(self, client: Client, path: str | None, perm: int = Perm.READ
                  ) -> tuple[int, Node | None]:
        node = self.tree.nodes.get(path) if path else None
        if node is None:
            return Err.NONODE, None
        if not self.skip_acl and not aclmod.check(node.acl, perm, client.auth_ids):
            return Err.NOAUTH, None
        return 0, node

    def _get_data(self, client: Client, r: Reader) -> tuple[int, bytes]:
        path = r.ustring()
        watch = r.bool()
        err, node = self._readable(client, path)
        if node is None:
            return err, b""
        if watch:
            self.tree.watches.add_data(path, client)
        return 0, _buffer(node.data) + _pack_stat(*node.stat())

    def _children_of(self, client: Client, r: Reader) -> tuple[int, Node | None]:
        """getChildren and getChildren2: the node (watched if asked), or the error."""
        path = r.ustring()
        watch = r.bool()
        err, node = self._readable(client, path)
        if node is not None and watch:
            self.tree.watches.add_child(path, client)
        return err, node

    def _get_children(self, client: Client, r: Reader) -> tuple[int, bytes]:
        err, node = self._children_of(client, r)
        return (err, b"") if node is None else (0, _strings(node.children))

    def _get_children2(self, client: Client, r: Reader) -> tuple[int, bytes]:
        err, node = self._children_of(client, r)
        if node is None:
            return err, b""
        return 0, _strings(node.children) + _pack_stat(*node.stat())

    def _get_acl(self, client: Client, r: Reader) -> tuple[int, bytes]:
        path = r.ustring()
        err, node = self._readable(client, path, Perm.READ | Perm.ADMIN)
        if node is None:
            return err, b""
        acl = node.acl
        if not self.skip_acl and not aclmod.check(acl, Perm.ADMIN, client.auth_ids):
            acl = aclmod.mask_digests(acl)
        return 0, _acl_bytes(acl) + _pack_stat(*node.stat())

    def _sync(self, client: Client, r: Reader) -> tuple[int, bytes]:
        path = r.ustring()
        return 0, _NULL if path is None else _ustring(path)

    def _all_children_number(self, client: Client, r: Reader) -> tuple[int, bytes]:
        path = r.ustring()
        err, node = self._readable(client, path)
        if node is None:
            return err, b""
        return 0, _pack_int(self.tree.count_descendants(path))

    def _get_ephemerals(self, client: Client, r: Reader) -> tuple[int, bytes]:
        prefix = r.ustring()
        paths = self.tree.ephemerals.get(client.session_id, ())
        if prefix and prefix.strip() and prefix != "/":
            paths = [p for p in paths if p.startswith(prefix)]
        return 0, _strings(sorted(paths))

    def _who_am_i(self, client: Client, r: Reader) -> tuple[int, bytes]:
        """Each identity as its provider names the user: a digest id without its hash."""
        return 0, _pack_int(len(client.auth_ids)) + b"".join(
            _ustring(s) + _ustring(i.split(":", 1)[0] if s == "digest" else i)
            for s, i in client.auth_ids)

    def _watch_type(self, r: Reader) -> tuple[str | None, int]:
        path = r.ustring()
        wtype = r.int()
        if wtype not in WatcherType._value2member_map_:
            raise JuteError(f"unknown watcher type {wtype}")
        return path, wtype

    def _check_watches(self, client: Client, r: Reader) -> tuple[int, bytes]:
        path, wtype = self._watch_type(r)
        if path is None or not self.tree.watches.has(path, client, wtype):
            return Err.NOWATCHER, b""
        return 0, b""

    def _remove_watches(self, client: Client, r: Reader) -> tuple[int, bytes]:
        path, wtype = self._watch_type(r)
        if path is None or not self.tree.watches.remove(path, client, wtype):
            return Err.NOWATCHER, b""
        return 0, b""

    def _add_watch(self, client: Client, r: Reader) -> tuple[int, bytes]:
        path = r.ustring()
        mode = r.int()
        if mode not in (AddWatchMode.PERSISTENT, AddWatchMode.PERSISTENT_RECURSIVE):
            raise JuteError(f"unknown addWatch mode {mode}")
        if path is not None:
            self.tree.watches.add_persistent(path, client,
                                             mode == AddWatchMode.PERSISTENT_RECURSIVE)
        return 0, _pack_int(0)

    def _set_watches(self, client: Client, r: Reader) -> tuple[int, bytes]:
        rel = r.long()
        data = r.ustring_vector() or []
        exist = r.ustring_vector() or []
        child = r.ustring_vector() or []
        persistent: list[str] = []
        recursive: list[str] = []
        if r.remaining() > 0:
            persistent = r.ustring_vector() or []
            recursive = r.ustring_vector() or []
        nodes = self.tree.nodes
        watches = self.tree.watches
        for path in data:
            node = nodes.get(path)
            if node is None:
                self._send(client, notification(-1, EventType.NODE_DELETED, path))
            elif node.mzxid > rel:
                self._send(client, notification(-1, EventType.NODE_DATA_CHANGED, path))
            else:
                watches.add_data(path, client)
        for path in exist:
            if path in nodes:
                self._send(client, notification(-1, EventType.NODE_CREATED, path))
            else:
                watches.add_data(path, client)
        for path in child:
            node = nodes.get(path)
            if node is None:
                self._send(client, notification(-1, EventType.NODE_DELETED, path))
            elif node.pzxid > rel:
                self._send(client, notification(-1, EventType.NODE_CHILDREN_CHANGED, path))
            else:
                watches.add_child(path, client)
        for path in persistent:
            watches.add_persistent(path, client, False)
        for path in recursive:
            watches.add_persistent(path, client, True)
        return 0, b""

    def _multi_read(self, client: Client, r: Reader) -> tuple[int, bytes]:
        ops = R.decode_multi(r, R.MULTI_READ_OPS)
        results: list[tuple[int, int, Any]] = []
        for op, req in ops:
            err, node = self._readable(client, req.path)
            if node is None:
                results.append((-1, err, None))
                continue
            stat = R.Stat(*node.stat())
            if op == Op.GET_DATA:
                if req.watch:
                    self.tree.watches.add_data(req.path, client)
                results.append((op, 0, R.GetDataResponse(node.data, stat)))
            else:
                if req.watch:
                    self.tree.watches.add_child(req.path, client)
                results.append((op, 0, R.GetChildrenResponse(list(node.children))))
        w = Writer()
        R.encode_multi_results(w, results)
        return 0, w.getvalue()

    # -- sessions -------------------------------------------------------------------------------

    def expire_sessions(self, now: int, wall: int) -> list[int]:
        """Close every session whose deadline (monotonic `now`) has passed: one closeSession
        txn each, stamped `wall`."""
        expired = self.sessions.expired(now)
        for sid in expired:
            self.to_commit.append((self.prep.close_session(sid, 0, wall), None, None))
        return expired


def _frame_bytes(body: bytes) -> bytes:
    return _pack_int(len(body)) + body


def _multi_reply(ops: list[int], results: list[Any]) -> bytes:
    """One result per sub-op, shaped by the opcode the client sent (create: path only)."""
    out: list[tuple[int, int, Any]] = []
    for op, res in zip(ops, results, strict=True):
        if type(res) is ErrorTxn:
            out.append((-1, res.err, None))
        elif op == Op.CREATE:
            out.append((Op.CREATE, 0, R.PathResponse(res[0])))
        elif op in CREATE_OPS:
            out.append((Op.CREATE2, 0, R.Create2Response(res[0], R.Stat(*res[1].stat()))))
        elif op == Op.SET_DATA:
            out.append((Op.SET_DATA, 0, R.StatResponse(R.Stat(*res.stat()))))
        else:
            out.append((op, 0, None))
    w = Writer()
    R.encode_multi_results(w, out)
    return w.getvalue()
