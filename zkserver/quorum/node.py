"""An ensemble member's commit path: the sans-IO ZAB `Peer` wired to Trio links, the disk and
the request engine of the `Server` that holds it.

The peer decides; this driver carries out. Every input (a message, a lost link, a tick, a log
write made durable, the leader's own writes) goes to the peer through `_input`, at once, and
the `Ready` batches it makes are carried out right there (`_run_ready`, etcd's node loop run in
place) in the order `zkserver.quorum.ready` prescribes: epochs to a small fsynced file (off the
event loop, by the `_executor` task; that batch's messages, and every batch after it, wait for
it), log writes, truncations and snapshot installs to the
group committer (`storage.group_commit`: consecutive batches share a write and an fsync, off the
event loop; the same snapshot policy as a standalone server's), committed transactions
to the engine (which is how replies and watch notifications go out on every server; the digest
after them goes back to the peer), messages to the election or quorum links, role changes to
the engine (serve, forward writes to the leader, or refuse clients), and deliveries (forwarded
writes, sync replies, session touches) to the engine.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import trio

from zkserver import txn as txnmod
from zkserver.engine import Engine, handshake
from zkserver.quorum import membership, replica
from zkserver.quorum import messages as M
from zkserver.quorum import quorum_tls as quorumtls
from zkserver.quorum.digests import DigestMismatch
from zkserver.quorum.history import History
from zkserver.quorum.membership import Membership
from zkserver.quorum.peer import Peer
from zkserver.quorum.quorum_auth import QuorumAuth
from zkserver.quorum.ready import (
    Append,
    Disconnect,
    Install,
    Ready,
    RoleChange,
    Send,
    SendSnapshot,
    Truncate,
    early_commit,
)
from zkserver.quorum.reconfig import LeaderView
from zkserver.quorum.roles import LearnerStage, Role
from zkserver.quorum.transport import Links, QuorumTLS
from zkserver.storage import snapshot as snapmod
from zkserver.storage.group_commit import GroupCommitter
from zkserver.storage.recovery import Recovered, recover
from zkserver.storage.snapshot_policy import SnapshotPolicy
from zkserver.storage.txnlog import read_segment, segments
from zkserver.tree.datatree import DataTree
from zkserver.txn import Txn

if TYPE_CHECKING:
    from zkserver.server.flush import Flusher
    from zkserver.server.server import Server

log = logging.getLogger(__name__)

PEER_STATES = {Role.LOOKING: "looking", Role.LEADING: "leading", Role.FOLLOWING: "following",
               Role.OBSERVING: "observing"}
ROLE_MODES = {Role.LOOKING: "looking", Role.LEADING: "leader", Role.FOLLOWING: "follower",
              Role.OBSERVING: "observer"}
POLL_S = 0.05  # how often the peer's timers are checked (a leader's ping tick aside)
SNAP_WINDOW = 4  # snapshot chunks that may wait in a link's queue while a SNAP streams


class StepScope:
    """A driver step's `with` block, reusable and nestable: messages to members are held
    (`Links.hold`) and, with a flusher, replies to clients too; at the end of the outermost
    one `before` runs (the peer's pending batches are carried out), then the replies leave,
    then the messages, then `after` runs (the member's log operations). A plain class: the
    generator-based context managers it replaces, entered three deep for every message, were
    about a tenth of a follower's profile samples."""

    __slots__ = ("links", "after", "flusher", "before")

    def __init__(self, links: Links, after: Callable[[], None],
                 flusher: Flusher | None = None,
                 before: Callable[[], None] | None = None) -> None:
        self.links = links
        self.after = after
        self.flusher = flusher
        self.before = before

    def __enter__(self) -> None:
        self.links.hold()
        if self.flusher is not None:
            self.flusher.__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            if self.before is not None and exc[0] is None and self.links.outermost():
                self.before()
        finally:
            try:
                if self.flusher is not None:
                    self.flusher.__exit__(*exc)
            finally:
                try:
                    self.links.release()
                finally:
                    self.after()


class Member:
    """The commit path of an ensemble member (see `server.commit_path.CommitPath`).

    No snapshot of the replayed log at start-up: its tail may not be committed (ZAB decides)."""

    keeps_history: ClassVar[bool] = True  # the replayed log serves DIFF syncs
    engine_class: ClassVar[type[Engine]] = Engine

    def __init__(self, server: Server, recovered: Recovered) -> None:
        config = self.config = server.config
        self.disk = server.disk
        self.snap_dir = server.snap_dir
        self.log_dir = server.log_dir
        self.now = server.now
        self.wall = server.wall
        self.flusher = server.flusher  # replies made in a step leave as it ends (server/flush.py)
        engine = server.engine
        self.engine = engine
        engine.join_ensemble(replica.Member())
        engine.tree.track_digest()
        self.txnlog = server.txnlog
        self.snapshots = SnapshotPolicy(self.disk, self.snap_dir, config.snap_count,
                                        lambda: self.engine.tree, self.wall)
        self.committer: GroupCommitter[Txn] = GroupCommitter(
            self.txnlog, self.snapshots, self._logged, lambda t: t)
        self.epoch_path = os.path.join(self.snap_dir, "epochs")
        accepted, current = self._read_epochs()
        me = config.server_id
        quorum = config.quorum_verifier()
        self.config_version = config.config_version
        self.config_data = membership.config_data(config, config.config_version)
        self.membership = Membership.of(config, config.config_version)
        self.files_lock = trio.Lock()  # dynamic config files are rewritten one change at a time
        self.voters = set(quorum.voters)
        self.peer = Peer(me, quorum,
                         history=History(recovered.txns, recovered.snapshot_zxid),
                         tick_ms=config.tick_time, init_limit=config.init_limit or 10,
                         sync_limit=config.sync_limit or 5, accepted_epoch=accepted,
                         current_epoch=current, config_version=config.config_version,
                         reconfig_enabled=config.reconfig_enabled,
                         config_text=self.config_data,
                         thrifty_ms=config.thrifty_broadcast_ms)
        others = {s.sid: s for s in config.servers.values() if s.sid != me}
        mine = config.servers[me]
        host = "0.0.0.0" if config.quorum_listen_on_all_ips else mine.host
        quorum_tls = self._quorum_tls(config)
        auth = QuorumAuth(config.sasl.quorum) if config.sasl.quorum is not None else None
        self.election = Links(me, {sid: (s.host, s.election_port) for sid, s in others.items()},
                              (host, mine.election_port), self._message, None, "election",
                              quorum_tls, auth)
        self.quorum = Links(me, {sid: (s.host, s.quorum_port) for sid, s in others.items()},
                            (host, mine.quorum_port), self._message, self._lost, "quorum",
                            quorum_tls, auth, self._step)
        self.steps = StepScope(self.quorum, self._write_log, self.flusher, self._ready_pending)
        self.holds = StepScope(self.quorum, self._write_log)  # a step without the flusher
        self.ready_wake = trio.Event()  # a batch is parked for the executor
        # When what a leader holds back for spares must leave (peer ms), and the scope of the
        # task that waits for it, whose deadline follows (see `_thrifty`)
        self.thrifty_at: int | None = None
        self.thrifty_scope = trio.CancelScope()
        self.parked: Ready | None = None  # a batch waiting for its epochs to be durable
        self.busy = False  # a batch is being carried out (see `_run_ready`)
        self.log_ops: list[Any] = []  # the steps' log operations, done once their messages left
        self.mode = "looking"
        self.nursery: trio.Nursery | None = None  # where snapshot streams run
        self.streams: dict[int, trio.CancelScope] = {}  # learner -> its SNAP being sent
        self.held: dict[int, list[Any]] = {}  # learner -> messages waiting behind its SNAP
        self.incoming: Any = None  # the .tmp file of a SNAP being received
        self.read_only_wait: trio.CancelScope | None = None  # looking, not yet read-only

    @staticmethod
    def _quorum_tls(config: Any) -> QuorumTLS | None:
        """sslQuorum=true: TLS between members from the `ssl.quorum.*` keys."""
        return quorumtls.build(config)

    @property
    def outstanding_limit(self) -> int:
        limit = int(self.config.global_outstanding_limit)
        if self.config.peer_type == "participant" and len(self.voters) > 2:
            # ZooKeeper's leader and followers share globalOutstandingLimit among the others
            return limit // (len(self.voters) - 1)
        return limit

    @property
    def expires_sessions(self) -> bool:
        # Both: the engine has taken the role (its sessions got fresh deadlines in `_become`),
        # and the peer still leads.
        return self.mode == "leader" and self.peer.role == Role.LEADING and self.peer.serving

    @property
    def serving(self) -> bool:
        return self.engine.serving

    def metrics(self) -> dict[str, object]:
        peer = self.peer
        if peer.role == Role.LOOKING:
            return {}  # ZooKeeper's read-only server is no quorum server: no peer_state
        phase = "broadcast" if peer.serving else "synchronization"
        out: dict[str, object] = {"peer_state": f"{PEER_STATES[peer.role]} - {phase}"}
        if peer.role == Role.LEADING:
            learners = list(peer.learners.values())
            out.update({
                "learners": len(learners),
                "synced_followers": sum(1 for lr in learners
                                        if lr.stage == LearnerStage.ACKED and not lr.observer),
                "synced_non_voting_followers": 0,
                "synced_observers": sum(1 for lr in learners
                                        if lr.stage == LearnerStage.ACKED and lr.observer),
                "pending_syncs": len(peer.pending_syncs),
            })
        return out

    # -- epochs -------------------------------------------------------------------------------

    def _read_epochs(self) -> tuple[int, int]:
        if not self.disk.exists(self.epoch_path):
            return 0, 0
        accepted, current = self.disk.read(self.epoch_path).split()
        return int(accepted), int(current)

    def _write_epochs(self, accepted: int, current: int) -> None:
        tmp = self.epoch_path + ".tmp"
        f = self.disk.open_log(tmp)
        f.truncate(0)
        f.write(f"{accepted} {current}\n".encode())
        f.sync()
        f.close()
        self.disk.rename(tmp, self.epoch_path)
        self.disk.sync_dir(self.snap_dir)

    # -- the peer's inputs --------------------------------------------------------------------

    def _input(self, event: Callable[..., object], *args: Any) -> None:
        """Give the peer one input, and carry out what it decides (see `_run_ready`): at once,
        or, inside an outer step (the messages one read of a link brought), once at that
        step's end, for all of them.

        That is what batches the writes followers forward: the REQUESTs one read brings are
        prepared together and go out as one PROPOSALS per follower, which its members decode,
        log and acknowledge once. Carried out per message, a create through a follower, 8 x
        64 in flight, was a PROPOSAL of its own (168,275 messages for as many transactions)
        and cost the leader 120 µs of CPU, the followers 90 and 55.

        What the step made leaves in this order: replies to clients (the flusher, inner), then
        messages to members (the cork, outer), then the log writes (`_write_log`). A reply to
        a committed write is what its client waits for, while the COMMITs that go with it only
        let followers apply; on the 2-core machine each send to a member woke that member,
        which took the CPU from the leader before the reply left (170 µs of a 1.2 ms write,
        measured in a 3-server ensemble)."""
        flusher = self.flusher
        if self.quorum.holding() and (flusher is None or flusher.depth):
            # Inside an outer step already (the messages of one read, say): its end carries
            # out what this makes, and a step of our own would only count its holds up and
            # down again (ten calls for every member message).
            self._give(event, args)
            return
        with self._step():
            self._give(event, args)
            self._ready_pending()

    def _give(self, event: Callable[..., object], args: tuple[Any, ...]) -> None:
        """The peer's input itself, after the session touches the engine has collected."""
        try:
            touched = self.engine.take_touched()
            if touched:
                self.peer.touch(touched)
            event(*args)
        except DigestMismatch as e:
            log.critical("%s", e)
            raise

    def _ready_pending(self) -> None:
        """The end of an outer step: carry out what its inputs made the peer decide."""
        if self.peer.has_ready():
            self._run_ready()

    def _step(self) -> StepScope:
        """A driver step around one input or several (the messages one read brought): what
        they make leaves at its end, as `_input` orders it."""
        return self.steps

    def _run_ready(self) -> None:
        """Carry out the peer's batches now, in the task that gave the input.

        Every input comes from a task of ours (a link's reader, the ticker, a connection
        after its engine step) or the group committer's callback, never from inside a batch being
        carried out: one that arrives meanwhile (a delivery proposing forwarded writes) finds
        `busy` set and its batch is taken by the loop below. Done in place, a message's
        answer leaves in the same scheduling pass it arrived in; a hop through an executor
        task cost every member-to-member message an extra pass. Only a batch with epochs to
        persist waits: it is parked for `_executor`, which owns `busy` until it is done."""
        if self.busy:
            return
        self.busy = True
        peer = self.peer
        with self.holds:  # messages leave in one write per member, then the log operations
            while peer.has_ready():
                r = peer.ready()
                if r.epochs is not None:
                    self.parked = r
                    self.ready_wake.set()
                    return
                self._execute(r)
        self.busy = False
        self._arm_thrifty()

    def _arm_thrifty(self) -> None:
        """Move the deadline `_thrifty` waits for to the peer's, if it changed."""
        at = self.peer.thrifty_deadline()
        if at != self.thrifty_at:
            self.thrifty_at = at
            self.thrifty_scope.deadline = math.inf if at is None \
                else trio.current_time() + (at - self.now()) / 1000

    def _message(self, sid: int, msg: Any) -> None:
        self._input(self.peer.receive, sid, msg, self.now())

    def _lost(self, sid: int) -> None:
        self._stop_stream(sid)
        self._input(self.peer.disconnected, sid)

    def submit(self) -> None:
        """Client writes prepared here go to ZAB (only a leader prepares any); and whatever the
        engine asked of the peer meanwhile (a leader's own `sync`) gets carried out."""
        engine = self.engine
        if engine.to_commit:
            self._input(self._propose, engine.take_commits())
        elif self.peer.has_ready():
            self._run_ready()

    def _propose(self, batch: list[tuple[Txn, Any, Any]]) -> None:
        """Propose what the engine prepared. Leadership may have ended since (a batch's role
        change is carried out before its deliveries, so writes forwarded to the old leader can
        still be prepared after it stepped down): the peer then takes none, and they are
        dropped unanswered, as the clients' connections to a non-serving server are."""
        taken = self.peer.propose_batch([txn for txn, _, _ in batch], self.now())
        if taken:
            self.engine.proposed(batch[:taken])

    # -- the peer's outputs -------------------------------------------------------------------

    async def _executor(self) -> None:
        """Carry out a batch whose epochs must be durable before its messages leave: the
        epoch file is written off the event loop, then the batch and any that queued up
        behind it are carried out."""
        while True:
            await self.ready_wake.wait()
            self.ready_wake = trio.Event()
            r = self.parked
            if r is None:
                continue
            self.parked = None
            assert r.epochs is not None
            await trio.to_thread.run_sync(self._write_epochs, r.epochs.accepted,
                                          r.epochs.current)
            with self.flusher:
                self._execute(r)
                self.busy = False
                self._run_ready()  # its end hands this batch's log operations over too

    def _execute(self, r: Ready) -> None:
        self.log_ops += r.log
        if r.log and self.peer.role == Role.LEADING and self.peer.forwarders:
            self._write_log(at_once=True)
        early = self._commit_first(r) if r.committed else None
        if r.committed:
            digest = self.engine.apply_txns(r.committed, self.now())
            for txn in r.committed:
                if type(txn.op) is txnmod.ReconfigTxn:
                    self._reconfigured(Membership.parse(txn.op.data))
            self._input(self.peer.applied, r.committed[-1].zxid, digest)
        peer = self.peer
        if peer.role == Role.LOOKING and peer.config_text \
                and peer.config_version > self.membership.version:
            # The election took a newer configuration in force from a voter: links to its
            # members (their votes count now), kept on disk as ZooKeeper keeps it.
            self._reconfigured(Membership.parse(peer.config_text, peer.config_version))
        for net in r.network:
            if net is early:
                continue
            if type(net) is Send:
                if type(net.msg) is M.Notification:
                    self.election.send(net.to, net.msg)
                elif net.to in self.held:
                    self.held[net.to].append(net.msg)  # behind a snapshot still streaming
                else:
                    self.quorum.send(net.to, net.msg)
            elif type(net) is SendSnapshot:
                self._send_snapshot(net.to, net.zxid)
            elif type(net) is Disconnect:
                self._stop_stream(net.sid)
                self.quorum.drop(net.sid)
        for role in r.roles:
            self._become(role)
        if r.deliveries:
            self._deliver(r.deliveries)

    def _commit_first(self, r: Ready) -> Send | None:
        """On a leader none of whose clients waits for the batch committed (writes its
        followers forwarded): write the first COMMIT now, before applying (ZooKeeper's
        leader commits, then applies), and return it so it is not sent again.

        The first learner is the one that forwarded last (`Peer._hears_first`): its client
        waits for that COMMIT, while the leader's own apply answers nobody. Applied first, the
        COMMIT of a write through a follower waited a median 27 µs for the leader's apply
        and 19 µs more for the end of its step (instrumented, 3 servers on the 2-core
        machine). Sent first, the latency through a follower was lower in 8 of 10, 15 of 20
        and 9 of 20 alternating pairs of runs (median differences -58 to +5 µs): a small
        gain, inside this machine's noise in one series of three.

        Only the first COMMIT goes early: sent to every follower before the apply, the others
        took the second core from the follower whose client waits (measured in an earlier
        session). Where the batch answers a client of the leader, its reply goes first, as
        before."""
        if not r.network or self.peer.role != Role.LEADING \
                or self.engine.answers_here(r.committed):
            return None
        net = early_commit(r.network, self.held)
        if net is not None:
            self.quorum.send(net.to, net.msg)
            self.quorum.flush(net.to)
        return net

    def _write_log(self, at_once: bool = False) -> None:
        """Hand the log operations of the steps carried out to the group committer, once
        their messages have left, so that consecutive appends share a round; while an outer
        step holds the cork, its end does this. Nothing the peer sends depends on a log write
        of the same batch: acks and commits wait for `logged`.

        `at_once`: a leader's appends, before its PROPOSALs leave, while writes forwarded by
        followers wait (`Peer.forwarders`). Such a follower commits once its own log and the
        leader's are durable (LOGGED, `Peer`), so the leader's write is on its clients' path:
        started after the PROPOSALs (ZooKeeper's order), it waited while the woken followers
        held both cores of the 2-core machine (150 µs, traced). Started first, writes through
        a follower were 50-61 µs faster (medians of 12 alternating pairs, 11 and 9 of them
        faster, 3 servers). Writes of the leader's own clients keep ZooKeeper's order: for
        them the write first was 14 µs slower (4 of 10 pairs faster)."""
        if (self.quorum.holding() and not at_once) or not self.log_ops:
            return
        ops, self.log_ops = self.log_ops, []
        txns: list[Txn] = []
        for item in ops:
            if type(item) is Append:
                txns += item.txns
                continue
            if txns:
                self.committer.append(txns)
                txns = []
            if type(item) is Truncate:
                self.committer.then(lambda t=item: self._truncate(t))
            else:
                self.committer.then(lambda op=item: self._install_chunk(op))
        if txns:
            self.committer.append(txns)

    # -- SNAP: streaming the tree to a learner -----------------------------------------------

    def _send_snapshot(self, to: int, zxid: int) -> None:
        """Stream the tree to `to`; what the peer sends it meanwhile waits in `held`."""
        assert self.engine.tree.last_zxid >= zxid, "asked for a state the tree has not reached"
        assert self.nursery is not None
        self._stop_stream(to)
        self.held[to] = []
        scope = self.streams[to] = trio.CancelScope()
        self.nursery.start_soon(self._stream_snapshot, to, scope)

    def _stop_stream(self, to: int) -> None:
        scope = self.streams.pop(to, None)
        if scope is not None:
            scope.cancel()
        self.held.pop(to, None)

    async def _stream_snapshot(self, to: int, scope: trio.CancelScope) -> None:
        """A fuzzy snapshot, a chunk per step: writes go on between chunks (the learner replays
        the transactions after the snapshot's zxid over it, which makes it exact). A chunk is
        made only once the link has taken all but `SNAP_WINDOW` of those sent before, so a
        slow learner holds a few chunks of the tree image in memory here, never the whole."""
        with scope:
            await trio.sleep(0)  # (stopped before it began: nothing to send)
            writer = snapmod.SnapshotWriter(self.engine.tree, self.wall())
            chunks = writer.chunks()
            chunk = next(chunks)
            first = True
            sent = 1
            for following in chunks:
                self.quorum.send(to, M.Snap(writer.zxid, chunk, first, False))
                chunk, first = following, False
                sent += 1
                await self._window(to)
            self.quorum.send(to, M.Snap(writer.zxid, chunk, first, True))
            log.info("server %d: SNAP at %#x sent to server %d in %d chunks (tree now at %#x)",
                     self.peer.sid, writer.zxid, to, sent, self.engine.tree.last_zxid)
            del self.streams[to]
            for msg in self.held.pop(to):
                self.quorum.send(to, msg)

    async def _window(self, to: int) -> None:
        """Yield, then wait while the link to `to` still queues `SNAP_WINDOW` messages (a cut
        link ends the stream through `_lost`)."""
        await trio.sleep(0)
        await self.quorum.wait_room(to, SNAP_WINDOW)

    def _reconfigured(self, new: Membership) -> None:
        """A reconfiguration committed: links to the new members, none to those gone, and the
        membership kept on disk (zoo.cfg.dynamic.<version>) as ZooKeeper keeps it."""
        me = self.peer.sid
        self.membership = new
        self.config = attrs.evolve(self.config, servers=dict(new.servers),
                                   groups=dict(new.groups), weights=dict(new.weights))
        self.voters = set(new.verifier().voters)
        others = {sid: s for sid, s in new.servers.items() if sid != me}
        self.election.set_peers({sid: (s.host, s.election_port) for sid, s in others.items()})
        self.quorum.set_peers({sid: (s.host, s.quorum_port) for sid, s in others.items()})
        log.info("server %d: membership version %#x: %s", me, new.version,
                 ", ".join(membership.membership_lines(new.servers, new.groups, new.weights)))
        if new.version > self.config_version:
            self._new_config_version(new.version)

    def _leader_view(self) -> LeaderView:
        """What prep checks a reconfig against (only while leading)."""
        peer = self.peer
        current = attrs.evolve(self.membership, version=peer.config_version)
        return LeaderView(current, peer.last_seen_version, peer.synced_voters(),
                          self.config.standalone_enabled)

    def _become(self, b: RoleChange) -> None:
        engine = self.engine
        self.mode = ROLE_MODES[b.role]
        log.info("server %d: %s (leader %s, epoch %d)", self.peer.sid, self.mode, b.leader,
                 b.epoch)
        self._read_only_after_grace(b.role == Role.LOOKING)
        if engine.read_only:
            handshake.end_local_sessions(engine)  # read-only sessions end with the mode
        engine.stop_serving()
        if b.role == Role.LEADING:
            engine.lead(b.epoch, self.now(), self.peer.local_sync)
        elif b.role != Role.LOOKING:
            engine.follow(replica.Forward(self._to_leader),
                          lambda token: self._to_leader(M.SyncRequest(token)))
        leads = b.role == Role.LEADING and self.config.reconfig_enabled
        engine.prep.leader_view = self._leader_view if leads else None
        if b.role != Role.LOOKING:
            text = self.peer.config_text
            if text and self.peer.config_version > self.membership.version:
                self._reconfigured(Membership.parse(text))  # (applied before it committed)
            if b.config_version > self.config_version:
                self._new_config_version(b.config_version)
            membership.show(engine.tree, self.config_data, self.config_version, self.wall())

    def _read_only_after_grace(self, looking: bool) -> None:
        """readonlymode: a member that is still looking after a grace period of
        max(2000 ms, tickTime) serves read-only clients, as ZooKeeper's QuorumPeer starts its
        ReadOnlyZooKeeperServer; an election that ends sooner (a leader restarted, say) never
        shows clients a read-only server. Any other role change cancels the wait."""
        if self.read_only_wait is not None:
            self.read_only_wait.cancel()
            self.read_only_wait = None
        if looking and self.config.readonly_mode_enabled:
            assert self.nursery is not None
            scope = self.read_only_wait = trio.CancelScope()
            self.nursery.start_soon(self._serve_read_only, scope)

    async def _serve_read_only(self, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(max(2000, self.config.tick_time) / 1000)
            if self.peer.role == Role.LOOKING and self.read_only_wait is scope:
                self.read_only_wait = None
                self.engine.serve_read_only()  # reads for clients that accept one
                self.mode = "read-only"
                log.info("server %d: read-only", self.peer.sid)

    def _new_config_version(self, version: int) -> None:
        """The membership has a new version: show it, and keep it on disk as ZooKeeper does
        (zoo.cfg.dynamic.<version>, zoo.cfg pointing at it), off the event loop."""
        self.config_version = version
        self.config_data = membership.config_data(self.config, version)
        if self.config.source and os.path.isfile(self.config.source):
            assert self.nursery is not None
            self.nursery.start_soon(self._write_config_files, version)

    async def _write_config_files(self, version: int) -> None:
        try:
            async with self.files_lock:
                config = self.config
                path = await trio.to_thread.run_sync(membership.keep, config, version)
                self.config = attrs.evolve(self.config, dynamic_config_file=path)
        except OSError as e:
            log.error("server %d: cannot write the dynamic config file for version %#x: %s",
                      self.peer.sid, version, e)
        else:
            log.info("server %d: membership version %#x kept in %s", self.peer.sid, version,
                     path)

    def _to_leader(self, msg: Any) -> None:
        leader = self.peer.leader
        if leader is not None:
            self.quorum.send(leader, msg)

    def _deliver(self, deliveries: Iterable[Any]) -> None:
        engine = self.engine
        now = self.now()
        for d in deliveries:
            msg = d.msg
            if type(msg) is M.Request:
                engine.remote_write(msg, now, self.wall())
            elif type(msg) is M.SyncReply:
                engine.sync_answered(msg.token, msg.zxid, now)
            elif type(msg) is M.PingReply:
                engine.touch_sessions((session_id for session_id, _ in msg.touches), now)
        self.submit()  # the forwarded writes, all in one proposal

    async def _install_chunk(self, op: Install) -> None:
        """A chunk of the leader's snapshot goes to a .tmp file as it comes; with the last,
        the file becomes our snapshot, the log restarts after it, and the tree is loaded from
        it — all off the event loop."""
        path = os.path.join(self.snap_dir, snapmod.snapshot_name(op.zxid))
        if op.first:
            if self.incoming is not None:
                await trio.to_thread.run_sync(self.incoming.close)  # one left unfinished
            self.incoming = await trio.to_thread.run_sync(snapmod.open_tmp, self.disk, path)
        f = self.incoming
        assert f is not None, "the peer passes on no chunk of a snapshot it saw no start of"
        await trio.to_thread.run_sync(f.write, op.chunk)
        if not op.last:
            return
        self.incoming = None
        await self.snapshots.stop()  # ours would describe the tree being replaced
        await trio.to_thread.run_sync(snapmod.finish, self.disk, f, path)
        await trio.to_thread.run_sync(self._reset_log, op.zxid)
        self.snapshots.reset()
        self.engine.reset_to(await trio.to_thread.run_sync(self._load_tree, path))
        log.info("server %d: installed the leader's snapshot at %#x", self.peer.sid, op.zxid)
        self._input(self.peer.installed, op.zxid)

    def _load_tree(self, path: str) -> DataTree:
        tree = snapmod.load(self.disk, path)
        tree.track_digest()
        return tree

    def _rebuilt_tree(self) -> DataTree:
        """The state after a truncation, as a restart would find it on disk."""
        tree = recover(self.disk, self.snap_dir, self.log_dir).tree
        tree.track_digest()
        return tree

    # -- tasks ----------------------------------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        await nursery.start(self.committer.run)
        await nursery.start(self.election.run)
        await nursery.start(self.quorum.run)
        store_files = quorumtls.store_files(self.config)
        if store_files is not None:
            nursery.start_soon(quorumtls.watch, self.config, store_files,
                               (self.election, self.quorum))
        nursery.start_soon(self._executor)
        self._input(self.peer.start, self.now())
        nursery.start_soon(self._ticker)
        nursery.start_soon(self._thrifty)

    async def _ticker(self) -> None:
        """Tick the peer every POLL_S, except a leader, which ticks (and pings) every half tick.

        An election's timers (200 ms finalize wait, 400 ms notification resends) and a new
        follower's FOLLOWERINFO retries are much finer than a tick: driven only every half tick
        (1 s at tickTime 2000) they made every election and every join wait for the next tick,
        and let servers decide up to a second apart (ZooKeeper polls these every 100-200 ms).
        """
        half = self.config.tick_time / 2000
        next_full = trio.current_time() + half
        while True:
            await trio.sleep(min(POLL_S, half))
            now = trio.current_time()
            if now >= next_full:
                next_full = max(next_full + half, now)
            elif self.peer.role == Role.LEADING:
                continue
            self._input(self.peer.tick, self.now())

    async def _thrifty(self) -> None:
        """Give the peer `thrifty_due` when what a leader holds back for its spare followers
        must leave (`zkserver.quorum.thrifty`). Each step moves the deadline of the scope this
        waits in to the peer's (`_run_ready`), so that the task wakes only when it passes:
        most held proposals leave earlier, with a COMMIT."""
        while True:
            with self.thrifty_scope:
                await trio.sleep_forever()
            self.thrifty_scope = trio.CancelScope()
            self.thrifty_at = None
            self._input(self.peer.thrifty_due, self.now())
            self._arm_thrifty()  # (what is not due yet, the step made nothing to carry out)

    def _logged(self, txns: list[Txn]) -> None:
        for txn in txns:
            txnmod.forget_encoding(txn)  # sent and logged: the window keeps the Txn only
        self._input(self.peer.logged, txns[-1].zxid)

    async def _truncate(self, op: Truncate) -> None:
        """Drop the log after `op.zxid`; rebuild the tree from disk if it applied any of it."""
        await self.snapshots.stop()  # it may be of a state being truncated away
        await trio.to_thread.run_sync(self._truncate_files, op.zxid)
        if op.rebuild:
            self.engine.reset_to(await trio.to_thread.run_sync(self._rebuilt_tree))
        self._input(self.peer.truncated, op.zxid)

    def _truncate_files(self, zxid: int) -> None:
        """Drop every logged transaction after `zxid` from the segments on disk."""
        self.txnlog.roll()
        for first, path in segments(self.disk, self.log_dir):
            if first > zxid:
                self.disk.remove(path)
                continue
            scan, _ = read_segment(self.disk, path)
            for off, payload in scan:
                if txnmod.decode(payload).zxid > zxid:
                    self.disk.truncate(path, off)
                    break
        for snap_zxid, path in snapmod.snapshots(self.disk, self.snap_dir):
            if snap_zxid > zxid:
                self.disk.remove(path)

    def _reset_log(self, zxid: int) -> None:
        self.txnlog.roll()
        for _, path in segments(self.disk, self.log_dir):
            self.disk.remove(path)
        for snap_zxid, path in snapmod.snapshots(self.disk, self.snap_dir):
            if snap_zxid != zxid:
                self.disk.remove(path)
