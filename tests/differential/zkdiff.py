"""The differential driver: run the same kazoo operation against a real ZooKeeper and zkserver.

    dual = Dual(pair)                       # pair: a DualServers (see conftest.py)
    a = dual.open("A")                      # one kazoo session on each server
    dual.same(a, "create", "/t1/x", b"v")   # runs on both, asserts the results are equal
    dual.check_events()                     # sync barrier, then compare every watch event

Every operation runs on the two servers at once (kazoo's *_async calls) and both answers are
normalised before comparing: exceptions become their class name, a ZnodeStat becomes a dict in
which ctime/mtime are replaced by the flag `ctime == mtime` (`mtime >= ctime` once the node has
been modified: a write in the same millisecond keeps them equal) and ephemeralOwner is mapped from
the real server's session ids to ours, ACLs become `(perms, scheme, id)` tuples and child lists
are sorted. The zxid of the reply (kazoo's `last_zxid`) is compared after every operation, so a
write that consumed a zxid on one server only shows up at once.

Watch events are recorded twice per client: the raw notifications the server sent (type, path
and the zxid in their header, taken from kazoo's reader thread) and the events kazoo delivered
to each watch callback (on kazoo's callback thread). `check_events` makes both complete before
comparing: a sync round-trip on every session (a server queues a notification before any later
reply on that connection) and then a marker through kazoo's callback queue, each with a
deadline. Nothing sleeps for a fixed time.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.protocol.serialization import Watch
from kazoo.protocol.states import Callback, ZnodeStat
from kazoo.security import ACL

SIDES = ("zk", "ours")
TIMEOUT = 10.0
WATCH_XID = -1
STAT_FIELDS = ("czxid", "mzxid", "version", "cversion", "aversion", "ephemeralOwner",
               "dataLength", "numChildren", "pzxid")


class Mismatch(AssertionError):
    """The two servers answered differently."""


class Session:
    """One logical client: a kazoo session on each server, plus what it has seen."""

    def __init__(self, label: str, clients: dict[str, KazooClient]) -> None:
        self.label = label
        self.clients = clients
        self.raw: dict[str, list[tuple]] = {s: [] for s in SIDES}
        self.delivered: dict[str, list[tuple]] = {s: [] for s in SIDES}
        self.states: dict[str, list[str]] = {s: [] for s in SIDES}
        self.negotiated: dict[str, list[float]] = {s: [] for s in SIDES}
        self.lock = threading.Lock()
        self.digests: set[str] = set()  # digest identities added with add_auth (for models)
        self.closed = False
        self._tags = 0

    def watcher(self, side: str, tag: int) -> Callable[[Any], None]:
        delivered = self.delivered[side]
        lock = self.lock

        def watch(event: Any) -> None:
            with lock:
                delivered.append((tag, event.type, event.path, event.state))
        return watch

    def next_tag(self) -> int:
        self._tags += 1
        return self._tags

    def __repr__(self) -> str:
        return f"<session {self.label}>"


def _hook(client: KazooClient, out: list[tuple], lock: threading.Lock,
          negotiated: list[float]) -> None:
    """Record every notification as the server sent it (kazoo's reader thread, in order), and
    the session timeout the server granted (kazoo keeps only its read timeout, 2/3 of it)."""
    conn = client._connection
    read_header = conn._read_header
    connect = conn._connect

    def hooked_connect(*args: Any) -> Any:
        read_timeout, connect_timeout = connect(*args)
        negotiated.append(round(read_timeout * 1.5))
        return read_timeout, connect_timeout
    conn._connect = hooked_connect

    def hooked(timeout: float) -> Any:
        header, buffer, offset = read_header(timeout)
        if header.xid == WATCH_XID:
            watch, _ = Watch.deserialize(buffer, offset)
            with lock:
                out.append((watch.type, watch.path, header.zxid))
        return header, buffer, offset
    conn._read_header = hooked


def normalise(value: Any, owners: Callable[[int], Any]) -> Any:
    """A comparable form of a kazoo result (see the module docstring)."""
    if isinstance(value, ZnodeStat):
        d = {f: getattr(value, f) for f in STAT_FIELDS}
        d["ephemeralOwner"] = owners(value.ephemeralOwner)
        # An unmodified node has ctime == mtime; a modified one may still, if the write came
        # in the same millisecond, so then only the order is deterministic.
        if value.czxid == value.mzxid:
            d["ctime==mtime"] = value.ctime == value.mtime
        else:
            d["mtime>=ctime"] = value.mtime >= value.ctime
        return d
    if isinstance(value, ACL):
        return (value.perms, value.id.scheme, value.id.id)
    if isinstance(value, BaseException):
        return type(value).__name__
    if isinstance(value, (list, tuple)):
        return type(value)(normalise(v, owners) for v in value)
    return value


class Dual:
    """Runs every operation on both servers and compares what comes back."""

    def __init__(self, servers: Any) -> None:
        self.servers = servers  # has .hosts(side) and .restart()
        self.sid_map: dict[int, int] = {}  # real session id -> our session id
        self.sessions: list[Session] = []
        self.history: collections.deque[str] = collections.deque(maxlen=40)
        self.ops = 0
        self.outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        self.diverged = False
        self._bases = 0

    # -- bookkeeping ------------------------------------------------------------------------

    def new_base(self) -> str:
        """A fresh top-level path for one example or scenario."""
        self._bases += 1
        return f"/t{self._bases}"

    def begin(self) -> None:
        """Start an example from servers in step: after a mismatch, start both afresh."""
        if self.diverged:
            for s in list(self.sessions):
                self._stop(s)
            self.sessions.clear()
            self.sid_map.clear()
            self.servers.restart()
            self.diverged = False
        self.history.clear()

    def _owner(self, sid: int) -> Any:
        if sid == 0:
            return 0
        return self.sid_map.get(sid, ("unmapped", sid))

    def fail(self, what: str) -> None:
        self.diverged = True
        recent = "\n  ".join(self.history)
        raise Mismatch(f"{what}\nrecent operations (newest last):\n  {recent}")

    # -- sessions -----------------------------------------------------------------------------

    def open(self, label: str, timeout: float = 10.0) -> Session:
        clients = {side: KazooClient(self.servers.hosts(side), timeout=timeout)
                   for side in SIDES}
        session = Session(label, clients)
        for side, client in clients.items():
            _hook(client, session.raw[side], session.lock, session.negotiated[side])
            client.add_listener(lambda state, side=side: session.states[side].append(state))
        for side in SIDES:
            clients[side].start(timeout=TIMEOUT)
        # kazoo reports CONNECTED from inside `_connect`, so `start` may return before the hook
        # has recorded what `_connect` returns: wait for it (briefly) before comparing.
        deadline = time.monotonic() + TIMEOUT
        while not all(session.negotiated[side] for side in SIDES):
            if time.monotonic() > deadline:
                self.fail(f"{label}: no negotiated timeout recorded: {session.negotiated}")
            time.sleep(0.001)
        real_sid, our_sid = clients["zk"].client_id[0], clients["ours"].client_id[0]
        self.sid_map[real_sid] = our_sid
        self.sessions.append(session)
        self.history.append(f"{label}: open (real sid {real_sid:#x}, ours {our_sid:#x})")
        self._compare_zxid(session, "open")
        negotiated = [(session.negotiated[side], len(clients[side].client_id[1]))
                      for side in SIDES]
        if negotiated[0] != negotiated[1]:
            self.fail(f"{label}: (negotiated timeout, password length) differ: {negotiated}")
        return session

    def _stop(self, session: Session) -> None:
        session.closed = True
        for client in session.clients.values():
            try:
                client.stop()
            finally:
                client.close()

    def close(self, session: Session) -> None:
        """Compare the session's events, then close it on both servers (one zxid each)."""
        if session.closed:
            return
        self.check_events([session])
        self.history.append(f"{session.label}: close")
        self._stop(session)
        self.sessions.remove(session)
        self._check_states(session)
        # kazoo reads up to the reply to closeSession: the notifications its own deletions
        # fired on this connection (if any) are in by now
        if not _same_events(session.raw["zk"], session.raw["ours"]):
            self.fail(f"{session.label}: notifications differ after close:\n"
                      f"  real ZooKeeper: {session.raw['zk']}\n"
                      f"  zkserver:       {session.raw['ours']}")

    def close_all(self) -> None:
        for s in list(reversed(self.sessions)):
            self.close(s)

    def _check_states(self, session: Session) -> None:
        """A session never lost its connection: a dropped connection is a bug too."""
        for side in SIDES:
            bad = [s for s in session.states[side] if s != KazooState.CONNECTED
                   and not (session.closed and s == KazooState.LOST)]
            if bad:
                self.fail(f"{session.label} on {side} changed state: {session.states[side]}")

    # -- operations ---------------------------------------------------------------------------

    def run(self, session: Session, method: str, *args: Any, watch: bool = False,
            **kwargs: Any) -> tuple[Any, Any]:
        """Run `client.<method>(*args, **kwargs)` on both servers; (real, ours), normalised.

        With watch=True a fresh watch callback (one per call and side, tagged) is passed as
        the `watch` argument.
        """
        self.ops += 1
        tag = session.next_tag() if watch else None
        desc = _describe(session, method, args, kwargs, watch)
        pending = {}
        for side in SIDES:
            kw = dict(kwargs)
            if watch:
                kw["watch"] = session.watcher(side, tag)
            fn = None if kw.get("recursive") else getattr(session.clients[side],
                                                          method + "_async", None)
            try:
                pending[side] = (fn(*args, **kw), None) if fn is not None else (
                    None, getattr(session.clients[side], method)(*args, **kw))
            except Exception as e:  # raised before anything was sent (kazoo checks)
                pending[side] = (None, e)
        out = []
        for side in SIDES:
            async_result, value = pending[side]
            if async_result is not None:
                try:
                    value = async_result.get(timeout=TIMEOUT)
                except Exception as e:
                    value = e
            if method == "get_children":
                value = _sort_children(value)
            out.append(normalise(value, self._owner if side == "zk" else _identity))
        self.outcomes[(method, _kind(out[0]))] += 1
        self.history.append(f"{desc} -> {out[0]!r}" + ("" if out[0] == out[1]
                                                        else f" | ours {out[1]!r}"))
        return out[0], out[1]

    def same(self, session: Session, method: str, *args: Any, watch: bool = False,
             **kwargs: Any) -> Any:
        """Run on both, insist on equal results and equal reply zxids; return the result."""
        real, ours = self.run(session, method, *args, watch=watch, **kwargs)
        if real != ours:
            self.fail(f"{_describe(session, method, args, kwargs, watch)}:\n"
                      f"  real ZooKeeper: {real!r}\n  zkserver:       {ours!r}")
        self._compare_zxid(session, method)
        return real

    def batch(self, session: Session, calls: list[tuple[str, tuple, dict]]) -> list[Any]:
        """Pipelined calls: all sent at once (kazoo's *_async, in order) before any answer is
        read, so the server prepares writes while earlier ones are still uncommitted. The
        answers must be equal one by one; returns the real server's, normalised."""
        self.ops += len(calls)
        pending: dict[str, list[Any]] = {side: [] for side in SIDES}
        for side in SIDES:
            client = session.clients[side]
            for method, args, kwargs in calls:
                try:
                    if method == "transaction":  # args: the ops, as (name, *arguments)
                        txn = client.transaction()
                        for op in args:
                            getattr(txn, op[0])(*op[1:])
                        pending[side].append(txn.commit_async())
                    else:
                        pending[side].append(getattr(client, method + "_async")(*args,
                                                                                 **kwargs))
                except Exception as e:  # refused by kazoo before sending
                    pending[side].append(e)
        out: dict[str, list[Any]] = {side: [] for side in SIDES}
        for side in SIDES:
            owners = self._owner if side == "zk" else _identity
            for (method, _, _), result in zip(calls, pending[side], strict=True):
                if not isinstance(result, Exception):
                    try:
                        result = result.get(timeout=TIMEOUT)
                    except Exception as e:
                        result = e
                if method == "get_children":
                    result = _sort_children(result)
                out[side].append(normalise(result, owners))
        for (method, args, kwargs), real, ours in zip(calls, out["zk"], out["ours"],
                                                       strict=True):
            desc = _describe(session, method, args, kwargs, False)
            self.outcomes[(method, _kind(real, multi=method == "transaction"))] += 1
            self.history.append(f"{desc} [pipelined] -> {real!r}"
                                + ("" if real == ours else f" | ours {ours!r}"))
            if real != ours:
                self.fail(f"{desc} [pipelined]:\n  real ZooKeeper: {real!r}\n"
                          f"  zkserver:       {ours!r}")
        self._compare_zxid(session, "pipelined batch")
        return out["zk"]

    def commit(self, session: Session, build: Callable[[Any], None], desc: str) -> Any:
        """A kazoo transaction: `build(txn)` adds the ops; committed on both and compared."""
        self.ops += 1
        pending = {}
        for side in SIDES:
            txn = session.clients[side].transaction()
            build(txn)
            pending[side] = txn.commit_async()
        out = []
        for side in SIDES:
            try:
                value = pending[side].get(timeout=TIMEOUT)
            except Exception as e:
                value = e
            out.append(normalise(value, self._owner if side == "zk" else _identity))
        self.outcomes[("transaction", _kind(out[0], multi=True))] += 1
        self.history.append(f"{session.label}: transaction {desc} -> {out[0]!r}"
                            + ("" if out[0] == out[1] else f" | ours {out[1]!r}"))
        if out[0] != out[1]:
            self.fail(f"{session.label}: transaction {desc}:\n"
                      f"  real ZooKeeper: {out[0]!r}\n  zkserver:       {out[1]!r}")
        self._compare_zxid(session, "transaction")
        return out[0]

    def _compare_zxid(self, session: Session, what: str) -> None:
        zk, ours = (session.clients[s].last_zxid for s in SIDES)
        if zk != ours:
            self.fail(f"{session.label}: reply zxid after {what}: real {zk:#x}, ours {ours:#x}")

    # -- watch events ---------------------------------------------------------------------------

    def check_events(self, sessions: Iterable[Session] | None = None) -> None:
        """Make every session's events complete on both sides, then compare them."""
        sessions = list(self.sessions if sessions is None else sessions)
        syncs = [(s, side, s.clients[side].sync_async("/")) for s in sessions for side in SIDES]
        for s, side, result in syncs:
            try:
                result.get(timeout=TIMEOUT)
            except Exception as e:
                self.fail(f"{s.label}: sync barrier failed on {side}: {e!r}")
        markers = []
        for s in sessions:
            for side in SIDES:
                done = threading.Event()
                s.clients[side].handler.dispatch_callback(Callback("watch", done.set, ()))
                markers.append((s, side, done))
        for s, side, done in markers:
            if not done.wait(TIMEOUT):
                self.fail(f"{s.label}: kazoo's callback queue did not drain on {side}")
        for s in sessions:
            with s.lock:
                raw = {side: list(s.raw[side]) for side in SIDES}
                delivered = {side: list(s.delivered[side]) for side in SIDES}
            if not _same_events(raw["zk"], raw["ours"]):
                self.fail(f"{s.label}: notifications differ (type, path, zxid):\n"
                          f"  real ZooKeeper: {raw['zk']}\n  zkserver:       {raw['ours']}")
            if _runs_sorted(delivered["zk"]) != _runs_sorted(delivered["ours"]):
                self.fail(f"{s.label}: delivered watch events differ (tag, type, path, state):"
                          f"\n  real ZooKeeper: {delivered['zk']}\n"
                          f"  zkserver:       {delivered['ours']}")
            self._check_states(s)


def _same_events(real: list[tuple], ours: list[tuple]) -> bool:
    """Equal (type, path) in order, and equal zxids where the oracle sends one.

    ZooKeeper 3.8 puts zxid -1 in every notification header; 3.9 puts the zxid of the
    transaction that fired the watch, as zkserver does (docs/compatibility-notes.md). The
    scenarios check our zxids against the writes that fired them.
    """
    if len(real) != len(ours):
        return False
    return all(r[:2] == o[:2] and (r[2] == -1 or r[2] == o[2])
               for r, o in zip(real, ours, strict=True))


def _runs_sorted(delivered: list[tuple]) -> list[tuple]:
    """Deliveries in order, except within a run of the same event (type, path, state).

    kazoo keeps a path's watch callbacks in a set, so the callbacks one notification reaches
    are called in an arbitrary order; only the tags within such a run may be permuted.
    """
    out: list[tuple] = []
    run: list[tuple] = []
    for item in delivered:
        if run and item[1:] != run[0][1:]:
            out += sorted(run)
            run = []
        run.append(item)
    return out + sorted(run)


def _kind(result: Any, multi: bool = False) -> str:
    """A coarse label of a normalised result, for the suite's outcome statistics."""
    if isinstance(result, str) and not result.startswith("/"):
        return result  # an exception's name
    if multi and isinstance(result, list):
        errors = [r for r in result if isinstance(r, str) and not r.startswith("/")]
        if errors:
            return "failed: " + next((e for e in errors if e not in (
                "RolledBackError", "RuntimeInconsistency")), errors[0])
    return "ok"


def _identity(x: int) -> int:
    return x


def _sort_children(value: Any) -> Any:
    if isinstance(value, list):
        return sorted(value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], list):
        return (sorted(value[0]), value[1])
    return value


def _describe(session: Session, method: str, args: tuple, kwargs: dict, watch: bool) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    if watch:
        parts.append("watch=<cb>")
    return f"{session.label}: {method}({', '.join(parts)})"
