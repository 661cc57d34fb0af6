"""Jepsen-style fault tests: workloads under kill -9, SIGSTOP and partitions, histories checked.

Each test runs against Apache ZooKeeper (which proves the harness: its histories must pass)
and against zkserver, unless JEPSEN_CLUSTER picks one (see conftest.py). Every history must
be linearizable and no acknowledged write lost. The smoke tests run in the default suite; the
long runs are marked slow. A failing run saves its history next to the test's tmp_path
(`tests.jepsen.workloads.load_history` reads it back).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.process import ZkServerProcess

from tests.jepsen.linearizability import FAIL, INFO, OK
from tests.jepsen.nemesis import (
    ClusterBase,
    Fault,
    Isolate,
    Kill,
    Nemesis,
    Pause,
    zkserver_process_cluster,
)
from tests.jepsen.workloads import (
    WORKLOADS,
    CounterWorkload,
    QueueWorkload,
    RegisterWorkload,
    RunResult,
    run,
)


def run_checked(workload, cluster: ClusterBase, faults: list[Fault], duration: float,
                tmp_path: Path, quiet: float = 1.0, active: float = 2.5, clients: int = 5,
                seed: int = 0) -> RunResult:
    nemesis = Nemesis(cluster, faults, quiet=quiet, active=active, seed=seed)
    result = run(workload, cluster.node_hosts, duration=duration, clients=clients,
                 nemesis=nemesis, seed=seed)
    print(result.summary())
    print(nemesis.describe())
    if result.valid is not True:
        result.save(tmp_path / "history.pickle")
    assert result.valid is True, (f"{result.summary()}\nnemesis:\n{nemesis.describe()}\n"
                                  f"history saved in {tmp_path / 'history.pickle'}")
    injected = [e for e in nemesis.events if e.action == "inject"]
    assert injected, "the nemesis never struck"
    assert result.count(OK) > 50, result.summary()
    return result


def ok_after(result: RunResult, t: float) -> int:
    return sum(1 for op in result.history if op.status == OK and op.call > t)


# --- the smoke test (default suite) -------------------------------------------------------------


def test_smoke_register_survives_leader_kill(start_cluster, tmp_path):
    """A short run: kill -9 the leader once under load, restart it; the history is
    linearizable and every server has every acknowledged write."""
    cluster = start_cluster()
    leader = cluster.wait_leader()
    result = run_checked(RegisterWorkload(keys=3), cluster, [Kill("leader", active=1.5)],
                         duration=5.0, tmp_path=tmp_path, quiet=1.0)
    kill = next(e for e in result.nemesis_events if e.action == "inject")
    assert kill.nodes == [leader]
    assert ok_after(result, kill.time + 1.5) > 0, "no progress after the kill"


def test_zkserver_process_survives_kill_restart(tmp_path):
    """The runner against one zkserver process (standalone, durable): kill -9 and restart
    twice under the counter workload; no acknowledged add lost."""
    from support.realzk import free_port

    server = ZkServerProcess(tmp_path / "zkserver", free_port())
    server.start()
    cluster = zkserver_process_cluster(server)
    try:
        # Long enough for two kill/restart rounds on a loaded machine, where a restart
        # (interpreter start, recovery) alone can take a few seconds.
        result = run_checked(CounterWorkload(), cluster, [Kill("random", active=0.3)],
                             duration=8.0, tmp_path=tmp_path, quiet=1.0)
        assert sum(e.action == "inject" for e in result.nemesis_events) >= 2
        assert result.checks["durable"].valid
    finally:
        server.kill()


# --- long runs ----------------------------------------------------------------------------------

MIXED = [Kill("leader"), Pause("follower"), Kill("follower"), Pause("leader", active=7.0)]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_under_crashes_and_pauses(name, start_cluster, tmp_path):
    """kill -9 of the leader and of a follower, SIGSTOP of a follower (shorter than the
    failure detector) and of the leader (longer: a new leader is elected while the old one
    is frozen, and it wakes up believing it still leads)."""
    cluster = start_cluster()
    result = run_checked(WORKLOADS[name](), cluster, MIXED, duration=20.0, tmp_path=tmp_path)
    assert {e.fault for e in result.nemesis_events if e.action == "inject"} >= {"kill", "pause"}
    assert result.count(INFO) + result.count(FAIL) > 0, "the faults went unnoticed"


@pytest.mark.slow
@pytest.mark.parametrize("workload", [RegisterWorkload, QueueWorkload])
def test_partitions_of_the_leader_and_of_a_minority(workload, start_cluster, cluster_nodes,
                                                   tmp_path):
    """The leader cut off from the followers for longer than syncLimit (the followers elect a
    new leader, the old one steps down), then a minority cut off."""
    if cluster_nodes < 3:
        pytest.skip("partitions need an ensemble")
    cluster = start_cluster()
    old = cluster.wait_leader()
    result = run_checked(workload(), cluster,
                         [Isolate("leader", active=8.0), Isolate("minority", active=5.0)],
                         duration=22.0, tmp_path=tmp_path)
    cut = next(e for e in result.nemesis_events if e.action == "inject")
    assert cut.nodes == [old]
    healed = next(e for e in result.nemesis_events if e.action == "heal")
    others = [m for i, m in enumerate(healed.modes) if i != old]
    assert "leader" in others, f"the majority side did not elect a leader: {healed.modes}"
    assert ok_after(result, healed.time) > 0


@pytest.mark.slow
@pytest.mark.parametrize("workload", [RegisterWorkload, CounterWorkload])
def test_majority_killed_then_recovery(workload, start_cluster, cluster_nodes, tmp_path):
    """kill -9 of a majority (the leader among them): no progress is possible; after the
    restart the ensemble recovers with every acknowledged write."""
    if cluster_nodes < 3:
        pytest.skip("needs an ensemble")
    cluster = start_cluster()
    result = run_checked(workload(), cluster, [Kill("majority", active=4.0)], duration=12.0,
                         tmp_path=tmp_path, quiet=2.0)
    kill = next(e for e in result.nemesis_events if e.action == "inject")
    heal = next(e for e in result.nemesis_events if e.action == "heal")
    assert len(kill.nodes) == cluster_nodes // 2 + 1
    # Nothing completes while a majority is dead: the survivors stop serving even reads
    # (allow for replies already in flight when the kill came)...
    during = [op for op in result.history
              if op.status == OK and kill.time + 0.5 < op.call and op.ret < heal.time]
    assert not during, during[:5]
    # ...and writes flow again afterwards.
    assert ok_after(result, heal.time) > 0


@pytest.mark.slow
@pytest.mark.parametrize("workload", [RegisterWorkload, QueueWorkload])
def test_five_node_ensemble(workload, start_cluster, tmp_path):
    """Five servers: the leader killed, a minority of two partitioned away, the leader
    paused, a majority of three killed."""
    cluster = start_cluster(5)
    run_checked(workload(), cluster,
                [Kill("leader"), Isolate("minority", active=7.0), Pause("leader"),
                 Kill("majority", active=3.0)],
                duration=25.0, tmp_path=tmp_path)
