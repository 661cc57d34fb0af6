"""Where a client's write goes: the engine's write route, chosen by the server driving it.

A standalone server, and an ensemble's leader, prepare every write here (`Local`): the
transaction joins the engine's `to_commit`, and the driver makes it durable (the local log) or
proposes it (ZAB). A follower or an observer forwards writes to its leader instead
(quorum/replica.py's `Forward`). A server that is not serving (looking for a leader,
synchronising) takes no connections at all (`Refuse`); one cut off from its quorum with
readonlymode on takes the clients that accept a read-only server and answers their writes
NOTREADONLY (`ReadOnly`).

A route also finds who waits for a committed transaction that comes back from replication
(`waiter`): the leader by zxid, from what it proposed; a follower by (session, cxid), from what
it forwarded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from zkserver.engine.ordering import Client, Entry
from zkserver.txn import Txn

if TYPE_CHECKING:
    from zkserver.engine.commits import Commit
    from zkserver.engine.pipeline import Engine

Waiter = tuple[Client | None, Entry | None]
NOBODY: Waiter = (None, None)


class WriteRoute(Protocol):
    serving: bool  # takes connections
    read_only: bool  # answers writes NOTREADONLY

    def submit(self, engine: Engine, client: Client, entry: Entry, req: Any, frame: bytes,
               wall: int) -> None:
        """A decoded write of `client`, queued on it as `entry` (frame: the raw request)."""

    def new_session(self, engine: Engine, client: Client, sid: int, timeout: int,
                    entry: Entry, wall: int) -> None:
        """A new session's createSession; its ConnectResponse waits in `entry`."""

    def waiter(self, txn: Txn) -> Waiter:
        """Who here waits for this transaction, committed through replication."""


class Local:
    """Prepare here: a standalone server, or an ensemble's leader."""

    serving = True
    read_only = False

    def __init__(self) -> None:
        # A leader's prepared writes that went to ZAB, by zxid (a standalone server's come
        # back with their batch from the committer).
        self.in_flight: dict[int, tuple[Client | None, Entry | None]] = {}

    def submit(self, engine: Engine, client: Client, entry: Entry, req: Any, frame: bytes,
               wall: int) -> None:
        txn = engine.prep_write(client.session_id, client.auth_ids, entry.xid, entry.op, req,
                                wall)
        engine.to_commit.append((txn, client, entry))

    def new_session(self, engine: Engine, client: Client, sid: int, timeout: int,
                    entry: Entry, wall: int) -> None:
        engine.to_commit.append((engine.prep.create_session(sid, timeout, wall), client, entry))

    def proposed(self, batch: list[Commit]) -> None:
        for txn, client, entry in batch:
            self.in_flight[txn.zxid] = (client, entry)

    def waiter(self, txn: Txn) -> Waiter:
        return self.in_flight.pop(txn.zxid, NOBODY)

    def answers_here(self, txns: Iterable[Txn]) -> bool:
        """Whether a client of this server waits for any of these transactions."""
        in_flight = self.in_flight
        return any(in_flight.get(t.zxid, NOBODY)[0] is not None for t in txns)


class _NoWrites:
    """A route that never sees a write: no connection gets that far."""

    serving: bool
    read_only: bool

    def submit(self, engine: Engine, client: Client, entry: Entry, req: Any, frame: bytes,
               wall: int) -> None:
        raise AssertionError(f"{type(self).__name__}: a write reached a route that takes none")

    def new_session(self, engine: Engine, client: Client, sid: int, timeout: int,
                    entry: Entry, wall: int) -> None:
        raise AssertionError(f"{type(self).__name__}: a session reached a route that takes none")

    def waiter(self, txn: Txn) -> Waiter:
        return NOBODY


class Refuse(_NoWrites):
    """Not serving: the handshake turns every connection away."""

    serving = False
    read_only = False


class ReadOnly(_NoWrites):
    """readonlymode while cut off: writes are answered NOTREADONLY before they get here, and new
    sessions are local ones, answered at once."""

    serving = True
    read_only = True
