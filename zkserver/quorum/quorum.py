"""Who counts towards a quorum.

Election and broadcast ask one question — do these servers make a quorum? — through a
`QuorumVerifier`, so the rule can change without touching either: today a simple majority of
the voters; a dynamic reconfiguration's joint configuration (a quorum of the old voters AND of
the new) or ZooKeeper's hierarchical quorums (a majority of groups, each a weighted majority)
are other verifiers with the same three members.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from typing import Protocol


class QuorumVerifier(Protocol):
    @property
    def voters(self) -> frozenset[int]:
        """Servers that vote in elections and acknowledge proposals."""

    @property
    def observers(self) -> frozenset[int]:
        """Servers that learn the history but never count towards a quorum."""

    def has_quorum(self, sids: Set[int]) -> bool:
        """Whether the servers in `sids` (others ignored) are enough to decide."""


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

    def __repr__(self) -> str:
        return f"Majority(voters={sorted(self.voters)}, observers={sorted(self.observers)})"
