"""A seeded, deterministic simulator of a whole ZAB ensemble in one process.

Every server is the real sans-IO `Peer` with a real `DataTree`; around them the simulator plays
the driver (carrying out each `Ready` batch), two clocks per server, a network and disks. The
network delays, drops, duplicates and reorders election messages (they tolerate it, as
UDP-like notifications), and treats a quorum link like a TCP connection: FIFO while it lasts,
and a fault breaks it (every message in flight is lost and both ends are told). Disks make
logged transactions durable after a delay, and a crash loses what was not yet durable. Faults:
crashes and restarts, partitions, link resets, message chaos, and wall-clock jumps.

Each server has a monotonic clock (the simulation's time plus a per-server origin; the only
time the ZAB core sees) and a wall clock (an offset from it that `jump_wall` moves by minutes,
forwards or backwards, as an NTP step or a VM resume would). Transactions a leader creates are
stamped with its wall clock, as ctime/mtime are.

After every step the simulator checks ZAB's invariants and raises `InvariantViolation` with the
seed, so a failing seed replays exactly:

* one established leader per epoch, never a voter of weight 0 in the configuration it leads;
* every server serving an epoch serves it with a membership version no older than the one its
  leader was established with, never 0 (the servers run with reconfigEnabled) and never going
  back;
* membership changes (`reconfigure`: a ReconfigTxn the leader proposes, checked as prep checks
  it): a serving server is a member of the configuration it holds in force, a leader a voter;
  a serving learner's role is the one it holds (an observer observes, a voter follows); no
  server runs behind a reconfiguration it knows is committed; and the configuration
  sequence is the committed history's, so every server goes through the same one;
* no committed transaction is ever lost: every leader established later has it;
* the states of serving servers agree: one's applied sequence is a prefix of the other's;
* every applied sequence is in strictly increasing zxid order (total and primary order).
"""

from __future__ import annotations

import bisect
import heapq
import pickle
import random
from collections.abc import Callable
from typing import Any

import attrs

from zkserver.config import OBSERVER, PARTICIPANT, ServerSpec
from zkserver.proto.records import ReconfigRequest
from zkserver.quorum import reconfig
from zkserver.quorum.history import History
from zkserver.quorum.membership import Membership
from zkserver.quorum.messages import Notification, Request, Snap
from zkserver.quorum.peer import Peer
from zkserver.quorum.quorum import Hierarchical, Majority, QuorumVerifier
from zkserver.quorum.ready import (
    EMPTY,
    Append,
    Disconnect,
    Install,
    Ready,
    RoleChange,
    Send,
    SendSnapshot,
    Truncate,
)
from zkserver.quorum.roles import Role, SyncStage
from zkserver.storage.snapshot import rebuild_indexes
from zkserver.tree.datatree import CONFIG_PATH, DataTree
from zkserver.txn import CreateTxn, ReconfigTxn, SetDataTxn, Txn

TICK = 100
WALL_EPOCH = 1_700_000_000_000  # the simulated wall clocks start near this (ms since 1970)


class InvariantViolation(AssertionError):
    pass


def spec(sid: int, observer: bool = False) -> ServerSpec:
    """The made-up addresses of simulated server `sid` (what its `server.N` line says)."""
    return ServerSpec(sid, f"10.0.0.{sid}", 2888, 3888, OBSERVER if observer else PARTICIPANT,
                      None, 2181)


def membership_of(quorum: QuorumVerifier) -> Membership:
    servers = {sid: spec(sid, sid in quorum.observers)
               for sid in sorted(quorum.voters | quorum.observers)}
    if isinstance(quorum, Hierarchical):
        weights = {sid: quorum.weight(sid) for sid in quorum.voters}
        return Membership(servers, dict(quorum.groups), weights)
    return Membership(servers)


