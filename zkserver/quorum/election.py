"""Fast leader election (ZooKeeper's FastLeaderElection), as a plain object.

A looking server votes for the best server it knows of, ordered by (epoch, last zxid, id),
tells every voter, and adopts any better vote it hears in the same election round. Once a
quorum of voters back its current proposal, it waits `finalize_wait` for a better vote and then
decides. A server that joins late learns the leader from the votes of servers already following
or leading it. Observers never vote; they only learn who leads. A voter of weight 0
(hierarchical quorums) votes but nobody adopts a vote for it, so it never leads.

No clock, no sockets: time comes in as `now` (ms, monotonic), and the notifications to send
collect in `outbox` for the owner to take (`take_messages`). Lost notifications are re-sent on
`tick` while the election runs.
"""

from __future__ import annotations

from zkserver.quorum.messages import Notification, Vote
from zkserver.quorum.quorum import QuorumVerifier
from zkserver.quorum.roles import Role

RESEND_MS = 400
# What a server that may not lead proposes first (ZooKeeper's Long.MIN_VALUE vote): any vote
# for a voter beats it, so it adopts the others' choice, and voters who count it as a voter of
# another configuration (a reconfiguration in flight) hear it back.
NULL_VOTE = Vote(-1, -1, -1)


class Election:
    def __init__(self, sid: int, quorum: QuorumVerifier, finalize_wait: int = 200) -> None:
        self.sid = sid
        self.quorum = quorum
        self.observer = sid not in quorum.voters
        self.finalize_wait = finalize_wait
        self.clock = 0  # the election round ("logical clock")
        self.own: Vote | None = None
        self.proposal: Vote | None = None
        self.recv: dict[int, Vote] = {}
        self.out: dict[int, tuple[Vote, Role, int]] = {}  # sid -> (vote, state, election epoch)
        self.decide_at: int | None = None
        self.next_resend = 0
        self.running = False
        self.outbox: list[tuple[int, Notification]] = []
        self.config = b""  # sent with our notifications (see `use`)
        self.committed = b""  # likewise

    def use(self, quorum: QuorumVerifier, config: bytes = b"",
            committed: bytes | None = None) -> None:
        """Count by `quorum` (a reconfiguration seen or committed), and tell the others of
        `config`, the newest configuration we know of that is not in force yet (if any), and
        of `committed`, the one in force (if given)."""
        self.quorum = quorum
        self.observer = self.sid not in quorum.voters
        self.config = config
        if committed is not None:
            self.committed = committed
        if self.running and self.proposal is not None and self.proposal != NULL_VOTE \
                and quorum.weight(self.proposal.leader) == 0:
            # The server we back may not lead by this count (a reconfiguration heard of
            # removes it): back ourselves again, and say so at the next tick. Holding on to
            # it, we would never adopt a vote below it, and those counting as we now do would
            # never adopt it: the election could split for ever.
            self.proposal = self._initial()
            self.recv[self.sid] = self.proposal
            self.decide_at = None
            self.next_resend = 0

    def take_messages(self) -> list[tuple[int, Notification]]:
        out, self.outbox = self.outbox, []
        return out

    def start(self, own: Vote, now: int) -> None:
        self.clock += 1
        self.own = own
        self.proposal = self._initial()
        self.recv = {self.sid: self.proposal}
        self.out = {}
        self.decide_at = None
        self.running = True
        if self.quorum.has_quorum({self.sid}):
            self.decide_at = now + self.finalize_wait  # a quorum alone: no one to hear
        self._broadcast(now)

    def _current(self) -> Vote:
        vote = self.proposal or self.own
        assert vote is not None
        return vote

    def _broadcast(self, now: int) -> None:
        n = self._notification(self._current(), Role.LOOKING)
        for sid in sorted(self.quorum.voters):
            if sid != self.sid:
                self.outbox.append((sid, n))
        self.next_resend = now + RESEND_MS

    def _agreeing(self, vote: Vote, votes: dict[int, Vote]) -> set[int]:
        return {sid for sid, v in votes.items() if v == vote}

    def receive(self, n: Notification, now: int) -> Vote | None:
        """A notification while looking. Returns the winning vote once decided."""
        if not self.running:
            return None
        voters = self.quorum.voters
        if n.state == Role.LOOKING:
            # (A vote for no voter, such as the null vote of a server that may not lead,
            # still tells its round: a server behind it must catch up, or the two answer
            # each other's rounds for ever. It is never adopted, nor counted.)
            if n.sid not in voters:
                return None
            if n.election_epoch > self.clock:
                self.clock = n.election_epoch
                self.recv = {}
                best = n.vote if self._better(n.vote, self._initial()) else self._initial()
                self.proposal = best
                self.recv[self.sid] = best
                self.decide_at = None
                self._broadcast(now)
            elif n.election_epoch < self.clock:
                # A server behind us: tell it our round, so it catches up.
                self.outbox.append((n.sid, self._notification(self._current(), Role.LOOKING)))
                return None
            elif self.proposal is not None and self._better(n.vote, self.proposal):
                self.proposal = n.vote
                self.recv[self.sid] = n.vote
                self.decide_at = None
                self._broadcast(now)
            elif self.proposal is not None and n.vote < self.proposal:
                # It may have missed our vote (it reached it while it still followed the old
                # leader): tell it now rather than at the next resend, so it can adopt it.
                self.outbox.append((n.sid, self._notification(self.proposal, Role.LOOKING)))
            if n.vote.leader in voters:
                self.recv[n.sid] = n.vote
            else:
                self.recv.pop(n.sid, None)  # backs no one: agrees with no proposal
            if self.proposal is not None and self.quorum.has_quorum(
                    self._agreeing(self.proposal, self.recv)):
                if self.decide_at is None:
                    self.decide_at = now + self.finalize_wait
            return self._maybe_decide(now)
        # The sender already follows or leads: an established ensemble we may join.
        if n.sid not in voters and n.state != Role.LEADING:
            return None
        self.out[n.sid] = (n.vote, n.state, n.election_epoch)
        if n.election_epoch == self.clock and not self.observer:
            self.recv[n.sid] = n.vote
            if self.quorum.has_quorum(self._agreeing(n.vote, self.recv)) \
                    and self._leader_ok(n.vote):
                return self._decide(n.vote)
        # Established servers agree on who leads and in which epoch, not on their zxids.
        backers = {sid for sid, (v, _, _) in self.out.items()
                   if v.leader == n.vote.leader and v.peer_epoch == n.vote.peer_epoch}
        if not self.observer:
            backers.add(self.sid)
        if self.quorum.has_quorum(backers) and self._leader_ok(n.vote):
            self.clock = n.election_epoch
            return self._decide(n.vote)
        return None

    def _better(self, vote: Vote, than: Vote) -> bool:
        """ZooKeeper's totalOrderPredicate: higher (epoch, zxid, id), and a leader that weighs."""
        return vote > than and self.quorum.weight(vote.leader) > 0

    def _initial(self) -> Vote:
        """Our own vote, or the null vote if we may not lead: an observer, a server the
        configuration no longer or not yet names (ZooKeeper's getInitId), and also a voter of
        weight 0 (hierarchical quorums). Such a voter adopting a
        vote below its own history is safe: nothing can be committed on its acknowledgement
        alone, and every quorum holds voters that weigh, which never agree to less than they
        have. Holding out for its own vote instead, which nobody adopts, could stall an
        election that needs it (shrinking 4 voters to 2 needs 3 of the old 4)."""
        assert self.own is not None
        return NULL_VOTE if self.quorum.weight(self.sid) == 0 else self.own

    def _leader_ok(self, vote: Vote) -> bool:
        """ZooKeeper's checkLeader: someone must actually be leading, or it is us, if we may
        lead (a leader that a reconfiguration it committed removed steps down; those still
        following it say it leads until they commit it too, which must not elect it again)."""
        if vote.leader == self.sid:
            return self.quorum.weight(self.sid) > 0
        seen = self.out.get(vote.leader)
        return seen is not None and seen[1] == Role.LEADING

    def _maybe_decide(self, now: int) -> Vote | None:
        if self.decide_at is not None and now >= self.decide_at and self.proposal is not None:
            if self.quorum.has_quorum(self._agreeing(self.proposal, self.recv)):
                return self._decide(self.proposal)
            self.decide_at = None
        return None

    def _decide(self, vote: Vote) -> Vote:
        self.running = False
        self.proposal = vote
        return vote

    def tick(self, now: int) -> Vote | None:
        if not self.running:
            return None
        decided = self._maybe_decide(now)
        if decided is not None:
            return decided
        if now >= self.next_resend:
            self._broadcast(now)
        return None

    def answer(self, n: Notification, state: Role, vote: Vote) -> None:
        """We are not looking: tell a looking server who we follow (or that we lead)."""
        if n.state == Role.LOOKING:
            self.outbox.append((n.sid, self._notification(vote, state)))

    def _notification(self, vote: Vote, state: Role) -> Notification:
        return Notification(vote, self.clock, state, self.sid, self.config, self.committed)
