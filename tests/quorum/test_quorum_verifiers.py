"""Quorum counting: ZooKeeper's QuorumMaj and QuorumHierarchical rules, case by case."""

from __future__ import annotations

import itertools

import pytest

from zkserver.quorum.quorum import Hierarchical, Joint, Majority, verifier


def test_majority() -> None:
    q = Majority({1, 2, 3, 4}, {5})
    assert not q.has_quorum({1, 2})
    assert q.has_quorum({1, 2, 3})
    assert not q.has_quorum({1, 2, 5})  # observers never count
    assert (q.weight(1), q.weight(5), q.weight(9)) == (1, 0, 0)


def test_joint_needs_a_quorum_of_both_configurations() -> None:
    """Growing {1,2,3} to {1,...,5}: three of the new five alone do not decide unless two of
    them are old voters; a server moving from observer to voter votes, and weighs (may be
    elected) by the configuration in force, as in ZooKeeper: not until the change commits."""
    q = Joint(Majority({1, 2, 3}, {6}), Majority({1, 2, 3, 4, 5, 6}))
    assert q.voters == {1, 2, 3, 4, 5, 6} and q.observers == frozenset()
    assert not q.has_quorum({3, 4, 5, 6})  # a new quorum, one old voter
    assert not q.has_quorum({1, 2})  # an old quorum, two of six new
    assert q.has_quorum({1, 2, 4, 5})
    assert q.weight(6) == 0 and q.weight(1) == 1 and q.weight(9) == 0


def test_joint_quorums_intersect_every_old_and_new_quorum() -> None:
    """What makes a joint commit safe: it overlaps any later decision by either side."""
    old, new = Majority({1, 2, 3}), Majority({3, 4, 5})
    joint = Joint(old, new)
    sets = [set(c) for k in range(1, 6) for c in itertools.combinations(range(1, 6), k)]
    for j in (s for s in sets if joint.has_quorum(s)):
        for other in sets:
            if old.has_quorum(other) or new.has_quorum(other):
                assert j & other, (j, other)
    # By the configuration in force: one leaving may still be elected (to commit the change
    # and step down), one joining not yet.
    assert joint.weight(1) == 1 and joint.weight(4) == 0


def test_three_groups_of_three() -> None:
    """A majority of groups, each by a majority of its members."""
    q = Hierarchical(range(1, 10), (), {1: (1, 2, 3), 2: (4, 5, 6), 3: (7, 8, 9)}, {})
    assert q.has_quorum({1, 2, 4, 5})  # two groups, two of three in each
    assert not q.has_quorum({1, 2, 3, 4, 7})  # five of nine, but only one group won
    assert q.has_quorum({2, 3, 5, 6})  # four of nine servers, two groups
    assert not q.has_quorum(set())


def test_a_whole_group_down_still_leaves_a_quorum_of_groups() -> None:
    q = Hierarchical(range(1, 6), (), {1: (1, 2, 3), 2: (4,), 3: (5,)}, {})
    assert q.has_quorum({4, 5})  # two of five servers, two of three groups
    assert not q.has_quorum({1, 2, 3})  # three of five servers, one group
    assert q.has_quorum({1, 2, 4})
    assert not q.has_quorum({1, 4})


def test_weights_and_weight_zero() -> None:
    """Weights decide a group's majority; a member of weight 0 counts for nothing, and a group
    that weighs 0 is left out of the count of groups altogether."""
    q = Hierarchical(range(1, 7), (7,), {1: (1, 2, 3), 2: (4, 5), 3: (6,)}, {1: 2, 3: 0, 6: 0})
    assert q.weight(1) == 2 and q.weight(2) == 1 and q.weight(3) == 0 and q.weight(7) == 0
    # Groups that count: 1 (weight 3) and 2 (weight 2); group 3 weighs 0. Both are needed.
    assert q.has_quorum({1, 4, 5})
    assert not q.has_quorum({2, 3, 4, 5, 6})  # 2 and 3 hold 1 of group 1's 3
    assert not q.has_quorum({1, 4, 6, 7})  # half of group 2 is no majority
    assert q.has_quorum({1, 2, 4, 5}) and not q.has_quorum({1, 2, 3, 6, 7})


def test_two_quorums_always_intersect_in_a_server_that_weighs() -> None:
    """The property ZAB needs of any verifier, exhaustively for a small weighted layout."""
    q = Hierarchical(range(1, 7), (), {1: (1, 2, 3), 2: (4, 5), 3: (6,)}, {1: 2, 3: 0})
    sids = range(1, 7)
    quorums = [set(c) for k in range(1, 7) for c in itertools.combinations(sids, k)
               if q.has_quorum(set(c))]
    assert quorums
    for a, b in itertools.combinations(quorums, 2):
        assert any(q.weight(s) > 0 for s in a & b), (a, b)


@pytest.mark.parametrize("groups,weights,message", [
    ({1: (1, 2), 2: (2, 3)}, {}, "groups 1 and 2"),
    ({1: (1, 2)}, {}, r"\[3\] are in no group"),
    ({1: (1, 2, 3, 9)}, {}, "not a participant"),
    ({1: (1, 2, 3)}, {1: -1}, "negative"),
    ({1: (1, 2, 3)}, {1: 0, 2: 0, 3: 0}, "weighs 0"),
])
def test_bad_hierarchies(groups, weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        Hierarchical({1, 2, 3}, (), groups, weights)


def test_verifier_picks_hierarchical_when_groups_or_weights_are_set() -> None:
    assert isinstance(verifier({1, 2, 3}), Majority)
    assert isinstance(verifier({1, 2, 3}, (), {1: (1, 2, 3)}), Hierarchical)
    with pytest.raises(ValueError, match="in no group"):
        verifier({1, 2, 3}, (), {}, {1: 1})  # weights alone: every voter still needs a group


def test_election_never_backs_a_voter_of_weight_zero() -> None:
    """Server 4 has the newest history but weighs 0: the others never adopt its vote (as in
    ZooKeeper's totalOrderPredicate) and elect among themselves. 4 proposes the null vote, as
    a server that may not lead does, so it adopts their choice and follows it (holding out for
    itself, it stayed looking for ever)."""
    from zkserver.quorum.election import Election
    from zkserver.quorum.messages import Vote

    q = Hierarchical({1, 2, 3, 4}, (), {1: (1, 2, 3, 4)}, {4: 0})
    elections = {sid: Election(sid, q) for sid in q.voters}
    for sid, e in elections.items():
        e.start(Vote(1, 0x100000005 if sid == 4 else 0x100000003, sid), 0)
    decided = {}
    now = 0
    for _ in range(50):
        now += 50
        for sid, e in elections.items():
            for to, n in e.take_messages():
                winner = elections[to].receive(n, now)
                if winner is not None:
                    decided[to] = winner.leader
            winner = e.tick(now)
            if winner is not None:
                decided[sid] = winner.leader
            assert sid == 4 or e.proposal is None or e.proposal.leader != 4
    assert decided == {1: 3, 2: 3, 3: 3, 4: 3}