class SimStateMachine:
    """A DataTree plus the sequence of transactions it holds (for the invariant checks)."""

    def __init__(self, config: bytes = b"") -> None:
        tree = DataTree()
        tree.nodes[CONFIG_PATH].data = config  # what every server shows before any reconfig
        self.reset(tree, [])

    def reset(self, tree: DataTree, applied: list[tuple[int, int]]) -> None:
        self.tree = tree
        self.tree.track_digest()
        self.applied = applied  # (zxid, txn id) in apply order
        self.checked = 0  # how much of `applied` the invariant checks have seen

    def apply(self, txn: Txn) -> None:
        self.tree.apply(txn)
        self.applied.append((txn.zxid, txn.cxid))

    def digest(self) -> int:
        assert self.tree.digest is not None
        return self.tree.digest

    def snapshot(self) -> tuple[int, bytes]:
        return self.tree.last_zxid, pickle.dumps((self.tree.nodes, self.tree.sessions,
                                                  self.tree.last_zxid, list(self.applied)))

    def install(self, state: bytes) -> None:
        nodes, sessions, last_zxid, applied = pickle.loads(state)
        tree = DataTree()
        tree.nodes = nodes
        tree.sessions = sessions
        tree.last_zxid = last_zxid
        rebuild_indexes(tree)
        self.reset(tree, applied)


class Disk:
    """A server's durable state: epochs, a base snapshot and the log after it."""

    def __init__(self) -> None:
        self.accepted_epoch = 0
        self.current_epoch = 0
        self.config_version = 0  # the membership version (a dynamic config file's name)
        self.membership: Membership | None = None  # the dynamic file's servers (None: initial)
        self.served_version = 0  # the newest membership version it served with
        self.snapshot: bytes | None = None
        self.snapshot_zxid = 0
        self.log: list[Txn] = []
        self.partial: list[bytes] = []  # a snapshot still arriving (a .tmp file)
        self.pending: list[tuple[str, Any]] = []  # queued writes, in order


