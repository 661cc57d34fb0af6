"""Housekeeping (ZooKeeper's autopurge): keep the newest snapshots and the log they need."""

from __future__ import annotations

from zkserver.storage.files import Disk, SimDisk
from zkserver.storage.snapshot import snapshots
from zkserver.storage.txnlog import segments


def purge(disk: Disk | SimDisk, snap_dir: str, log_dir: str, retain: int = 3) -> list[str]:
    """Delete all but the `retain` newest snapshots, and every log segment that only holds
    transactions older than the oldest snapshot kept. Returns the paths removed."""
    snaps = snapshots(disk, snap_dir)
    if len(snaps) <= retain:
        return []
    keep_from = snaps[retain - 1][0]
    removed = [path for _, path in snaps[retain:]]
    segs = segments(disk, log_dir)
    for (_, path), (next_first, _) in zip(segs, segs[1:], strict=False):
        if next_first <= keep_from + 1:
            removed.append(path)
    for path in removed:
        disk.remove(path)
    return removed
