"""Readable dumps of a log segment and a snapshot (ZooKeeper ships zkTxnLogToolkit and
zkSnapShotToolkit for the same job)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import attrs

from zkserver.storage import snapshot as snapmod
from zkserver.storage.files import Disk
from zkserver.storage.txnlog import read_segment
from zkserver.txn import MultiTxn


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat(
        timespec="milliseconds")


def _describe(op: object) -> str:
    if isinstance(op, MultiTxn):
        return "multi[" + "; ".join(_describe(t) for t in op.txns) + "]"
    fields = ", ".join(f"{k}={v!r}" for k, v in attrs.asdict(op, recurse=False).items())
    return f"{type(op).__name__}({fields})"


def dump_log(path: str) -> Iterator[str]:
    scan, txns = read_segment(Disk(), path)
    count = 0
    for t in txns:
        count += 1
        yield (f"{_when(t.time)} session {t.session_id & 0xFFFFFFFFFFFFFFFF:#x} cxid {t.cxid:#x} "
               f"zxid {t.zxid:#x} {_describe(t.op)}")
    tail = " (torn tail after it)" if scan.torn else ""
    yield f"EOF reached after {count} txns, at offset {scan.end}{tail}"


def dump_snapshot(path: str, with_data: bool = False) -> Iterator[str]:
    tree = snapmod.load(Disk(), path)
    yield f"snapshot of zxid {tree.last_zxid:#x}: {len(tree.nodes)} nodes, " \
          f"{len(tree.sessions)} sessions"
    for sid, timeout in sorted(tree.sessions.items()):
        yield f"session {sid & 0xFFFFFFFFFFFFFFFF:#x} timeout {timeout}"
    for p in sorted(tree.nodes):
        n = tree.nodes[p]
        (czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, dlen, nchildren,
         pzxid) = n.stat()
        line = (f"{p}\n  cZxid={czxid:#x} mZxid={mzxid:#x} pZxid={pzxid:#x} "
                f"ctime={_when(ctime)} mtime={_when(mtime)} version={version} "
                f"cversion={cversion} aclVersion={aversion} ephemeralOwner={owner:#x} "
                f"dataLength={dlen} numChildren={nchildren}")
        if with_data:
            line += f"\n  data={n.data!r} acl={list(n.acl)}"
        yield line
