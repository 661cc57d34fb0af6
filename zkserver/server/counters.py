"""The counters behind the monitoring commands: ZooKeeper's ServerStats for the whole server,
and what each connection counts for `cons`.

The engine bumps them on every request and every reply, so they are slotted objects that only
add and compare. Nothing here formats anything: `server/stats.py` reads them for the
four-letter words, the AdminServer and /metrics.
"""

from __future__ import annotations

from zkserver.proto.codes import Op

# The short names `cons` shows as a connection's last operation (ZooKeeper's Request.op2String).
OP_NAMES = {
    Op.CREATE: "CREA", Op.CREATE2: "CREA", Op.CREATE_CONTAINER: "CREA", Op.CREATE_TTL: "CREA",
    Op.DELETE: "DELE", Op.EXISTS: "EXIS", Op.GET_DATA: "GETD", Op.SET_DATA: "SETD",
    Op.GET_ACL: "GACL", Op.SET_ACL: "SACL", Op.GET_CHILDREN: "GETC", Op.GET_CHILDREN2: "GETC",
    Op.SYNC: "SYNC", Op.PING: "PING", Op.MULTI: "MULT", Op.MULTI_READ: "MLTR",
    Op.CLOSE_SESSION: "CLOS", Op.AUTH: "AUTH", Op.SET_WATCHES: "SETW", Op.SET_WATCHES2: "STW2",
    Op.ADD_WATCH: "ADDW", Op.REMOVE_WATCHES: "REMW", Op.CHECK_WATCHES: "CHKW",
    Op.GET_EPHEMERALS: "GETE", Op.GET_ALL_CHILDREN_NUMBER: "GETACN", Op.WHO_AM_I: "HOMI",
}


class Latency:
    """Request latencies in ms: min, max, sum and count (ZooKeeper's min/avg/max)."""

    __slots__ = ("min", "max", "total", "count")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.min = self.max = self.total = self.count = 0

    def add(self, ms: int) -> None:
        if self.count == 0 or ms < self.min:
            self.min = ms
        if ms > self.max:
            self.max = ms
        self.total += ms
        self.count += 1

    def add_zero(self) -> None:
        """`add(0)`: reads count as 0 ms (answered from memory as soon as their turn comes)."""
        if self.min > 0:
            self.min = 0
        self.count += 1

    def average(self) -> float:
        return self.total / self.count if self.count else 0.0


class ServerStats:
    """The whole server's counts (`srvr`, `mntr`); `srst` resets them."""

    __slots__ = ("received", "sent", "latency", "auth_failed", "last_response_size",
                 "min_response_size", "max_response_size", "in_hand")

    def __init__(self) -> None:
        self.latency = Latency()
        # Requests waiting on every connection's queue (not reset by `srst`: it is a level,
        # not a count). globalOutstandingLimit reads it for every request, so it is kept as
        # entries come and go rather than summed over the connections.
        self.in_hand = 0
        self.reset()

    def reset(self) -> None:
        self.received = self.sent = 0
        self.latency.reset()
        self.auth_failed = 0
        self.last_response_size = self.max_response_size = 0
        self.min_response_size = -1

    def sent_one(self, size: int) -> None:
        self.sent += 1
        self.last_response_size = size
        if size > self.max_response_size:
            self.max_response_size = size
        if size < self.min_response_size or self.min_response_size < 0:
            self.min_response_size = size


class ConnectionStats:
    """One connection's counts (`cons`); `crst` resets them."""

    __slots__ = ("received", "sent", "last_op", "last_cxid", "last_zxid", "last_latency",
                 "latency")

    def __init__(self) -> None:
        self.latency = Latency()
        self.reset()

    def reset(self) -> None:
        self.received = self.sent = 0
        self.last_op = "NA"
        self.last_cxid = self.last_zxid = -1
        self.last_latency = 0
        self.latency.reset()

    def answered(self, ms: int) -> None:
        """A request was answered `ms` after it arrived."""
        self.last_latency = ms
        self.latency.add(ms)

    def read_answered(self) -> None:
        """`answered(0)`: reads count as 0 ms, as in `Latency.add_zero`."""
        self.last_latency = 0
        self.latency.add_zero()
