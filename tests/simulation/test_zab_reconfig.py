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

import attrs
import pytest
from test_zab import DURATION, chaos_schedule, heals, wall_jumps

from zkserver.config import OBSERVER
from zkserver.quorum.election import RESEND_MS
from zkserver.quorum.membership import server_line
from zkserver.quorum.messages import Notification, Vote
from zkserver.quorum.peer import Peer
from zkserver.quorum.quorum import Majority
from zkserver.quorum.roles import Role
from zkserver.testing.zabsim import InvariantViolation, Sim, membership_of, spec


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


def run_reconfig_seed(seed: int, racing: bool = False, thrifty: int = 0) -> Sim:
    sim = Sim(seed, n=3, observers=1, spares=2, thrifty=thrifty)
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


@pytest.mark.parametrize("block", [100, 101])
def test_membership_changes_with_thrifty_broadcast(block: int) -> None:
    """As above with leaders holding proposals back from spare followers
    (zkserver/quorum/thrifty.py): a reconfiguration in flight sends everything to everyone,
    and the followers a changed membership needs get what was held."""
    changes = 0
    for seed in range(block * 50, block * 50 + 50):
        changes += len(run_reconfig_seed(seed, thrifty=100).config_sequence)
    assert changes > 50


# Racing seeds once ended with no leader (29 and 345 of the first 400): a leader proposed a
# reconfiguration that removes it and was cut off before anyone logged it; back, it held more
# than the others but could not lead by the reconfiguration in its log. Now, as in ZooKeeper,
# voters weigh by the configuration in force (it leads, commits and steps down), and election
# notifications carry the sender's configuration in force, which a looking server that holds an
# older one takes. Every racing seed must end with a leader.


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


# (Block 2 once held seed 126, an election split for ever: that is a scenario now,
# tests/quorum/testdata/election_backs_itself_again.txt.)
@pytest.mark.parametrize("block", [0, 2])
def test_membership_changes_racing_faults(block: int) -> None:
    stuck, changes = racing_block(block)
    assert not stuck
    assert changes > 25


@pytest.mark.slow
def test_membership_changes_racing_faults_soak() -> None:
    """2,000 racing seeds: safety everywhere, and a leader at the end of nearly all."""
    stuck: set[int] = set()
    for block in range(40):
        stuck |= racing_block(block)[0]
    assert len(stuck) < 40, sorted(stuck)


def change_needing_joiners(sim: Sim, racing: bool) -> None:
    """A change whose new voters hold no quorum without servers outside the ensemble: keep
    `k` of the voters and add at least `k` servers, started beforehand as joiners (each with
    the configuration plus itself) and synced as learners; it can commit only on their
    acknowledgements. Incremental or a new member list, at random."""
    rng = sim.rng
    current = sim.in_force()
    if current is None:
        return
    voters = sorted(current.verifier().voters)
    outside = sorted(set(sim.servers) - set(current.servers))
    if not outside:
        return
    least = {k: max(k, 2 - k, 1) for k in range(len(voters) + 1)}  # joiners needed
    sizes = [k for k in least if least[k] <= len(outside)]
    if not sizes:
        return
    keep = rng.sample(voters, rng.choice(sizes))
    joining = rng.sample(outside, rng.randrange(least[len(keep)], len(outside) + 1))
    for sid in joining:
        sim.start_joiner(sid)
    if rng.random() < 0.5:
        change = {"joining": ",".join(_line(sid, False) for sid in sorted(joining)),
                  "leaving": ",".join(str(sid) for sid in current.servers if sid not in keep)}
    else:
        change = {"members": ",".join(_line(sid, False) for sid in sorted(keep + joining))}
    sim.schedule(rng.randrange(150, 700), lambda: reconfigure_racing(sim, racing, **change))


def needed_joiners(sim: Sim) -> int:
    """How many committed changes had a new quorum that the old voters could not make."""
    count, before = 0, sim.initial.verifier().voters
    for zxid in sim.config_sequence:
        new = sim.membership(zxid).verifier()
        count += not new.has_quorum(before & new.voters)
        before = new.voters
    return count


def run_joiner_seed(seed: int, racing: bool = False) -> Sim:
    """Five servers, one to three of them the ensemble at first (one: standaloneEnabled=false),
    changes that need joiners racing with the usual faults, then healing."""
    n = 1 + seed % 3
    sim = Sim(seed, n=n, spares=5 - n)
    sim.start()
    chaos_schedule(sim)
    t = 300
    while t < DURATION - 3_000:
        t += sim.rng.randrange(300, 1_200)
        sim.schedule(t - sim.now, lambda: change_needing_joiners(sim, racing))
    return heals(sim, seed)


# The one racing joiner seed of 0..499 that ends with no leader: the known gap pinned below.
KNOWN_JOINER_GAP = 247


@pytest.mark.parametrize(("block", "racing"), [(0, False), (1, False), (0, True)])
def test_changes_that_need_joiners_under_faults(block: int, racing: bool) -> None:
    needed = 0
    for seed in range(block * 50, block * 50 + 50):
        if racing and seed == KNOWN_JOINER_GAP:
            continue
        needed += needed_joiners(run_joiner_seed(seed, racing))
    assert needed > 50  # the runs did commit changes only joiners could make, many times


@pytest.mark.slow
@pytest.mark.parametrize("block", range(1, 5))
@pytest.mark.parametrize("racing", [False, True])
def test_changes_that_need_joiners_under_faults_soak(block: int, racing: bool) -> None:
    test_changes_that_need_joiners_under_faults(block, racing)


@pytest.mark.xfail(strict=True, reason=(
    "known liveness gap, issue #11 (racing joiner seed 247 of 0..499): a joiner provisioned "
    "with the members plus itself at the version in force counts itself a voter and holds out "
    "for its own vote, while the others, counting jointly with a reconfiguration they heard of "
    "but that never committed, need it and weigh it 0. (A joiner file without a version, 0, "
    "takes the configuration in force from the election and votes null; not checked against "
    "ZooKeeper.)"))
def test_a_joiner_that_counts_itself_a_voter_holds_up_a_joint_election() -> None:
    run_joiner_seed(KNOWN_JOINER_GAP, racing=True)


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


def test_a_looking_server_takes_a_newer_configuration_in_force_from_the_election() -> None:
    """A server that missed reconfigurations (restarted with an old dynamic file) learns the
    configuration in force from a voter's notification, as ZooKeeper's election does: it
    counts votes by it (here: as a server it no longer names) and tells the others of it. An
    older or equal one changes nothing."""
    old, new = Majority([1, 2, 3]), Majority([1, 2])
    peer = Peer(3, old, reconfig_enabled=True, config_text=membership_of(old).data())
    peer.start(0)
    vote = Vote(1, 0x100000007, 1)
    stale = attrs.evolve(membership_of(Majority([1, 2, 3, 4])), version=0).data()
    peer.receive(1, Notification(vote, 1, Role.LOOKING, 1, b"", stale), 10)
    assert peer.quorum.voters == {1, 2, 3} and peer.config_version == 0
    text = attrs.evolve(membership_of(new), version=0x100000005).data()
    peer.ready()
    peer.receive(1, Notification(vote, 1, Role.LOOKING, 1, b"", text), 20)
    assert peer.quorum.voters == {1, 2} and peer.config_version == 0x100000005
    assert peer.election.observer  # no longer a voter: it votes for no one of its own
    peer.tick(20 + RESEND_MS)
    sent = [m for m in peer.ready().network if isinstance(m.msg, Notification)]
    assert sent and all(m.msg.committed == text for m in sent)  # and tells the others
