"""The CAS register on zkserver and on Apache ZooKeeper while member-to-member links are
silently cut and healed (tests.jepsen.cut_comparison runs both; see nemesis.py for what a
silent cut models).

The quick test (default suite) runs a fixed schedule of three cuts, each longer than the
ensembles' failure detector (syncLimit x tickTime = 5 s): the leader cut off, a follower cut
off, and only the link between the leader and one follower. Both histories must be
linearizable with nothing acknowledged lost, and each ensemble must keep serving through
each cut (the majority elects while the old leader is cut off) and after each heal. The
slow test is the comparison itself: two minutes of random cuts, and zkserver must complete
at least as many operations as ZooKeeper did in the same run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jepsen.cut_comparison import CutRun, compare, table
from tests.jepsen.linearizability import OK
from tests.jepsen.nemesis import SilentCut


def three_cuts() -> list[SilentCut]:
    return [SilentCut("leader", active=9.0, quiet=1.5),
            SilentCut("follower", active=6.5, quiet=2.0),
            SilentCut("link", active=6.5, quiet=2.0)]


def served_between(run: CutRun, start: float, end: float) -> int:
    return sum(1 for op in run.result.history
               if op.status == OK and start < op.call and op.ret < end)


def check_run(run: CutRun, tmp_path: Path) -> None:
    if run.result.valid is not True:
        run.result.save(tmp_path / f"{run.kind}-history.pickle")
    assert run.result.valid is True, (f"{run.kind}: {run.result.summary()}\n"
                                      f"{run.nemesis.describe()}\nhistory saved in {tmp_path}")


def test_cas_register_under_silent_cuts(tmp_path, capsys):
    runs = compare(tmp_path, duration=31.0, schedule=three_cuts)
    with capsys.disabled():
        print("\n" + table(runs))
    for run in runs.values():
        check_run(run, tmp_path)
        events = run.nemesis.events
        injects = [e for e in events if e.action == "inject"]
        heals = [e for e in events if e.action == "heal"]
        assert [e.fault for e in injects] == ["cut:leader", "cut:follower", "cut:link"], \
            run.nemesis.describe()
        leader_cut, leader_heal = injects[0], heals[0]
        # The majority noticed, elected and served while the old leader was still cut off.
        assert served_between(run, leader_cut.time + 1.0, leader_heal.time) > 0, \
            f"{run.kind}: nothing served during the leader's cut\n{run.timeline()}"
        for heal in heals:
            assert served_between(run, heal.time, heal.time + 5.0) > 0, \
                f"{run.kind}: nothing served within 5 s of a heal\n{run.timeline()}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_zkserver_completes_as_much_as_zookeeper_under_silent_cuts(seed, tmp_path, capsys):
    """The must-show of the [core] issue: the same two minutes of random silent cuts for
    both, every history linearizable, zkserver's completed operations >= ZooKeeper's."""
    runs = compare(tmp_path, seed=seed, duration=120.0)
    with capsys.disabled():
        print("\n" + table(runs))
    for run in runs.values():
        check_run(run, tmp_path)
    ours, theirs = runs["zkserver"].ops(), runs["zookeeper"].ops()
    assert ours >= theirs, (f"zkserver completed {ours} operations, ZooKeeper {theirs}\n"
                            f"{table(runs)}\nzkserver:\n{runs['zkserver'].timeline()}")
