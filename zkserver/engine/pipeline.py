"""The Engine: ZooKeeper's request pipeline as a plain object, routing each frame to its part.

It holds the tree, the sessions and `Prep`, the connections and the server's counters, and
decides what each request frame is: the handshake (handshake.py), a write (writes.py; where it
goes is the write route's business, routes.py; then commits.py once committed), or something
answered in turn without a transaction: a read (reads.py), a watch request (watching.py),
addAuth (auth.py) or a ping. Order on a connection is ordering.py's rule.

An ensemble member's engine also holds a `Member` part (quorum/replica.py: `sync` through the
leader, the sessions its clients keep alive, sessions created through other servers), and its
driver (quorum/node.py) steers it with `stop_serving`, `serve_read_only`, `lead`, `follow`,
`reset_to`, `proposed` and `apply_txns`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from zkserver.engine import commits, handshake
from zkserver.engine.auth import authenticate
from zkserver.engine.commits import Commit
from zkserver.engine.ordering import Client, Entry
from zkserver.engine.reads import Handler, Reads
from zkserver.engine.routes import Local, ReadOnly, Refuse, WriteRoute
from zkserver.engine.sasl import SaslGate
from zkserver.engine.watching import HANDLERS as WATCH_HANDLERS
from zkserver.engine.writes import WRITE_OPS, decode_write, prepare
from zkserver.prep import Prep
from zkserver.proto.codes import PING_XID, Err, Op
from zkserver.proto.frames import reply
from zkserver.proto.jute import JuteError, Reader
from zkserver.server.counters import OP_NAMES, ServerStats
from zkserver.sessions import SessionTracker
from zkserver.tree import acl as aclmod
from zkserver.tree.datatree import DataTree
from zkserver.txn import Txn

if TYPE_CHECKING:
    from zkserver.quorum.replica import Member

_header = struct.Struct(">ii").unpack_from


class Engine:
    """Connections hand it decoded frames (`handshake`, `handle`) with the time, twice over:
    `now`, milliseconds on the monotonic clock, for every deadline and latency, and `wall`, the
    wall-clock time a write's transaction carries (ctime/mtime), so that a step of the wall
    clock moves nothing but the timestamps ZooKeeper shows. It answers by appending bytes to
    each `Client.out` and ringing `Client.wake`. Writes become transactions queued in
    `to_commit`; whoever drives the engine makes them durable (or replicated) and then calls
    `apply_committed`."""

    def __init__(self, *, tree: DataTree | None = None, tick_time: int = 2000,
                 min_session_timeout: int | None = None, max_session_timeout: int | None = None,
                 server_id: int = 1, wall: int = 0,
                 extended_types: bool = False, skip_acl: bool = False,
                 super_digest: str | None = None, reconfig_enabled: bool = False,
                 enforce_quota: bool = False, max_buffer: int = 0xFFFFF,
                 sasl: SaslGate | None = None) -> None:
        self._tree = tree or DataTree()
        self._tree.track_quotas()  # a served tree keeps its quota stats (tree/quota.py)
        self.prep = Prep(self._tree, extended_types=extended_types, skip_acl=skip_acl,
                         reconfig_enabled=reconfig_enabled, enforce_quota=enforce_quota)
        self.sessions = SessionTracker(tick_time, server_id, wall)  # wall seeds session ids
        self.min_timeout = min_session_timeout or 2 * tick_time
        self.max_timeout = max_session_timeout or 20 * tick_time
        self.super_digest = super_digest
        self.max_buffer = max_buffer
        self.sasl = sasl or SaslGate()  # SASL exchanges and enforced authentication (sasl.py)
        self.route: WriteRoute = Local()
        self.member: Member | None = None  # set by `join_ensemble`
        self.clients: set[Client] = set()
        self.by_session: dict[int, Client] = {}
        self.to_commit: list[Commit] = []
        self.stats = ServerStats()
        self._handlers: dict[int, Handler] = {**Reads(skip_acl).handlers, **WATCH_HANDLERS}

    @property
    def tree(self) -> DataTree:
        return self._tree

    @property
    def last_zxid(self) -> int:
        return self._tree.last_zxid

    @property
    def serving(self) -> bool:
        """Whether connections are taken (an ensemble member only once it has a role)."""
        return self.route.serving

    @property
    def read_only(self) -> bool:
        """An ensemble member cut off from its quorum, serving reads (readonlymode)."""
        return self.route.read_only

    # -- connections --------------------------------------------------------------------------

    def connect(self, remote: tuple[str, int], wake: Callable[[], None], now: int,
                wall: int) -> Client:
        client = Client(remote, wake, now, wall, self.stats)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        """The socket is gone: drop its watches and pending replies; the session lives on."""
        if client.closed:
            return
        client.closed = True
        self.clients.discard(client)
        self._tree.watches.remove_watcher(client)
        if self.by_session.get(client.session_id) is client:
            del self.by_session[client.session_id]
        client.drop_queue()

    def bind(self, client: Client, sid: int) -> None:
        """`client` is the connection of session `sid` from now on."""
        client.session_id = sid
        self.by_session[sid] = client

    def client_of(self, sid: int) -> Client | None:
        return self.by_session.get(sid)

    def session_closed(self, sid: int) -> None:
        """Session `sid` is gone (its closeSession is applied): close its connection."""
        self.sessions.remove(sid)
        client = self.by_session.pop(sid, None)
        if client is not None:
            client.close()

    def handshake(self, client: Client, data: bytes, now: int, wall: int) -> bool:
        """A ConnectRequest. Returns False if the connection must close at once, unanswered."""
        return handshake.handshake(self, client, data, now, wall)

    # -- requests -----------------------------------------------------------------------------

    def handle(self, client: Client, data: bytes, now: int, wall: int) -> None:
        """One request frame (header + body) from an established connection."""
        if self.sasl.enforcing and not self.sasl.admit(client, data):
            return
        member = self.member
        if member is not None:
            member.saw(client, self.sessions)
            if len(data) >= 8 and _header(data)[1] == Op.SYNC and not client.close_after_flush:
                member.sync(self, client, data, now)
                return
        if client.close_after_flush or client.closed:
            return
        queue = client.queue
        if queue and queue[-1].op == Op.CLOSE_SESSION:
            return  # ZooKeeper answers nothing a client sends after its closeSession
        counts = client.stats
        counts.received += 1
        self.stats.received += 1
        if len(data) < 8:
            client.close()
            return
        xid, op = _header(data)
        self.sessions.touch(client.session_id, now)
        if xid >= 0:
            counts.last_cxid = xid
        if op in WRITE_OPS:
            if self.route.read_only:
                self.reply_in_turn(client, xid, Err.NOTREADONLY, now)
                return
            self._write(client, xid, op, data, now, wall)
            return
        if op == Op.AUTH:
            self._authenticate(client, xid, data)
            return
        if op == Op.PING:
            xid = PING_XID
        elif op not in self._handlers and op != Op.SASL:
            # Unknown opcodes (and a stand-alone check): UNIMPLEMENTED with zxid -1 (the
            # request never got one), then close, as ZooKeeper's UnimplementedRequestProcessor.
            client.send(reply(xid, -1, Err.UNIMPLEMENTED))
            client.close()
            return
        if client.queue:
            # A waiting read keeps the identities it came with (see `_authenticate`).
            client.enqueue(Entry(xid, op, (data, client.auth_ids), False, now))
        else:
            self.run_read(client, xid, op, data, now)

    def run_read(self, client: Client, xid: int, op: int, frame: Any, now: int) -> None:
        """Answer a request that needs no transaction, now that its turn has come (`frame`, or
        for one that waited, the frame and the identities the connection held on arrival)."""
        counts = client.stats
        counts.last_op = OP_NAMES.get(op, "NA")
        ids = client.auth_ids
        if isinstance(frame, tuple):
            frame, ids = frame
        handler = self._handlers.get(op)
        if handler is None:
            self._special(client, xid, op, frame)
            return
        tree = self._tree
        held = client.auth_ids
        client.auth_ids = ids
        try:
            err, body = handler(tree, client, Reader(frame, 8, max_buffer=self.max_buffer))
        except JuteError:
            err, body = Err.MARSHALLINGERROR, b""
        finally:
            client.auth_ids = held
        zxid = tree.last_zxid
        counts.last_zxid = zxid
        if xid != PING_XID:
            self.stats.latency.add_zero()
            counts.read_answered()
        client.send(reply(xid, zxid, err, body))  # a failed multiRead keeps its results

    def _authenticate(self, client: Client, xid: int, frame: bytes) -> None:
        """addAuth. ZooKeeper handles it as it arrives, outside its request pipeline, so its
        reply (the client's own xid, zxid 0) overtakes replies still waiting on the connection,
        and the identities it adds count for the requests that arrive after it: a waiting read
        keeps the list it came with, so the new list replaces the old one. A packet that does
        not parse closes the connection unanswered; an unknown scheme is AUTHFAILED, then
        close."""
        client.stats.last_op = OP_NAMES.get(Op.AUTH, "NA")
        ids = list(client.auth_ids)
        err = authenticate(ids, frame, self.max_buffer, self.super_digest)
        if err == Err.MARSHALLINGERROR:
            client.close()
            return
        client.auth_ids = ids
        client.send(reply(xid, 0, err))
        if err == Err.AUTHFAILED:
            self.stats.auth_failed += 1
            client.close()

    def _special(self, client: Client, xid: int, op: int, frame: bytes) -> None:
        """Ping and SASL (sasl.py)."""
        if op == Op.PING:
            client.send(reply(PING_XID, self._tree.last_zxid, 0))
        else:
            self.sasl.answer(client, xid, frame, self.max_buffer)

    # -- writes -------------------------------------------------------------------------------

    def _write(self, client: Client, xid: int, op: int, data: bytes, now: int,
               wall: int) -> None:
        decoded = self.decode_write(op, data)
        if decoded is None:
            self.reply_in_turn(client, xid, Err.MARSHALLINGERROR, now)
            return
        req, subops = decoded
        entry = Entry(xid, op, subops, True, now)
        client.enqueue(entry)
        self.route.submit(self, client, entry, req, data, wall)

    def decode_write(self, op: int, data: bytes) -> tuple[Any, list[int] | None] | None:
        """A write's request record (and a multi's sub-op codes); None if it doesn't parse."""
        return decode_write(op, data, self.max_buffer)

    def prep_write(self, sid: int, auth_ids: list[aclmod.Identity], xid: int, op: int,
                   req: Any, wall: int) -> Txn:
        return prepare(self.prep, self.sessions, sid, auth_ids, xid, op, req, wall)

    def reply_in_turn(self, client: Client, xid: int, err: int, now: int) -> None:
        """Answer a request with an error without preparing it, in its turn on the connection,
        with the last zxid handed out (ZooKeeper's error header takes `getZxid()` when the
        request is prepared; every write before it is applied by the time this is sent)."""
        entry = Entry(xid, Op.ERROR, None, True, now)
        entry.data = reply(xid, max(self._tree.last_zxid, self.prep.last_zxid), err)
        client.enqueue(entry)
        client.drain(self.run_read, now)

    # -- commit -------------------------------------------------------------------------------

    @property
    def writes_pending(self) -> bool:
        """Writes prepared and not yet applied (queued for the commit path, or in flight)."""
        return bool(self.to_commit or self.prep.outstanding)

    def grant(self, session_id: int, identities: list[aclmod.Identity]) -> None:
        """Give the connections of `session_id` these identities (those it lacks), as an
        addauth would: the console's certificate login grants its own session `x509`."""
        if not session_id:
            return
        for connection in self.clients:
            if connection.session_id == session_id:
                for ident in identities:
                    if ident not in connection.auth_ids:
                        connection.auth_ids.append(ident)

    def take_commits(self) -> list[Commit]:
        batch = self.to_commit
        self.to_commit = []
        return batch

    def apply_committed(self, batch: list[Commit], now: int) -> None:
        """Apply transactions that are now durable, in zxid order, and answer their writers."""
        commits.apply_committed(self, batch, now)

    # -- driven by an ensemble member's server (quorum/node.py) -------------------------------

    def join_ensemble(self, member: Member) -> None:
        """Become an ensemble member's engine: serve nothing until given a role."""
        self.member = member
        self.route = Refuse()

    def stop_serving(self) -> None:
        """Lost the leader (or leadership): every client must go and find a serving server, and
        nothing prepared or forwarded here will be answered."""
        self.route = Refuse()
        for client in list(self.clients):
            self.disconnect(client)
            client.close()
        if self.member is not None:
            self.member.clear()
        self.to_commit.clear()

    def serve_read_only(self) -> None:
        """Cut off from the quorum with readonlymode on: reads for clients that accept it."""
        self.route = ReadOnly()

    def lead(self, epoch: int, now: int, request_sync: Callable[[int], None]) -> None:
        """Lead `epoch`: prepare every write here (zxids from `epoch << 32` on); every session
        the tree holds lives on from `now` (the leader expires them now)."""
        self.prep.restart(self._tree, epoch << 32)
        self.restore_sessions(now)
        self._member().request_sync = request_sync
        self.route = Local()

    def follow(self, route: WriteRoute, request_sync: Callable[[int], None]) -> None:
        """Follow (or observe) a leader: writes take `route` (quorum/replica.py's `Forward`),
        and a `sync` asks the leader through `request_sync`."""
        self._member().request_sync = request_sync
        self.route = route

    def reset_to(self, tree: DataTree) -> None:
        """Serve `tree` from now on (a snapshot installed, the log truncated): its quota stats
        are counted afresh, and nothing prepared against the old tree is pending."""
        self._tree = tree
        tree.track_quotas()
        self.prep.restart(tree)

    def proposed(self, batch: list[Commit]) -> None:
        """These prepared writes went to ZAB (only a leader prepares any); their transactions
        come back through `apply_txns`."""
        route = self.route
        assert isinstance(route, Local), "only a leader proposes"
        route.proposed(batch)

    def apply_txns(self, txns: Iterable[Txn], now: int) -> int:
        """Committed transactions from ZAB, in order: apply them, answer whoever here waits
        for them, and return the tree's digest after the last."""
        waiter = self.route.waiter
        self.apply_committed([(txn, *waiter(txn)) for txn in txns], now)
        self._member().release_syncs(self, now)
        digest = self._tree.digest
        assert digest is not None
        return digest

    def answers_here(self, txns: Iterable[Txn]) -> bool:
        """On a leader: whether applying these committed transactions answers a client of
        this server (a write one of its own clients made), rather than only its followers'."""
        route = self.route
        return isinstance(route, Local) and route.answers_here(txns)

    def remote_write(self, req: Any, now: int, wall: int) -> None:
        """On the leader: a write a follower forwarded (quorum/replica.py)."""
        self._member().remote_write(self, req, now, wall)

    def sync_answered(self, token: int, zxid: int, now: int) -> None:
        """The leader has answered our `sync` number `token`: it needs us at `zxid`."""
        self._member().sync_answered(self, token, zxid, now)

    def take_touched(self) -> dict[int, int]:
        """Sessions this server's clients kept alive since the last call (id -> timeout)."""
        return self._member().take_touched()

    def touch_sessions(self, sids: Iterable[int], now: int) -> None:
        """Sessions that followers' clients kept alive (a leader hears of them in pings)."""
        for sid in sids:
            self.sessions.touch(sid, now)

    def _member(self) -> Member:
        member = self.member
        assert member is not None, "not an ensemble member's engine"
        return member

    # -- sessions -------------------------------------------------------------------------------

    def expire_sessions(self, now: int, wall: int) -> list[int]:
        """Close every session whose deadline (monotonic `now`) has passed: one closeSession
        txn each, stamped `wall`."""
        expired = self.sessions.expired(now)
        for sid in expired:
            self.to_commit.append((self.prep.close_session(sid, 0, wall), None, None))
        return expired

    def restore_sessions(self, now: int) -> None:
        """Give every session the tree holds a fresh deadline from `now`, as ZooKeeper does
        after a restart and when a new leader takes over."""
        for sid, timeout in self._tree.sessions.items():
            self.sessions.add(sid, timeout, now)

    def reap(self, paths: Iterable[str], wall: int) -> int:
        """Delete these empty containers and expired TTL nodes (ZooKeeper's ContainerManager),
        each one that is still due once pending writes are counted; how many were prepared."""
        done = 0
        for path in paths:
            txn = self.prep.delete_container(path, wall)
            if txn is not None:
                self.to_commit.append((txn, None, None))
                done += 1
        return done
