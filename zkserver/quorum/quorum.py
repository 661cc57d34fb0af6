"""Who counts towards a quorum.

Election and broadcast ask one question — do these servers make a quorum? — through a
`QuorumVerifier`, so the rule can change without touching either: a simple majority of the
voters (`Majority`), ZooKeeper's hierarchical quorums (`Hierarchical`: a majority of groups,
each by a weighted majority of its members), and later a dynamic reconfiguration's joint
configuration (a quorum of the old voters AND of the new) are verifiers with the same members.

`weight` exists for one rule of fast leader election: a voter of weight 0 may vote but is
never elected, because a leader whose own acknowledgement counts for nothing could not
commit anything with fewer servers than the others need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Protocol


class QuorumVerifier(Protocol):
    @property
    def voters(self) -> frozenset[int]:
        """Servers that vote in elections and acknowledge proposals (ZooKeeper's participants,
        weight 0 included: they take part but count for nothing)."""

    @property
    def observers(self) -> frozenset[int]:
        """Servers that learn the history but never count towards a quorum."""

    def has_quorum(self, sids: Set[int]) -> bool:
        """Whether the servers in `sids` (others ignored) are enough to decide."""

    def weight(self, sid: int) -> int:
        """What a server's vote counts for; 0: it may never lead."""


class Majority:
    """More than half of the voters (ZooKeeper's QuorumMaj)."""

    __slots__ = ("voters", "observers", "_half")

    def __init__(self, voters: Iterable[int], observers: Iterable[int] = ()) -> None:
        self.voters = frozenset(voters)
        self.observers = frozenset(observers)
        if self.voters & self.observers:
            raise ValueError("a server cannot both vote and observe")
        self._half = len(self.voters) // 2

    def has_quorum(self, sids: Set[int]) -> bool:
        return len(self.voters.intersection(sids)) > self._half

    def weight(self, sid: int) -> int:
        return 1 if sid in self.voters else 0

    def __repr__(self) -> str:
        return f"Majority(voters={sorted(self.voters)}, observers={sorted(self.observers)})"


class Hierarchical:
    """ZooKeeper's QuorumHierarchical: servers in groups, each server with a weight.

    A set is a quorum when it holds more than half the weight of more than half of the groups
    that weigh anything: groups whose members all weigh 0 neither count nor help. So with
    groups {1,2,3}, {4}, {5}, servers 4 and 5 alone are a quorum (two of three groups), while
    1, 2 and 3 together are not.
    """

    __slots__ = ("voters", "observers", "groups", "_group_of", "_weights", "_group_weight",
                 "_needed")

    def __init__(self, voters: Iterable[int], observers: Iterable[int],
                 groups: Mapping[int, Iterable[int]], weights: Mapping[int, int]) -> None:
        self.voters = frozenset(voters)
        self.observers = frozenset(observers)
        if self.voters & self.observers:
            raise ValueError("a server cannot both vote and observe")
        self.groups = {gid: frozenset(members) for gid, members in groups.items()}
        self._group_of: dict[int, int] = {}
        for gid, members in sorted(self.groups.items()):
            for sid in members:
                if sid in self._group_of:
                    raise ValueError(f"server {sid} is in groups {self._group_of[sid]} and {gid}")
                if sid not in self.voters:
                    raise ValueError(f"group {gid} names server {sid}, which is not a participant")
                self._group_of[sid] = gid
        missing = sorted(self.voters - self._group_of.keys())
        if missing:
            raise ValueError(f"participant(s) {missing} are in no group")
        if any(w < 0 for w in weights.values()):
            raise ValueError("a weight cannot be negative")
        self._weights = {sid: weights.get(sid, 1) for sid in self.voters}
        self._group_weight = {gid: sum(self._weights[s] for s in members)
                              for gid, members in self.groups.items()}
        counted = sum(1 for w in self._group_weight.values() if w > 0)
        if counted == 0:
            raise ValueError("every group weighs 0: no set of servers could be a quorum")
        self._needed = counted // 2 + 1

    def weight(self, sid: int) -> int:
        return self._weights.get(sid, 0)

    def has_quorum(self, sids: Set[int]) -> bool:
        held: dict[int, int] = {}
        for sid in sids:
            gid = self._group_of.get(sid)
            if gid is not None:
                held[gid] = held.get(gid, 0) + self._weights[sid]
        won = sum(1 for gid, w in held.items() if w > self._group_weight[gid] // 2)
        return won >= self._needed

    def __repr__(self) -> str:
        groups = {gid: sorted(m) for gid, m in sorted(self.groups.items())}
        weights = {sid: w for sid, w in sorted(self._weights.items()) if w != 1}
        return (f"Hierarchical(groups={groups}, weights={weights}, "
                f"observers={sorted(self.observers)})")


class Joint:
    """A reconfiguration in flight: a set decides only if it is a quorum of the old
    configuration AND of the new one (ZooKeeper's Proposal.hasAllQuorums), so whichever of the
    two later decides, it overlaps every set that decided meanwhile.

    Every member of either configuration learns the history; a server votes if either
    configuration makes it a voter, and weighs what it weighs in the old one, as ZooKeeper
    weighs by the configuration in force: a leader that proposed its own removal and was cut
    off may be the only server holding what the old quorum committed, so it must be able to
    lead again, commit the reconfiguration, and step down (it does, on committing it)."""

    __slots__ = ("old", "new", "voters", "observers")

    def __init__(self, old: QuorumVerifier, new: QuorumVerifier) -> None:
        self.old = old
        self.new = new
        self.voters = old.voters | new.voters
        self.observers = (old.observers | new.observers) - self.voters

    def has_quorum(self, sids: Set[int]) -> bool:
        return self.old.has_quorum(sids) and self.new.has_quorum(sids)

    def weight(self, sid: int) -> int:
        return self.old.weight(sid)

    def __repr__(self) -> str:
        return f"Joint(old={self.old!r}, new={self.new!r})"


def verifier(voters: Iterable[int], observers: Iterable[int] = (),
             groups: Mapping[int, Iterable[int]] | None = None,
             weights: Mapping[int, int] | None = None) -> QuorumVerifier:
    """ZooKeeper's choice: hierarchical as soon as the configuration has any group or weight."""
    if groups or weights:
        return Hierarchical(voters, observers, groups or {}, weights or {})
    return Majority(voters, observers)
