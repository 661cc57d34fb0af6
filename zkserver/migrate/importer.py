"""Import an Apache ZooKeeper data directory into zkserver's.

    zkserver import-zookeeper ZK_DATA_DIR ZKSERVER_DATA_DIR [--zk-log-dir DIR]
                              [--log-dir DIR] [--force]

The tree is rebuilt the way ZooKeeper rebuilds it at start-up: the newest snapshot that reads
back intact (a damaged one is skipped with a warning, falling back to the one before), then
every logged transaction after the snapshot's zxid, translated into zkserver's transaction
records and applied with `DataTree.apply` (which is idempotent over a fuzzy snapshot exactly as
ZooKeeper's replay is). Ephemerals of sessions that are no longer in the session table are
deleted, as ZooKeeper's `loadData` does. The result is written as one zkserver snapshot in
`<ZKSERVER_DATA_DIR>/zkserver/`, named for the last zxid, and no log: zkserver starts from it
and numbers its next transaction after ZooKeeper's last one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import attrs

from zkserver import progress as progressmod
from zkserver.migrate import zkfiles
from zkserver.migrate.zkfiles import ZkFileError, ZkSnapshot
from zkserver.progress import Progress
from zkserver.storage import snapshot as snapmod
from zkserver.storage import txnlog
from zkserver.storage.files import Disk
from zkserver.tree.datatree import DataTree
from zkserver.txn import CloseSessionTxn, CreateTxn, MultiTxn, Txn


class MigrationError(Exception):
    """The import cannot be done; the message says why (and names the file, if one is at
    fault). Nothing has been written when it is raised."""


@attrs.define
class ImportResult:
    snapshot: str | None  # the ZooKeeper snapshot the tree started from
    snapshot_zxid: int
    logs: list[str]
    replayed: int  # transactions applied after the snapshot
    last_zxid: int
    nodes: int
    sessions: int
    written: str  # the zkserver snapshot written
    warnings: list[str]


def version2(d: str) -> str:
    """ZooKeeper keeps its files in `<dataDir>/version-2`; accept either directory."""
    sub = os.path.join(d, "version-2")
    return sub if os.path.isdir(sub) else d


def build_tree(snap_dir: str, log_dir: str,
               progress: Progress | None = None) -> tuple[DataTree, ImportResult]:
    """ZooKeeper's state, as it would load it: newest intact snapshot plus the log after it.
    `progress` hears the bytes of the snapshot parsed, then the transactions replayed."""
    warnings: list[str] = []
    snaps = zkfiles.snapshot_files(snap_dir)
    logs = zkfiles.log_files(log_dir)
    if not snaps and not logs:
        raise MigrationError(f"no ZooKeeper snapshot or transaction log in {snap_dir}"
                             + (f" or {log_dir}" if log_dir != snap_dir else ""))
    snap: ZkSnapshot | None = None
    damaged: list[str] = []
    for _, path in snaps:
        try:
            snap = zkfiles.read_snapshot(path, progress)
            break
        except ZkFileError as e:
            damaged.append(str(e))
            warnings.append(f"skipping damaged snapshot {e}")
        except OSError as e:
            damaged.append(f"{path}: {e}")
            warnings.append(f"skipping unreadable snapshot {path}: {e}")
    if snap is None and damaged and (not logs or logs[0][0] > 1):
        raise MigrationError("no intact ZooKeeper snapshot, and the logs do not reach back to "
                             "the first transaction: " + "; ".join(damaged))
    tree = tree_from_snapshot(snap) if snap is not None else DataTree()
    snap_zxid = snap.zxid if snap is not None else 0
    used = zkfiles.logs_after(logs, snap_zxid)
    replayed = replay(tree, used, warnings, progress)
    drop_orphan_ephemerals(tree, warnings)
    check_shape(tree)
    result = ImportResult(snap.path if snap else None, snap_zxid, [p for _, p in used],
                          replayed, tree.last_zxid, len(tree.nodes), len(tree.sessions), "",
                          warnings)
    return tree, result


def tree_from_snapshot(snap: ZkSnapshot) -> DataTree:
    """A DataTree holding exactly the snapshot's nodes (ZooKeeper's system nodes included,
    ours kept only where an older ZooKeeper had none, e.g. /zookeeper/config before 3.5)."""
    tree = DataTree()
    for z in snap.nodes:
        tree.nodes.restore(z.path, z.data, z.acl, z.czxid, z.mzxid, z.ctime, z.mtime, z.version,
                           z.cversion, z.aversion, z.owner, z.pzxid)
    snapmod.rebuild_indexes(tree)
    tree.sessions = dict(snap.sessions)
    tree.last_zxid = snap.zxid
    return tree


def replay(tree: DataTree, logs: list[tuple[int, str]], warnings: list[str],
           progress: Progress | None = None) -> int:
    replayed = 0
    for _, path in logs:
        what = f"replaying {os.path.basename(path)}"
        try:
            log = zkfiles.read_log(path)
        except OSError as e:
            raise MigrationError(f"{path}: {e}") from None
        except ZkFileError as e:
            raise MigrationError(str(e)) from None
        for txn in log.txns:
            if txn.zxid <= tree.last_zxid:
                continue
            if txn.zxid != tree.last_zxid + 1 and txn.zxid >> 32 == tree.last_zxid >> 32:
                raise MigrationError(
                    f"{path}: zxid {txn.zxid:#x} follows {tree.last_zxid:#x}: transactions "
                    "are missing (a log file deleted or damaged?)")
            tree.apply(fill_in(tree, txn))
            replayed += 1
            if progress is not None and replayed % zkfiles.PROGRESS_EVERY == 0:
                progress(what, replayed, None)
        if log.torn:
            warnings.append(f"{path}: read up to offset {log.end}, then {log.torn}: a write "
                            "cut short by a crash, never acknowledged (last intact zxid "
                            f"{tree.last_zxid:#x})")
    return replayed


def fill_in(tree: DataTree, txn: Txn) -> Txn:
    """Resolve the placeholders of old-format transactions against the tree (zkfiles)."""
    op = txn.op
    if isinstance(op, CloseSessionTxn) and op.paths is None:
        paths = tuple(sorted(tree.ephemerals.get(txn.session_id, ())))
        return attrs.evolve(txn, op=CloseSessionTxn(paths))
    if isinstance(op, CreateTxn) and op.parent_cversion == -1:
        return attrs.evolve(txn, op=_v0_create(tree, op))
    if isinstance(op, MultiTxn) and any(isinstance(s, CreateTxn) and s.parent_cversion == -1
                                        for s in op.txns):
        return attrs.evolve(txn, op=MultiTxn(tuple(
            _v0_create(tree, s) if isinstance(s, CreateTxn) else s for s in op.txns)))
    return txn


def _v0_create(tree: DataTree, op: CreateTxn) -> CreateTxn:
    parent = tree.nodes.get(op.path[:op.path.rfind("/")] or "/")
    if op.parent_cversion != -1 or parent is None:
        return op
    return attrs.evolve(op, parent_cversion=parent.cversion + 1)


def drop_orphan_ephemerals(tree: DataTree, warnings: list[str]) -> None:
    """ZooKeeper's loadData kills every session that owns ephemerals but is not in the session
    table (its close was logged while a fuzzy snapshot was being written, say)."""
    for sid in sorted(set(tree.ephemerals) - set(tree.sessions)):
        paths = tuple(sorted(tree.ephemerals[sid]))
        warnings.append(f"session {sid & (2**64 - 1):#x} is gone: deleting its "
                        f"{len(paths)} ephemeral node(s), as ZooKeeper does at start-up")
        tree.apply(Txn(tree.last_zxid, 0, sid, 0, CloseSessionTxn(paths)))


def check_shape(tree: DataTree) -> None:
    for path in tree.nodes:
        if path != "/" and (path[:path.rfind("/")] or "/") not in tree.nodes:
            raise MigrationError(f"{path} has no parent after replaying the log")


def _zkserver_files(d: str) -> list[str]:
    return sorted(os.path.join(d, name) for name in Disk().listdir(d)
                  if name.startswith((snapmod.PREFIX, txnlog.PREFIX)))


def import_zookeeper(zk_data_dir: str, target_data_dir: str, *, zk_log_dir: str | None = None,
                     target_log_dir: str | None = None, force: bool = False,
                     now: int | None = None, progress: Progress | None = None) -> ImportResult:
    """Read ZooKeeper's `dataDir` (and `dataLogDir`, if separate); write zkserver's snapshot
    into `<target_data_dir>/zkserver/`. Refuses to replace an existing zkserver state (a
    snapshot or log in `<target_data_dir>/zkserver/` or `<target_log_dir>/zkserver/`) unless
    `force`, which deletes those files first."""
    snap_dir = version2(zk_data_dir)
    log_dir = version2(zk_log_dir) if zk_log_dir else snap_dir
    if not os.path.isdir(snap_dir):
        raise MigrationError(f"{zk_data_dir}: no such directory")
    if not os.path.isdir(log_dir):
        raise MigrationError(f"{zk_log_dir}: no such directory")
    out_snap = os.path.join(target_data_dir, "zkserver")
    out_log = os.path.join(target_log_dir or target_data_dir, "zkserver")
    existing = sorted(set(_zkserver_files(out_snap) + _zkserver_files(out_log)))
    if existing and not force:
        raise MigrationError(f"{out_snap} already holds zkserver data ({existing[0]}"
                             f"{' and more' if len(existing) > 1 else ''}); "
                             "use --force to replace it")
    tree, result = build_tree(snap_dir, log_dir, progress)
    disk = Disk()
    for path in existing:
        disk.remove(path)
    disk.makedirs(out_snap)
    result.written = snapmod.write(disk, out_snap, tree,
                                   now if now is not None else time.time_ns() // 1_000_000)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="zkserver import-zookeeper",
        description="Import an Apache ZooKeeper data directory (version-2 snapshots and "
                    "transaction logs) into a zkserver data directory.")
    parser.add_argument("zk_data_dir", help="ZooKeeper's dataDir (or its version-2 directory)")
    parser.add_argument("data_dir", help="zkserver's dataDir (the same zoo.cfg key)")
    parser.add_argument("--zk-log-dir", help="ZooKeeper's dataLogDir, if not its dataDir")
    parser.add_argument("--log-dir", help="zkserver's dataLogDir, if not its dataDir")
    parser.add_argument("--force", action="store_true",
                        help="replace zkserver data already in the target directories")
    args = parser.parse_args(argv)
    try:
        bars = progressmod.for_terminal()
        try:
            r = import_zookeeper(args.zk_data_dir, args.data_dir, zk_log_dir=args.zk_log_dir,
                                 target_log_dir=args.log_dir, force=args.force, progress=bars)
        finally:
            if bars is not None:
                bars.close()
    except MigrationError as e:
        print(f"zkserver: import failed: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"zkserver: import failed: {e}", file=sys.stderr)
        return 1
    for w in r.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"snapshot: {r.snapshot or '(none: replayed the whole log)'} "
          f"(zxid {r.snapshot_zxid:#x})")
    print(f"replayed {r.replayed} transaction(s) from {len(r.logs)} log file(s)")
    print(f"imported {r.nodes} nodes and {r.sessions} sessions; last zxid {r.last_zxid:#x}")
    print(f"wrote {r.written}")
    return 0
