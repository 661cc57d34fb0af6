"""Commit application: transactions that are now durable (or replicated) change the tree, and
whoever waits hears of it.

For each transaction, in zxid order: the tree applies it (watch events only for watchers that
may read the node), the watchers get their notifications at once, a closed session's
connection is closed, and the writer's reply (the record of proto/records.py its opcode calls
for, or the error) fills its place in the connection's queue, which then drains. A transaction
nobody here waits for (a session expiry, a container reaped, a write another server took) is
applied all the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zkserver.engine.ordering import Client, Entry
from zkserver.proto import records as R
from zkserver.proto.codes import Op
from zkserver.proto.frames import frame, notification, reply
from zkserver.proto.jute import Writer
from zkserver.server.counters import OP_NAMES
from zkserver.txn import CloseSessionTxn, CreateSessionTxn, ErrorTxn, Txn

if TYPE_CHECKING:
    from zkserver.engine.pipeline import Engine

CREATE_OPS = frozenset({Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL})

# What a driver hands back to apply: the transaction, and the connection and queue entry
# waiting for it (None for a transaction nobody here waits for).
Commit = tuple[Txn, Client | None, Entry | None]

_can_see = Client.can_read
_pack_stat = R.StatResponse.pack
_pack_path = R.PathResponse.pack
_pack_create2 = R.Create2Response.pack
_pack_get_data = R.GetDataResponse.pack


def apply_committed(engine: Engine, batch: list[Commit], now: int) -> None:
    """Apply transactions that are now durable, in zxid order, and answer their writers."""
    tree = engine.tree
    prep = engine.prep
    stats = engine.stats
    run_read = engine.run_read
    for txn, client, entry in batch:
        result, events = tree.apply(txn, _can_see)
        prep.committed(txn.zxid)
        zxid = txn.zxid
        if events:
            # Consecutive watchers of one event share its frame (10,000 watchers of a node
            # got 10,000 equal frames, one by one, before the first went out).
            key: tuple[int, str] | None = None
            note = b""
            for watcher, etype, path in events:
                if not watcher.closed:
                    if key != (etype, path):
                        key = (etype, path)
                        note = notification(zxid, etype, path)
                    watcher.send(note)
        op = txn.op
        if type(op) is CloseSessionTxn:
            engine.session_closed(txn.session_id)
        if client is None or entry is None or client.closed:
            continue
        if type(op) is CreateSessionTxn:
            entry.data = frame(entry.req.encode())  # the ConnectResponse, held back till now
        else:
            entry.data = write_reply(entry, zxid, result)
            ms = now - entry.arrived
            stats.latency.add(ms)
            counts = client.stats
            counts.answered(ms)
            counts.last_zxid = zxid
            counts.last_op = OP_NAMES.get(entry.op, "NA")
        client.drain(run_read, now)
        if entry.op == Op.CLOSE_SESSION:
            client.close()


def write_reply(entry: Entry, zxid: int, result: Any) -> bytes:
    """The reply frame of a committed write: what `DataTree.apply` returned, as the record the
    request's opcode calls for."""
    op = entry.op
    xid = entry.xid
    if type(result) is ErrorTxn:
        return reply(xid, zxid, result.err)
    if op == Op.SET_DATA or op == Op.SET_ACL:
        return reply(xid, zxid, 0, _pack_stat(result.stat()))
    if op == Op.CREATE:
        return reply(xid, zxid, 0, _pack_path(result[0]))
    if op in CREATE_OPS:
        return reply(xid, zxid, 0, _pack_create2(result[0], result[1].stat()))
    if op == Op.MULTI:
        return reply(xid, zxid, 0, _multi_reply(entry.req, result))
    if op == Op.RECONFIG:  # the new configuration and the Stat of /zookeeper/config
        return reply(xid, zxid, 0, _pack_get_data(result.data, result.stat()))
    return reply(xid, zxid, 0)


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
