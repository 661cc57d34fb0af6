"""One server of a ZAB ensemble as a plain state machine: election, discovery, synchronisation
and broadcast, with no sockets, no clock and no disk.

Inputs: `start`, `receive(sid, msg)`, `disconnected(sid)`, `tick(now)`, `logged(zxid)` (the
transactions up to `zxid` are durable), `propose(txn)` (the leader's own writes). Outputs:
`actions`, a list the driver executes in order:

* `Send(to, msg)`: a message to another server (election or quorum channel, by type);
* `Persist(accepted_epoch, current_epoch)`: durably, before anything after it is sent;
* `Log(txns)`, `Truncate(zxid)`, `Install(zxid, state)`: the log, in one ordered stream;
  `Log` is answered by `logged(zxid)` once durable; `Truncate` and `Install` also reset the
  state machine to that point (they happen only while synchronising with a new leader);
* `Disconnect(sid)`: drop the quorum connection to a server (a leader that abdicates drops all
  its learners, so they look for a new leader at once instead of timing out);
* `Become(role, leader, epoch)`: now serving (or not) in this role;
* `Deliver(sid, msg)`: a message for the server around the core (a forwarded client write, a
  sync, session touches).

Committed transactions go to the state machine (`StateMachine.apply`) in zxid order, on every
server, exactly once per state the machine has.

The protocol is ZooKeeper's: a new leader takes an epoch above every accepted epoch of a quorum
(discovery), brings each follower to its history by DIFF, TRUNC or SNAP (synchronisation), and
is established once a quorum acknowledges NEWLEADER; then it proposes, commits on a quorum of
durable acknowledgements, and tells observers with INFORM (broadcast). zxid = epoch << 32 |
counter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import attrs

from zkserver.quorum.election import Election
from zkserver.quorum.messages import (
    FOLLOWING,
    LEADING,
    LOOKING,
    OBSERVING,
    Ack,
    AckEpoch,
    AckNewLeader,
    Commit,
    Diff,
    FollowerInfo,
    Inform,
    LeaderInfo,
    NewLeader,
    Notification,
    Ping,
    PingReply,
    Proposal,
    Proposals,
    Request,
    Snap,
    SyncReply,
    SyncRequest,
    Trunc,
    UpToDate,
    Vote,
)
from zkserver.txn import Txn

COUNTER_MASK = 0xFFFFFFFF


def epoch_of(zxid: int) -> int:
    return zxid >> 32


class StateMachine(Protocol):
    def apply(self, txn: Txn) -> int: ...  # returns the state digest after it
    def digest(self) -> int: ...
    def snapshot(self) -> tuple[int, bytes]: ...


@attrs.frozen
class Send:
    to: int
    msg: Any


@attrs.frozen
class Persist:
    accepted_epoch: int
    current_epoch: int


@attrs.frozen
class Log:
    txns: tuple[Txn, ...]


@attrs.frozen
class Truncate:
    zxid: int


@attrs.frozen
class Install:
    zxid: int
    state: bytes


@attrs.frozen
class Disconnect:
    """Close the quorum connection to `sid` (the other end learns of it, as with TCP)."""

    sid: int


@attrs.frozen
class Become:
    role: int
    leader: int | None
    epoch: int


@attrs.frozen
class Deliver:
    sid: int
    msg: Any


class DigestMismatch(Exception):
    """This replica's state differs from the leader's after the same transaction."""


class Learner:
    """What a leader knows of one follower or observer."""

    __slots__ = ("sid", "observer", "stage", "last_heard", "accepted_epoch", "last_zxid")

    def __init__(self, sid: int, observer: bool, now: int) -> None:
        self.sid = sid
        self.observer = observer
        self.stage = "info"  # info -> epoch -> synced (NEWLEADER sent) -> acked (AckNewLeader)
        self.last_heard = now
        self.accepted_epoch = -1
        self.last_zxid = 0


class Peer:
    def __init__(self, sid: int, voters: Iterable[int], observers: Iterable[int], *,
                 sm: StateMachine, tick_ms: int = 2000, init_limit: int = 10,
                 sync_limit: int = 5, accepted_epoch: int = 0, current_epoch: int = 0,
                 history: Iterable[Txn] = (), base_zxid: int = 0,
                 history_limit: int = 100_000) -> None:
        self.sid = sid
        self.voters = frozenset(voters)
        self.observers = frozenset(observers)
        self.is_observer = sid in self.observers
        self.sm = sm
        self.tick_ms = tick_ms
        self.init_limit = init_limit
        self.sync_limit = sync_limit
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.history: list[Txn] = list(history)
        self._base_zxid = base_zxid  # the state machine's zxid before `history` begins
        self.history_limit = history_limit
        self.logged_zxid = self.last_zxid  # what recovery found is durable
        self.applied_zxid = self.last_zxid  # recovery replayed the whole log
        self.commit_zxid = 0
        self.actions: list[Any] = []
        self.role = LOOKING
        self.leader: int | None = None
        self.epoch = 0
        self.election = Election(sid, self.voters, self.is_observer, self._send_election)
        self.decided: Vote | None = None
        self.now = 0
        # leader
        self.learners: dict[int, Learner] = {}
        self.established = False
        self.new_epoch = 0
        self.epoch_acks: set[int] = set()
        self.newleader_acks: set[int] = set()
        self.acks: dict[int, set[int]] = {}  # outstanding proposal zxid -> acked by
        self.proposed_zxid = 0
        self.phase_deadline = 0
        self.pending_syncs: list[tuple[int, int, int]] = []  # (zxid needed, sid, token)
        # learner
        self.leader_heard = 0
        self.stage = ""
        self.newleader: NewLeader | None = None
        self.acked_zxid = 0
        self.sync_commit = 0

    # -- helpers ------------------------------------------------------------------------------

    @property
    def last_zxid(self) -> int:
        return self.history[-1].zxid if self.history else self._base_zxid

    def quorum(self, sids: set[int]) -> bool:
        return len(sids & self.voters) * 2 > len(self.voters)

    def _send(self, to: int, msg: Any) -> None:
        self.actions.append(Send(to, msg))

    def _send_election(self, to: int, n: Notification) -> None:
        self._send(to, n)

    def _vote(self) -> Vote:
        return Vote(self.current_epoch, self.last_zxid, self.sid)

    def _persist(self) -> None:
        self.actions.append(Persist(self.accepted_epoch, self.current_epoch))

    def _append(self, txns: list[Txn]) -> None:
        if not txns:
            return
        self.history.extend(txns)
        if len(self.history) > self.history_limit:
            drop = len(self.history) - self.history_limit
            self._base_zxid = self.history[drop - 1].zxid
            del self.history[:drop]
        self.actions.append(Log(tuple(txns)))

    def _apply_upto(self, zxid: int) -> None:
        """Apply every logged transaction up to `zxid` not yet in the state machine."""
        for txn in self._after(self.applied_zxid):
            if txn.zxid > zxid:
                break
            self.sm.apply(txn)
            self.applied_zxid = txn.zxid

    def _after(self, zxid: int) -> list[Txn]:
        """Logged transactions with a zxid above `zxid`, in order."""
        h = self.history
        lo, hi = 0, len(h)
        while lo < hi:
            mid = (lo + hi) // 2
            if h[mid].zxid <= zxid:
                lo = mid + 1
            else:
                hi = mid
        return h[lo:]

    def _has(self, zxid: int) -> bool:
        if zxid == self._base_zxid:
            return True
        h = self._after(zxid - 1)
        return bool(h) and h[0].zxid == zxid

    # -- inputs -------------------------------------------------------------------------------

    def start(self, now: int) -> None:
        self.now = now
        self._look(now)

    def _look(self, now: int) -> None:
        was = self.role
        if was == LEADING:
            for sid in self.learners:
                self.actions.append(Disconnect(sid))
        elif was in (FOLLOWING, OBSERVING) and self.leader is not None:
            self.actions.append(Disconnect(self.leader))
        self.role = LOOKING
        self.leader = None
        self.established = False
        self.learners = {}
        self.acks = {}
        self.pending_syncs = []
        self.newleader = None
        self.stage = ""
        self.decided = None
        if was != LOOKING:
            self.actions.append(Become(LOOKING, None, self.epoch))
        self.election.start(self._vote(), now)

    def tick(self, now: int) -> None:
        self.now = now
        if self.role == LOOKING:
            vote = self.election.tick(now)
            if vote is not None:
                self._decided(vote, now)
        elif self.role == LEADING:
            self._leader_tick(now)
        else:
            self._learner_tick(now)

    def disconnected(self, sid: int) -> None:
        if self.role == LEADING and sid in self.learners:
            del self.learners[sid]
            self._check_leader_quorum()
        elif self.role in (FOLLOWING, OBSERVING) and sid == self.leader:
            self._look(self.now)

    def receive(self, frm: int, msg: Any, now: int) -> None:
        self.now = now
        if isinstance(msg, Notification):
            self._notification(msg, now)
        elif self.role == LEADING:
            self._leader_receive(frm, msg, now)
        elif self.role in (FOLLOWING, OBSERVING) and frm == self.leader:
            self.leader_heard = now
            self._learner_receive(msg, now)

    def logged(self, zxid: int) -> None:
        """Transactions up to `zxid` are durable on this server."""
        if zxid <= self.logged_zxid:
            return
        self.logged_zxid = min(zxid, self.last_zxid)
        if self.role == LEADING:
            for z, ackers in self.acks.items():
                if z <= self.logged_zxid:
                    ackers.add(self.sid)
            self._try_commit()
        elif self.role in (FOLLOWING, OBSERVING):
            self._learner_logged()

    # -- election -----------------------------------------------------------------------------

    def _notification(self, n: Notification, now: int) -> None:
        if self.role == LOOKING:
            vote = self.election.receive(n, now)
            if vote is not None:
                self._decided(vote, now)
        elif not self.is_observer and self.decided is not None:
            self.election.answer(n, self.role, self.decided)

    def _decided(self, vote: Vote, now: int) -> None:
        self.decided = vote
        self.leader = vote.leader
        if vote.leader == self.sid:
            self._lead(now)
        else:
            self.role = OBSERVING if self.is_observer else FOLLOWING
            self.stage = "info"
            self.leader_heard = now
            self.phase_deadline = now + self.init_limit * self.tick_ms
            self._send(vote.leader, FollowerInfo(self.sid, self.accepted_epoch, self.last_zxid,
                                                 self.is_observer))

    # -- leader -------------------------------------------------------------------------------

    def _lead(self, now: int) -> None:
        self.role = LEADING
        self.learners = {}
        self.established = False
        self.epoch_acks = {self.sid}
        self.newleader_acks = set()
        self.acks = {}
        self.new_epoch = 0
        self.phase_deadline = now + self.init_limit * self.tick_ms
        self._epoch_infos: dict[int, int] = {self.sid: self.accepted_epoch}

    def _leader_receive(self, frm: int, msg: Any, now: int) -> None:
        learner = self.learners.get(frm)
        if isinstance(msg, FollowerInfo):
            if frm not in self.voters and frm not in self.observers:
                return
            learner = Learner(frm, msg.observer, now)
            learner.accepted_epoch = msg.accepted_epoch
            learner.last_zxid = msg.last_zxid
            self.learners[frm] = learner
            if self.new_epoch:
                self._send(frm, LeaderInfo(self.new_epoch))
                learner.stage = "epoch"
                return
            if not msg.observer:
                self._epoch_infos[frm] = msg.accepted_epoch
            if self.quorum(set(self._epoch_infos)):
                self.new_epoch = max(self._epoch_infos.values()) + 1
                self.accepted_epoch = self.new_epoch
                self._persist()
                for lrn in self.learners.values():
                    self._send(lrn.sid, LeaderInfo(self.new_epoch))
                    lrn.stage = "epoch"
            return
        if learner is None:
            return
        learner.last_heard = now
        if isinstance(msg, AckEpoch):
            if learner.stage != "epoch":
                return
            if (msg.current_epoch, msg.last_zxid) > (self.current_epoch, self.last_zxid) \
                    and not learner.observer:
                self._look(now)  # a follower knows more than we do: elect again
                return
            learner.last_zxid = msg.last_zxid
            if not learner.observer:
                self.epoch_acks.add(frm)
            if self.established:
                self._sync_learner(learner)
            elif self.quorum(self.epoch_acks):
                for lrn in list(self.learners.values()):
                    if lrn.stage == "epoch" and (lrn.observer or lrn.sid in self.epoch_acks):
                        self._sync_learner(lrn)
                self.newleader_acks.add(self.sid)  # our own history is logged already
        elif isinstance(msg, AckNewLeader):
            if learner.stage != "synced" or msg.epoch != self.new_epoch:
                return
            learner.stage = "acked"
            if self.established:
                self._send(frm, UpToDate(self.commit_zxid))
                return
            if not learner.observer:
                self.newleader_acks.add(frm)
            if self.quorum(self.newleader_acks) and self.logged_zxid >= self.last_zxid:
                self._establish(now)
        elif isinstance(msg, Ack):
            # Acks are cumulative: the follower has logged every proposal up to this one.
            if learner.observer:
                return
            for zxid, ackers in self.acks.items():
                if zxid > msg.zxid:
                    break
                ackers.add(frm)
            self._try_commit()
        elif isinstance(msg, PingReply):
            self.actions.append(Deliver(frm, msg))
        elif isinstance(msg, SyncRequest):
            self.pending_syncs.append((self._sync_point(), frm, msg.token))
            self._answer_syncs()
        elif isinstance(msg, Request):
            self.actions.append(Deliver(frm, msg))

    def _sync_learner(self, learner: Learner) -> None:
        """DIFF, TRUNC+DIFF or SNAP to bring a learner to our history, then NEWLEADER."""
        peer_zxid = learner.last_zxid
        limit = self.commit_zxid if self.established else self.last_zxid
        if peer_zxid == limit:
            self._send(learner.sid, Diff(()))
        elif self._has(peer_zxid) and peer_zxid < limit:
            self._send(learner.sid, Diff(tuple(t for t in self._after(peer_zxid)
                                               if t.zxid <= limit)))
        elif peer_zxid > limit or (self.history and peer_zxid >= self.history[0].zxid):
            # The learner has transactions we don't: cut back to the last one we share.
            common = self._last_common(peer_zxid)
            if common is not None:
                self._send(learner.sid, Trunc(common))
                self._send(learner.sid, Diff(tuple(t for t in self._after(common)
                                                   if t.zxid <= limit)))
            else:
                self._send_snap(learner)
        else:
            self._send_snap(learner)
        if self.established:
            for txn in self._after(limit):  # proposals still in flight
                self._send(learner.sid, Proposal(txn))
        self._send(learner.sid, NewLeader(self.new_epoch, self.last_zxid))
        learner.stage = "synced"

    def _last_common(self, peer_zxid: int) -> int | None:
        """The highest zxid we hold at or below the learner's, if our memory reaches it."""
        cands = [t.zxid for t in self.history if t.zxid <= peer_zxid]
        if cands:
            return cands[-1]
        if peer_zxid >= self._base_zxid and self._base_zxid == 0:
            return 0
        return None

    def _send_snap(self, learner: Learner) -> None:
        zxid, state = self.sm.snapshot()
        self._send(learner.sid, Snap(zxid, state))
        if zxid < self.last_zxid and not self.established:
            self._send(learner.sid, Diff(tuple(self._after(zxid))))

    def _establish(self, now: int) -> None:
        self.established = True
        self.current_epoch = self.new_epoch
        self.epoch = self.new_epoch
        self._persist()
        self.commit_zxid = self.last_zxid
        self._apply_upto(self.commit_zxid)
        self.proposed_zxid = self.new_epoch << 32
        for lrn in self.learners.values():
            if lrn.stage == "acked":
                self._send(lrn.sid, UpToDate(self.commit_zxid))
        self.actions.append(Become(LEADING, self.sid, self.epoch))

    def propose(self, txn: Txn) -> bool:
        """The leader's next transaction (its zxid must be the next one). False if not leading."""
        return self.propose_batch([txn]) == 1

    def propose_batch(self, txns: list[Txn]) -> int:
        """Propose transactions in order, with one log write and one message per follower.

        Returns how many were proposed (fewer than given if leadership ended on the way).
        """
        if self.role != LEADING or not self.established:
            return 0
        taken: list[Txn] = []
        for txn in txns:
            if txn.zxid != self.proposed_zxid + 1:
                raise ValueError(f"zxid {txn.zxid:#x} does not follow {self.proposed_zxid:#x}")
            if txn.zxid & COUNTER_MASK == COUNTER_MASK:
                break  # the counter is exhausted: after these, a new epoch is needed
            self.proposed_zxid = txn.zxid
            self.acks[txn.zxid] = set()
            taken.append(txn)
        if taken:
            self._append(taken)
            msg = Proposal(taken[0]) if len(taken) == 1 else Proposals(tuple(taken))
            for lrn in self.learners.values():
                if lrn.stage in ("synced", "acked") and not lrn.observer:
                    self._send(lrn.sid, msg)
        if len(taken) < len(txns):
            self._look(self.now)
        return len(taken)

    def next_zxid(self) -> int:
        return self.proposed_zxid + 1

    def _try_commit(self) -> None:
        if not self.established:
            if self.quorum(self.newleader_acks) and self.logged_zxid >= self.last_zxid:
                self._establish(self.now)
            return
        last: tuple[int, int] | None = None
        informs: list[tuple[Txn, int]] = []
        while self.acks:
            zxid = next(iter(self.acks))  # proposals are recorded in zxid order
            if not self.quorum(self.acks[zxid]):
                break
            del self.acks[zxid]
            txn = self._after(zxid - 1)[0]
            digest = self.sm.apply(txn)
            self.applied_zxid = self.commit_zxid = zxid
            last = (zxid, digest)
            informs.append((txn, digest))
        if last is None:
            return
        # One COMMIT covers every transaction up to it; observers get each transaction.
        for lrn in self.learners.values():
            if lrn.stage not in ("synced", "acked"):
                continue
            if lrn.observer:
                for txn, digest in informs:
                    self._send(lrn.sid, Inform(txn, digest))
            else:
                self._send(lrn.sid, Commit(*last))
        self._answer_syncs()

    def _answer_syncs(self) -> None:
        keep = []
        for zxid, sid, token in self.pending_syncs:
            if zxid <= self.commit_zxid:
                if sid == self.sid:
                    self.actions.append(Deliver(sid, SyncReply(token, self.commit_zxid)))
                else:
                    self._send(sid, SyncReply(token, self.commit_zxid))
            else:
                keep.append((zxid, sid, token))
        self.pending_syncs = keep

    def local_sync(self, token: int) -> None:
        """A `sync` from a client of the leader itself."""
        self.pending_syncs.append((self._sync_point(), self.sid, token))
        self._answer_syncs()

    def _sync_point(self) -> int:
        """The commit a sync arriving now waits for: the last proposal while any is still
        outstanding, else none. (Not `proposed_zxid` alone: a new leader's is its epoch's
        zero, which no commit reaches until the epoch's first write, so syncs would hang until
        some client happens to write; ZooKeeper answers at once when nothing is outstanding.)"""
        return self.proposed_zxid if self.acks else self.commit_zxid

    def _leader_tick(self, now: int) -> None:
        if not self.established and now > self.phase_deadline:
            self._look(now)
            return
        for lrn in self.learners.values():
            self._send(lrn.sid, Ping(self.commit_zxid))
        self._check_leader_quorum()

    def _check_leader_quorum(self) -> None:
        if not self.established:
            return
        limit = self.sync_limit * self.tick_ms
        alive = {self.sid} | {lrn.sid for lrn in self.learners.values()
                              if lrn.stage == "acked" and self.now - lrn.last_heard <= limit}
        if not self.quorum(alive):
            self._look(self.now)

    # -- learner ------------------------------------------------------------------------------

    def _learner_receive(self, msg: Any, now: int) -> None:
        if isinstance(msg, LeaderInfo):
            if self.stage != "info":
                return
            if msg.epoch < self.accepted_epoch:
                self._look(now)
                return
            if msg.epoch > self.accepted_epoch:
                self.accepted_epoch = msg.epoch
                self._persist()
            self.stage = "sync"
            self._send(self.leader, AckEpoch(self.current_epoch, self.last_zxid))
        elif isinstance(msg, Diff):
            self._append_contiguous(msg.txns, now)
        elif isinstance(msg, Trunc):
            self.history = [t for t in self.history if t.zxid <= msg.zxid]
            self.logged_zxid = min(self.logged_zxid, msg.zxid)
            self.applied_zxid = min(self.applied_zxid, msg.zxid)
            self.actions.append(Truncate(msg.zxid))
        elif isinstance(msg, Snap):
            self.history = []
            self._base_zxid = msg.zxid
            self.logged_zxid = msg.zxid
            self.applied_zxid = msg.zxid
            self.actions.append(Install(msg.zxid, msg.state))
        elif isinstance(msg, NewLeader):
            if self.last_zxid != msg.zxid:
                self._look(now)  # the sync did not bring us to the leader's history: redo it
                return
            self.newleader = msg
            self.epoch = msg.epoch
            self.acked_zxid = max(self.acked_zxid, msg.epoch << 32)  # only this epoch is acked
            self.stage = "newleader"
            self._learner_logged()
        elif isinstance(msg, UpToDate):
            if self.stage != "acked":
                return
            self.stage = "serving"
            self.commit_zxid = max(self.commit_zxid, msg.commit_zxid)
            self.sync_commit = self.commit_zxid
            self._apply_upto(self.commit_zxid)
            self.actions.append(Become(self.role, self.leader, self.epoch))
        elif isinstance(msg, Proposal):
            if self._append_contiguous((msg.txn,), now):
                self._learner_logged()
        elif isinstance(msg, Proposals):
            if self._append_contiguous(msg.txns, now):
                self._learner_logged()
        elif isinstance(msg, Commit):
            self._commit(msg.zxid, msg.digest)
        elif isinstance(msg, Inform):
            if self._append_contiguous((msg.txn,), now):
                self._commit(msg.txn.zxid, msg.digest)
        elif isinstance(msg, Ping):
            self._send(self.leader, PingReply(()))  # the driver adds session touches
        elif isinstance(msg, SyncReply):
            self.actions.append(Deliver(self.leader, msg))

    def _append_contiguous(self, txns: Iterable[Txn], now: int) -> bool:
        """Log what follows our history; on a gap, drop the leader and synchronise again.

        A link delivers in order, so a gap means messages were lost on the way (a proxy or a
        network that drops without resetting): acknowledging past it would claim transactions
        we never logged, so we look for the leader afresh instead.
        """
        fresh = []
        last = self.last_zxid
        for txn in txns:
            z = txn.zxid
            if z <= last:
                continue
            follows = z == last + 1 or (epoch_of(z) > epoch_of(last) and z & COUNTER_MASK == 1)
            if not follows:
                self._append(fresh)
                self._look(now)
                return False
            fresh.append(txn)
            last = z
        self._append(fresh)
        return True

    def _commit(self, zxid: int, digest: int) -> None:
        self.commit_zxid = max(self.commit_zxid, zxid)
        if self.stage != "serving":
            return  # applied at UPTODATE
        for txn in self._after(self.applied_zxid):
            if txn.zxid > self.commit_zxid:
                break
            got = self.sm.apply(txn)
            self.applied_zxid = txn.zxid
            if txn.zxid == zxid and got != digest:
                raise DigestMismatch(
                    f"server {self.sid}: state digest {got:#x} after zxid {zxid:#x} differs "
                    f"from the leader's {digest:#x}; stopping rather than diverge")

    def _learner_logged(self) -> None:
        if self.stage == "newleader" and self.newleader is not None \
                and self.logged_zxid >= self.last_zxid:
            # The new epoch becomes ours only once the history it was synced with is durable:
            # persisting it earlier lets a crash leave a high epoch over a short log, which
            # could then win an election and lose committed transactions (ZOOKEEPER-4643).
            self.current_epoch = self.newleader.epoch
            self._persist()
            self.stage = "acked"
            self._send(self.leader, AckNewLeader(self.newleader.epoch))
        if self.stage in ("acked", "serving") and not self.is_observer:
            # One cumulative ACK for everything of this epoch logged since the last one.
            upto = min(self.logged_zxid, self.last_zxid)
            if upto > self.acked_zxid and epoch_of(upto) == self.epoch:
                self._send(self.leader, Ack(upto))
                self.acked_zxid = upto

    def _learner_tick(self, now: int) -> None:
        limit = (self.sync_limit if self.stage == "serving" else self.init_limit) * self.tick_ms
        if now - self.leader_heard > limit:
            self._look(now)
        elif self.stage == "info" and self.leader is not None:
            # The leader may still have been finishing its election when we first asked.
            self._send(self.leader, FollowerInfo(self.sid, self.accepted_epoch, self.last_zxid,
                                                 self.is_observer))
