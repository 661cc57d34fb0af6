"""One client connection as the engine sees it, and the rule that keeps its replies in order.

ZooKeeper answers every connection strictly in request order (FIFO per client), while a write
is answered only once it is committed, later than the reads around it could be. The rule: a
request runs at once only if nothing of its connection is waiting. Otherwise it joins the
connection's `queue`, behind the uncommitted write: a read as an `Entry` that runs when its
turn comes, a write as an `Entry` whose reply (`data`) is filled in at commit. `drain` sends
every reply at the head of the queue that is ready and runs the reads whose turn came, so a
read behind a write sees that write. Notifications don't queue: a client always sees an event
before any reply that reflects the change.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from zkserver.proto.codes import Perm
from zkserver.server.counters import ConnectionStats, ServerStats
from zkserver.tree import acl as aclmod


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


# Runs a read whose turn came: (client, xid, op, request frame, now).
RunRead = Callable[["Client", int, int, Any, int], None]


class Client:
    """What the engine knows of one client connection.

    The connection layer reads `out` (bytes to send) when `wake` rings, and closes the
    connection once it is flushed if `close_after_flush` is set.
    """

    __slots__ = ("remote", "out", "queue", "session_id", "auth_ids", "close_after_flush",
                 "closed", "wake", "established", "last_response", "read_only_aware", "stats",
                 "server_stats", "__weakref__")

    def __init__(self, remote: tuple[str, int], wake: Callable[[], None], now: int, wall: int,
                 server_stats: ServerStats) -> None:
        self.remote = remote
        self.out = bytearray()
        # Requests waiting their turn: an empty tuple while there are none (most connections,
        # most of the time; an empty deque costs 760 bytes), a deque from the first on.
        self.queue: deque[Entry] | tuple[()] = ()
        self.session_id = 0
        self.auth_ids: list[aclmod.Identity] = [("ip", remote[0])]
        self.close_after_flush = False
        self.closed = False
        self.wake = wake
        self.established = wall  # shown as a date (cons, AdminServer), as ZooKeeper does
        self.last_response = now  # ZooKeeper's lresp: its elapsed-time clock
        self.read_only_aware = True
        self.stats = ConnectionStats()
        self.server_stats = server_stats  # every reply counts there too

    def enqueue(self, entry: Entry) -> None:
        """Put a request behind the ones waiting on this connection."""
        queue = self.queue
        if not isinstance(queue, deque):
            queue = self.queue = deque()
        queue.append(entry)
        self.server_stats.in_hand += 1

    def drop_queue(self) -> None:
        """Forget every waiting request (the connection is gone)."""
        self.server_stats.in_hand -= len(self.queue)
        self.queue = ()

    def can_read(self, acl: aclmod.AclList) -> bool:
        return aclmod.check(acl, Perm.READ, self.auth_ids)

    def send(self, data: bytes) -> None:
        """Queue one reply or notification for the connection and ring its sender."""
        self.out += data
        self.stats.sent += 1
        self.server_stats.sent_one(len(data))
        self.wake()

    def close(self) -> None:
        """Send what is queued, then close (the connection layer does the closing)."""
        self.close_after_flush = True
        self.wake()

    def drain(self, run_read: RunRead, now: int) -> None:
        """Send every reply at the head of the queue that is ready; run reads whose turn came."""
        queue = self.queue
        while queue:
            head = queue[0]
            if head.write:
                if head.data is None:
                    return
                queue.popleft()
                self.server_stats.in_hand -= 1
                self.send(head.data)
            else:
                queue.popleft()
                self.server_stats.in_hand -= 1
                run_read(self, head.xid, head.op, head.req, now)
        if self.queue is queue:
            self.queue = ()  # nothing waits: give the deque back

