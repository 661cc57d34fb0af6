"""The client: a session kept alive across connections, and every ZooKeeper operation.

    async with client.connect("h1:2181,h2:2181/app") as zk:
        await zk.create("/x", b"hello")
        data, stat, watch = await zk.get("/x", watch=True)
        event = await watch

`connect()` opens a task group that owns the one background task, `_run`: it connects, keeps the
connection served, and on a drop moves to the next server and resumes the session by id and
password, re-sending credentials and re-arming watches (setWatches, or setWatches2 when
persistent watches exist) before callers may send again. Calls made meanwhile wait for the
session to be back (within the request timeout); calls that were on the wire fail with
`ConnectionLossError`, because only the caller knows whether retrying is safe. When the server
says the session expired, the client is finished: pending and later calls, and watches, raise
`SessionExpiredError`. While the server is a read-only one, a task beside the connection's own
looks for a read-write server and, when it finds one, ends the connection so that `_run` moves
there (client/rwsearch.py).

At most `max_outstanding` requests are on the wire at once; the next caller waits for a reply
to free a slot, so a fast producer slows down instead of growing buffers.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl as _ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, overload

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.tls import TLSStream

from zkserver.proto import records as R
from zkserver.proto.codes import (
    DEFAULT_MAX_BUFFER,
    AddWatchMode,
    CreateMode,
    Err,
    KeeperState,
    Op,
    WatcherType,
)
from zkserver.proto.jute import Reader, Writer

from . import errors as E
from .connection import TRANSPORT_ERRORS, Connection, Pending, handshake
from .hosts import Address, Chroot, ConnectString, validate_path
from .results import (
    ACLs,
    Children,
    Created,
    ExistsWatched,
    NodeData,
    WatchedChildren,
    WatchedNodeData,
)
from .retry import retry as retry_call
from .rwsearch import (
    ProbeSchedule,
    ReadWriteServerFound,
    is_read_write,
    others_after,
    seek_read_write,
)
from .sasl import SaslOptions
from .sasl import authenticate as sasl_authenticate
from .states import State, StateStream, StateTracker
from .transaction import GetChildrenOp, GetDataOp, Transaction, decode_multi_read
from .watches import PersistentWatch, Watch, WatchKind, WatchRegistry

log = logging.getLogger(__name__)

_HEADER = 16  # reply header: xid, zxid, err
_ZERO_PASSWD = b"\0" * 16
# setWatches requests are split so no frame carries much more than this many bytes of paths.
SET_WATCHES_CHUNK = 128 * 1024
# Where every server keeps the ensemble's configuration (ZooDefs.CONFIG_NODE).
CONFIG_NODE = "/zookeeper/config"


def _encode(record: Any) -> bytes:
    w = Writer()
    record.encode_to(w)
    return bytes(w.out)


def _body(p: Pending) -> Reader:
    return Reader(p.body, _HEADER)


@asynccontextmanager
async def connect(hosts: str = "127.0.0.1:2181", **options: Any) -> AsyncIterator[Client]:
    """Connect, establish a session, and yield the client; close the session on exit.

    `hosts` is a connection string, `"h1:2181,h2:2181/chroot"`. Options are `Client`'s."""
    zk = Client(hosts, **options)
    try:
        async with anyio.create_task_group() as tasks:
            await zk._start(tasks)
            try:
                yield zk
            finally:
                with anyio.CancelScope(shield=True):
                    await zk.close()
                tasks.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The background task does not fail (short of a bug), so a group holding one exception
        # holds the caller's own: give it back as it was raised.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