class Server:
    """One simulated process: the driver around its `Peer`."""

    def __init__(self, sim: Sim, sid: int) -> None:
        self.sim = sim
        self.sid = sid
        self.disk = Disk()
        self.up = False
        self.peer: Peer | None = None
        self.flush_due = False
        self.sm = SimStateMachine()
        self.mono_origin = sim.rng.randrange(1 << 40)  # monotonic clocks share no origin
        self.wall_offset = sim.rng.randrange(-5_000, 5_000)  # and wall clocks are a bit off
        self.stalled = False  # a disk that takes writes but makes none durable (`stall`)
        self.thrifty_at: int | None = None  # when the leader's held proposals must leave

    def mono(self) -> int:
        """The monotonic clock: the only time the ZAB core is given."""
        return self.sim.now + self.mono_origin

    def wall(self) -> int:
        """The wall clock, for ctime/mtime stamps only."""
        return WALL_EPOCH + self.sim.now + self.wall_offset

    def boot(self) -> None:
        """Start from what the disk holds, as a restarted process would."""
        self.sm = SimStateMachine(self.sim.initial.data())
        if self.disk.snapshot is not None:
            self.sm.install(self.disk.snapshot)
        for txn in self.disk.log:
            self.sm.apply(txn)
        membership = self.disk.membership or self.sim.initial
        self.peer = Peer(self.sid, membership.verifier(),
                         history=History(self.disk.log, self.disk.snapshot_zxid,
                                         self.sim.history_limit),
                         tick_ms=TICK, init_limit=10, sync_limit=5,
                         accepted_epoch=self.disk.accepted_epoch,
                         current_epoch=self.disk.current_epoch,
                         config_version=self.disk.config_version, reconfig_enabled=True,
                         config_text=membership.data(), thrifty_ms=self.sim.thrifty)
        self.thrifty_at = None
        self.up = True
        self.peer.start(self.mono())
        self.flush()

    def crash(self) -> None:
        self.up = False
        self.peer = None
        kept = self.sim.rng.randrange(len(self.disk.pending) + 1)
        for kind, arg in self.disk.pending[:kept]:  # some unsynced writes made it anyway
            self._write(kind, arg)
        self.disk.pending = []

    def _write(self, kind: str, arg: Any) -> None:
        d = self.disk
        if kind == "log":
            d.log.extend(arg)
        elif kind == "trunc":
            d.log = [t for t in d.log if t.zxid <= arg.zxid]
        elif kind == "install":
            if arg.first:
                d.partial = []
            d.partial.append(arg.chunk)
            if arg.last:  # the snapshot is complete: it replaces the log
                d.snapshot, d.snapshot_zxid, d.log = b"".join(d.partial), arg.zxid, []
                d.partial = []

    def flush(self) -> None:
        """Carry out what the peer decided: at once, or — as a driver whose executor task runs
        a little later would — after a few more inputs, as one batch."""
        if self.flush_due:
            return
        if self.sim.rng.random() < 0.2:
            self.flush_due = True
            self.sim.schedule(self.sim.rng.randrange(3), self._flush_now)
        else:
            self._flush_now()

    def _flush_now(self) -> None:
        self.flush_due = False
        peer = self.peer
        while peer is not None and self.up:
            ready = peer.ready()
            if ready is EMPTY:
                break
            self._execute(peer, ready)
        self._arm_thrifty()

    def _arm_thrifty(self) -> None:
        """Have `thrifty_due` come when the leader's held proposals must leave, as the
        driver's timer task does (a deadline that moved makes the earlier call a no-op)."""
        peer = self.peer
        at = peer.thrifty_deadline() if peer is not None and self.up else None
        if at is not None and at != self.thrifty_at:
            self.thrifty_at = at
            self.sim.schedule(max(at - self.mono(), 0), lambda: self._thrifty_due(at))

    def _thrifty_due(self, at: int) -> None:
        if not self.up or self.peer is None or self.thrifty_at != at:
            return
        self.thrifty_at = None
        self.peer.thrifty_due(self.mono())
        self.flush()

    def _execute(self, peer: Peer, r: Ready) -> None:
        sim = self.sim
        if r.epochs is not None:
            self.disk.accepted_epoch = r.epochs.accepted
            self.disk.current_epoch = r.epochs.current
        for op in r.log:
            if type(op) is Append:
                self.disk.pending.append(("log", list(op.txns)))
            elif type(op) is Truncate:
                self.disk.pending.append(("trunc", op))
            elif type(op) is Install:
                self.disk.pending.append(("install", op))
            sim.schedule(sim.rng.randrange(1, 20), self._sync_disk)
        if r.committed:
            for txn in r.committed:
                self.sm.apply(txn)
                if type(txn.op) is ReconfigTxn:  # committed: the driver's new dynamic file
                    self._keep_membership(Membership.parse(txn.op.data))
            peer.applied(r.committed[-1].zxid, self.sm.digest())
        for d in r.deliveries:
            if type(d.msg) is Request:  # a write a follower forwarded (`Sim._client`)
                op = sim.forwarded.pop(d.msg.session_id, None)
                if op is not None and peer.role == Role.LEADING and peer.established:
                    peer.propose(Txn(peer.next_zxid(), self.wall(), 0, d.msg.session_id, op))
        for net in r.network:
            if type(net) is Send:
                sim.send(self.sid, net.to, net.msg)
            elif type(net) is SendSnapshot:
                zxid, state = self.sm.snapshot()
                if zxid < net.zxid:
                    raise InvariantViolation(f"seed {sim.seed}: server {self.sid} asked to "
                                             f"snapshot {net.zxid:#x} holds only {zxid:#x}")
                cuts = sorted(sim.rng.sample(range(1, len(state)), sim.rng.randrange(3)))
                bounds = [0, *cuts, len(state)]
                for i in range(len(bounds) - 1):
                    sim.send(self.sid, net.to, Snap(zxid, state[bounds[i]:bounds[i + 1]],
                                                    i == 0, i == len(bounds) - 2))
            elif type(net) is Disconnect:
                sim.schedule(0, lambda to=net.sid: sim.break_link(self.sid, to))
        for role in r.roles:
            if role.role != Role.LOOKING:
                # (Against the versions it served with: a reconfiguration committed later in
                # the same batch may already be applied, and kept, by now.)
                if role.config_version < self.disk.served_version:
                    raise InvariantViolation(
                        f"seed {sim.seed}: server {self.sid} went back from membership "
                        f"version {self.disk.served_version:#x} to {role.config_version:#x}")
                self.disk.served_version = role.config_version
                if peer.config_text and role.config_version > self.disk.config_version:
                    # As node.Member does: a reconfiguration this server applied before it
                    # knew it committed (recovery replays the whole log) is kept once it
                    # serves with it, or a restart would pair the old members with the new
                    # version.
                    self._keep_membership(Membership.parse(peer.config_text,
                                                           role.config_version))
                self.disk.config_version = max(self.disk.config_version, role.config_version)
            sim.became(self.sid, role)

    def _keep_membership(self, membership: Membership) -> None:
        if membership.version > self.disk.config_version:
            self.disk.membership = membership
            self.disk.config_version = membership.version

    def _rebuild(self, zxid: int) -> None:
        """After TRUNC the state machine goes back to `zxid`: the snapshot and the (now cut)
        log on disk, as a restart would rebuild it."""
        d = self.disk
        if d.snapshot_zxid > zxid:
            raise InvariantViolation(f"seed {self.sim.seed}: server {self.sid} truncates to "
                                     f"{zxid:#x}, below its snapshot {d.snapshot_zxid:#x}")
        sm = SimStateMachine()
        if d.snapshot is not None:
            sm.install(d.snapshot)
        for txn in d.log:
            sm.apply(txn)
        if sm.tree.last_zxid != zxid:
            raise InvariantViolation(f"seed {self.sim.seed}: server {self.sid} rebuilt to "
                                     f"{sm.tree.last_zxid:#x}, not {zxid:#x}")
        self.sm.reset(sm.tree, sm.applied)

    def _sync_disk(self) -> None:
        """Everything queued becomes durable, in order; the state machine follows the resets
        (a completed snapshot, a truncation), and the peer hears of each in stream order."""
        peer = self.peer
        if not self.up or peer is None or not self.disk.pending or self.stalled:
            return
        pending, self.disk.pending = self.disk.pending, []
        last = None
        for kind, arg in pending:
            self._write(kind, arg)
            if kind == "log":
                last = arg[-1].zxid
                continue
            if last is not None:
                peer.logged(last)
                last = None
            if kind == "trunc":
                if arg.rebuild:
                    self._rebuild(arg.zxid)
                peer.truncated(arg.zxid)
            elif arg.last:
                self.sm.install(self.disk.snapshot)
                shown = self.sm.tree.nodes[CONFIG_PATH].data or b""
                if shown.startswith(b"server."):  # reconfigured: the snapshot's membership
                    installed = Membership.parse(shown)
                    peer.installed_membership(installed.version, installed.verifier(), shown)
                    self._keep_membership(installed)
                else:
                    peer.installed_membership(peer.config_version, self.sim.quorum,
                                              self.sim.initial.data())
                peer.installed(arg.zxid)
        if last is not None:
            peer.logged(last)
        self.flush()


