"""The request engine of an ensemble member.

It is the standalone `Engine` with three differences, all about where writes go:

* a *follower* (or observer) prepares nothing: it forwards each client write, raw, to the
  leader (`forward`), remembers the waiting client by (session id, cxid), and answers when the
  committed transaction comes back through ZAB and is applied here;
* the *leader* prepares writes from its own clients and from forwarded requests alike, and hands
  every transaction to ZAB instead of a local log;
* only the leader expires sessions; followers report the sessions they have seen (`touched`)
  with every ping reply.

A server that is not serving (looking for a leader, or synchronising) refuses connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from zkserver.engine import Client, Engine, Entry
from zkserver.proto.codes import Err, Op
from zkserver.proto.frames import reply
from zkserver.proto.jute import JuteError, Reader
from zkserver.proto.records import ConnectRequest
from zkserver.quorum.messages import Request
from zkserver.txn import Txn

SESSION_REQUEST = Op.CREATE_SESSION  # a forwarded new session: data = the timeout


class QuorumEngine(Engine):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.serving = False
        self.forward: Callable[[Request], None] | None = None  # set while following
        self.waiting: dict[tuple[int, int], tuple[Client, Entry]] = {}
        self.in_flight: dict[int, tuple[Client | None, Entry | None]] = {}
        self.touched: dict[int, int] = {}
        self.sync_waiting: dict[int, tuple[Client, Entry]] = {}
        self.next_sync_token = 0
        self.sync_ready: list[tuple[int, Client, Entry]] = []  # (zxid needed, ...)
        self.request_sync: Callable[[int], None] | None = None

    # -- connections --------------------------------------------------------------------------

    def handshake(self, client: Client, data: bytes, now: int, wall: int) -> bool:
        if not self.serving:
            return False
        try:
            sid = ConnectRequest.decode(data, self.max_buffer).session_id
        except JuteError:
            return False
        if sid and sid in self.tree.sessions and self.sessions.get(sid) is None:
            self.sessions.add(sid, self.tree.sessions[sid], now)  # created through another
        return super().handshake(client, data, now, wall)

    def stop_serving(self) -> None:
        """Lost the leader (or leadership): every client must go and find a serving server."""
        self.serving = False
        self.read_only = False
        self.forward = None
        for client in list(self.clients):
            self.disconnect(client)
            self._close(client)
        self.waiting.clear()
        self.in_flight.clear()
        self.sync_waiting.clear()
        self.sync_ready.clear()
        self.to_commit.clear()

    def handle(self, client: Client, data: bytes, now: int, wall: int) -> None:
        if client.session_id:
            info = self.sessions.get(client.session_id)
            if info is not None:
                self.touched[client.session_id] = info.timeout
        if len(data) >= 8 and int.from_bytes(data[4:8], "big", signed=True) == Op.SYNC \
                and not client.close_after_flush:
            self._sync_request(client, data, now)
            return
        super().handle(client, data, now, wall)

    # -- writes -------------------------------------------------------------------------------

    def submit_write(self, client: Client, entry: Entry, req: Any, data: bytes,
                     wall: int) -> None:
        if self.forward is None:
            super().submit_write(client, entry, req, data, wall)
            return
        if entry.op == Op.CLOSE_SESSION:
            self.sessions.set_closing(client.session_id)
        self.waiting[(client.session_id, entry.xid)] = (client, entry)
        self.forward(Request(client.session_id, entry.xid, entry.op, data,
                             tuple(client.auth_ids)))

    def new_session(self, client: Client, sid: int, timeout: int, entry: Entry,
                    wall: int) -> None:
        if self.forward is None:
            super().new_session(client, sid, timeout, entry, wall)
            return
        self.waiting[(sid, 0)] = (client, entry)
        self.forward(Request(sid, 0, SESSION_REQUEST, timeout.to_bytes(4, "big"), ()))

    def remote_write(self, req: Request, now: int, wall: int) -> None:
        """On the leader: a write a follower forwarded (its time stamped here, as ZooKeeper's
        leader stamps the transactions it prepares)."""
        if req.op == SESSION_REQUEST:
            timeout = int.from_bytes(req.data, "big")
            self.sessions.add(req.session_id, timeout, now)
            self.to_commit.append((self.prep.create_session(req.session_id, timeout, wall),
                                   None, None))
            return
        decoded = self.decode_write(req.op, req.data)
        if decoded is None:
            txn = self.prep.error(req.session_id, req.cxid, wall, -5)
        else:
            txn = self.prep_write(req.session_id, list(req.auth_ids), req.cxid, req.op,
                                  decoded[0], wall)
        self.to_commit.append((txn, None, None))

    def apply_txns(self, txns: Iterable[Txn], now: int) -> int:
        """Committed transactions from ZAB, in order: apply them, answer whoever here waits
        for them, and return the tree's digest after the last."""
        batch: list[tuple[Txn, Client | None, Entry | None]] = []
        for txn in txns:
            client: Client | None
            entry: Entry | None
            client, entry = self.in_flight.pop(txn.zxid, (None, None))
            if client is None:
                client, entry = self.waiting.pop((txn.session_id, txn.cxid), (None, None))
            batch.append((txn, client, entry))
        self.apply_committed(batch, now)
        if self.sync_ready:
            self._release_syncs(now)
        assert self.tree.digest is not None
        return self.tree.digest

    def take_touched(self) -> dict[int, int]:
        """Sessions seen since the last call (id -> timeout), for the leader's next ping."""
        touched, self.touched = self.touched, {}
        return touched

    # -- sync -----------------------------------------------------------------------------------

    def _sync_request(self, client: Client, data: bytes, now: int) -> None:
        """`sync`: answered once this server has applied everything the leader had proposed
        when it saw the sync; later requests on the connection wait behind it."""
        client.received += 1
        self.stats.received += 1
        xid = int.from_bytes(data[0:4], "big", signed=True)
        try:
            path = Reader(data, 8, max_buffer=self.max_buffer).ustring()
        except JuteError:
            self._queue_or_run_reply(client, xid, Err.MARSHALLINGERROR, now)
            return
        body = b"\xff\xff\xff\xff" if path is None else len(path.encode()).to_bytes(
            4, "big") + path.encode()
        entry = Entry(xid, Op.SYNC, body, True, now)
        client.queue.append(entry)
        self.next_sync_token += 1
        self.sync_waiting[self.next_sync_token] = (client, entry)
        if self.request_sync is not None:
            self.request_sync(self.next_sync_token)

    def sync_answered(self, token: int, zxid: int, now: int) -> None:
        waiting = self.sync_waiting.pop(token, None)
        if waiting is None:
            return
        self.sync_ready.append((zxid, *waiting))
        self._release_syncs(now)

    def _release_syncs(self, now: int) -> None:
        keep = []
        for zxid, client, entry in self.sync_ready:
            if self.tree.last_zxid >= zxid:
                entry.data = reply(entry.xid, self.tree.last_zxid, 0, entry.req)
                if not client.closed:
                    self._drain(client, now)
            else:
                keep.append((zxid, client, entry))
        self.sync_ready = keep