class Client:
    """A ZooKeeper session. Make one with `connect()`; every method is safe to call from many
    tasks at once (requests are pipelined on one connection and answered in order).

    Options:
      session_timeout: requested session timeout, seconds (the server clamps it).
      request_timeout: how long one call may take, waiting for a connection included, before it
        fails with `OperationTimeoutError` (seconds; None for no limit).
      connect_timeout: how long `connect()` tries before giving up with `ConnectionLossError`.
      max_outstanding: requests on the wire at once; callers beyond it wait.
      default_acl: ACL for creates that name none (default world:anyone, all permissions).
      auth: (scheme, credential) pairs to add on every connection, e.g. [("digest", "u:p")].
      sasl: SASL on every connection, kazoo's `sasl_options` shape: {"mechanism": "DIGEST-MD5",
        "username": ..., "password": ...} (client/sasl.py).
      can_be_read_only: accept a read-only server (the state is then READ_ONLY).
      ssl_context: connect with TLS (to a `secureClientPort`).
      randomize_hosts: shuffle the servers of the connection string (default True).
    """

    def __init__(self, hosts: str = "127.0.0.1:2181", *, session_timeout: float = 10.0,
                 request_timeout: float | None = 10.0, connect_timeout: float = 15.0,
                 max_outstanding: int = 1024,
                 default_acl: Sequence[R.ACL] | None = None,
                 auth: Sequence[tuple[str, str | bytes]] = (),
                 sasl: Mapping[str, str] | None = None,
                 can_be_read_only: bool = False,
                 ssl_context: _ssl.SSLContext | None = None,
                 randomize_hosts: bool = True,
                 max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        parsed = ConnectString.parse(hosts, shuffle=randomize_hosts)
        self.hosts = hosts
        self.addresses: tuple[Address, ...] = parsed.addresses
        self._chroot = Chroot(parsed.chroot)
        self.session_timeout = session_timeout
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.max_outstanding = max_outstanding
        self.default_acl = list(default_acl) if default_acl is not None else R.OPEN_ACL_UNSAFE
        self.can_be_read_only = can_be_read_only
        self.ssl_context = ssl_context
        self.max_buffer = max_buffer
        self._auth: list[tuple[str, bytes]] = [
            (s, c.encode() if isinstance(c, str) else c) for s, c in auth]
        self._sasl = SaslOptions(sasl) if sasl is not None else None
        self.session_id = 0
        self.session_password = _ZERO_PASSWD
        self.negotiated_timeout = 0
        self.last_zxid = 0
        self._seen_rw = False
        self._tracker = StateTracker()
        self._watches = WatchRegistry()
        self._slots = anyio.Semaphore(max_outstanding)
        self._conn: Connection | None = None
        self._host_index = 0
        self._read_write_found: Address | None = None
        self._probe_schedule: ProbeSchedule | None = None
        self._run_scope: anyio.CancelScope | None = None
        self.server_address: Address | None = None

    # -- public state -------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._tracker.state

    @property
    def chroot(self) -> str | None:
        return self._chroot.root

    @property
    def connected(self) -> bool:
        return self._tracker.state.connected

    def states(self) -> StateStream:
        """An async iterator of state changes: the current state first, then each change, up to
        and including a terminal one (EXPIRED, AUTH_FAILED, CLOSED)."""
        return self._tracker.subscribe()

    async def wait_for_state(self, *states: State) -> State:
        """Wait until the state is one of `states`; return it."""
        return await self._tracker.wait_for(*states)

    # -- life cycle -----------------------------------------------------------------------------

    async def _start(self, tasks: anyio.abc.TaskGroup) -> None:
        """Establish the first session, then leave `_run` serving it in `tasks`."""
        deadline = anyio.current_time() + self.connect_timeout
        self._probe_schedule = ProbeSchedule(anyio.current_time())
        last_error: BaseException | None = None
        round_failures = 0
        while True:
            addr = self._next_address()
            try:
                budget = min(deadline - anyio.current_time(), self._attempt_timeout())
                with anyio.fail_after(max(budget, 0.0)):
                    conn = await self._open(addr)
            except E.SessionExpiredError:
                raise
            except TRANSPORT_ERRORS as e:
                last_error = e
                log.debug("connect to %s failed: %r", addr, e)
                if anyio.current_time() >= deadline:
                    raise E.ConnectionLossError(
                        f"could not connect to {self.hosts} within {self.connect_timeout}s "
                        f"(last error: {last_error!r})") from None
                round_failures += 1
                if round_failures % len(self.addresses) == 0:
                    await anyio.sleep(self._backoff(round_failures // len(self.addresses)))
                continue
            break
        tasks.start_soon(self._run, conn)
        with anyio.move_on_after(deadline + self._attempt_timeout() - anyio.current_time()):
            await self._tracker.wait_for(State.CONNECTED, State.READ_ONLY, State.EXPIRED,
                                         State.AUTH_FAILED, State.CLOSED)
        if self.state.terminal:
            raise self._terminal_error()
        if not self.state.connected:
            self._terminate(State.CLOSED)
            raise E.ConnectionLossError(
                f"could not establish a session with {self.hosts} within "
                f"{self.connect_timeout}s")

    async def close(self) -> None:
        """Close the session (the server deletes its ephemerals) and stop the client."""
        if self.state.terminal:
            return
        conn = self._conn
        if conn is not None and not conn.closed:
            with anyio.move_on_after(self.request_timeout or self.session_timeout):
                p = conn.submit(Op.CLOSE_SESSION, b"")
                await p.done.wait()
        self._terminate(State.CLOSED)

    def _terminate(self, state: State) -> None:
        self._tracker.set(state)
        error = self._terminal_error()
        self._watches.fail_all(error)
        conn = self._conn
        self._conn = None
        if conn is not None:
            conn.drop(error)
        if self._run_scope is not None:
            self._run_scope.cancel()

    def _terminal_error(self) -> E.ZooKeeperError:
        if self.state == State.CLOSED:
            return E.ClientClosedError("the client is closed")
        if self.state == State.AUTH_FAILED:
            return E.AuthFailedError("the server refused the client's credentials")
        return E.SessionExpiredError(f"session 0x{self.session_id:x} expired")

    # -- the connection loop --------------------------------------------------------------------

    def _next_address(self) -> Address:
        found = self._read_write_found
        if found is not None:  # where the read-only connection was left for
            self._read_write_found = None
            return found
        addr = self.addresses[self._host_index % len(self.addresses)]
        self._host_index += 1
        return addr

    def _attempt_timeout(self) -> float:
        timeout = (self.negotiated_timeout / 1000) or self.session_timeout
        return max(timeout / len(self.addresses), 1.0)

    @staticmethod
    def _backoff(rounds: int) -> float:
        return random.uniform(0, min(0.05 * 2 ** rounds, 1.0))

    async def _open(self, addr: Address) -> Connection:
        """Connect to one server and resume (or create) the session on it."""
        stream: anyio.abc.ByteStream = await anyio.connect_tcp(addr.host, addr.port)
        try:
            if self.ssl_context is not None:
                # Not "standard compatible": servers (ZooKeeper's Netty among them) may close
                # without a TLS close_notify, which is an ordinary end of stream to us.
                stream = await TLSStream.wrap(stream, hostname=addr.host,
                                              ssl_context=self.ssl_context,
                                              standard_compatible=False)
            resume = self.session_id != 0 and self._seen_rw
            request = R.ConnectRequest(
                protocol_version=0, last_zxid_seen=self.last_zxid,
                timeout=int(self.session_timeout * 1000),
                session_id=self.session_id if resume else 0,
                passwd=self.session_password if resume else _ZERO_PASSWD,
                read_only=self.can_be_read_only)
            response, splitter = await handshake(stream, request, self.max_buffer)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)
            raise
        if response.timeout <= 0:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)
            if self.session_id != 0:
                self._terminate(State.EXPIRED)
            raise E.SessionExpiredError(f"session 0x{self.session_id:x} expired")
        self.session_id = response.session_id
        self.session_password = response.passwd
        self.negotiated_timeout = response.timeout
        if not response.read_only:
            self._seen_rw = True
        self.server_address = addr
        return Connection(stream, splitter, response, on_notification=self._on_notification,
                          on_zxid=self._on_zxid, release_slot=self._slots.release)

    async def _run(self, conn: Connection) -> None:
        """Serve `conn`; whenever the connection drops, find the next server and carry on.

        Shielded: cancelling the caller's scope must not cut the connection before `close()`
        has told the server (or the session, and its ephemerals, would linger until expiry);
        `close()` and terminal states end this loop through `_run_scope`.
        """
        with anyio.CancelScope(shield=True) as scope:
            self._run_scope = scope
            failures = 0
            while True:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(conn.run)
                    ok = await self._restore(conn)
                    if ok:
                        failures = 0
                        self._conn = conn
                        was_suspended = self.state == State.SUSPENDED
                        self._tracker.set(State.READ_ONLY if conn.response.read_only
                                          else State.CONNECTED)
                        if was_suspended:
                            self._watches.connection_event(KeeperState.SYNC_CONNECTED)
                        if conn.response.read_only:
                            tasks.start_soon(self._seek_read_write, conn)
                    await conn.stopped.wait()
                    tasks.cancel_scope.cancel()  # the search ends with its connection
                if self.state.terminal:
                    return
                self._conn = None
                if self.state.connected:
                    self._tracker.set(State.SUSPENDED)
                    self._watches.connection_event(KeeperState.DISCONNECTED)
                elif self.state == State.CONNECTING:
                    self._tracker.set(State.SUSPENDED)
                # Find the next server that takes us.
                while True:
                    addr = self._next_address()
                    try:
                        with anyio.fail_after(self._attempt_timeout()):
                            conn = await self._open(addr)
                        break
                    except E.SessionExpiredError:
                        return
                    except TRANSPORT_ERRORS as e:
                        log.debug("reconnect to %s failed: %r", addr, e)
                        failures += 1
                        if failures % len(self.addresses) == 0:
                            await anyio.sleep(self._backoff(failures // len(self.addresses)))

    async def _seek_read_write(self, conn: Connection) -> None:
        """While `conn` is to a read-only server, probe the others (client/rwsearch.py); when
        one serves read-write, close `conn` so that the loop connects there next. The session
        moves with it only if it was made on a read-write server; one made read-only is not
        valid elsewhere, and `_open` asks for a new one (the Java client's rule)."""
        assert self._probe_schedule is not None
        probe = functools.partial(is_read_write, ssl_context=self.ssl_context)
        found = await seek_read_write(others_after(self.addresses, self.server_address),
                                      self._probe_schedule, probe)
        log.info("leaving read-only server %s for read-write server %s",
                 self.server_address, found)
        self._read_write_found = found
        conn.drop(ReadWriteServerFound(found))

    async def _restore(self, conn: Connection) -> bool:
        """Re-send credentials and re-arm watches on a new connection. False if it failed."""
        try:
            with anyio.fail_after(conn.timeout_s):
                if self._sasl is not None:
                    err = await sasl_authenticate(conn, self._sasl)
                    if err != Err.OK:  # AUTHFAILED, or SESSIONCLOSEDREQUIRESASLAUTH
                        self._terminate(State.AUTH_FAILED)
                        return False
                pendings = [conn.submit(Op.AUTH, _encode(R.AuthPacket(0, scheme, cred)))
                            for scheme, cred in self._auth]
                pendings += self._submit_set_watches(conn, None)
                for p in pendings:
                    await p.done.wait()
                    if p.error is not None:
                        raise p.error
                    if p.err == Err.AUTHFAILED:
                        self._terminate(State.AUTH_FAILED)
                        return False
                    if p.err != Err.OK:
                        raise E.error_for(p.err)
        except (E.ZooKeeperError, TimeoutError) as e:
            conn.drop(e)
            return False
        return True

    def _submit_set_watches(self, conn: Connection, only: str | None) -> list[Pending]:
        """Re-arm the watches of the registry on `conn` (all, or those on one server path)."""
        reg = self._watches
        kinds = (WatchKind.DATA, WatchKind.EXIST, WatchKind.CHILD, WatchKind.PERSISTENT,
                 WatchKind.RECURSIVE)
        lists = {k: ([only] if reg.has(k, only) else []) if only is not None else reg.paths(k)
                 for k in kinds}
        if not any(lists.values()):
            return []
        v2 = bool(lists[WatchKind.PERSISTENT] or lists[WatchKind.RECURSIVE])
        chunks: list[dict[WatchKind, list[str]]] = []
        current: dict[WatchKind, list[str]] = {k: [] for k in kinds}
        size = 0
        for k in kinds:
            for path in lists[k]:
                if size > SET_WATCHES_CHUNK:
                    chunks.append(current)
                    current = {kk: [] for kk in kinds}
                    size = 0
                current[k].append(path)
                size += len(path) + 4
        chunks.append(current)
        out = []
        for c in chunks:
            if v2:
                rec: Any = R.SetWatches2(self.last_zxid, c[WatchKind.DATA], c[WatchKind.EXIST],
                                         c[WatchKind.CHILD], c[WatchKind.PERSISTENT],
                                         c[WatchKind.RECURSIVE])
                op = Op.SET_WATCHES2
            else:
                rec = R.SetWatches(self.last_zxid, c[WatchKind.DATA], c[WatchKind.EXIST],
                                   c[WatchKind.CHILD])
                op = Op.SET_WATCHES
            out.append(conn.submit(op, _encode(rec)))
        return out

    # -- hooks the connection calls ---------------------------------------------------------

    def _on_zxid(self, zxid: int) -> None:
        self.last_zxid = zxid

    def _on_notification(self, zxid: int, body: bytes) -> None:
        ev = R.WatcherEvent.decode_from(Reader(body, _HEADER))
        path = ev.path or "/"
        self._watches.dispatch(ev.type, path, self._chroot.to_client(path), zxid)

    # -- sending requests -----------------------------------------------------------------------

    async def _wait_connected(self) -> Connection:
        while True:
            conn = self._conn
            if conn is not None and not conn.closed:
                return conn
            if self.state.terminal:
                raise self._terminal_error()
            await self._tracker.wait_change()

    async def _send(self, op: int, body: bytes, path: str | None = None,
                    on_reply: Any = None) -> Pending:
        """Send one request and wait for its reply (whatever its error code)."""
        if self.state.terminal:
            raise self._terminal_error()
        p: Pending | None = None
        with anyio.move_on_after(self.request_timeout):
            # A cancelled caller sends nothing (code whose lock was lost must not write). Past
            # that, a free slot is taken without yielding: waiting for the reply yields anyway.
            await anyio.lowlevel.checkpoint_if_cancelled()
            try:
                self._slots.acquire_nowait()
            except anyio.WouldBlock:
                await self._slots.acquire()
            try:
                conn = self._conn
                if conn is None or conn.closed:
                    conn = await self._wait_connected()
                p = conn.submit(op, body, on_reply, holds_slot=True)
            except BaseException:
                self._slots.release()
                raise
            try:
                await p.done.wait()
            finally:
                if not p.done.is_set():
                    p.abandoned = True
        if p is None or not p.done.is_set():
            if p is not None:
                p.abandoned = True
            if self.state.terminal:
                raise self._terminal_error()
            raise E.OperationTimeoutError(
                f"no reply within {self.request_timeout}s", path=path)
        if p.error is not None:
            if self.state.terminal:
                raise self._terminal_error()
            raise type(p.error)(str(p.error), path=path)
        return p

    async def _call(self, op: int, record: Any, path: str | None = None,
                    on_reply: Any = None) -> Reader:
        p = await self._send(op, _encode(record), path, on_reply)
        if p.err != Err.OK:
            raise E.error_for(p.err, path)
        return _body(p)

    def _server_path(self, path: str, sequential: bool = False) -> str:
        validate_path(path, sequential)
        return self._chroot.to_server(path)

    # -- create ---------------------------------------------------------------------------------

    async def create(self, path: str, data: bytes | None = b"", *,
                     acl: Sequence[R.ACL] | None = None,
                     mode: CreateMode = CreateMode.PERSISTENT, ttl: int | None = None,
                     make_parents: bool = False) -> str:
        """Create a node; return its path (with the sequence suffix, if any).

        `mode` is any `CreateMode`, container and TTL included (`ttl` in ms, for the TTL modes
        only; the server needs extendedTypesEnabled). `make_parents` creates missing parents
        as persistent nodes (containers, if `mode` is CONTAINER)."""
        created = await self._create(path, data, acl, mode, ttl, False, make_parents)
        return created.path

    async def create_with_stat(self, path: str, data: bytes | None = b"", *,
                               acl: Sequence[R.ACL] | None = None,
                               mode: CreateMode = CreateMode.PERSISTENT, ttl: int | None = None,
                               make_parents: bool = False) -> Created:
        """Like `create`, also returning the new node's Stat (create2)."""
        return await self._create(path, data, acl, mode, ttl, True, make_parents)

    async def _create(self, path: str, data: bytes | None, acl: Sequence[R.ACL] | None,
                      mode: CreateMode, ttl: int | None, want_stat: bool,
                      make_parents: bool) -> Created:
        mode = CreateMode(mode)
        op, record = create_request(self._server_path(path, mode.sequential), data,
                                    list(acl) if acl is not None else self.default_acl, mode,
                                    ttl, want_stat)
        while True:
            try:
                r = await self._call(op, record, path)
                break
            except E.NoNodeError:
                if not make_parents:
                    raise
                parent = path.rsplit("/", 1)[0]
                if not parent:
                    raise
                await self.ensure_path(parent, acl=acl, container=mode == CreateMode.CONTAINER)
                make_parents = False
        if op == Op.CREATE:
            resp = R.PathResponse.decode_from(r)
            return Created(self._chroot.to_client(resp.path or ""), None)
        resp2 = R.Create2Response.decode_from(r)
        return Created(self._chroot.to_client(resp2.path or ""), resp2.stat)

    async def ensure_path(self, path: str, *, acl: Sequence[R.ACL] | None = None,
                          container: bool = False) -> None:
        """Create `path` and any missing parents (persistent, or containers); existing nodes are
        left alone."""
        validate_path(path)
        if path == "/":
            return
        mode = CreateMode.CONTAINER if container else CreateMode.PERSISTENT
        parts = path.strip("/").split("/")
        # Walk down from the deepest existing ancestor.
        for i in range(1, len(parts) + 1):
            prefix = "/" + "/".join(parts[:i])
            if i < len(parts) and await self.exists(prefix) is not None:
                continue
            try:
                await self.create(prefix, b"", acl=acl, mode=mode)
            except E.NodeExistsError:
                pass

    # -- reads ----------------------------------------------------------------------------------

    @overload
    async def get(self, path: str, *, watch: Literal[False] = False) -> NodeData: ...

    @overload
    async def get(self, path: str, *, watch: Literal[True]) -> WatchedNodeData: ...

    async def get(self, path: str, *, watch: bool = False) -> NodeData | WatchedNodeData:
        """The node's data and Stat; with `watch=True` also a one-time `Watch` that fires on the
        next change or deletion."""
        sp = self._server_path(path)
        w, hook = self._one_time(path, sp, WatchKind.DATA, watch)
        r = await self._call(Op.GET_DATA, R.PathWatchRequest(sp, watch), path, hook)
        data = r.buffer()
        stat = R.Stat.decode_from(r)
        if w is not None:
            return WatchedNodeData(data, stat, w)
        return NodeData(data, stat)

    @overload
    async def exists(self, path: str, *, watch: Literal[False] = False) -> R.Stat | None: ...

    @overload
    async def exists(self, path: str, *, watch: Literal[True]) -> ExistsWatched: ...

    async def exists(self, path: str, *, watch: bool = False) -> R.Stat | None | ExistsWatched:
        """The node's Stat, or None if it does not exist. With `watch=True`, an `ExistsWatched`
        whose watch fires on creation, change or deletion."""
        sp = self._server_path(path)
        w: Watch | None = None
        hook = None
        if watch:
            w = Watch(self, WatchKind.DATA, path, sp)

            def hook(err: int, w: Watch = w) -> None:
                if err == Err.OK:
                    self._watches.add(WatchKind.DATA, sp, w)
                elif err == Err.NONODE:
                    w.kind = WatchKind.EXIST
                    self._watches.add(WatchKind.EXIST, sp, w)

        p = await self._send(Op.EXISTS, _encode(R.PathWatchRequest(sp, watch)), path, hook)
        if p.err == Err.NONODE:
            stat = None
        elif p.err != Err.OK:
            raise E.error_for(p.err, path)
        else:
            stat = R.Stat.decode_from(_body(p))
        if w is not None:
            return ExistsWatched(stat, w)
        return stat

    @overload
    async def get_children(self, path: str, *, watch: Literal[False] = False) -> Children: ...

    @overload
    async def get_children(self, path: str, *, watch: Literal[True]) -> WatchedChildren: ...

    async def get_children(self, path: str, *, watch: bool = False,
                           ) -> Children | WatchedChildren:
        """Child names and the node's Stat (getChildren2); with `watch=True` also a one-time
        watch that fires when a child is added or removed, or the node is deleted."""
        sp = self._server_path(path)
        w, hook = self._one_time(path, sp, WatchKind.CHILD, watch)
        r = await self._call(Op.GET_CHILDREN2, R.PathWatchRequest(sp, watch), path, hook)
        children = r.ustring_vector() or []
        stat = R.Stat.decode_from(r)
        if w is not None:
            return WatchedChildren(children, stat, w)
        return Children(children, stat)

    def _one_time(self, path: str, sp: str, kind: WatchKind, watch: bool,
                  ) -> tuple[Watch | None, Any]:
        if not watch:
            return None, None
        w = Watch(self, kind, path, sp)

        def hook(err: int) -> None:
            if err == Err.OK:
                self._watches.add(kind, sp, w)

        return w, hook

    async def get_acl(self, path: str) -> ACLs:
        r = await self._call(Op.GET_ACL, R.PathRequest(self._server_path(path)), path)
        resp = R.GetACLResponse.decode_from(r)
        return ACLs(resp.acl or [], resp.stat)

    async def get_ephemerals(self, prefix: str = "/") -> list[str]:
        """This session's ephemeral nodes whose path starts with `prefix` (a string prefix)."""
        sp = self._chroot.to_server(prefix) if prefix.startswith("/") else prefix
        r = await self._call(Op.GET_EPHEMERALS, R.PathRequest(sp), prefix)
        paths = r.ustring_vector() or []
        return [self._chroot.to_client(p) for p in paths]

    async def get_all_children_number(self, path: str) -> int:
        """How many nodes are below `path`, at any depth."""
        r = await self._call(Op.GET_ALL_CHILDREN_NUMBER, R.PathRequest(self._server_path(path)),
                             path)
        return r.int()

    async def sync(self, path: str = "/") -> str:
        """Wait until the server has caught up with the leader as of now (reads after this see
        every write committed before it)."""
        r = await self._call(Op.SYNC, R.PathRequest(self._server_path(path)), path)
        return self._chroot.to_client(r.ustring() or path)

    async def whoami(self) -> list[R.Id]:
        """The identities this connection holds: ip, plus any added with `add_auth`."""
        r = await self._call(Op.WHO_AM_I, R.EmptyRecord())
        resp = R.WhoAmIResponse.decode_from(r)
        return [R.Id(ci.authScheme, ci.user) for ci in resp.clientInfo or []]

    async def multi_read(self, ops: Sequence[GetDataOp | GetChildrenOp],
                         ) -> list[NodeData | Children | E.ZooKeeperError]:
        """Several reads in one round trip (not atomic); a failed read gives its error in place."""
        w = Writer()
        R.encode_multi(w, [(op.opcode, R.PathWatchRequest(self._server_path(op.path), False))
                           for op in ops])
        p = await self._send(Op.MULTI_READ, bytes(w.out))
        if p.err != Err.OK:
            raise E.error_for(p.err)
        return decode_multi_read(_body(p), ops)

    # -- writes ---------------------------------------------------------------------------------

    async def set(self, path: str, data: bytes | None, version: int = -1) -> R.Stat:
        """Replace the node's data (if its version is `version`, unless -1); the new Stat."""
        r = await self._call(Op.SET_DATA, R.SetDataRequest(self._server_path(path), data,
                                                           version), path)
        return R.Stat.decode_from(r)

    async def delete(self, path: str, version: int = -1, *, recursive: bool = False) -> None:
        """Delete the node (if its version is `version`, unless -1). `recursive` deletes the
        children first, depth first (not atomic; nodes already gone are skipped)."""
        if recursive:
            try:
                children = (await self.get_children(path)).children
            except E.NoNodeError:
                return
            for child in children:
                await self.delete(f"{path.rstrip('/')}/{child}", recursive=True)
            try:
                await self.delete(path, version)
            except E.NoNodeError:
                pass
            return
        await self._call(Op.DELETE, R.DeleteRequest(self._server_path(path), version), path)

    async def set_acl(self, path: str, acl: Sequence[R.ACL], version: int = -1) -> R.Stat:
        r = await self._call(Op.SET_ACL, R.SetACLRequest(self._server_path(path), list(acl),
                                                         version), path)
        return R.Stat.decode_from(r)

    async def check(self, path: str, version: int) -> None:
        """Raise `BadVersionError` unless the node's version is `version` (`NoNodeError` if it is
        missing). Sent as a one-op multi, which every server version accepts."""
        txn = self.transaction()
        txn.check(path, version)
        await txn.commit()

    def transaction(self) -> Transaction:
        """A multi-op builder: add create/delete/set_data/check, then `await txn.commit()`, or
        use `async with zk.transaction() as txn:` to commit on a clean exit."""
        return Transaction(self)

    async def _multi(self, ops: list[tuple[int, Any]]) -> Reader:
        w = Writer()
        R.encode_multi(w, ops)
        p = await self._send(Op.MULTI, bytes(w.out))
        if p.err != Err.OK:
            raise E.error_for(p.err)
        return _body(p)

    async def reconfig(self, joining: str | None = None, leaving: str | None = None,
                       new_members: str | None = None, from_config: int = -1) -> NodeData:
        """Change the ensemble's membership; the new configuration and the Stat of
        /zookeeper/config, as ZooKeeper's `reconfigure` returns them.

        Incremental: `joining` is `server.N=host:quorum:election[:role];[client_host:]port`
        entries separated by commas, `leaving` server ids separated by commas. Non-incremental:
        `new_members`, the whole membership in the same form (not with the other two).
        `from_config` is the version (the config's `version=` value, hex, as an int) the change
        applies to; -1 means whatever is current. Raises `ReconfigDisabledError` (the server's
        reconfigEnabled is off), `NoAuthError` (not a super user, and skipACL is off),
        `BadVersionError` (`from_config` is not current), `BadArgumentsError` (a malformed or
        impossible membership), `NewConfigNoQuorumError` (too few of the new voters are
        connected to the leader), `ReconfigInProgressError` (another change is not yet done).

        Not idempotent: `retry` refuses it (a lost reply may hide a change that was made)."""
        r = await self._call(Op.RECONFIG, R.ReconfigRequest(joining, leaving, new_members,
                                                            from_config))
        resp = R.GetDataResponse.decode_from(r)
        return NodeData(resp.data, resp.stat)

    @overload
    async def get_config(self, *, watch: Literal[False] = False) -> NodeData: ...

    @overload
    async def get_config(self, *, watch: Literal[True]) -> WatchedNodeData: ...

    async def get_config(self, *, watch: bool = False) -> NodeData | WatchedNodeData:
        """The ensemble's configuration (/zookeeper/config: `server.N=` lines and `version=`)
        and its Stat; with `watch=True` also a one-time `Watch` that fires (NodeDataChanged)
        when a reconfig commits. Like ZooKeeper's `getConfig`, the node is read outside any
        chroot, so a chrooted client sees the same configuration."""
        w, hook = self._one_time(CONFIG_NODE, CONFIG_NODE, WatchKind.DATA, watch)
        r = await self._call(Op.GET_DATA, R.PathWatchRequest(CONFIG_NODE, watch), CONFIG_NODE,
                             hook)
        data = r.buffer()
        stat = R.Stat.decode_from(r)
        if w is not None:
            return WatchedNodeData(data, stat, w)
        return NodeData(data, stat)

    # -- auth -----------------------------------------------------------------------------------

    async def add_auth(self, scheme: str, credential: str | bytes) -> None:
        """Add an identity to the connection (e.g. "digest", "user:password"). It is re-sent on
        every reconnect. A scheme the server refuses raises `AuthFailedError` (and the server
        drops the connection, which the client then re-establishes without it)."""
        cred = credential.encode() if isinstance(credential, str) else credential

        def hook(err: int) -> None:
            if err == Err.OK and (scheme, cred) not in self._auth:
                self._auth.append((scheme, cred))

        await self._call(Op.AUTH, R.AuthPacket(0, scheme, cred), None, hook)

    # -- watches --------------------------------------------------------------------------------

    def add_watch(self, path: str, *, recursive: bool = False) -> PersistentWatch:
        """A persistent watch on `path` (with `recursive`, on everything below it too), as an
        async iterator of `WatchedEvent`s: `async with zk.add_watch(p) as events:`."""
        return PersistentWatch(self, path, self._server_path(path), recursive)

    async def _add_persistent(self, pw: PersistentWatch) -> None:
        mode = AddWatchMode.PERSISTENT_RECURSIVE if pw.recursive else AddWatchMode.PERSISTENT

        def hook(err: int) -> None:
            if err == Err.OK:
                self._watches.add(pw.kind, pw._server_path, pw)

        await self._call(Op.ADD_WATCH, R.AddWatchRequest(pw._server_path, mode), pw.path, hook)

    async def _remove_persistent(self, pw: PersistentWatch) -> None:
        if not self._watches.discard(pw.kind, pw._server_path, pw):
            return  # another local watch of this mode still needs the server's
        # 3.6-3.8 servers know no per-mode removal: remove everything on the path, then re-arm
        # what we still want there.
        await self._remove_server_watches(pw._server_path, WatcherType.ANY, pw.path)

    async def _remove_one_time(self, w: Watch) -> None:
        reg = self._watches
        reg.discard(w.kind, w._server_path, w)
        if w.kind == WatchKind.CHILD:
            if reg.has(WatchKind.CHILD, w._server_path):
                return
            wtype = WatcherType.CHILDREN
        else:
            if reg.has(WatchKind.DATA, w._server_path) or reg.has(WatchKind.EXIST,
                                                                   w._server_path):
                return
            wtype = WatcherType.DATA
        await self._remove_server_watches(w._server_path, wtype, w.path)

    async def _remove_server_watches(self, sp: str, wtype: int, path: str) -> None:
        if self.state.terminal:
            return
        try:
            await self._call(Op.REMOVE_WATCHES, R.WatchesRequest(sp, wtype), path)
        except E.NoWatcherError:
            pass
        except (E.ConnectionLossError, E.SessionExpiredError, E.OperationTimeoutError):
            return  # the next connection re-arms only what is still registered
        # Servers before 3.9 remove more than the one mode; put back what we still hold.
        conn = self._conn
        if conn is not None and not conn.closed:
            for p in self._submit_set_watches(conn, sp):
                with anyio.move_on_after(self.request_timeout or self.session_timeout):
                    await p.done.wait()

    # -- retries --------------------------------------------------------------------------------

    async def retry(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` with `client.retry.retry` (retries idempotent calls after a
        connection loss)."""
        return await retry_call(fn, *args, **kwargs)


def create_request(server_path: str, data: bytes | None, acl: list[R.ACL], mode: CreateMode,
                   ttl: int | None, want_stat: bool) -> tuple[int, Any]:
    """The opcode and record for a create: container and TTL modes have their own opcodes."""
    if mode.ttl:
        if ttl is None or ttl <= 0:
            raise ValueError("TTL modes need a positive ttl (milliseconds)")
        return Op.CREATE_TTL, R.CreateTTLRequest(server_path, data, acl, int(mode), ttl)
    if ttl is not None:
        raise ValueError(f"ttl is only for the TTL modes, not {mode.name}")
    if mode == CreateMode.CONTAINER:
        return Op.CREATE_CONTAINER, R.CreateRequest(server_path, data, acl, int(mode))
    return (Op.CREATE2 if want_stat else Op.CREATE), R.CreateRequest(server_path, data, acl,
                                                                     int(mode))
