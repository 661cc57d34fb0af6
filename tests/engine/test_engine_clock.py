"""The engine's two clocks: `now` (monotonic) decides deadlines, `wall` only stamps transactions.

The engine is driven here as the server drives it, with a monotonic clock that started at boot
(small numbers) and a wall clock that is nowhere near it, and that jumps about: the wall time
must reach ctime/mtime exactly, and nothing about sessions may depend on it.
"""

from __future__ import annotations

from support.wire import CREATE, OPEN_ACL, SET_DATA, buf, connect_request, i32, request, ustr

from zkserver.engine import Client, Engine
from zkserver.txn import CloseSessionTxn, CreateSessionTxn

TICK = 500
TIMEOUT = 4000
BOOT = 1_000  # the monotonic clock: milliseconds since boot
WALL = 1_700_000_000_000  # the wall clock at the same moment
EPHEMERAL = 1


def commit(engine: Engine, now: int) -> list:
    """What the committer does: take the prepared transactions and apply them."""
    batch = engine.take_commits()
    engine.apply_committed(batch, now)
    return [txn for txn, _, _ in batch]


def connect(engine: Engine, now: int, wall: int) -> tuple[Client, int]:
    client = engine.connect(("127.0.0.1", 5000), lambda: None, now, wall)
    assert engine.handshake(client, connect_request(TIMEOUT), now, wall)
    [txn] = commit(engine, now)
    assert type(txn.op) is CreateSessionTxn
    return client, client.session_id


def handle(engine: Engine, client: Client, xid: int, op: int, body: bytes, now: int,
           wall: int) -> None:
    engine.handle(client, request(xid, op, body)[4:], now, wall)


def test_transactions_carry_the_wall_time_they_were_prepared_with() -> None:
    engine = Engine(tick_time=TICK, wall=WALL)
    client, _ = connect(engine, BOOT, WALL)
    created_at = WALL + 123_456_789  # the wall clock stepped forward meanwhile
    handle(engine, client, 1, CREATE, ustr("/n") + buf(b"a") + OPEN_ACL + i32(0),
           BOOT + 10, created_at)
    [txn] = commit(engine, BOOT + 11)
    assert txn.time == created_at
    node = engine.tree.nodes["/n"]
    assert node.ctime == node.mtime == created_at

    changed_at = WALL - 600_000  # and then back, ten minutes behind where it started
    handle(engine, client, 2, SET_DATA, ustr("/n") + buf(b"b") + i32(-1), BOOT + 20, changed_at)
    commit(engine, BOOT + 21)
    assert node.ctime == created_at and node.mtime == changed_at


def test_sessions_expire_on_the_monotonic_clock_whatever_the_wall_clock_says() -> None:
    engine = Engine(tick_time=TICK, wall=WALL)
    client, sid = connect(engine, BOOT, WALL)
    handle(engine, client, 1, CREATE, ustr("/e") + buf(b"") + OPEN_ACL + i32(EPHEMERAL),
           BOOT + 100, WALL + 100)
    commit(engine, BOOT + 100)
    last_heard = BOOT + 100
    deadline = (last_heard + TIMEOUT) // TICK * TICK + TICK  # the next tick boundary after

    # The wall clock ten minutes ahead, or ten minutes behind: it changes nothing.
    assert engine.expire_sessions(deadline - 1, WALL + 600_000) == []
    assert engine.expire_sessions(deadline - 1, WALL - 600_000) == []
    assert engine.sessions.alive(sid)

    # Monotonic time passes the deadline: the session ends, even with the wall clock behind.
    closed_at = WALL - 600_000
    assert engine.expire_sessions(deadline, closed_at) == [sid]
    [txn] = commit(engine, deadline)
    assert type(txn.op) is CloseSessionTxn and txn.op.paths == ("/e",)
    assert txn.time == closed_at  # the close is stamped with the wall time, like any txn
    assert "/e" not in engine.tree.nodes


def test_latency_and_connection_times_use_their_own_clocks() -> None:
    engine = Engine(tick_time=TICK, wall=WALL)
    client, _ = connect(engine, BOOT, WALL)
    assert client.established == WALL  # shown as a date, as ZooKeeper shows it
    handle(engine, client, 1, CREATE, ustr("/l") + buf(b"") + OPEN_ACL + i32(0),
           BOOT + 1_000, WALL + 10**9)  # a wall clock far away must not show up as latency
    commit(engine, BOOT + 1_007)
    assert client.stats.last_latency == 7
