"""Seeded simulations of whole ensembles through faults; every step checks ZAB's invariants.

Besides crashes, partitions, link resets and message chaos, every server's wall clock steps by
minutes, forwards and backwards, while its monotonic clock runs on: ZAB sees only the latter.

A failing seed replays exactly: `Sim(seed)` and the same fault schedule.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from zkserver.quorum.quorum import Hierarchical
from zkserver.testing.zabsim import WALL_EPOCH, Sim

DURATION = 10_000  # simulated ms per seed


def crash_leader(sim: Sim) -> None:
    leader = sim.serving_leader()
    if leader is not None:
        sim.crash(leader)


def wall_jumps(sim: Sim, until: int) -> None:
    """Every server's wall clock steps by minutes, forwards and backwards, now and then."""
    rng = sim.rng
    for sid in sorted(sim.servers):
        t = rng.randrange(200, 1_000)
        while t < until:
            delta = rng.choice((-1, 1)) * rng.randrange(60_000, 600_000)
            sim.schedule(t - sim.now, lambda sid=sid, delta=delta: sim.jump_wall(sid, delta))
            t += rng.randrange(300, 2_000)


def chaos_schedule(sim: Sim) -> None:
    """Random faults for most of the run, then everything healed so progress can be checked.
    No fault starts after that healing (one did in every seed, its repair up to 2.5 s later,
    which could leave the last 1.5 s cut off: seed 2400 of the reconfiguration soak)."""
    rng = sim.rng
    sids = sorted(sim.servers)
    t = 500
    while True:
        t += rng.randrange(100, 900)
        if t >= DURATION - 4_000:
            break
        kind = rng.random()
        if kind < 0.35:
            sid = rng.choice(sids)
            sim.schedule(t - sim.now, lambda sid=sid: sim.crash(sid))
            sim.schedule(t - sim.now + rng.randrange(100, 2000), lambda sid=sid: sim.restart(sid))
        elif kind < 0.6:
            side = set(rng.sample(sids, rng.randrange(1, len(sids))))
            sim.schedule(t - sim.now, lambda side=side: sim.partition(side))
            sim.schedule(t - sim.now + rng.randrange(200, 2500), sim.heal)
        elif kind < 0.8:
            a, b = rng.sample(sids, 2)
            sim.schedule(t - sim.now, lambda a=a, b=b: sim.break_link(a, b))
        else:
            sim.schedule(t - sim.now, lambda: crash_leader(sim))
            sim.schedule(t - sim.now + rng.randrange(100, 1500), lambda: [
                sim.restart(s) for s in sids])
    sim.schedule(DURATION - 4_000 - sim.now, lambda: (sim.heal(), [sim.restart(s) for s in sids]))


def run_seed(seed: int, n: int, observers: int = 0) -> Sim:
    return run_chaos(Sim(seed, n=n, observers=observers), seed)


def run_chaos(sim: Sim, seed: int) -> Sim:
    """The chaos schedule and wall-clock jumps, then healing: a leader serves again and the
    ensemble makes progress (the simulator checks its invariants all along)."""
    sim.start()
    chaos_schedule(sim)
    return heals(sim, seed)


def heals(sim: Sim, seed: int) -> Sim:
    """With wall-clock jumps, run to the end of the schedule, which heals everything: a leader
    serves again and the ensemble makes progress in the last 1.5 s."""
    wall_jumps(sim, DURATION)
    sim.run(DURATION - 1_500)
    before = len(sim.committed)
    sim.run(DURATION)
    assert sim.serving_leader() is not None, f"seed {seed}: no leader after healing"
    assert len(sim.committed) > before, f"seed {seed}: no progress after healing"
    return sim


@pytest.mark.parametrize("block", range(30))
def test_three_servers(block):
    for seed in range(block * 50, block * 50 + 50):
        run_seed(seed, 3)


@pytest.mark.parametrize("block", range(6))
def test_three_servers_with_writes_through_followers(block):
    """Half the writes go through a follower: the leader tells the followers that forwarded
    them how far its log is durable (LOGGED), and they commit without waiting for the
    COMMIT, through the same faults."""
    for seed in range(block * 50, block * 50 + 50):
        run_chaos(Sim(seed, n=3, forwarded=0.5), seed)


