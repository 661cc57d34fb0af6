"""Start-up: the newest valid snapshot, then every logged transaction after it.

A damaged tail of the last log segment (the process died during a write, so that write was
never acknowledged) is cut off with a warning. Anything else wrong (a damaged record with
intact records after it, a gap in the zxids, a segment that is not the last with a damaged
tail) stops start-up with a `CorruptFile` naming the file and offset: silently skipping it could
lose acknowledged writes.
"""

from __future__ import annotations

import os

import attrs

from zkserver.progress import Progress
from zkserver.storage import snapshot as snapmod
from zkserver.storage.files import Disk, SimDisk
from zkserver.storage.framing import CorruptFile
from zkserver.storage.txnlog import read_segment, segments
from zkserver.tree.datatree import DataTree
from zkserver.tree.paths import parent_of

PROGRESS_EVERY = 10_000


@attrs.define
class Recovered:
    tree: DataTree
    snapshot_zxid: int
    replayed: int
    warnings: list[str]
    txns: list = attrs.Factory(list)  # the replayed transactions (an ensemble's history)


def recover(disk: Disk | SimDisk, snap_dir: str, log_dir: str,
            keep_txns: bool = False, progress: Progress | None = None) -> Recovered:
    """`keep_txns`: also return the replayed transactions (an ensemble member's history);
    a standalone server doesn't need them, and a long log would hold a lot of memory.
    `progress` hears how far the snapshot has been read, and how many transactions of each
    segment have been replayed, every `PROGRESS_EVERY` (a large snapshot or a long log takes a
    while: the user should see it move)."""
    warnings: list[str] = []
    for d in {snap_dir, log_dir}:
        for name in disk.listdir(d):
            if name.endswith(".tmp"):
                disk.remove(f"{d}/{name}")  # a snapshot or key whose writer died: never used
    tree: DataTree | None = None
    snap_zxid = 0
    candidates = snapmod.snapshots(disk, snap_dir)
    for zxid, path in candidates:
        try:
            tree = snapmod.load(disk, path, progress)
            snap_zxid = zxid
            break
        except CorruptFile as e:
            warnings.append(f"skipping damaged snapshot: {e}")
    if tree is None:
        tree = DataTree()
    segs = segments(disk, log_dir)
    start = 0
    for i, (first, _) in enumerate(segs):
        if first <= snap_zxid + 1:
            start = i
    replayed = 0
    txns_seen = []
    for i in range(start, len(segs)):
        path = segs[i][1]
        scan, txns = read_segment(disk, path)
        what = f"replaying {os.path.basename(path)}"
        for n, txn in enumerate(txns, 1):
            if progress is not None and n % PROGRESS_EVERY == 0:
                progress(what, n, None)
            if txn.zxid <= tree.last_zxid:
                continue
            if txn.zxid != tree.last_zxid + 1 and txn.zxid >> 32 == tree.last_zxid >> 32:
                raise CorruptFile(path, scan.end,
                                  f"zxid {txn.zxid:#x} follows {tree.last_zxid:#x}: "
                                  "transactions are missing")
            tree.apply(txn)
            if keep_txns:
                txns_seen.append(txn)
            replayed += 1
        if scan.torn:
            if i != len(segs) - 1:
                raise CorruptFile(path, scan.end, "damaged records in a segment that is not the "
                                  "last one")
            warnings.append(f"{path}: cut off a torn write at offset {scan.end} "
                            f"(last intact zxid {tree.last_zxid:#x})")
            disk.truncate(path, scan.end)
    _check_shape(tree)
    return Recovered(tree, snap_zxid, replayed, warnings, txns_seen)


def _check_shape(tree: DataTree) -> None:
    """Every node's parent exists: a fuzzy snapshot plus the log must add up to a tree.

    Every node but the root is filed among its parent's children when the parent exists, so
    the children add up to one less than the nodes exactly when none is missing its parent:
    a count, where looking up each node's parent took a restart 0.2-0.3 s per million nodes.
    The walk that names the orphan runs only when the count is off."""
    nodes = tree.nodes
    if 1 + sum(n.child_count() for n in nodes.values()) == len(nodes):
        return
    for path in nodes:
        if path != "/" and parent_of(path) not in nodes:
            raise CorruptFile("<recovered tree>", 0, f"{path} has no parent after recovery")
