"""Seeded simulations of membership changes racing with faults.

Servers are added (provisioned with the configuration plus themselves, started, then joined by
a reconfig), removed (the leader among them), moved between observer and participant, and the
whole member list replaced, while crashes, partitions, link resets and message chaos go on;
in the racing runs a fault is also aimed at a third of the reconfigurations in flight (`race`). The
simulator checks after every step that each epoch has one leader (across configurations), that
no committed transaction is lost or reordered, that a serving server belongs to the
configuration it holds (a leader as a voter), and that no server runs behind a reconfiguration
it knows is committed; the configuration sequence is part of the committed history, which all
servers share. At the end, healed, the servers still in the ensemble agree on its membership.
"""

from __future__ import annotations

import pytest
from test_zab import DURATION, chaos_schedule, wall_jumps

from zkserver.config import OBSERVER
from zkserver.quorum.membership import server_line
from zkserver.quorum.roles import Role
from zkserver.testing.zabsim import InvariantViolation, Sim, spec


def _line(sid: int, observer: bool) -> str:
    return f"server.{sid}={server_line(spec(sid, observer))}"


def race(sim: Sim) -> None:
    """A fault within a few ms of a reconfiguration's proposal, while it is likely still in
    flight: the leader or another server crashes, the leader is cut off with a minority, or
    one of its links breaks. (Only well before the final healing, which must find a
    quiet ensemble.)"""
    rng = sim.rng
    if sim.now > DURATION - 4_500:
        return
    leader = sim.serving_leader()
    sids = sorted(sim.servers)
    if leader is None:
        return
    kind = rng.random()
    at = rng.randrange(0, 40)
    if kind < 0.5:
        sid = leader if kind < 0.3 else rng.choice(sids)
        sim.schedule(at, lambda: sim.crash(sid))
        sim.schedule(at + rng.randrange(100, 1_500), lambda: sim.restart(sid))
    elif kind < 0.8:
        others = [s for s in sids if s != leader]
        side = {leader, *rng.sample(others, rng.randrange(0, len(others) // 2))}
        sim.schedule(at, lambda: sim.partition(side))
        sim.schedule(at + rng.randrange(200, 2_000), sim.heal)
    else:
        other = rng.choice([s for s in sids if s != leader])
        sim.schedule(at, lambda: sim.break_link(leader, other))


def reconfigure_racing(sim: Sim, racing: bool, **change: str) -> None:
    """A reconfig at the serving leader; if `racing`, a fault races with a third of them."""
    if sim.reconfigure(**change) is not None and racing and sim.rng.random() < 0.35:
        race(sim)


def change_membership(sim: Sim, racing: bool = False) -> None:
    """One random membership change at the serving leader (if any, and none in flight)."""
    rng = sim.rng
    current = sim.in_force()
    if current is None:
        return
    members = sorted(current.servers)
    outside = sorted(set(sim.servers) - set(members))
    kind = rng.random()
    if kind < 0.35 and outside:
        sid = rng.choice(outside)
        observer = rng.random() < 0.3
        sim.start_joiner(sid, observer)
        sim.schedule(rng.randrange(150, 700),
                     lambda: reconfigure_racing(sim, racing, joining=_line(sid, observer)))
    elif kind < 0.6:
        leader = sim.serving_leader()
        sid = leader if leader is not None and rng.random() < 0.4 else rng.choice(members)
        reconfigure_racing(sim, racing, leaving=str(sid))
    elif kind < 0.85:
        sid = rng.choice(members)
        observer = current.servers[sid].peer_type != OBSERVER
        reconfigure_racing(sim, racing, joining=_line(sid, observer))
    else:
        keep = rng.sample(members, rng.randrange(2, len(members) + 1))
        reconfigure_racing(sim, racing, members=",".join(
            _line(sid, current.servers[sid].peer_type == OBSERVER and rng.random() < 0.7)
            for sid in sorted(keep)))


def membership_schedule(sim: Sim, racing: bool = False) -> None:
    t = 300
    while t < DURATION - 3_000:
        t += sim.rng.randrange(200, 900)
        sim.schedule(t - sim.now, lambda: change_membership(sim, racing))


def run_reconfig_seed(seed: int, racing: bool = False) -> Sim:
    sim = Sim(seed, n=3, observers=1, spares=2)
    sim.start()
    chaos_schedule(sim)
    membership_schedule(sim, racing)
    wall_jumps(sim, DURATION)
    sim.run(DURATION - 1_500)
    before = len(sim.committed)
    sim.run(DURATION)
    leader = sim.serving_leader()
    assert leader is not None, f"seed {seed}: no leader after healing"
    assert len(sim.committed) > before, f"seed {seed}: no progress after healing"
    lp = sim.servers[leader].peer
    assert lp is not None
    for s in sim.servers.values():
        p = s.peer
        if s.up and p is not None and p.serving:
            assert p.config_version == lp.config_version, (
                f"seed {seed}: server {s.sid} serves configuration {p.config_version:#x}, "
                f"its leader {lp.config_version:#x}")
    return sim


@pytest.mark.parametrize("block", range(4))
def test_membership_changes_under_faults(block: int) -> None:
    changes = 0
    for seed in range(block * 50, block * 50 + 50):
        changes += len(run_reconfig_seed(seed).config_sequence)
    assert changes > 50  # the runs did change the membership, many times


@pytest.mark.slow
@pytest.mark.parametrize("block", range(4, 64))
def test_membership_changes_under_faults_soak(block: int) -> None:
    test_membership_changes_under_faults(block)


# Racing seeds (of 0..49 and 100..149) that end with no leader: issue #11's known liveness
# gap (in 400 racing seeds: 29 and 345). A leader proposes a reconfiguration that removes it
# (or makes it an observer) and is cut off before anyone logs it; back, it holds more than the
# others but may not lead by the reconfiguration in its log, while every leader they elect
# steps down on learning it holds more. (ZooKeeper weighs voters by the configuration in
# force, so it would lead, commit and step down; doing so here needs election notifications
# to carry the committed configuration, as ZooKeeper's do.) Exact: a fix must shrink this
# set, and no other seed may join it.
KNOWN_STUCK = frozenset({29})


def racing_block(block: int) -> tuple[set[int], int]:
    """Run 50 racing seeds: the ones that ended with no leader, and how many changes ran.
    Every invariant (safety) must hold in all of them."""
    stuck, changes = set(), 0
    for seed in range(block * 50, block * 50 + 50):
        try:
            changes += len(run_reconfig_seed(seed, racing=True).config_sequence)
        except InvariantViolation:
            raise
        except AssertionError as e:
            if "no leader after healing" not in str(e):
                raise
            stuck.add(seed)
    return stuck, changes


@pytest.mark.parametrize("block", [0, 2])  # (2 holds seed 126: an election split for ever)
def test_membership_changes_racing_faults(block: int) -> None:
    stuck, changes = racing_block(block)
    assert stuck == {s for s in KNOWN_STUCK if s // 50 == block}
    assert changes > 25


@pytest.mark.slow
def test_membership_changes_racing_faults_soak() -> None:
    """2,000 racing seeds: safety everywhere; the known liveness gap in under 2% of them."""
    stuck: set[int] = set()
    for block in range(40):
        stuck |= racing_block(block)[0]
    assert len(stuck) < 40, sorted(stuck)


@pytest.mark.parametrize(("n", "spares", "change"), [
    (1, 2, {"joining": "2,3"}),                # standaloneEnabled=false: one grows to three
    (2, 2, {"joining": "3,4"}),                # two to four: three of the four needed
    (3, 2, {"members": "1,4,5"}),              # a majority replaced
    (3, 3, {"members": "4,5,6"}),              # every voter replaced
])
def test_a_change_whose_new_quorum_needs_joiners(n: int, spares: int,
                                                  change: dict[str, str]) -> None:
    """Refused (NEWCONFIGNOQUORUM) while the joiners are not running; once they run and have
    synced with the leader as learners, it commits on their acknowledgements, the new voters
    serve (a leader among them) and the servers left out stop serving."""
    sim = Sim(5, n=n, spares=spares, chaos=0.0)
    sim.start()
    sim.run(1_000)
    lines = {key: ",".join(_line(int(sid), False) for sid in value.split(","))
             for key, value in change.items()}
    assert sim.reconfigure(**lines) is None
    new = {int(sid) for value in change.values() for sid in value.split(",")}
    if "joining" in change:
        new |= set(range(1, n + 1))
    for sid in sorted(new - set(range(1, n + 1))):
        sim.start_joiner(sid)
    sim.run(1_500)
    assert sim.reconfigure(**lines) is not None
    committed = len(sim.committed)
    sim.run(4_000)
    assert len(sim.config_sequence) == 1
    leader = sim.serving_leader()
    assert leader in new and sorted(sim.servers[leader].peer.quorum.voters) == sorted(new)
    for sid, s in sim.servers.items():
        assert s.peer is not None and s.peer.serving == (sid in new), sid
    assert len(sim.committed) > committed


def test_grow_then_remove_the_leader_without_faults() -> None:
    """3 -> 4 -> 5 servers, then the leader removed: a voter of the new configuration leads
    in a later epoch, every write committed before is still there, and the removed server
    stops."""
    sim = Sim(1, n=3, spares=2, chaos=0.0)
    sim.start()
    sim.run(1_000)
    for sid, t in ((4, 2_000), (5, 3_000)):
        sim.start_joiner(sid)
        sim.run(t - 500)
        assert sim.reconfigure(joining=_line(sid, False)) is not None
        sim.run(t)
    old = sim.serving_leader()
    assert old is not None
    assert sorted(sim.servers[old].peer.quorum.voters) == [1, 2, 3, 4, 5]
    committed = len(sim.committed)
    assert sim.reconfigure(leaving=str(old)) is not None
    sim.run(6_000)
    new = sim.serving_leader()
    assert new is not None and new != old
    peer = sim.servers[new].peer
    assert old not in peer.quorum.voters and len(peer.quorum.voters) == 4
    removed = sim.servers[old].peer
    assert not removed.member and not removed.serving
    assert len(sim.committed) > committed
    assert sim.config_sequence and len(sim.config_sequence) == 3


def test_an_observer_becomes_a_participant_and_back() -> None:
    """An observer made a voter follows (and acknowledges as one), and made an observer again
    observes: each rejoins its leader in its new role as the reconfiguration commits."""
    sim = Sim(2, n=3, observers=1, chaos=0.0)
    sim.start()
    sim.run(1_000)
    assert sim.reconfigure(joining=_line(4, False)) is not None
    sim.run(2_500)
    p4 = sim.servers[4].peer
    assert 4 in p4.quorum.voters and p4.role in (Role.FOLLOWING, Role.LEADING) and p4.serving
    assert sim.reconfigure(joining=_line(4, True)) is not None
    sim.run(4_000)
    assert 4 in p4.quorum.observers and p4.role == Role.OBSERVING and p4.serving


def test_an_observer_promoted_while_cut_off_rejoins_as_a_follower() -> None:
    """The observer is cut off while a reconfiguration makes it a voter and commits (three
    of the four new voters suffice). Back, it elects and syncs as the observer its own
    configuration says it is, and learns its new place from its leader's NEWLEADER, not from
    a commit: it must still elect again and follow; and once demoted the same way, observe."""
    sim = Sim(4, n=3, observers=1, chaos=0.0)
    sim.start()
    sim.run(1_000)
    p4 = sim.servers[4].peer
    for observer, t in ((False, 1_000), (True, 5_000)):
        sim.partition({4})
        sim.run(t + 300)
        assert sim.reconfigure(joining=_line(4, observer)) is not None
        sim.run(t + 1_500)
        assert not p4.serving and (4 in p4.quorum.observers) != observer
        sim.heal()
        sim.run(t + 4_000)
        assert (4 in p4.quorum.observers) == observer and p4.serving
        assert p4.role == (Role.OBSERVING if observer else Role.FOLLOWING)
    assert len(sim.config_sequence) == 2


def test_a_reconfig_needs_a_synced_quorum_of_the_new_voters() -> None:
    """Adding three servers that are not running would leave the new six without a synced
    quorum (three of six): refused (NEWCONFIGNOQUORUM), and nothing changes."""
    sim = Sim(3, n=3, spares=3, chaos=0.0)
    sim.start()
    sim.run(1_000)
    assert sim.reconfigure(joining=",".join(_line(s, False) for s in (4, 5, 6))) is None
    sim.run(2_000)
    assert sim.config_sequence == []


@pytest.mark.xfail(strict=True, reason=(
    "known liveness gap, issue #11: voters a reconfiguration in flight removes may not lead "
    "(Joint.weight is the new configuration's), so when only they hold what the old quorum "
    "committed the ensemble waits for the old leader. Weighing them by the old configuration "
    "(as ZooKeeper, which weighs by the configuration in force) fixes this seed set but "
    "deadlocks membership seed 159: ZooKeeper also adopts a newer committed configuration "
    "from election notifications, which ours do not carry"))
def test_the_leader_lost_while_the_voters_it_keeps_lag() -> None:
    """5 voters shrink to 3 while the two kept (a, b) have hung disks: what the leader
    commits meanwhile is on itself and the two that leave (c, d), a quorum of the old five.
    The leader crashes with the reconfiguration in flight, and a and b restart without what
    they took. Only c or d can lead without losing a commit (the leaders a and b elect step
    down as c and d tell them they hold more, so nothing is lost): one of them must lead,
    commit the reconfiguration and step down, so that a and b, now synced, elect one of their
    own, without waiting for the old leader."""
    for seed in range(5):
        sim = Sim(seed, n=5, chaos=0.0)
        sim.start()
        sim.run(1_000)
        old = sim.serving_leader()
        assert old is not None
        a, b, c, d = (s for s in sorted(sim.servers) if s != old)
        sim.stall(a)
        sim.stall(b)
        sim.run(1_200)
        committed = max(sim.committed)
        assert sim.reconfigure(leaving=f"{c},{d}") is not None
        sim.run(1_230)
        sim.crash(old)
        for s in (a, b):
            sim.crash(s)
            sim.stall(s, False)
            sim.restart(s)
        sim.run(6_000)
        new = sim.serving_leader()
        assert new in (a, b), f"seed {seed}: {new} leads"
        assert sorted(sim.servers[new].peer.quorum.voters) == sorted((old, a, b))
        assert max(sim.committed) > committed  # and nothing committed lost (checked by Sim)
