"""Snapshots of the data tree, taken while the server keeps serving.

A snapshot is named for the last zxid applied when it began (`snapshot.<zxid>`). Written by a
forked child (`snapshot_fork`), it is exactly the tree at that zxid. Written on the event loop
instead, it is *fuzzy* like ZooKeeper's: nodes are written a chunk at a time between other
work, so some may already reflect later transactions. Recovery loads it and replays the log
from that zxid on; applying a transaction is idempotent against such a state (see
`DataTree.apply`), so the result is exact. A snapshot is written under a temporary name,
synced, then renamed: a file with the final name is always complete, and each record carries
a CRC.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import islice

import cbor2

from zkserver.progress import Progress
from zkserver.storage.files import Disk, LogFile, SimDisk
from zkserver.storage.framing import CorruptFile, Scan, frame
from zkserver.tree.datatree import DataTree
from zkserver.tree.nodetable import Node

MAGIC = b"ZKSSNAP1"
PREFIX = "snapshot."
CHUNK = 1000  # nodes per chunk: about a millisecond of the event loop each (5000 took ~10)


def snapshot_name(zxid: int) -> str:
    return f"{PREFIX}{zxid:016x}"


def snapshots(disk: Disk | SimDisk, snap_dir: str) -> list[tuple[int, str]]:
    """(zxid, path) of every complete snapshot file, newest first."""
    out = []
    for name in disk.listdir(snap_dir):
        if name.startswith(PREFIX) and not name.endswith(".tmp"):
            try:
                out.append((int(name[len(PREFIX):], 16), os.path.join(snap_dir, name)))
            except ValueError:
                continue
    return sorted(out, reverse=True)


class SnapshotWriter:
    """Serialises a tree chunk by chunk; the caller writes each chunk and may yield between."""

    def __init__(self, tree: DataTree, now: int, chunk: int = CHUNK, *,
                 frozen: bool = False) -> None:
        self.tree = tree
        self.zxid = tree.last_zxid
        self.chunk = chunk
        # A tree that changes while it is written is walked by the list of its paths taken
        # now; a frozen one (a forked child's copy, see `snapshot_fork`) is walked directly.
        self.paths = None if frozen else list(tree.nodes)
        self.head = frame(cbor2.dumps({
            "zxid": self.zxid, "time": now,
            "sessions": [[sid, t] for sid, t in tree.sessions.items()],
        }))

    def chunks(self) -> Iterator[bytes]:
        yield MAGIC + self.head
        acl_ids: dict[tuple, int] = {}
        count = 0
        for batch in self._batches():
            new_acls = []
            rows = []
            for path, n in batch:
                idx = acl_ids.get(n.acl)
                if idx is None:
                    idx = acl_ids[n.acl] = len(acl_ids)
                    new_acls.append([idx, [list(e) for e in n.acl]])
                # A tuple: cbor2 encodes a list 40% slower (an isinstance check per list).
                rows.append((path, n.data, idx, n.czxid, n.mzxid, n.ctime, n.mtime, n.version,
                             n.cversion, n.aversion, n.owner, n.pzxid))
            count += len(rows)
            yield frame(cbor2.dumps([new_acls, rows]))
        yield frame(cbor2.dumps({"end": count}))

    def _batches(self) -> Iterator[list[tuple[str, Node]]]:
        nodes = self.tree.nodes
        if self.paths is None:
            items = iter(nodes.items())
            while batch := list(islice(items, self.chunk)):
                yield batch
            return
        for i in range(0, len(self.paths), self.chunk):
            found = ((path, nodes.get(path)) for path in self.paths[i:i + self.chunk])
            # a node deleted since the snapshot began is left out; the log replays that
            yield [(path, n) for path, n in found if n is not None]


def write(disk: Disk | SimDisk, snap_dir: str, tree: DataTree, now: int, *,
          frozen: bool = True) -> str:
    """Write a whole snapshot at once (start-up, import, restore, tests), over any .tmp a
    stopped snapshot of the same zxid left behind; the server writes it chunk by chunk.

    `frozen=False` when the event loop may change the tree meanwhile (a write in a thread)."""
    writer = SnapshotWriter(tree, now, frozen=frozen)
    path = os.path.join(snap_dir, snapshot_name(writer.zxid))
    f = open_tmp(disk, path)
    for chunk in writer.chunks():
        f.write(chunk)
    finish(disk, f, path)
    return path


def open_tmp(disk: Disk | SimDisk, path: str) -> LogFile:
    """The file the snapshot to be named `path` is written to (`path`.tmp), emptied of what a
    snapshot of the same zxid, stopped or cut by a crash, left in it."""
    f = disk.open_log(path + ".tmp")
    f.truncate(0)
    f.stream()
    return f


def finish(disk: Disk | SimDisk, f: object, path: str) -> None:
    f.sync()  # type: ignore[attr-defined]
    f.close()  # type: ignore[attr-defined]
    publish(disk, path)


def publish(disk: Disk | SimDisk, path: str) -> None:
    """Give a synced `path`.tmp its final name, durably."""
    disk.rename(path + ".tmp", path)
    disk.sync_dir(os.path.dirname(path))


def load(disk: Disk | SimDisk, path: str, progress: Progress | None = None) -> DataTree:
    """Read a snapshot into a new tree (its `last_zxid` set to the snapshot's zxid).

    `progress` hears how many of the file's bytes have been read, once per record (a chunk of
    nodes): a large snapshot takes a while at start-up, and the user should see it move."""
    data = disk.read(path)
    what = f"reading {os.path.basename(path)}"
    if not data.startswith(MAGIC):
        raise CorruptFile(path, 0, "not a zkserver snapshot (bad magic)")
    scan = Scan(path, data, len(MAGIC))
    records = iter(scan)
    try:
        _, head_bytes = next(records)
        head = cbor2.loads(head_bytes)
        tree = DataTree()
        nodes = tree.nodes
        nodes.clear()
        restore = nodes.restore
        acls: dict[int, tuple] = {}
        count = None
        for offset, payload in records:
            if progress is not None:
                progress(what, offset, len(data))
            rec = cbor2.loads(payload)
            if isinstance(rec, dict):
                count = rec["end"]
                break
            new_acls, rows = rec
            for idx, acl in new_acls:
                acls[idx] = tuple(tuple(e) for e in acl)
            for (p, d, idx, czxid, mzxid, ctime, mtime, version, cversion, aversion, owner,
                 pzxid) in rows:
                restore(p, d, acls[idx], czxid, mzxid, ctime, mtime, version, cversion, aversion,
                        owner, pzxid)
    except CorruptFile:
        raise
    except StopIteration:
        raise CorruptFile(path, len(MAGIC), "no header record") from None
    except Exception as e:
        raise CorruptFile(path, scan.end, f"undecodable record: {e}") from e
    if count is None or scan.torn:
        raise CorruptFile(path, scan.end, "incomplete snapshot (no end record)")
    if count != len(tree.nodes):
        raise CorruptFile(path, scan.end, f"end record says {count} nodes, read {len(tree.nodes)}")
    tree.sessions = {sid: t for sid, t in head["sessions"]}
    tree.last_zxid = head["zxid"]
    rebuild_indexes(tree)
    if progress is not None:
        progress(what, len(data), len(data))
    return tree


def rebuild_indexes(tree: DataTree) -> None:
    """Children, ephemerals by session, containers and TTL nodes, from the nodes alone.

    Only nodes with an owner are filed by owner: a restart walks millions."""
    nodes = tree.nodes
    nodes.link()
    tree.ephemerals.clear()
    tree.containers.clear()
    tree.ttls.clear()
    index_owner = tree.index_owner
    for path, n in nodes.items():
        if n.owner:
            index_owner(path, n.owner)
