"""Hierarchical quorums (group.N/weight.N) in a real 5-server ensemble, processes on loopback.

Groups {1, 2, 3}, {4} and {5}: a quorum is two of the three groups, each by a majority of its
members. So the ensemble keeps serving with group 1 down to one server, and still with all of
group 1 down — two of five servers, which a simple majority would never allow — and stops as
soon as a second group is gone. Nothing acknowledged is lost on the way.
"""

from __future__ import annotations

import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from support.process import ZkServerEnsemble, free_port_base
from support.waiting import wait_for

SERVING = ("leader", "follower")


def write(ens: ZkServerEnsemble, ids: list[int], path: str, timeout: float = 30.0) -> None:
    """Create `path` through one of the servers `ids`, retrying until it is acknowledged."""
    hosts = ",".join(f"127.0.0.1:{ens.port + i}" for i in ids)
    deadline = time.monotonic() + timeout
    while True:
        k = KazooClient(hosts, timeout=4, connection_retry={"max_tries": -1, "delay": 0.05,
                                                            "max_delay": 0.2})
        try:
            k.start(timeout=max(1.0, deadline - time.monotonic()))
            k.create(path, b"acked", makepath=True)
            return
        except KazooException:
            assert time.monotonic() < deadline, f"{path} not acknowledged: {ens.modes()}"
        finally:
            k.stop()
            k.close()


def test_two_of_three_groups_serve_whatever_the_server_count(tmp_path):
    extra = ["group.1=1:2:3", "group.2=4", "group.3=5"]
    with ZkServerEnsemble(tmp_path, free_port_base(5), n=5, extra=extra) as ens:
        write(ens, [4, 5], "/h/all")
        acked = ["/h/all"]

        # Group 1 down to one server (it no longer carries its group): groups 2 and 3 do.
        ens.kill(1)
        ens.kill(2)
        wait_for(lambda: [ens.modes()[i] for i in (3, 4, 5)].count("leader") == 1, 60,
                 "a leader among 3, 4 and 5")
        write(ens, [3, 4, 5], "/h/group-1-minus-two")
        acked.append("/h/group-1-minus-two")

        # All of group 1 down: two servers of five, still two groups of three.
        ens.kill(3)
        wait_for(lambda: sorted(ens.modes()[i] for i in (4, 5)) == ["follower", "leader"], 60,
                 "4 and 5 serving on their own")
        write(ens, [4, 5], "/h/group-1-down")
        acked.append("/h/group-1-down")

        # And group 2 as well: one group of three is no quorum, so 5 stops serving.
        ens.kill(4)
        wait_for(lambda: ens.modes()[5] not in SERVING, 30, "5 to stop serving")
        settled = time.monotonic() + 3.0  # ten ticks: it must not come back on its own
        while time.monotonic() < settled:
            assert ens.modes()[5] not in SERVING
            time.sleep(0.1)

        # Group 2 back: serving again, with every acknowledged write.
        ens.restart(4)
        wait_for(lambda: sorted(ens.modes()[i] for i in (4, 5)) == ["follower", "leader"], 60,
                 "4 and 5 serving again")
        k = KazooClient(f"127.0.0.1:{ens.port + 5}", timeout=4)
        k.start(timeout=30)
        try:
            k.sync("/h")
            assert sorted(k.get_children("/h")) == sorted(p.rsplit("/", 1)[1] for p in acked)
        finally:
            k.stop()
            k.close()
