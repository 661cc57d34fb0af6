"""A SNAP synchronisation between real processes: a follower so far behind that the leader's
history no longer reaches it gets the leader's whole state, streamed in chunks while writes
go on, installs it, and serves it.

The leader's in-memory history starts after its newest snapshot when it starts, so: one server
is killed early, the others write well past a few snapshots, then all restart; whichever leads
can only bring the first one up to date with a snapshot. The tree is larger than one chunk of
a snapshot (5000 nodes), and a client keeps writing meanwhile, so the snapshot is fuzzy and
the follower's replay of the writes after it must make it exact (a digest check stops a
follower whose state differs).
"""

from __future__ import annotations

import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from support.process import ZkServerEnsemble, free_port_base
from support.waiting import wait_for

from zkserver.storage import snapshot as snapmod
from zkserver.storage.files import Disk

NODES = 6_000


def client(hosts: str) -> KazooClient:
    k = KazooClient(hosts, timeout=4, connection_retry={"max_tries": -1, "delay": 0.05,
                                                       "max_delay": 0.2})
    k.start(timeout=15)
    return k


def snapshot_zxids(ens: ZkServerEnsemble, sid: int) -> list[int]:
    snap_dir = str(ens.base / f"s{sid}" / "data" / "zkserver")
    return [zxid for zxid, _ in snapmod.snapshots(Disk(), snap_dir)]


class Writer(threading.Thread):
    """Keeps setting one node, recording the last value acknowledged."""

    def __init__(self, hosts: str) -> None:
        super().__init__(daemon=True)
        self.k = client(hosts)
        self.stop = threading.Event()
        self.acked = 0

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                self.k.set("/counter", b"%d" % n)
                self.acked = n
            except KazooException:
                time.sleep(0.02)

    def finish(self) -> int:
        self.stop.set()
        self.join(30)
        self.k.stop()
        self.k.close()
        return self.acked


def test_far_behind_follower_is_brought_up_by_a_streamed_snapshot(tmp_path):
    with ZkServerEnsemble(tmp_path, free_port_base(3), n=3,
                          extra=["snapCount=2000"]) as ens:
        leader = wait_for(ens.leader, 30, "a leader")
        behind = next(i for i in ens.ids if i != leader)
        others = [i for i in ens.ids if i != behind]
        k = client(f"127.0.0.1:{ens.port + leader}")
        k.create("/counter", b"0")
        ens.kill(behind)
        for r in [k.create_async(f"/n{i}", b"%d" % i) for i in range(NODES)]:
            r.get(timeout=60)
        k.stop()
        k.close()
        assert not snapshot_zxids(ens, behind)  # it never logged enough for a snapshot
        wait_for(lambda: all(snapshot_zxids(ens, i) for i in others), 30, "snapshots")
        for i in others:
            ens.kill(i)
        for i in others:
            ens.restart(i)
        ens.wait_serving(60, ids=others)
        writer = Writer(",".join(f"127.0.0.1:{ens.port + i}" for i in others))
        writer.start()
        wait_for(lambda: writer.acked > 0, 30, "writes")
        ens.restart(behind)
        ens.wait_serving(60)
        wait_for(lambda: writer.acked > 50, 30, "more writes")
        last = writer.finish()
        assert snapshot_zxids(ens, behind), "the follower was not synchronised by a snapshot"
        f = client(f"127.0.0.1:{ens.port + behind}")
        try:
            f.sync("/")
            assert len(f.get_children("/")) == NODES + 2  # and /zookeeper
            assert f.get(f"/n{NODES - 1}")[0] == b"%d" % (NODES - 1)
            assert int(f.get("/counter")[0]) >= last
            f.create("/after", b"y")  # and it serves writes
        finally:
            f.stop()
            f.close()