class Sim:
    def __init__(self, seed: int, n: int = 3, observers: int = 0, chaos: float = 0.05,
                 quorum: QuorumVerifier | None = None, spares: int = 0,
                 forwarded: float = 0.0, thrifty: int = 0) -> None:
        """`n` voters and `observers` observers under a simple majority, or the servers of
        `quorum` (e.g. a `Hierarchical` one) under its rule; and `spares` servers outside the
        ensemble, for `reconfigure` to add. `forwarded`: the share of the client's writes
        that go through a follower (0 keeps every seed's run as it was before there were
        any). `thrifty`: how many ms leaders may hold proposals back from spare followers
        (zkserver/quorum/thrifty.py; 0, the default, keeps every seed's run as it was)."""
        self.seed = seed
        self.thrifty = thrifty
        self.rng = random.Random(seed)
        self.now = 0
        if quorum is None:
            quorum = Majority(range(1, n + 1), range(n + 1, n + observers + 1))
        self.quorum = quorum
        self.initial = membership_of(quorum)
        members = quorum.voters | quorum.observers
        spare_ids = range(max(members) + 1, max(members) + 1 + spares)
        self.servers = {sid: Server(self, sid) for sid in sorted(members | set(spare_ids))}
        self.spares = set(spare_ids)  # not started until a reconfiguration adds them
        self._proposed: dict[int, Membership] = {}  # by zxid, what leaders proposed
        self.config_sequence: list[int] = []  # of those, the committed ones in order
        self.events: list[tuple[int, int, Callable[[], None]]] = []
        self.seq = 0
        self.chaos = chaos
        # A short in-memory history in some runs, so that learners fall behind it: SNAP.
        self.history_limit = self.rng.choice((100_000, self.rng.randrange(20, 300)))
        self.cut: set[frozenset[int]] = set()
        self.links: dict[tuple[int, int], int] = {}  # link generation, bumped when it breaks
        self.link_clock: dict[tuple[int, int], int] = {}  # FIFO: no delivery before the last
        self.leaders: dict[int, int] = {}  # epoch -> sid established
        self.config_versions: dict[int, int] = {}  # epoch -> membership version served
        self.role_changes: list[tuple[int, int, RoleChange]] = []  # (time, sid, change)
        self.committed: dict[int, int] = {}  # zxid -> txn id, applied by a serving server
        self.committed_zxids: list[int] = []
        self.next_txn_id = 1
        self.writes_committed = 0
        self.forward_share = forwarded
        self.forwarded: dict[int, Any] = {}  # txn id -> op, of writes a follower forwarded

    # -- scheduling ---------------------------------------------------------------------------

    def schedule(self, delay: int, fn: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.events, (self.now + delay, self.seq, fn))

    def run(self, until: int) -> None:
        while self.events and self.events[0][0] <= until:
            t, _, fn = heapq.heappop(self.events)
            self.now = t
            fn()
            self.check()
        self.now = until

    # -- network ------------------------------------------------------------------------------

    def reachable(self, a: int, b: int) -> bool:
        return frozenset((a, b)) not in self.cut

    def send(self, frm: int, to: int, msg: Any) -> None:
        if to not in self.servers:
            return
        rng = self.rng
        if isinstance(msg, Notification):
            if not self.reachable(frm, to) or rng.random() < self.chaos:
                return  # lost
            copies = 2 if rng.random() < self.chaos else 1
            for _ in range(copies):
                self.schedule(rng.randrange(1, 30), lambda: self.deliver(frm, to, msg, None))
            return
        key = (frm, to)
        if not self.reachable(frm, to):
            self.break_link(frm, to)
            return
        gen = self.links.get(key, 0)
        at = max(self.now + rng.randrange(1, 15), self.link_clock.get(key, 0))
        self.link_clock[key] = at
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, lambda: self.deliver(frm, to, msg, gen)))

    def deliver(self, frm: int, to: int, msg: Any, gen: int | None) -> None:
        server = self.servers[to]
        if not server.up or server.peer is None:
            return
        if gen is not None:
            if self.links.get((frm, to), 0) != gen:
                return  # the connection it travelled on is gone
            if not self.reachable(frm, to):
                self.break_link(frm, to)
                return
        server.peer.receive(frm, msg, server.mono())
        server.flush()

    def break_link(self, a: int, b: int) -> None:
        for key in ((a, b), (b, a)):
            self.links[key] = self.links.get(key, 0) + 1
        for x, y in ((a, b), (b, a)):
            s = self.servers[x]
            if s.up and s.peer is not None:
                s.peer.disconnected(y)
                s.flush()

    # -- the world ------------------------------------------------------------------------------

    def start(self) -> None:
        for s in self.servers.values():
            if s.sid not in self.spares:
                s.boot()
        for sid in self.servers:
            self.schedule(self.rng.randrange(TICK), lambda sid=sid: self._tick(sid))
        self.schedule(5, self._client)

    def _tick(self, sid: int) -> None:
        s = self.servers[sid]
        if s.up and s.peer is not None:
            s.peer.tick(s.mono())
            s.flush()
        self.schedule(TICK // 2, lambda: self._tick(sid))

    def _client(self) -> None:
        """A client writing through whichever server leads now: at the leader, or through
        one of its serving followers (which forwards it, and whose leader then tells it when
        its own log holds it: LOGGED)."""
        for s in self.servers.values():
            p = s.peer
            if s.up and p is not None and p.role == Role.LEADING and p.established:
                tid = self.next_txn_id
                self.next_txn_id += 1
                if self.rng.random() < 0.3:
                    op: Any = CreateTxn(f"/n{tid}", b"x", ((31, "world", "anyone"),), 0,
                                        s.sm.tree.nodes["/"].cversion + 1)
                else:
                    op = SetDataTxn("/", b"%d" % tid, 0)
                followers = [f for f in self.servers.values()
                             if f.up and f.peer is not None and f.peer.leader == s.sid
                             and f.peer.role == Role.FOLLOWING
                             and f.peer.stage == SyncStage.SERVING] \
                    if self.forward_share else []
                if followers and self.rng.random() < self.forward_share:
                    f = self.rng.choice(followers)
                    self.forwarded[tid] = op
                    self.send(f.sid, s.sid, Request(tid, 0, 0, b"", ()))
                elif p.propose(Txn(p.next_zxid(), s.wall(), 0, tid, op)):
                    s.flush()
        self.schedule(self.rng.randrange(5, 40), self._client)

    def became(self, sid: int, change: RoleChange) -> None:
        self.role_changes.append((self.now, sid, change))
        if change.role != Role.LOOKING:
            version = change.config_version
            if change.role == Role.LEADING:
                base = self.config_versions.setdefault(change.epoch, version)
            else:
                base = self.config_versions.get(change.epoch, version)
            if version < base or version == 0:
                raise InvariantViolation(f"seed {self.seed}: server {sid} serves epoch "
                                         f"{change.epoch} with membership version "
                                         f"{version:#x}, its leader {base:#x}")
        if change.role != Role.LEADING:
            return
        if self.membership(change.config_version).verifier().weight(sid) == 0:
            raise InvariantViolation(f"seed {self.seed}: server {sid} of weight 0 (or no "
                                     f"voter) leads")
        prior = self.leaders.get(change.epoch)
        if prior is not None and prior != sid:
            raise InvariantViolation(f"seed {self.seed}: epoch {change.epoch} has two leaders, "
                                     f"{prior} and {sid}")
        self.leaders[change.epoch] = sid
        peer = self.servers[sid].peer
        assert peer is not None
        have = {t.zxid: t.cxid for t in peer.history}
        base = peer.history.base_zxid
        for zxid, tid in self.committed.items():
            if zxid > base and have.get(zxid) != tid:
                raise InvariantViolation(f"seed {self.seed}: new leader {sid} (epoch "
                                         f"{change.epoch}) lacks committed zxid {zxid:#x}")

    # -- membership changes -------------------------------------------------------------------

    def membership(self, version: int) -> Membership:
        """The configuration of `version`: a reconfiguration's, or the initial one (which
        leaders version with their epoch)."""
        proposed = self._proposed.get(version)
        return proposed if proposed is not None else attrs.evolve(self.initial, version=version)

    def reconfigure(self, joining: str | None = None, leaving: str | None = None,
                    members: str | None = None) -> int | None:
        """A client's reconfig at the serving leader: checked as prep checks it, proposed as a
        ReconfigTxn. Its zxid, or None if there is no leader or the request is refused."""
        sid = self.serving_leader()
        if sid is None:
            return None
        s = self.servers[sid]
        p = s.peer
        assert p is not None
        view = reconfig.LeaderView(self.membership(p.config_version), p.last_seen_version,
                                   p.synced_voters())
        zxid = p.next_zxid()
        try:
            new = reconfig.plan(ReconfigRequest(joining, leaving, members, -1), view, zxid)
        except reconfig.Refused:
            return None
        tid = self.next_txn_id
        self.next_txn_id += 1
        if not p.propose(Txn(zxid, s.wall(), 0, tid, ReconfigTxn(new.data()))):
            return None
        self._proposed[zxid] = new
        s.flush()
        return zxid

    def in_force(self) -> Membership | None:
        """The serving leader's configuration, if it has no reconfiguration in flight."""
        sid = self.serving_leader()
        p = self.servers[sid].peer if sid is not None else None
        if p is None or p.last_seen_version != p.config_version:
            return None
        return self.membership(p.config_version)

    def start_joiner(self, sid: int, observer: bool = False) -> None:
        """Provision server `sid` afresh (an empty disk) with the leader's configuration plus
        itself, as an operator starts a server before adding it, and start it."""
        current = self.in_force()
        if current is None or sid in current.servers:
            return
        self.crash(sid)
        s = self.servers[sid]
        s.disk = Disk()
        servers = dict(current.servers)
        servers[sid] = spec(sid, observer)
        # (its zoo.cfg: no version but a reconfiguration's, as a hand-written file has none)
        version = current.version if current.version in self._proposed else 0
        s.disk.membership = attrs.evolve(current, servers=servers, version=version)
        s.disk.config_version = version
        self.spares.discard(sid)
        s.boot()

    def crash(self, sid: int) -> None:
        s = self.servers[sid]
        if s.up:
            s.crash()
            for other in self.servers:
                if other != sid:
                    self.break_link(sid, other)

    def restart(self, sid: int) -> None:
        s = self.servers[sid]
        if not s.up and sid not in self.spares:
            s.boot()

    def partition(self, side: set[int]) -> None:
        others = set(self.servers) - side
        for a in side:
            for b in others:
                self.cut.add(frozenset((a, b)))
                self.break_link(a, b)

    def heal(self) -> None:
        self.cut.clear()

    def stall(self, sid: int, stalled: bool = True) -> None:
        """Hang server `sid`'s disk (an fsync that does not return) or let it go on: while
        hung, the server logs nothing durably, so it acknowledges nothing, and a crash loses
        all it took meanwhile."""
        s = self.servers[sid]
        s.stalled = stalled
        if not stalled:
            self.schedule(1, s._sync_disk)

    def jump_wall(self, sid: int, delta: int) -> None:
        """Step one server's wall clock by `delta` ms; its monotonic clock does not move."""
        self.servers[sid].wall_offset += delta

    # -- invariants -----------------------------------------------------------------------------

    def check(self) -> None:
        """The invariants, checked incrementally: only what was applied since the last step."""
        for s in self.servers.values():
            seq = s.sm.applied
            start = s.sm.checked
            if start == len(seq):
                continue
            p = s.peer
            if not s.up or p is None or not p.serving:
                continue
            self._check_membership(s.sid, p)
            for i in range(max(start, 1), len(seq)):
                z1, z2 = seq[i - 1][0], seq[i][0]
                if z2 <= z1:
                    raise InvariantViolation(f"seed {self.seed}: server {s.sid} applied "
                                             f"{z2:#x} after {z1:#x}")
                # Nothing committed may be skipped between two applied transactions.
                k = bisect.bisect_right(self.committed_zxids, z1)
                if k < len(self.committed_zxids) and self.committed_zxids[k] < z2:
                    raise InvariantViolation(f"seed {self.seed}: server {s.sid} skipped "
                                             f"committed zxid {self.committed_zxids[k]:#x}")
            for zxid, tid in seq[start:]:
                known = self.committed.get(zxid)
                if known is None:
                    self.committed[zxid] = tid
                    bisect.insort(self.committed_zxids, zxid)
                    if zxid in self._proposed:
                        bisect.insort(self.config_sequence, zxid)
                elif known != tid:
                    raise InvariantViolation(f"seed {self.seed}: server {s.sid} applied "
                                             f"another transaction at zxid {zxid:#x}")
            s.sm.checked = len(seq)

    def _check_membership(self, sid: int, p: Peer) -> None:
        q = p.quorum
        if sid not in q.voters and sid not in q.observers:
            raise InvariantViolation(f"seed {self.seed}: server {sid} serves outside its "
                                     f"configuration {p.config_version:#x}")
        if p.role == Role.LEADING and sid not in q.voters:
            raise InvariantViolation(f"seed {self.seed}: server {sid} leads without a vote in "
                                     f"configuration {p.config_version:#x}")
        if p.role in (Role.FOLLOWING, Role.OBSERVING) \
                and (p.role == Role.OBSERVING) != (sid in q.observers):
            raise InvariantViolation(f"seed {self.seed}: server {sid} serves as {p.role.name} "
                                     f"in configuration {p.config_version:#x}, which makes "
                                     f"it {'an observer' if sid in q.observers else 'a voter'}")
        k = bisect.bisect_right(self.config_sequence, p.commit_zxid)
        if k and p.config_version < self.config_sequence[k - 1]:
            raise InvariantViolation(f"seed {self.seed}: server {sid} runs configuration "
                                     f"{p.config_version:#x} behind the committed "
                                     f"{self.config_sequence[k - 1]:#x}")

    def serving_leader(self) -> int | None:
        for s in self.servers.values():
            p = s.peer
            if s.up and p is not None and p.role == Role.LEADING and p.established:
                return s.sid
        return None