class _CountingSim(Sim):
    """A simulator that counts the quorum messages sent, by class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: Counter[str] = Counter()

    def send(self, frm: int, to: int, msg: Any) -> None:
        self.sent[type(msg).__name__] += 1
        super().send(frm, to, msg)


@pytest.mark.parametrize(("n", "told"), [(3, True), (5, False)])
def test_only_a_follower_that_is_a_quorum_with_its_leader_is_told_logged(n, told):
    """Three voters: writes through followers bring LOGGED; five: a follower and its leader
    are no quorum, so only COMMITs tell it (and every write still commits)."""
    sim = _CountingSim(3, n=n, chaos=0.0, forwarded=0.5)
    sim.start()
    sim.run(5_000)
    assert sim.sent["Request"] > 50
    assert sim.sent["Logged"] > 25 if told else sim.sent["Logged"] == 0
    assert len(sim.committed) > sim.sent["Request"]


@pytest.mark.parametrize(("n", "thrifty", "block"), [(3, 5, 0), (3, 100, 1), (3, 100, 2),
                                                      (5, 5, 3), (5, 100, 4)])
def test_thrifty_broadcast_under_faults(n, thrifty, block):
    """Leaders hold proposals back from the followers their quorum does not need
    (zkserver/quorum/thrifty.py), through the same faults: a spare that becomes needed (the
    follower picked crashed or was cut off) gets what was held at its deadline, and every
    invariant holds. Half the writes go through followers, which changes who is needed."""
    for seed in range(block * 50, block * 50 + 50):
        run_chaos(Sim(seed, n=n, observers=1, forwarded=0.5, thrifty=thrifty), seed)


@pytest.mark.parametrize("n", [3, 5])
def test_thrifty_broadcast_batches_what_spares_get(n):
    """Without faults, spares get several proposals per message, and a fifth fewer proposal
    messages reach the followers than with every proposal sent to every one (same seed; the
    simulator's links and disks take up to 15 and 20 ms, so it holds back up to 100 ms)."""
    counts = []
    for thrifty in (0, 100):
        sim = _CountingSim(3, n=n, chaos=0.0, thrifty=thrifty)
        sim.start()
        sim.run(5_000)
        assert len(sim.committed) > 100
        counts.append((sim.sent["Proposal"] + sim.sent["Proposals"], len(sim.committed)))
        batches = sim.sent["Proposals"]
    (every, committed_every), (thrifty_sent, committed_thrifty) = counts
    assert batches > 50
    assert thrifty_sent < 0.8 * every * committed_thrifty / committed_every


@pytest.mark.parametrize("block", range(10))
def test_five_servers_with_an_observer(block):
    for seed in range(block * 50, block * 50 + 50):
        run_seed(seed, 5, observers=1)


@pytest.mark.parametrize("seed", range(20))
def test_a_wall_clock_jump_changes_no_role(seed):
    """With no fault but wall-clock steps of minutes on every server, the ensemble elects once
    and then nobody changes role; transactions carry the leader's (jumped) wall time."""
    sim = Sim(seed, n=3, chaos=0.0)
    sim.start()
    sim.run(1_000)
    leader = sim.serving_leader()
    assert leader is not None
    settled = len(sim.role_changes)
    assert settled == 3  # one leader, two followers
    wall_jumps(sim, DURATION)
    stamped = set()  # how far (in minutes) the leader's wall clock was off when it stamped
    for t in range(1_000, DURATION, 100):
        sim.run(t)
        mtime = sim.servers[leader].sm.tree.nodes["/"].mtime
        stamped.add(round((mtime - WALL_EPOCH - sim.now) / 60_000))
    assert sim.role_changes[settled:] == []
    assert sim.serving_leader() == leader
    assert len(sim.committed) > 300
    assert len(stamped) > 1


def test_quiet_ensemble_elects_and_commits():
    sim = Sim(1, n=3, chaos=0.0)
    sim.start()
    sim.run(2_000)
    assert sim.serving_leader() is not None
    assert len(sim.committed) > 50


@pytest.mark.parametrize("seed", range(10))
def test_a_replica_whose_state_diverges_stops(seed):
    """The digest in each COMMIT catches a follower whose tree differs from the leader's."""
    from zkserver.quorum.digests import DigestMismatch

    sim = Sim(seed, n=3, chaos=0.0)
    sim.start()
    sim.run(1_000)
    leader = sim.serving_leader()
    follower = next(s for s in sim.servers.values() if s.sid != leader)
    # A node no later write touches (the workload only sets "/" and creates new nodes), so
    # the damage stays until a digest comparison finds it.
    created = next(path for path in follower.sm.tree.nodes if path.startswith("/n"))
    follower.sm.tree.nodes[created].data = b"corrupted behind ZAB's back"
    follower.sm.tree.track_digest()
    with pytest.raises(DigestMismatch, match="differs from the leader"):
        sim.run(3_000)


# Hierarchical quorums (ZooKeeper's group.N/weight.N): three groups, one of them a single
# server; server 3 weighs 0 (it follows and acknowledges, but neither counts nor ever leads)
# and server 1 weighs 2, so group 1 is won by 1 alone or by 2 with 1.
GROUPS = {1: (1, 2, 3), 2: (4, 5), 3: (6,)}
WEIGHTS = {1: 2, 3: 0}


def hierarchical(observers: tuple[int, ...] = ()) -> Hierarchical:
    return Hierarchical(range(1, 7), observers, GROUPS, WEIGHTS)


def run_hierarchical_seed(seed: int, observers: tuple[int, ...] = ()) -> Sim:
    return run_chaos(Sim(seed, quorum=hierarchical(observers)), seed)


@pytest.mark.parametrize("block", range(4))
def test_six_servers_in_weighted_groups(block):
    for seed in range(block * 50, block * 50 + 50):
        run_hierarchical_seed(seed, observers=(7,) if seed % 2 else ())


@pytest.mark.slow
@pytest.mark.parametrize("block", range(4, 44))
def test_six_servers_in_weighted_groups_soak(block):
    test_six_servers_in_weighted_groups(block)


def test_a_hierarchical_quorum_without_a_majority_of_servers_commits():
    """Servers 1, 4 and 6 are up, half of six (no majority), yet a quorum: 1 alone holds 2 of
    group 1's weight 3 and 6 is group 3, two groups of three (4 holds only half of group 2)."""
    sim = Sim(1, quorum=hierarchical(), chaos=0.0)
    sim.start()
    sim.run(2_000)
    for sid in (2, 3, 4, 5):
        sim.crash(sid)
    sim.run(6_000)
    before = len(sim.committed)
    sim.run(8_000)
    assert sim.serving_leader() in (1, 4, 6)
    assert len(sim.committed) > before
    sim.crash(6)  # now only group 1 holds: no quorum, nothing commits
    sim.run(9_000)
    stalled = len(sim.committed)
    sim.run(12_000)
    assert sim.serving_leader() is None
    assert len(sim.committed) == stalled
