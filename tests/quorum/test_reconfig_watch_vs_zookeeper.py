"""Watches on /zookeeper/config through a reconfiguration, zkserver against Apache ZooKeeper.

The same steps on a fresh 3-server ensemble of each (reconfigEnabled, skipACL): two clients,
one on server 1 and one on server 3, leave a data watch on /zookeeper/config (one by getData,
one by exists); the first adds an observer (not running, as kazoo's TestReconfig does, so that
no quorum depends on it), then removes it. What each client sees must be ZooKeeper's: the
watch events (type, state, path), one per watch, the reconfig replies (data and Stat) and the
node as read back from either server. Ports differ between the ensembles, so the data is
compared with ports named by role (tests/quorum/test_config_node_vs_zookeeper.py's `symbolic`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import WatchedEvent, ZnodeStat
from support import realzk
from support.process import ZkServerEnsemble, free_port_base
from support.realzk import RealZooKeeper
from support.waiting import wait_for
from test_config_node_vs_zookeeper import symbolic

CONFIG = "/zookeeper/config"
EXTRA = ["reconfigEnabled=true", "skipACL=yes"]


def _stat(stat: ZnodeStat) -> tuple:
    """Every Stat field but the times (mtime is the wall clock of the change)."""
    return (stat.czxid, stat.mzxid, stat.version, stat.cversion, stat.aversion,
            stat.ephemeralOwner, stat.dataLength, stat.numChildren, stat.pzxid, stat.ctime)


def _event(e: WatchedEvent) -> tuple[str, str, str]:
    return (e.type, e.state, e.path)


def _steps(hosts: list[str], base: int) -> list[Any]:
    """The scenario against one ensemble; what the clients saw, ports made symbolic."""
    observer = (f"server.4=127.0.0.1:{base + 104}:{base + 204}:observer;"
                f"127.0.0.1:{base + 4}")
    clients = [KazooClient(h, timeout=15) for h in hosts]
    for k in clients:
        k.start(timeout=60)
    seen: list[Any] = []
    try:
        admin, other = clients
        for change in ({"joining": observer, "leaving": None},
                       {"joining": None, "leaving": "4"}):
            # (kazoo calls watchers on its event thread; list.append is atomic)
            events: list[list[WatchedEvent]] = [[], []]
            before, _ = admin.get(CONFIG, watch=events[0].append)
            assert other.exists(CONFIG, watch=events[1].append) is not None
            data, stat = admin.reconfig(new_members=None, **change)
            wait_for(lambda events=events: all(events), 15, "both watches firing")
            # Another change, so a watch that fired twice would show it (ZooKeeper's fire once).
            admin.create(f"/after-{len(seen)}", b"")
            other.sync("/")
            after = [k.get(CONFIG) for k in clients]
            fired = [[_event(e) for e in list(evs)] for evs in events]
            seen.append({
                "events": fired,
                "reply": (symbolic(data.decode(), base), _stat(stat)),
                "read": [(symbolic(d.decode(), base), _stat(s)) for d, s in after],
                "changed": symbolic(before.decode(), base) != symbolic(
                    data.decode(), base),
            })
    finally:
        for k in clients:
            k.stop()
            k.close()
    return seen


def test_config_watches_fire_as_zookeeper(tmp_path: Path) -> None:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not available (tests/run.sh fetches it)")
    zk_base = free_port_base(4)
    with RealZooKeeper(tmp_path / "zk", zk_base, n=3, extra=EXTRA) as zk:
        ports = zk.client_ports
        expected = _steps([f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[2]}"], zk_base)
    ours_base = free_port_base(4)
    with ZkServerEnsemble(tmp_path / "ours", ours_base, n=3, extra=EXTRA) as ours:
        ports = ours.client_ports
        got = _steps([f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[2]}"], ours_base)
    # The oracle's behaviour, as the test expects it: each watch fired once, as NodeDataChanged.
    for step in expected:
        assert step["events"] == [[("CHANGED", "CONNECTED", CONFIG)]] * 2
        assert step["changed"]
    assert got == expected
