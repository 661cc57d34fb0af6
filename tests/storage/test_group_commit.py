"""The group committer both commit paths use: rounds, ordered operations, background snapshots."""

from __future__ import annotations

import threading
from pathlib import Path

import trio

from zkserver.storage import snapshot as snapmod
from zkserver.storage.files import Disk
from zkserver.storage.group_commit import GroupCommitter
from zkserver.storage.kernel_sync import Job
from zkserver.storage.recovery import recover
from zkserver.storage.snapshot_policy import SnapshotPolicy
from zkserver.storage.txnlog import TxnLog
from zkserver.tree.datatree import DataTree
from zkserver.txn import CreateTxn, Txn

WALL = 1_700_000_000_000


def create(zxid: int) -> Txn:
    return Txn(zxid, WALL, 0, zxid, CreateTxn(f"/n{zxid}", b"x", ((31, "world", "anyone"),),
                                              0, zxid))


class CountingLog(TxnLog):
    """A log that counts its appends and can hold one until the test lets it go."""

    def __init__(self, disk: Disk, log_dir: str) -> None:
        super().__init__(disk, log_dir, 1 << 16)
        self.appends: list[int] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def append(self, first_zxid: int, data: bytes) -> None:
        self.entered.set()
        self.gate.wait(10)
        super().append(first_zxid, data)
        self.appends.append(first_zxid)

    def write_unsynced(self, data: bytes) -> Job | None:
        return None  # every round through `append`, which the tests hold and count


def committer_for(tmp_path: Path, log: TxnLog, disk: Disk, tree: DataTree | None = None,
                  snap_count: int = 1_000_000
                  ) -> tuple[GroupCommitter[Txn], SnapshotPolicy, list[list[int]]]:
    """A committer over `log` that snapshots `tree` every `snap_count` transactions, and the
    zxids of each round it reports durable, in order."""
    (tmp_path / "snap").mkdir(exist_ok=True)
    the_tree = tree or DataTree()
    policy = SnapshotPolicy(disk, str(tmp_path / "snap"), snap_count, lambda: the_tree,
                            lambda: WALL)
    rounds: list[list[int]] = []
    committer: GroupCommitter[Txn] = GroupCommitter(
        log, policy, lambda batch: rounds.append([t.zxid for t in batch]), lambda t: t)
    return committer, policy, rounds


def durable_zxids(rounds: list[list[int]]) -> list[int]:
    return [z for r in rounds for z in r]


def setup(tmp_path: Path, snap_count: int = 1_000_000, tree: DataTree | None = None
          ) -> tuple[GroupCommitter[Txn], CountingLog, list[list[int]], SnapshotPolicy]:
    disk = Disk()
    log = CountingLog(disk, str(tmp_path / "log"))
    committer, policy, durable = committer_for(tmp_path, log, disk, tree, snap_count)
    return committer, log, durable, policy


async def wait_for(condition, seconds: float = 10) -> None:
    with trio.fail_after(seconds):
        while not condition():
            await trio.sleep(0.005)


async def test_everything_queued_during_a_sync_shares_the_next_round(tmp_path: Path) -> None:
    committer, log, durable, _ = setup(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(committer.run)
        log.gate.clear()
        committer.append([create(1)])
        await wait_for(log.entered.is_set)  # round 1 is being written
        for z in range(2, 6):
            committer.append([create(z)])
        log.gate.set()
        await wait_for(lambda: sum(map(len, durable)) == 5)
        nursery.cancel_scope.cancel()
    assert durable == [[1], [2, 3, 4, 5]]
    assert log.appends == [1, 2]


async def test_an_operation_runs_after_the_appends_before_it(tmp_path: Path) -> None:
    committer, _, durable, _ = setup(tmp_path)
    seen: list[list[list[int]]] = []

    async def op() -> None:
        seen.append([list(b) for b in durable])

    async with trio.open_nursery() as nursery:
        committer.append([create(1), create(2)])
        committer.then(op)
        committer.append([create(3)])
        await nursery.start(committer.run)
        await wait_for(lambda: sum(map(len, durable)) == 3)
        nursery.cancel_scope.cancel()
    assert seen == [[[1, 2]]]
    assert durable == [[1, 2], [3]]


async def test_a_snapshot_is_written_in_the_background_and_rolls_the_log(tmp_path: Path
                                                                         ) -> None:
    tree = DataTree()
    committer, _, durable, policy = setup(tmp_path, snap_count=2, tree=tree)
    async with trio.open_nursery() as nursery:
        await nursery.start(committer.run)
        for z in range(1, 11):
            tree.apply(create(z))
            committer.append([create(z)])
            await wait_for(lambda z=z: durable and durable[-1][-1] == z)
        await wait_for(lambda: not policy.running and policy.last_zxid > 0)
        nursery.cancel_scope.cancel()
    assert snapmod.snapshots(Disk(), str(tmp_path / "snap"))
    assert recover(Disk(), str(tmp_path / "snap"), str(tmp_path / "log")).tree.last_zxid == 10


async def test_shutdown_logs_what_is_still_queued(tmp_path: Path) -> None:
    committer, log, durable, _ = setup(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(committer.run)
        log.gate.clear()
        committer.append([create(1)])
        await wait_for(log.entered.is_set)
        committer.append([create(2)])
        nursery.cancel_scope.cancel()
        log.gate.set()
    assert durable == [[1]]  # the second was never reported durable, so never answered
    assert recover(Disk(), str(tmp_path / "snap"), str(tmp_path / "log")).tree.last_zxid == 2


class SlowSnapshotDisk(Disk):
    """A disk on which a snapshot file cannot be opened until the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshot_opened = threading.Event()
        self.gate = threading.Event()

    def open_log(self, path: str):  # type: ignore[no-untyped-def]
        if path.endswith(".tmp"):
            self.snapshot_opened.set()
            self.gate.wait(10)
        return super().open_log(path)


async def test_appends_go_on_while_a_snapshot_is_being_written(tmp_path: Path) -> None:
    disk = SlowSnapshotDisk()
    log = TxnLog(disk, str(tmp_path / "log"), 1 << 16)
    tree = DataTree()
    committer, policy, rounds = committer_for(tmp_path, log, disk, tree, 2)
    async with trio.open_nursery() as nursery:
        await nursery.start(committer.run)
        z = 0
        while not disk.snapshot_opened.is_set():  # log until a snapshot has begun
            z += 1
            tree.apply(create(z))
            committer.append([create(z)])
            await wait_for(lambda z=z: durable_zxids(rounds)[-1:] == [z])
        assert policy.running
        begun = z
        for z in range(begun + 1, begun + 20):  # the snapshot is stuck; rounds are not
            tree.apply(create(z))
            committer.append([create(z)])
            await wait_for(lambda z=z: durable_zxids(rounds)[-1:] == [z])
        assert policy.running
        disk.gate.set()
        await wait_for(lambda: not policy.running)
        nursery.cancel_scope.cancel()
    assert policy.last_zxid > 0
