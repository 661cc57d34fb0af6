"""A SNAP synchronisation between real processes: a follower so far behind that the leader's
history no longer reaches it gets the leader's whole state, installs it, and serves it.

The leader's in-memory history starts after its newest snapshot when it starts, so: one server
is killed early, the others write well past a few snapshots (snapCount=50), then all restart;
whichever leads can only bring the first one up to date with a snapshot.
"""

from __future__ import annotations

import time

from kazoo.client import KazooClient

from zkserver.storage import snapshot as snapmod
from zkserver.storage.files import Disk
from zkserver.testing.process import ZkServerEnsemble, free_port_base


def client(hosts: str) -> KazooClient:
    k = KazooClient(hosts, timeout=4, connection_retry={"max_tries": -1, "delay": 0.05,
                                                       "max_delay": 0.2})
    k.start(timeout=15)
    return k


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def snapshot_zxids(ens: ZkServerEnsemble, sid: int) -> list[int]:
    snap_dir = str(ens.base / f"s{sid}" / "data" / "zkserver")
    return [zxid for zxid, _ in snapmod.snapshots(Disk(), snap_dir)]


def test_far_behind_follower_is_brought_up_by_snapshot(tmp_path):
    with ZkServerEnsemble(tmp_path, free_port_base(3), n=3, extra=["snapCount=50"]) as ens:
        leader = wait_for(ens.leader, 30, "a leader")
        behind = next(i for i in ens.ids if i != leader)
        k = client(f"127.0.0.1:{ens.port + leader}")
        k.create("/before", b"x")
        ens.kill(behind)
        for i in range(300):
            k.create(f"/while-down-{i}", b"%d" % i)
        k.stop()
        k.close()
        assert not snapshot_zxids(ens, behind)  # it never logged enough for a snapshot
        others = [i for i in ens.ids if i != behind]
        wait_for(lambda: all(snapshot_zxids(ens, i) for i in others), 30, "snapshots")
        for i in others:
            ens.kill(i)
        for i in ens.ids:
            ens.restart(i)
        ens.wait_serving(60)
        installed = snapshot_zxids(ens, behind)
        assert installed, "the follower was not synchronised by a snapshot"
        f = client(f"127.0.0.1:{ens.port + behind}")
        try:
            f.sync("/")
            names = set(f.get_children("/"))
            assert {f"while-down-{i}" for i in range(300)} <= names and "before" in names
            assert f.get("/while-down-299")[0] == b"299"
            f.create("/after", b"y")  # and it serves writes
        finally:
            f.stop()
            f.close()
