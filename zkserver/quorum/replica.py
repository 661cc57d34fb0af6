"""What an ensemble member's engine holds beyond a standalone one's: its write route while it
follows, and the `Member` part.

The engine is the standalone `Engine`, given these parts by the server (quorum/node.py):

* a *follower* (or observer) prepares nothing: its `Forward` route sends each client write, raw,
  to the leader, remembers the waiting client by (session id, cxid), and finds it again when the
  committed transaction comes back through ZAB and is applied here;
* the *leader* prepares writes from its own clients (the engine's `Local` route) and from
  forwarded requests alike (`Member.remote_write`), and hands every transaction to ZAB instead
  of a local log;
* `sync` waits until this server has applied everything the leader had proposed when it saw the
  sync (`Member.sync`); only the leader expires sessions, so every member reports the sessions
  its clients kept alive (`Member.saw`, `take_touched`) for its pings, and takes on a session
  created through another server when its client reconnects here (`Member.adopt`).

A server without a role (looking for a leader, or synchronising) refuses connections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zkserver.engine import Client, Entry
from zkserver.engine.routes import NOBODY, Waiter
from zkserver.proto import records as R
from zkserver.proto.codes import Err, Op
from zkserver.proto.frames import reply
from zkserver.proto.jute import JuteError, Reader
from zkserver.quorum.messages import Request
from zkserver.sessions import SessionTracker
from zkserver.tree.datatree import DataTree
from zkserver.txn import Txn

if TYPE_CHECKING:
    from zkserver.engine import Engine

SESSION_REQUEST = Op.CREATE_SESSION  # a forwarded new session: data = the timeout


class Forward:
    """A follower's or observer's write route: every write goes to the leader."""

    serving = True
    read_only = False

    def __init__(self, send: Callable[[Request], None]) -> None:
        self.send = send
        self.waiting: dict[tuple[int, int], tuple[Client, Entry]] = {}

    def submit(self, engine: Engine, client: Client, entry: Entry, req: Any, frame: bytes,
               wall: int) -> None:
        if entry.op == Op.CLOSE_SESSION:
            engine.sessions.set_closing(client.session_id)
        self.waiting[(client.session_id, entry.xid)] = (client, entry)
        self.send(Request(client.session_id, entry.xid, entry.op, frame,
                          tuple(client.auth_ids)))

    def new_session(self, engine: Engine, client: Client, sid: int, timeout: int,
                    entry: Entry, wall: int) -> None:
        self.waiting[(sid, 0)] = (client, entry)
        self.send(Request(sid, 0, SESSION_REQUEST, timeout.to_bytes(4, "big"), ()))

    def waiter(self, txn: Txn) -> Waiter:
        return self.waiting.pop((txn.session_id, txn.cxid), NOBODY)


class Member:
    """The ensemble part of a member's engine: sync, touched sessions, forwarded writes."""

    def __init__(self) -> None:
        self.touched: dict[int, int] = {}
        self.sync_waiting: dict[int, tuple[Client, Entry]] = {}
        self.next_sync_token = 0
        self.sync_ready: list[tuple[int, Client, Entry]] = []  # (zxid needed, ...)
        self.request_sync: Callable[[int], None] | None = None  # set by lead/follow

    def clear(self) -> None:
        """The server stopped serving: no sync here will be answered."""
        self.sync_waiting.clear()
        self.sync_ready.clear()

    # -- sessions -------------------------------------------------------------------------------

    def saw(self, client: Client, sessions: SessionTracker) -> None:
        """A request on `client`: its session is alive, which the leader must hear of."""
        if client.session_id:
            info = sessions.get(client.session_id)
            if info is not None:
                self.touched[client.session_id] = info.timeout

    def take_touched(self) -> dict[int, int]:
        touched, self.touched = self.touched, {}
        return touched

    def adopt(self, sessions: SessionTracker, tree: DataTree, sid: int, now: int) -> None:
        """A client resumes session `sid` here: if it was created through another server, the
        tracker learns it from the tree."""
        if sid and sid in tree.sessions and sessions.get(sid) is None:
            sessions.add(sid, tree.sessions[sid], now)

    # -- writes forwarded to the leader ----------------------------------------------------------

    def remote_write(self, engine: Engine, req: Request, now: int, wall: int) -> None:
        """On the leader: a write a follower forwarded (its time stamped here, as ZooKeeper's
        leader stamps the transactions it prepares)."""
        if req.op == SESSION_REQUEST:
            timeout = int.from_bytes(req.data, "big")
            engine.sessions.add(req.session_id, timeout, now)
            engine.to_commit.append((engine.prep.create_session(req.session_id, timeout, wall),
                                     None, None))
            return
        decoded = engine.decode_write(req.op, req.data)
        if decoded is None:
            txn = engine.prep.error(req.session_id, req.cxid, wall, Err.MARSHALLINGERROR)
        else:
            txn = engine.prep_write(req.session_id, list(req.auth_ids), req.cxid, req.op,
                                    decoded[0], wall)
        engine.to_commit.append((txn, None, None))

    # -- sync -----------------------------------------------------------------------------------

    def sync(self, engine: Engine, client: Client, frame: bytes, now: int) -> None:
        """`sync`: answered once this server has applied everything the leader had proposed
        when it saw the sync; later requests on the connection wait behind it."""
        client.stats.received += 1
        engine.stats.received += 1
        xid = int.from_bytes(frame[0:4], "big", signed=True)
        try:
            path = Reader(frame, 8, max_buffer=engine.max_buffer).ustring()
        except JuteError:
            engine.reply_in_turn(client, xid, Err.MARSHALLINGERROR, now)
            return
        entry = Entry(xid, Op.SYNC, R.PathResponse.pack(path), True, now)
        client.enqueue(entry)
        self.next_sync_token += 1
        self.sync_waiting[self.next_sync_token] = (client, entry)
        if self.request_sync is not None:
            self.request_sync(self.next_sync_token)

    def sync_answered(self, engine: Engine, token: int, zxid: int, now: int) -> None:
        waiting = self.sync_waiting.pop(token, None)
        if waiting is None:
            return
        self.sync_ready.append((zxid, *waiting))
        self.release_syncs(engine, now)

    def release_syncs(self, engine: Engine, now: int) -> None:
        """Answer every sync whose zxid the tree has reached."""
        if not self.sync_ready:
            return
        last = engine.tree.last_zxid
        keep = []
        for zxid, client, entry in self.sync_ready:
            if last >= zxid:
                entry.data = reply(entry.xid, last, 0, entry.req)
                if not client.closed:
                    client.drain(engine.run_read, now)
            else:
                keep.append((zxid, client, entry))
        self.sync_ready = keep
