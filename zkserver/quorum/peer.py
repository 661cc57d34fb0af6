"""One server of a ZAB ensemble as a plain state machine: election, discovery, synchronisation
and broadcast, with no sockets, no clock, no disk and no state machine of its own.

Inputs are methods: `start(now)`, `receive(sid, msg, now)`, `disconnected(sid)`, `tick(now)`
(`now` is monotonic milliseconds), `logged(zxid)` (the log is durable up to `zxid`),
`installed(zxid)` and `truncated(zxid)` (an `Install` or `Truncate` is done and durable),
`applied(zxid, digest)` (the driver applied committed transactions up to `zxid`),
`propose_batch(txns)` (the leader's own writes), `local_sync(token)` and `touch(sessions)`
(sessions this server's clients kept alive), and on a leader that holds proposals back for its
spare followers (`zkserver.quorum.thrifty`), `thrifty_due(now)` at `thrifty_deadline()`. After
each, `ready()` returns the `Ready` batch of what to do (see `zkserver.quorum.ready`): nothing
is carried out inside a step, and the driver never has to edit what comes out.

Installing a snapshot or truncating the log takes the driver time (it streams the snapshot to
disk and loads it, or cuts the log and rebuilds the state, off the event loop), so both are
confirmed. Until every such reset is, `logged` reports are stale (they concern appends made
before it) and are ignored, and nothing is acknowledged or committed: a learner acknowledges
NEWLEADER, and a leader establishes itself, only on a history that is durable as it is now.

The protocol is ZooKeeper's: a new leader takes an epoch above every accepted epoch of a quorum
(discovery), brings each follower to its history by DIFF, TRUNC or SNAP (synchronisation), and
is established once a quorum acknowledges NEWLEADER; then it proposes, commits on a quorum of
durable acknowledgements, and tells observers with INFORM (broadcast). zxid = epoch << 32 |
counter.

One addition: where a follower and its leader are a quorum on their own (three voters), the
leader tells the follower how far its own log is durable (LOGGED, sent when its log round ends
before any follower has acknowledged), and the follower commits what both have logged without
waiting for the COMMIT. A transaction on a quorum's durable logs is committed in ZAB (every
later leader has it), so this changes when a follower learns of a commit, not what commits.
A write through a follower is then answered when the later of the two logs is durable, one
round trip (ACK, COMMIT) sooner. For that reason the driver starts the leader's log write
before its PROPOSALs while such writes wait (`node.Member._write_log`). LOGGED goes only to
followers whose clients wait (they forwarded writes) and that read it: they say so in their
ping replies, in a first pair (0, features) that no session id takes, so a member of an older
version, which would drop the link on a message it does not know, gets none, and as a leader
sees the pair as an unknown session and ignores it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from zkserver.quorum.digests import DigestCheck
from zkserver.quorum.election import Election
from zkserver.quorum.history import History
from zkserver.quorum.membership import Membership
from zkserver.quorum.messages import (
    Ack,
    AckEpoch,
    AckNewLeader,
    Commit,
    Diff,
    FollowerInfo,
    Inform,
    LeaderInfo,
    Logged,
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
from zkserver.quorum.quorum import Joint, QuorumVerifier
from zkserver.quorum.ready import (
    EMPTY,
    Append,
    Deliver,
    Disconnect,
    Epochs,
    Install,
    LogOp,
    NetOp,
    Ready,
    RoleChange,
    Send,
    SendSnapshot,
    Truncate,
)
from zkserver.quorum.roles import LearnerStage, Role, SyncStage
from zkserver.quorum.thrifty import Thrifty
from zkserver.txn import ReconfigTxn, Txn

COUNTER_MASK = 0xFFFFFFFF
_SYNCED = (LearnerStage.SYNCED, LearnerStage.ACKED)

READS_LOGGED = 1  # a feature: the member reads LOGGED (see the module's docstring)
FEATURES = READS_LOGGED  # what this version reads beyond the first protocol


def epoch_of(zxid: int) -> int:
    return zxid >> 32


def _proposal(txns: list[Txn]) -> Proposal | Proposals:
    """The message that proposes `txns` to a follower: PROPOSAL for one, PROPOSALS for more."""
    return Proposal(txns[0]) if len(txns) == 1 else Proposals(tuple(txns))


def _proposed_config(txn: Txn) -> QuorumVerifier:
    return Membership.parse(txn.op.data, txn.zxid).verifier()


class Learner:
    """What a leader knows of one follower or observer."""

    __slots__ = ("sid", "observer", "stage", "last_heard", "accepted_epoch", "last_zxid",
                 "voting", "features", "wrote_at")

    def __init__(self, sid: int, observer: bool, now: int) -> None:
        self.sid = sid
        self.observer = observer
        self.stage = LearnerStage.INFO
        self.last_heard = now
        self.accepted_epoch = -1
        self.last_zxid = 0
        self.voting = False  # an observer a reconfiguration in flight makes a voter, told so
        self.features = 0  # what it said it reads, in its ping replies (FEATURES)
        self.wrote_at = now  # when it last forwarded a write (it may have clients until told)


class Peer:
    def __init__(self, sid: int, quorum: QuorumVerifier, *, history: History | None = None,
                 tick_ms: int = 2000, init_limit: int = 10, sync_limit: int = 5,
                 accepted_epoch: int = 0, current_epoch: int = 0,
                 applied_zxid: int | None = None, config_version: int = 0,
                 reconfig_enabled: bool = False, config_text: bytes = b"",
                 thrifty_ms: int = 0) -> None:
        self.sid = sid
        self.quorum = quorum
        self.is_observer = sid in quorum.observers
        self.tick_ms = tick_ms
        self.init_limit = init_limit
        self.sync_limit = sync_limit
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        # The membership's version (ZooKeeper's `version=` in /zookeeper/config). With
        # reconfigEnabled a leader turns version 0 into its epoch's first zxid, and learners
        # take the leader's version as they start serving, as ZooKeeper does.
        self.config_version = config_version
        self.reconfig_enabled = reconfig_enabled
        self.history = history if history is not None else History()
        # Reconfigurations in our log not known to be committed, oldest first: while one is,
        # every decision needs a quorum of the configuration in force AND of the newest one.
        # (A restarted server finds here what its log holds beyond its dynamic file.)
        self.ahead: list[tuple[int, QuorumVerifier, bytes]] = [
            (t.zxid, _proposed_config(t), t.op.data) for t in self.history
            if type(t.op) is ReconfigTxn and t.zxid > config_version]
        # A newer configuration than any in our log, heard of in an election (ZooKeeper's
        # notifications carry it too): for that election only, votes count jointly with it.
        self.heard: tuple[int, QuorumVerifier] | None = None
        # The text of the configuration in force (/zookeeper/config's). A leader passes it on
        # in NEWLEADER: a learner takes the ensemble's configuration from its leader, so one
        # started to join with a list naming itself learns it is not a member yet. The driver
        # catches up from it when it applied a reconfiguration before it knew it committed
        # (a restart replays the whole log).
        self.config_text = config_text
        self.logged_zxid = self.history.last_zxid  # what recovery found is durable
        self.resets = 0  # `Install`s and `Truncate`s the driver has not confirmed yet
        self._snap_zxid: int | None = None  # a snapshot from the leader, arriving in chunks
        # The state machine's zxid as the driver holds it once it has carried out every batch
        # (recovery replays the whole log, so by default the last logged zxid).
        self.applied_zxid = self.history.last_zxid if applied_zxid is None else applied_zxid
        self.commit_zxid = 0
        self.role = Role.LOOKING
        self.leader: int | None = None
        self.epoch = 0
        self.election = Election(sid, quorum)
        self.decided: Vote | None = None
        self.now = 0
        self.digests = DigestCheck(sid)
        self.touches: dict[int, int] = {}  # session id -> timeout, for the next PingReply
        # what the next Ready holds
        self._epochs_changed = False
        self._log: list[LogOp] = []
        self._committed: list[Txn] = []
        self._net: list[NetOp] = []
        self._roles: list[RoleChange] = []
        self._deliveries: list[Deliver] = []
        # leader
        self.learners: dict[int, Learner] = {}
        self.established = False
        self.new_epoch = 0
        self._epoch_infos: dict[int, int] = {}
        self.epoch_acks: set[int] = set()
        self.newleader_acks: set[int] = set()
        self.acks: dict[int, set[int]] = {}  # outstanding proposal zxid -> acked by
        self.forwarders: set[int] = set()  # followers whose writes wait for commit
        self.thrifty = Thrifty(thrifty_ms)  # proposals held back for spare followers
        self.proposed_zxid = 0
        self.phase_deadline = 0
        self.pending_syncs: list[tuple[int, int, int]] = []  # (zxid needed, sid, token)
        self.last_digest = (0, 0)  # (zxid, digest) the driver last reported applying
        # learner
        self.leader_heard = 0
        self.stage = SyncStage.IDLE
        self.newleader: NewLeader | None = None
        self.acked_zxid = 0
        self.leader_logged = 0  # the leader's log is durable up to here (its Logged notes)

    # -- the output batch ---------------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(self._net or self._log or self._committed or self._epochs_changed
                    or self._roles or self._deliveries or self.election.outbox)

    def ready(self) -> Ready:
        """Everything decided since the last call, for the driver to carry out."""
        if self.election.outbox:
            for to, n in self.election.take_messages():
                self._net.append(Send(to, n))
        if not (self._net or self._log or self._committed or self._epochs_changed
                or self._roles or self._deliveries):
            return EMPTY
        r = Ready(Epochs(self.accepted_epoch, self.current_epoch) if self._epochs_changed
                  else None, tuple(self._log), tuple(self._committed), tuple(self._net),
                  tuple(self._roles), tuple(self._deliveries))
        self._epochs_changed = False
        self._log = []
        self._committed = []
        self._net = []
        self._roles = []
        self._deliveries = []
        return r

    # -- helpers ------------------------------------------------------------------------------

    @property
    def last_zxid(self) -> int:
        return self.history.last_zxid

    @property
    def member(self) -> bool:
        """Whether the configuration in force names this server. One that does not (removed,
        or started to join and not added yet) still learns the history, but serves no one."""
        return self.sid in self.quorum.voters or self.sid in self.quorum.observers

    @property
    def serving(self) -> bool:
        """Whether this server is in the broadcast phase (its clients may be served)."""
        if self.role == Role.LEADING:
            return self.established
        return self.stage == SyncStage.SERVING and self.member

    def _send(self, to: int, msg: Any) -> None:
        if to in self.thrifty.held:  # a spare gets what it was spared first
            self._release(to)
        self._net.append(Send(to, msg))

    def _release(self, sid: int) -> None:
        """Send spare `sid` the proposals held for it, then the newest COMMIT held."""
        txns, commit = self.thrifty.release(sid)
        if txns:
            self._net.append(Send(sid, _proposal(txns)))
        if commit is not None:
            self._net.append(Send(sid, commit))

    def _vote(self) -> Vote:
        return Vote(self.current_epoch, self.last_zxid, self.sid)

    def _persist(self) -> None:
        self._epochs_changed = True

    def _append(self, txns: list[Txn]) -> None:
        if not txns:
            return
        self.history.append(txns)
        self._log.append(Append(tuple(txns)))
        for txn in txns:
            if type(txn.op) is ReconfigTxn:
                self.ahead.append((txn.zxid, _proposed_config(txn), txn.op.data))
                self._tell_election()

    def _tell_election(self) -> None:
        """What elections count by, and the reconfiguration in our log that our notifications
        tell of (what answers to looking servers say, too, while we are not looking)."""
        self.election.use(self._deciding(), self.ahead[-1][2] if self.ahead else b"",
                          self._versioned_text() if self.reconfig_enabled else b"")

    def _versioned_text(self) -> bytes:
        """The configuration in force as text that carries its version: a leader versions a
        version-0 configuration (the one it started with) by its epoch, after the text was
        made, and a looking server that started with the same text must see this one as
        newer. (Only that one: any other text keeps the version it was made with.)"""
        text = self.config_text
        if not text or not self.config_version:
            return text
        try:
            made = Membership.parse(text)
        except ValueError:
            return text
        if made.version:
            return text
        return attrs.evolve(made, version=self.config_version).data()

    # -- membership ---------------------------------------------------------------------------

    def _deciding(self) -> QuorumVerifier:
        """Who decides elections, epochs and establishment now: the configuration in force,
        jointly with the newest one proposed while a reconfiguration is in flight (a second
        one proposed means the first is committed, so it is the one in force then)."""
        if not self.ahead:
            return self.quorum
        before = self.ahead[-2][1] if len(self.ahead) > 1 else self.quorum
        return Joint(before, self.ahead[-1][1])

    def _electing(self) -> QuorumVerifier:
        """Who decides an election: as `_deciding`, or jointly with a newer configuration a
        voter told us of (without it, a server that missed a reconfiguration would not even
        accept votes for the servers it adds, and could hold up both quorums for ever)."""
        if self.heard is None or self.heard[0] <= self.last_seen_version:
            return self._deciding()
        return Joint(self.ahead[-1][1] if self.ahead else self.quorum, self.heard[1])

    def _deciding_at(self, zxid: int) -> QuorumVerifier:
        """Who must acknowledge proposal `zxid`: from a reconfiguration on, old and new."""
        seen = [v for z, v, _ in self.ahead if z <= zxid]
        if not seen:
            return self.quorum
        return Joint(seen[-2] if len(seen) > 1 else self.quorum, seen[-1])

    @property
    def last_seen_version(self) -> int:
        """The version of the newest configuration proposed (ZooKeeper's lastSeenQV): the one
        in force unless a reconfiguration is in flight."""
        return self.ahead[-1][0] if self.ahead else self.config_version

    def synced_voters(self) -> frozenset[int]:
        """This leader and the followers synced with it (ZooKeeper's isQuorumSynced counts
        these, observers not, for a reconfiguration's new voters)."""
        return frozenset({self.sid} | {lrn.sid for lrn in self.learners.values()
                                        if lrn.stage == LearnerStage.ACKED and not lrn.observer})

    def _configs_committed(self, upto: int) -> None:
        """Reconfigurations up to `upto` are committed: the newest is in force. A leader it
        leaves without a vote steps down, so that the voters elect one of their own (every
        committed write is on a quorum of them); a learner whose place changed (observer <->
        participant, or its leader left) joins again in its new place, one it left out stops
        serving, and one it adds in the role it learns in starts serving."""
        if not self.ahead or self.ahead[0][0] > upto:
            return
        was = (self.member, self.is_observer)
        while self.ahead and self.ahead[0][0] <= upto:
            self.config_version, self.quorum, self.config_text = self.ahead.pop(0)
        self._tell_election()
        self.is_observer = self.sid in self.quorum.observers
        if self.role == Role.LEADING and self.sid not in self.quorum.voters:
            # Without hanging up: the COMMIT just sent must reach the followers (a link
            # dropped now could lose it); each of them elects again as it commits this.
            self._look(self.now, hang_up=False)
        elif self.role in (Role.FOLLOWING, Role.OBSERVING) and (
                (was[0] and not self.member) or self._misplaced()
                or self.leader not in self.quorum.voters):
            self._look(self.now)
        elif self.role in (Role.FOLLOWING, Role.OBSERVING) and self.member and not was[0] \
                and self.stage == SyncStage.SERVING:
            # Added in the role we already learn in (a joiner, synced before it was added):
            # serve from now on, on the link we have. Electing again instead would take a
            # quorum from the leader for a moment (two joiners of a server of one: all of it),
            # and the leader with it.
            self._roles.append(RoleChange(self.role, self.leader, self.epoch,
                                          self.config_version))

    def _misplaced(self) -> bool:
        """Whether this learner follows in a role the configuration in force does not give
        it: an observer it makes a voter, or a voter it makes an observer. The configuration
        can change under a learner without a commit it sees: a learner that rejoins while a
        reconfiguration commits chose its role by the old one, and takes the new one from its
        leader's NEWLEADER. ZooKeeper's learner then elects again in its new role (its
        syncWithLeader throws on such a change); so does this one."""
        return self.member and self.role in (Role.FOLLOWING, Role.OBSERVING) \
            and (self.role == Role.OBSERVING) != self.is_observer

    def _leaders_config(self, text: bytes) -> None:
        """The configuration in force at the leader we synced with (our history is now its):
        ours too, with the reconfigurations after it in our log still to commit."""
        try:
            theirs = Membership.parse(text)
            ours = Membership.parse(self.config_text).version if self.config_text else 0
        except ValueError:
            return
        if theirs.version < ours:
            return  # it has yet to learn that one of ours committed (it will, as it leads)
        self.quorum, self.config_text = theirs.verifier(), text
        if theirs.version:
            self.config_version = theirs.version
        self.is_observer = self.sid in self.quorum.observers
        self.ahead = [a for a in self.ahead if a[0] > theirs.version]
        self._tell_election()

    def installed_membership(self, version: int, quorum: QuorumVerifier,
                             text: bytes = b"") -> None:
        """The configuration the snapshot just installed holds (its /zookeeper/config): in
        force from now on; what our log holds after the snapshot comes again from the leader."""
        self.config_version, self.quorum, self.config_text = version, quorum, text
        self.is_observer = self.sid in quorum.observers
        self._tell_election()

    def _apply_upto(self, zxid: int) -> None:
        """Hand the driver every logged transaction up to `zxid` it has not applied yet."""
        if zxid <= self.applied_zxid:
            return
        txns = self.history.between(self.applied_zxid, zxid)
        if txns:
            self._committed.extend(txns)
            self.applied_zxid = txns[-1].zxid
            self.history.trim(self.applied_zxid)

    # -- inputs -------------------------------------------------------------------------------

    def start(self, now: int) -> None:
        self.now = now
        self._look(now)

    def _look(self, now: int, hang_up: bool = True) -> None:
        was = self.role
        if was == Role.LEADING and hang_up:
            for sid in self.learners:
                self._net.append(Disconnect(sid))
        elif was in (Role.FOLLOWING, Role.OBSERVING) and self.leader is not None:
            self._net.append(Disconnect(self.leader))
        self.role = Role.LOOKING
        self.leader = None
        self.established = False
        self.learners = {}
        self.thrifty.clear()
        self.acks = {}
        self.pending_syncs = []
        self.newleader = None
        self.stage = SyncStage.IDLE
        self._snap_zxid = None
        self.decided = None
        self.digests.reset(self.applied_zxid)
        if was != Role.LOOKING:
            self._roles.append(RoleChange(Role.LOOKING, None, self.epoch))
        self.heard = None
        self._tell_election()
        self.election.start(self._vote(), now)

    def tick(self, now: int) -> None:
        self.now = now
        if self.role == Role.LOOKING:
            vote = self.election.tick(now)
            if vote is not None:
                self._decided(vote, now)
        elif self.role == Role.LEADING:
            self._leader_tick(now)
        else:
            self._learner_tick(now)

    def disconnected(self, sid: int) -> None:
        if self.role == Role.LEADING and sid in self.learners:
            del self.learners[sid]
            self.thrifty.forget(sid)
            self._check_leader_quorum()
        elif self.role in (Role.FOLLOWING, Role.OBSERVING) and sid == self.leader:
            self._look(self.now)

    def receive(self, frm: int, msg: Any, now: int) -> None:
        self.now = now
        if isinstance(msg, Notification):
            self._notification(msg, now)
        elif self.role == Role.LEADING:
            self._leader_receive(frm, msg, now)
        elif self.role in (Role.FOLLOWING, Role.OBSERVING):
            if isinstance(msg, FollowerInfo):
                # We follow, so the sender decided on a leader that isn't one (it finished its
                # election on votes that changed after). Refuse it, as ZooKeeper's closed
                # learner port does, so it elects again now rather than after initLimit. If
                # it is the one we follow, neither of us leads: we elect again too (its
                # retries must not pass for a live leader and keep us waiting for ever).
                self._net.append(Disconnect(frm))
                if frm == self.leader:
                    self._look(now)
            elif frm == self.leader:
                self.leader_heard = now
                self._learner_receive(msg, now)

    def logged(self, zxid: int) -> None:
        """Transactions up to `zxid` are durable on this server."""
        if zxid <= self.logged_zxid or self.resets:
            return
        self.logged_zxid = min(zxid, self.last_zxid)
        if self.role == Role.LEADING:
            for z, ackers in self.acks.items():
                if z > self.logged_zxid:
                    break
                ackers.add(self.sid)
            self._try_commit()
            self._tell_logged()
        elif self.role in (Role.FOLLOWING, Role.OBSERVING):
            self._learner_logged()
            self._commit_known()

    def installed(self, zxid: int) -> None:
        """The snapshot at `zxid` (an `Install`'s last chunk) is the driver's state, durably;
        its log starts again after it."""
        self.resets -= 1
        self.logged_zxid = zxid
        self._after_reset()

    def truncated(self, zxid: int) -> None:
        """A `Truncate` to `zxid` is durable (and the state rebuilt, if it had to be)."""
        self.resets -= 1
        self.logged_zxid = min(self.logged_zxid, zxid)
        self._after_reset()

    def _after_reset(self) -> None:
        if self.role == Role.LEADING:
            self._try_commit()
        elif self.role in (Role.FOLLOWING, Role.OBSERVING):
            self._learner_logged()

    def applied(self, zxid: int, digest: int) -> None:
        """The driver applied the committed transactions up to `zxid`; its state digest.

        Raises `DigestMismatch` if the leader's digest at the same zxid differs: the driver
        must stop the server rather than serve a diverged state."""
        self.last_digest = (zxid, digest)
        if self.role != Role.LEADING:
            self.digests.ours(zxid, digest)

    def touch(self, sessions: Mapping[int, int]) -> None:
        """Sessions this server's clients kept alive (id -> timeout), for the leader (which
        keeps its own sessions alive itself)."""
        if self.role != Role.LEADING:
            self.touches.update(sessions)

    # -- election -----------------------------------------------------------------------------

    def _notification(self, n: Notification, now: int) -> None:
        if self.role == Role.LOOKING:
            if n.committed:
                self._adopt(n.committed)
            if n.config:
                self._heard_of(n.config)
            vote = self.election.receive(n, now)
            if vote is not None:
                self._decided(vote, now)
        elif not self.is_observer and self.decided is not None:
            self.election.answer(n, self.role, self.decided)

    def _adopt(self, data: bytes) -> None:
        """A voter's configuration in force, heard in an election: ours too if it is newer
        (its version is the zxid of the reconfiguration that made it, committed). Without
        it, a server that missed reconfigurations (restarted with its old dynamic file, or
        cut off while they committed) counts votes by servers that may no longer decide, and
        may even back itself where it may not lead; ZooKeeper's election takes the newer
        configuration too. The transactions that made it reach our log as we sync."""
        try:
            theirs = Membership.parse(data)
            verifier = theirs.verifier()
        except ValueError:
            return  # (a ConfigError too) not one we could count by: ignore it
        if theirs.version <= self.config_version:
            return
        self.quorum, self.config_version, self.config_text = verifier, theirs.version, data
        self.is_observer = self.sid in verifier.observers
        self.ahead = [a for a in self.ahead if a[0] > theirs.version]
        if self.heard is not None and self.heard[0] <= theirs.version:
            self.heard = None
        self._tell_election()
        if self.heard is not None:
            self.election.use(self._electing(), self.election.config)

    def _heard_of(self, data: bytes) -> None:
        try:
            heard = Membership.parse(data)
        except ValueError:
            return  # (a ConfigError too) not one we could count by: ignore it
        newest = self.heard[0] if self.heard is not None else self.last_seen_version
        if heard.version > newest:
            self.heard = (heard.version, heard.verifier())
            self.election.use(self._electing(), data)

    def _decided(self, vote: Vote, now: int) -> None:
        self.decided = vote
        self.leader = vote.leader
        if vote.leader == self.sid:
            self._lead(now)
        else:
            self.role = Role.OBSERVING if self.is_observer else Role.FOLLOWING
            self.stage = SyncStage.INFO
            self.leader_heard = now
            self.phase_deadline = now + self.init_limit * self.tick_ms
            self._send(vote.leader, FollowerInfo(self.sid, self.accepted_epoch, self.last_zxid,
                                                 self.is_observer))

    # -- leader -------------------------------------------------------------------------------

    def _lead(self, now: int) -> None:
        self.role = Role.LEADING
        self.learners = {}
        self.established = False
        self.epoch_acks = {self.sid}
        self.newleader_acks = set()
        self.acks = {}
        self.forwarders = set()
        self.new_epoch = 0
        self.phase_deadline = now + self.init_limit * self.tick_ms
        self._epoch_infos = {self.sid: self.accepted_epoch}
        if self._deciding().has_quorum(self._epoch_infos.keys()):
            # A quorum by itself (the one voter of standaloneEnabled=false, or a server that
            # carries a hierarchical quorum alone): its own epoch and history decide, and
            # learners that come later join an established leader.
            self.new_epoch = self.accepted_epoch + 1
            self.accepted_epoch = self.new_epoch
            self._persist()
            self.newleader_acks.add(self.sid)
            self._try_commit()

    def _leader_receive(self, frm: int, msg: Any, now: int) -> None:
        learner = self.learners.get(frm)
        if isinstance(msg, FollowerInfo):
            # Any server may learn (one about to join starts so, as in ZooKeeper); only the
            # configurations' members count towards quorums.
            learner = Learner(frm, msg.observer, now)
            self.thrifty.forget(frm)  # held for its last link: it syncs afresh on this one
            learner.accepted_epoch = msg.accepted_epoch
            learner.last_zxid = msg.last_zxid
            self.learners[frm] = learner
            if self.new_epoch:
                self._send(frm, LeaderInfo(self.new_epoch))
                learner.stage = LearnerStage.EPOCH
                return
            if frm in self._deciding().voters:  # by our configuration, whatever it says
                self._epoch_infos[frm] = msg.accepted_epoch
            if self._deciding().has_quorum(self._epoch_infos.keys()):
                self.new_epoch = max(self._epoch_infos.values()) + 1
                self.accepted_epoch = self.new_epoch
                self._persist()
                for lrn in self.learners.values():
                    self._send(lrn.sid, LeaderInfo(self.new_epoch))
                    lrn.stage = LearnerStage.EPOCH
            return
        if learner is None:
            return
        learner.last_heard = now
        if isinstance(msg, AckEpoch):
            if learner.stage != LearnerStage.EPOCH:
                return
            deciding = self._deciding()
            voters = deciding.voters
            if (msg.current_epoch, msg.last_zxid) > (self.current_epoch, self.last_zxid) \
                    and deciding.weight(frm) > 0:
                # A voter knows more than we do: elect again. (Not for one whose vote counts
                # for nothing, as a voter of weight 0 or one a reconfiguration in our log
                # removes: nothing committed can hang on its acknowledgement alone, and as it
                # can never lead, stepping down for it would only repeat.)
                self._look(now)
                return
            learner.last_zxid = msg.last_zxid
            if frm in voters:
                self.epoch_acks.add(frm)
            if self.established:
                self._sync_learner(learner)
            elif self._deciding().has_quorum(self.epoch_acks):
                for lrn in list(self.learners.values()):
                    if lrn.stage == LearnerStage.EPOCH \
                            and (lrn.sid not in voters or lrn.sid in self.epoch_acks):
                        self._sync_learner(lrn)
                self.newleader_acks.add(self.sid)  # our own history is logged already
        elif isinstance(msg, AckNewLeader):
            if learner.stage != LearnerStage.SYNCED or msg.epoch != self.new_epoch:
                return
            learner.stage = LearnerStage.ACKED
            if self.established:
                self._send(frm, UpToDate(self.commit_zxid))
                return
            if frm in self._deciding().voters:
                self.newleader_acks.add(frm)
            if self._deciding().has_quorum(self.newleader_acks) and self._history_durable():
                self._establish()
        elif isinstance(msg, Ack):
            # Acks are cumulative: the follower has logged every proposal up to this one. (One
            # that calls itself an observer acknowledges too once a reconfiguration in its log
            # makes it a voter; quorums count only voters anyway.)
            for zxid, ackers in self.acks.items():
                if zxid > msg.zxid:
                    break
                ackers.add(frm)
            self._try_commit()
        elif isinstance(msg, PingReply):
            touches = msg.touches
            if learner is not None and touches and touches[0][0] == 0 \
                    and type(touches[0][1]) is int:
                learner.features = touches[0][1]
            self._deliveries.append(Deliver(frm, msg))
        elif isinstance(msg, SyncRequest):
            self.pending_syncs.append((self._sync_point(), frm, msg.token))
            self._answer_syncs()
        elif isinstance(msg, Request):
            self._deliveries.append(Deliver(frm, msg))
            learner.wrote_at = now
            self.forwarders.add(frm)
            self._hears_first(frm)

    def _hears_first(self, sid: int) -> None:
        """Broadcasts (PROPOSAL, COMMIT) go to `sid` first from now on: it forwarded a write,
        so its client waits for that COMMIT. Where members share fewer cores than there are
        of them (a test rig, a crowded host), the member written to first gets the core while
        the leader is still writing to the next: measured on loopback, each such turn kept
        the member written to last waiting about 0.1 ms."""
        learners = self.learners
        if sid in learners and next(iter(learners)) != sid:
            first = learners.pop(sid)
            self.learners = {sid: first, **learners}

    def _sync_learner(self, learner: Learner) -> None:
        """DIFF, TRUNC+DIFF or SNAP to bring a learner to our history, then NEWLEADER."""
        h = self.history
        peer_zxid = learner.last_zxid
        limit = self.commit_zxid if self.established else self.last_zxid
        first = h.first_zxid
        if peer_zxid == limit:
            self._send(learner.sid, Diff(()))
        elif h.has(peer_zxid) and peer_zxid < limit:
            self._send(learner.sid, Diff(tuple(h.between(peer_zxid, limit))))
        elif peer_zxid > limit or (first is not None and peer_zxid >= first):
            # The learner has transactions we don't: cut back to the last one we share.
            common = h.last_common(peer_zxid)
            if common is not None:
                self._send(learner.sid, Trunc(common))
                self._send(learner.sid, Diff(tuple(h.between(common, limit))))
            else:
                self._send_snap(learner)
        else:
            self._send_snap(learner)
        if self.established:
            for txn in h.after(limit):  # proposals still in flight
                self._send(learner.sid, Proposal(txn))
        # (The configuration only with reconfigEnabled: members on older code could not
        # read the field, and without reconfig nobody needs it.)
        self._send(learner.sid, NewLeader(self.new_epoch, self.last_zxid,
                                          self._leading_config_version(),
                                          self.config_text if self.reconfig_enabled else b""))
        learner.stage = LearnerStage.SYNCED

    def _history_durable(self) -> bool:
        return not self.resets and self.logged_zxid >= self.last_zxid

    def _send_snap(self, learner: Learner) -> None:
        # The driver sends the state as it stands once this batch's commits are applied: at
        # `applied_zxid`, or later if batches were gathered. Before establishment that is
        # below our history's end, whose rest follows as a DIFF (the learner skips any part
        # of it the snapshot already holds).
        zxid = self.applied_zxid
        self._net.append(SendSnapshot(learner.sid, zxid))
        if zxid < self.last_zxid and not self.established:
            self._send(learner.sid, Diff(tuple(self.history.after(zxid))))

    def _leading_config_version(self) -> int:
        """The membership version this leader serves with once established. Everything in
        its log commits then, so a reconfiguration there is the one in force (its learners
        serve with it too): versioning the configuration it holds now with the epoch would
        put a version above it, which they would then go back from."""
        if self.ahead:
            return self.ahead[-1][0]
        if self.reconfig_enabled and self.config_version == 0:
            return self.new_epoch << 32
        return self.config_version

    def _establish(self) -> None:
        self.config_version = self._leading_config_version()
        self.established = True
        self.current_epoch = self.new_epoch
        self.epoch = self.new_epoch
        self._persist()
        self.commit_zxid = self.last_zxid
        self._apply_upto(self.commit_zxid)
        self.proposed_zxid = self.new_epoch << 32
        for lrn in self.learners.values():
            if lrn.stage == LearnerStage.ACKED:
                self._send(lrn.sid, UpToDate(self.commit_zxid))
        self._configs_committed(self.commit_zxid)
        self._tell_election()  # (answers to looking servers carry the version we serve)
        if self.role == Role.LEADING:  # (not if a reconfiguration it committed removed it)
            self._roles.append(RoleChange(Role.LEADING, self.sid, self.epoch,
                                          self.config_version))

    def propose(self, txn: Txn) -> bool:
        """The leader's next transaction (its zxid must be the next one). False if not leading."""
        return self.propose_batch([txn]) == 1

    def propose_batch(self, txns: list[Txn], now: int | None = None) -> int:
        """Propose transactions in order, with one log write and one message per follower
        (a spare's may be held back, see `_spares`). `now`: the time, if later than the last
        input's.

        Returns how many were proposed (fewer than given if leadership ended on the way).
        """
        if self.role != Role.LEADING or not self.established:
            return 0
        if now is not None:
            self.now = now
        if not self.acks:
            self.thrifty.progressed(self.now)  # nothing outstanding: no stall so far
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
            msg = _proposal(taken)
            voters = self._deciding().voters
            spares = self._spares()
            for lrn in self.learners.values():
                if lrn.stage not in _SYNCED or (lrn.observer and lrn.sid not in voters):
                    continue
                if lrn.observer and not lrn.voting:
                    # An observer a reconfiguration in flight makes a voter: from now on it
                    # gets proposals and acknowledges them. INFORMs brought it to the last
                    # commit only, so the proposals still outstanding come first (a gap would
                    # make it drop us and synchronise again, in the middle of its promotion).
                    lrn.voting = True
                    self._send(lrn.sid, Proposals(tuple(self.history.after(self.commit_zxid))))
                elif lrn.sid in spares:
                    self.thrifty.hold(lrn.sid, taken, self.now)
                else:
                    self._send(lrn.sid, msg)
        if len(taken) < len(txns):
            self._look(self.now)
        return len(taken)

    def next_zxid(self) -> int:
        return self.proposed_zxid + 1

    def _spares(self) -> set[int]:
        """The followers this proposal may be held back from: synced voters without clients
        beyond those that, with us, make a quorum — followers whose clients wait (forwarders)
        first, then the others in the leader's order (see `zkserver.quorum.thrifty`). A
        follower that forwarded a write in the last half tick has clients, whose reads must
        not lag: it is never spared. None while a reconfiguration is in flight or after the
        followers picked were too slow."""
        now = self.now
        if not self.thrifty.active(now) or self.ahead:
            return set()
        quorum = self.quorum
        voters = quorum.voters
        needed = {self.sid}
        needed.update(sid for sid in self.forwarders if sid in voters)
        spares: set[int] = set()
        recent = now - self.tick_ms // 2
        for lrn in self.learners.values():
            sid = lrn.sid
            if sid in needed or lrn.stage != LearnerStage.ACKED or lrn.observer \
                    or sid not in voters:
                continue
            if lrn.wrote_at > recent:
                needed.add(sid)  # it gets the proposal at once anyway
            elif quorum.has_quorum(needed):
                spares.add(sid)
            else:
                needed.add(sid)
        return spares

    def thrifty_deadline(self) -> int | None:
        """When the proposals held back for spares must leave (None: none are held)."""
        return self.thrifty.deadline()

    def thrifty_due(self, now: int) -> None:
        """Time has come for held proposals to leave: send the spares theirs. If nothing
        committed meanwhile although proposals are outstanding, the followers picked are not
        keeping up (one may have crashed): hold nothing back for a while."""
        self.now = now
        thrifty = self.thrifty
        due = thrifty.due(now)
        if not due or self.role != Role.LEADING:
            return
        if self.acks and thrifty.stalled(now):
            thrifty.suspend(now)
            due = list(thrifty.held)
        for sid in due:
            self._release(sid)

    def _try_commit(self) -> None:
        if not self.established:
            if self._deciding().has_quorum(self.newleader_acks) and self._history_durable():
                self._establish()
            return
        last = 0
        while self.acks:
            zxid = next(iter(self.acks))  # proposals are recorded in zxid order
            if not self._deciding_at(zxid).has_quorum(self.acks[zxid]):
                break
            del self.acks[zxid]
            last = zxid
        if not last:
            return
        first = len(self._committed)
        self.commit_zxid = last
        self.thrifty.progressed(self.now)
        self._apply_upto(last)
        # One COMMIT covers every transaction up to it; observers get each transaction.
        dz, digest = self.last_digest
        commit = Commit(last, dz, digest)
        held = self.thrifty.held
        for lrn in self.learners.values():
            if lrn.stage not in _SYNCED:
                continue
            if lrn.observer:
                for txn in self._committed[first:]:
                    self._send(lrn.sid, Inform(txn, dz, digest))
            elif lrn.sid in held:
                self.thrifty.hold_commit(lrn.sid, commit)
                if self.thrifty.ripe(lrn.sid, self.now):
                    self._release(lrn.sid)
            else:
                self._send(lrn.sid, commit)
        self._answer_syncs()
        self._configs_committed(last)

    def _answer_syncs(self) -> None:
        keep = []
        for zxid, sid, token in self.pending_syncs:
            if zxid <= self.commit_zxid:
                if sid == self.sid:
                    self._deliveries.append(Deliver(sid, SyncReply(token, self.commit_zxid)))
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
        ping = Ping(self.commit_zxid, *self.last_digest)
        for lrn in self.learners.values():
            self._send(lrn.sid, ping)
        self._check_leader_quorum()

    def _check_leader_quorum(self) -> None:
        if not self.established:
            return
        limit = self.sync_limit * self.tick_ms
        alive = {self.sid} | {lrn.sid for lrn in self.learners.values()
                              if lrn.stage == LearnerStage.ACKED
                              and self.now - lrn.last_heard <= limit}
        if not self._deciding().has_quorum(alive):
            self._look(self.now)

    # -- learner ------------------------------------------------------------------------------

    def _leader(self) -> int:
        assert self.leader is not None, "only a learner with a leader gets here"
        return self.leader

    def _learner_receive(self, msg: Any, now: int) -> None:
        leader = self._leader()
        if isinstance(msg, LeaderInfo):
            if self.stage != SyncStage.INFO:
                return
            if msg.epoch < self.accepted_epoch:
                self._look(now)
                return
            if msg.epoch > self.accepted_epoch:
                self.accepted_epoch = msg.epoch
                self._persist()
            self.stage = SyncStage.SYNC
            self._send(leader, AckEpoch(self.current_epoch, self.last_zxid))
        elif isinstance(msg, Diff):
            self._append_contiguous(msg.txns, now)
        elif isinstance(msg, Trunc):
            self.history.truncate(msg.zxid)
            self.ahead = [a for a in self.ahead if a[0] <= msg.zxid]
            self._tell_election()
            self.logged_zxid = min(self.logged_zxid, msg.zxid)
            # Recovery replayed our whole log into the state, so it may hold what is cut now.
            rebuild = self.applied_zxid > msg.zxid
            if rebuild:
                self._state_replaced(msg.zxid)
            self.resets += 1
            self._log.append(Truncate(msg.zxid, rebuild))
        elif isinstance(msg, Snap):
            self._snapshot_chunk(msg, now)
        elif isinstance(msg, NewLeader):
            if self.last_zxid != msg.zxid:
                self._look(now)  # the sync did not bring us to the leader's history: redo it
                return
            self.newleader = msg
            self.leader_logged = 0
            if msg.config:
                self._leaders_config(msg.config)
            self.epoch = msg.epoch
            self.acked_zxid = max(self.acked_zxid, msg.epoch << 32)  # only this epoch is acked
            self.stage = SyncStage.NEWLEADER
            self._learner_logged()
        elif isinstance(msg, UpToDate):
            if self.stage != SyncStage.ACKED:
                return
            self.stage = SyncStage.SERVING
            self.commit_zxid = max(self.commit_zxid, msg.commit_zxid)
            self._apply_upto(self.commit_zxid)
            self._configs_committed(self.commit_zxid)
            if self._misplaced():
                self._look(now)  # our leader's configuration changed our place: rejoin in it
                return
            if self.role == Role.LOOKING or not self.member:
                return  # the configuration in force sends us elsewhere, or names us not
            assert self.newleader is not None
            self.config_version = max(self.config_version, self.newleader.config_version)
            self._tell_election()
            self._roles.append(RoleChange(self.role, self.leader, self.epoch,
                                          self.config_version))
        elif isinstance(msg, Proposal):
            if self._append_contiguous((msg.txn,), now):
                self._learner_logged()
        elif isinstance(msg, Proposals):
            if self._append_contiguous(msg.txns, now):
                self._learner_logged()
        elif isinstance(msg, Logged):
            if msg.zxid > self.leader_logged:
                self.leader_logged = msg.zxid
                self._commit_known()
        elif isinstance(msg, Commit):
            self._commit(msg.zxid)
            self.digests.theirs(msg.digest_zxid, msg.digest)
        elif isinstance(msg, Inform):
            if self._append_contiguous((msg.txn,), now):
                self._commit(msg.txn.zxid)
                self.digests.theirs(msg.digest_zxid, msg.digest)
        elif isinstance(msg, Ping):
            self._send(leader, PingReply(((0, FEATURES), *self.touches.items())))
            self.touches = {}
            self.digests.theirs(msg.digest_zxid, msg.digest)
        elif isinstance(msg, SyncReply):
            self._deliveries.append(Deliver(leader, msg))

    def _snapshot_chunk(self, msg: Snap, now: int) -> None:
        """A SNAP arrives in chunks, each written by the driver as it comes; only the last
        makes it our state (a stream cut short leaves our history as it was)."""
        if msg.first:
            self._snap_zxid = msg.zxid
        elif self._snap_zxid != msg.zxid:
            self._look(now)  # the beginning of this snapshot never came: synchronise again
            return
        self._log.append(Install(msg.zxid, msg.chunk, msg.first, msg.last))
        if msg.last:
            self._snap_zxid = None
            self.history.reset(msg.zxid)
            self.ahead = []
            self._tell_election()
            self.logged_zxid = msg.zxid
            self.resets += 1
            self._state_replaced(msg.zxid)

    def _state_replaced(self, zxid: int) -> None:
        """The driver's state machine goes back to (or jumps to) `zxid`: no digest known."""
        self.applied_zxid = zxid
        self.last_digest = (0, 0)
        self.digests.reset(zxid)

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

    def _commit(self, zxid: int) -> None:
        self.commit_zxid = max(self.commit_zxid, zxid)
        if self.stage == SyncStage.SERVING:  # before that, everything is applied at UPTODATE
            self._apply_upto(self.commit_zxid)
            self._configs_committed(self.commit_zxid)

    def _learner_logged(self) -> None:
        if self.stage == SyncStage.NEWLEADER and self.newleader is not None \
                and self._history_durable():
            # The new epoch becomes ours only once the history it was synced with is durable:
            # persisting it earlier lets a crash leave a high epoch over a short log, which
            # could then win an election and lose committed transactions (ZOOKEEPER-4643).
            self.current_epoch = self.newleader.epoch
            self._persist()
            self.stage = SyncStage.ACKED
            self._send(self._leader(), AckNewLeader(self.newleader.epoch))
        if self.stage in (SyncStage.ACKED, SyncStage.SERVING) and not self.resets \
                and (not self.is_observer or self.sid in self._deciding().voters):
            # One cumulative ACK for everything of this epoch logged since the last one.
            upto = min(self.logged_zxid, self.last_zxid)
            if upto > self.acked_zxid and epoch_of(upto) == self.epoch:
                self._send(self._leader(), Ack(upto))
                self.acked_zxid = upto

    def _commit_known(self) -> None:
        """Commit what this follower and its leader have both logged, where the two are a
        quorum (three voters), without waiting for the COMMIT (see the module's docstring).

        Not while a reconfiguration is in our log uncommitted (it needs a quorum of both
        configurations), nor before this epoch's history is synced and acknowledged, nor past
        our ACK: that has left before (when our log became durable, in this step or an
        earlier one), ahead of any request our clients send next on the same link, so the
        leader has committed it too before it prepares theirs."""
        if self.stage != SyncStage.SERVING or self.resets or self.ahead or self.is_observer:
            return
        upto = min(self.leader_logged, self.logged_zxid, self.last_zxid, self.acked_zxid)
        if upto > self.commit_zxid and epoch_of(upto) == self.epoch \
                and self.quorum.has_quorum({self.sid, self._leader()}):
            self._commit(upto)

    def _tell_logged(self) -> None:
        """Tell the followers whose clients wait (they forwarded writes not yet logged) and
        that read LOGGED, each a quorum with us, how far our log is durable; not if that is
        committed already (the COMMIT is on its way). Once all we proposed is logged, no
        forwarded write waits on our log any more, whether we told anyone or not."""
        if self.established and not self.ahead and self.logged_zxid > self.commit_zxid:
            note = Logged(self.logged_zxid)
            for sid in self.forwarders:
                lrn = self.learners.get(sid)
                if lrn is not None and lrn.stage in _SYNCED and not lrn.observer \
                        and lrn.features & READS_LOGGED \
                        and self.quorum.has_quorum({self.sid, sid}):
                    self._send(sid, note)
        if self.logged_zxid >= self.proposed_zxid:
            self.forwarders.clear()

    def _learner_tick(self, now: int) -> None:
        limit = (self.sync_limit if self.stage == SyncStage.SERVING
                 else self.init_limit) * self.tick_ms
        if now - self.leader_heard > limit:
            self._look(now)
        elif self.stage == SyncStage.INFO and self.leader is not None:
            # The leader may still have been finishing its election when we first asked.
            self._send(self.leader, FollowerInfo(self.sid, self.accepted_epoch, self.last_zxid,
                                                 self.is_observer))
