"""Thrifty broadcast: a leader sends each proposal at once only to the followers its quorum
needs, and to the others (spares) in batches: with the first COMMIT at least `delay_ms` after
the first proposal held, at twice that at the latest.

Why: with every follower sent every proposal, each one woke up for each write (the PROPOSAL,
its log write, the COMMIT), and on a machine with fewer cores than servers the spare's work
landed on the cores the write's own path needed. Measured with three servers on the 2-core
machine, sequential writes through a follower: with the spare stopped (SIGSTOP) the p50 fell
from 0.99 to 0.66 ms; taking away its log writes, its ACKs or its COMMITs one at a time, or
lowering its priority, changed nothing; sending it proposals three at a time took 0.89 to
0.70 ms (8 of 8 alternating pairs). The same idea is Paxos's "thrifty" optimisation.

Which followers are needed is decided per proposal (`Peer._spares`): the leader, every
follower whose clients wait for the write (it forwarded one), every follower that forwarded a
write in the last half tick (it has clients, and their reads should not lag: a test that
wrote through one follower and read through another, without `sync`, saw the lag), then
others in the leader's order until they make a quorum; everyone else is a spare. Nothing is
spared while a reconfiguration is in flight (its joint quorums are counted over everyone).

Why it is safe: ZAB commits on a quorum's durable acknowledgements, whoever gives them, and a
spare still gets every proposal in order, before any COMMIT that covers it and before any other
message the leader sends it (a ping, the answer to its `sync`), so what it serves changes only
in when (its clients' reads may lag the leader by up to twice `delay_ms`, as reads through any
follower may lag in ZooKeeper). Liveness: if the followers picked stop acknowledging (one
crashed), the spares' proposals leave at their deadline all the same, and for a while after
that the leader sends everything to everyone (`suspend`).

A plain object, like the `Peer` that owns it: no clock (times are the `now` it is given).
"""

from __future__ import annotations

from zkserver.quorum.messages import Commit
from zkserver.txn import Txn

# After a stall, how many delays the leader sends everything to everyone: a crashed follower
# among those picked then costs one write in this many delays a wait of two delays, and a
# passing hiccup (a slow sync) costs the saving for as long.
SUSPEND = 25


class Thrifty:
    """What a leader holds back for its spare followers, and until when."""

    __slots__ = ("delay_ms", "held", "since", "commits", "suspended_until", "progress_at")

    def __init__(self, delay_ms: int) -> None:
        self.delay_ms = delay_ms  # 0: every proposal goes to every follower at once
        self.held: dict[int, list[Txn]] = {}  # spare -> proposals not sent yet, in order
        self.since: dict[int, int] = {}  # spare -> when the first of them was held
        self.commits: dict[int, Commit] = {}  # spare -> the newest COMMIT held for it
        self.suspended_until = 0  # no spares before this (the quorum picked was too slow)
        self.progress_at = 0  # the last commit, or a proposal when none was outstanding

    def active(self, now: int) -> bool:
        """Whether proposals may be held back now."""
        return self.delay_ms > 0 and now >= self.suspended_until

    def hold(self, sid: int, txns: list[Txn], now: int) -> None:
        """Keep `txns` for spare `sid`, after what it holds already."""
        held = self.held.get(sid)
        if held is None:
            self.held[sid] = list(txns)
            self.since[sid] = now
        else:
            held += txns

    def hold_commit(self, sid: int, commit: Commit) -> None:
        """The newest COMMIT for a spare that holds proposals (one covers all before it)."""
        self.commits[sid] = commit

    def release(self, sid: int) -> tuple[list[Txn], Commit | None]:
        """What `sid` holds, in the order it goes out: its proposals, then the COMMIT."""
        self.since.pop(sid, None)
        return self.held.pop(sid, []), self.commits.pop(sid, None)

    def ripe(self, sid: int, now: int) -> bool:
        """Whether what `sid` holds may go with a COMMIT: it waited `delay_ms`."""
        return self.since[sid] + self.delay_ms <= now

    def deadline(self) -> int | None:
        """When the oldest held proposal must leave, COMMIT or not (None: nothing held)."""
        return min(self.since.values()) + 2 * self.delay_ms if self.since else None

    def due(self, now: int) -> list[int]:
        """The spares whose proposals must leave by `now`."""
        return [sid for sid, at in self.since.items() if at + 2 * self.delay_ms <= now]

    def progressed(self, now: int) -> None:
        """Something committed at `now`, or a proposal went out with none outstanding."""
        self.progress_at = now

    def stalled(self, now: int) -> bool:
        """Whether nothing committed for `delay_ms` although proposals are outstanding (the
        caller knows that): the followers picked are not keeping up."""
        return now - self.progress_at >= self.delay_ms

    def suspend(self, now: int) -> None:
        """Hold nothing back for `SUSPEND` delays from `now`."""
        self.suspended_until = now + SUSPEND * self.delay_ms

    def forget(self, sid: int) -> None:
        """`sid` is no longer a learner: what it held goes nowhere."""
        self.release(sid)

    def clear(self) -> None:
        """Leadership ended: nothing is held for anyone."""
        self.held.clear()
        self.since.clear()
        self.commits.clear()
        self.suspended_until = 0
