"""A server of an ensemble: the sans-IO ZAB `Peer` wired to Trio links, the disk and the
request engine.

Everything the peer decides comes out as actions, carried out here in order (`_run_actions`):
messages go to the election or quorum links, epochs to a small fsynced file, log writes to one
ordered writer task (group commit: consecutive batches share a write and an fsync, off the
event loop), role changes to the engine (serve, forward writes to the leader, or refuse
clients). Committed transactions reach the engine through `apply`, which is how replies and
watch notifications go out on every server.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any

import trio

from zkserver import txn as txnmod
from zkserver.quorum import messages as M
from zkserver.quorum.peer import (
    Become,
    Deliver,
    DigestMismatch,
    Disconnect,
    Install,
    Log,
    Peer,
    Persist,
    Send,
    Truncate,
)
from zkserver.quorum.replica import QuorumEngine
from zkserver.quorum.transport import Links, QuorumTLS
from zkserver.server import tls
from zkserver.server.server import Server
from zkserver.storage import snapshot as snapmod
from zkserver.storage.txnlog import encode_batch, read_segment, segments
from zkserver.tree.datatree import DataTree
from zkserver.txn import Txn

log = logging.getLogger(__name__)

PEER_STATES = {M.LOOKING: "looking", M.LEADING: "leading", M.FOLLOWING: "following",
               M.OBSERVING: "observing"}
ROLE_MODES = {M.LOOKING: "looking", M.LEADING: "leader", M.FOLLOWING: "follower",
              M.OBSERVING: "observer"}


class EngineMachine:
    """The peer's view of the state machine: the engine's tree."""

    def __init__(self, node: QuorumServer) -> None:
        self.node = node

    def apply(self, txn: Txn) -> int:
        return self.node.engine.apply_txn(txn, self.node.now())

    def digest(self) -> int:
        d = self.node.engine.tree.digest
        assert d is not None
        return d

    def snapshot(self) -> tuple[int, bytes]:
        tree = self.node.engine.tree
        return tree.last_zxid, b"".join(snapmod.SnapshotWriter(tree, self.node.now()).chunks())


class QuorumServer(Server):
    engine_class = QuorumEngine
    keeps_history = True

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.engine: QuorumEngine
        self.engine.tree.track_digest()
        self.epoch_path = os.path.join(self.snap_dir, "epochs")
        accepted, current = self._read_epochs()
        me = config.server_id
        voters = {s.sid for s in config.servers.values() if s.peer_type == "participant"}
        observers = {s.sid for s in config.servers.values() if s.peer_type == "observer"}
        self.peer = Peer(me, voters, observers, sm=EngineMachine(self),
                         tick_ms=config.tick_time, init_limit=config.init_limit or 10,
                         sync_limit=config.sync_limit or 5, accepted_epoch=accepted,
                         current_epoch=current, history=self.recovered.txns,
                         base_zxid=self.recovered.snapshot_zxid)
        others = {s.sid: s for s in config.servers.values() if s.sid != me}
        mine = config.servers[me]
        host = "0.0.0.0" if config.quorum_listen_on_all_ips else mine.host
        quorum_tls = self._quorum_tls(config)
        self.election = Links(me, {sid: (s.host, s.election_port) for sid, s in others.items()},
                              (host, mine.election_port), self._message, None, "election",
                              quorum_tls)
        self.quorum = Links(me, {sid: (s.host, s.quorum_port) for sid, s in others.items()},
                            (host, mine.quorum_port), self._message, self._lost, "quorum",
                            quorum_tls)
        if config.peer_type == "participant" and len(voters) > 2:
            # ZooKeeper's leader and followers share globalOutstandingLimit among the others
            self.outstanding_limit = config.global_outstanding_limit // (len(voters) - 1)
        self.log_queue: deque[Any] = deque()
        self.log_wake = trio.Event()
        self.mode = "looking"
        self.since_snapshot = 0

    @staticmethod
    def _quorum_tls(config: Any) -> QuorumTLS | None:
        """sslQuorum=true: TLS between members from the `ssl.quorum.*` keys."""
        if not config.ssl_quorum:
            return None
        return QuorumTLS(tls.server_context(config.ssl, tls.QUORUM_PREFIX),
                         tls.client_context(config.ssl, tls.QUORUM_PREFIX),
                         tls.hostname_verification(config.ssl, tls.QUORUM_PREFIX))

    def after_recovery(self, now: int) -> None:
        """No snapshot at start-up: the replayed tail may not be committed (ZAB decides)."""

    def expires_sessions(self) -> bool:
        return self.peer.role == M.LEADING and self.peer.established

    def is_serving(self) -> bool:
        return self.serving and self.engine.serving

    def quorum_metrics(self) -> dict[str, object]:
        peer = self.peer
        phase = "broadcast" if peer.established or peer.stage == "serving" else "synchronization"
        state = PEER_STATES[peer.role]
        out: dict[str, object] = {
            "peer_state": state if peer.role == M.LOOKING else f"{state} - {phase}",
        }
        if peer.role == M.LEADING:
            learners = list(peer.learners.values())
            out.update({
                "learners": len(learners),
                "synced_followers": sum(1 for lr in learners
                                        if lr.stage == "acked" and not lr.observer),
                "synced_non_voting_followers": 0,
                "synced_observers": sum(1 for lr in learners
                                        if lr.stage == "acked" and lr.observer),
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

    def _message(self, sid: int, msg: Any) -> None:
        self.peer.receive(sid, msg, self.now())
        self._run_actions()

    def _lost(self, sid: int) -> None:
        self.peer.disconnected(sid)
        self._run_actions()

    def commit(self) -> None:
        """Client writes prepared here go to ZAB (only a leader prepares any); and whatever the
        engine asked of the peer meanwhile (a `sync` from a client of the leader, which the
        peer answers at once when nothing is in flight) is carried out now, not at the next
        tick."""
        engine = self.engine
        if engine.to_commit:
            batch = engine.take_commits()
            taken = self.peer.propose_batch([txn for txn, _, _ in batch])
            for txn, client, entry in batch[:taken]:
                engine.in_flight[txn.zxid] = (client, entry)
        self._run_actions()

    # -- the peer's outputs -------------------------------------------------------------------

    def _run_actions(self) -> None:
        peer = self.peer
        while peer.actions:
            actions, peer.actions = peer.actions, []
            for a in actions:
                self._act(a)

    def _act(self, a: Any) -> None:
        t = type(a)
        if t is Send:
            msg = a.msg
            if type(msg) is M.Notification:
                self.election.send(a.to, msg)
            else:
                if type(msg) is M.PingReply:
                    msg = M.PingReply(tuple(self.engine.touched.items()))
                    self.engine.touched.clear()
                self.quorum.send(a.to, msg)
        elif t is Persist:
            self._write_epochs(a.accepted_epoch, a.current_epoch)
        elif t is Log or t is Truncate:
            if t is Truncate:
                self._rebuild_tree()
            self.log_queue.append(a)
            self.log_wake.set()
        elif t is Install:
            self._install(a.zxid, a.state)
        elif t is Become:
            self._become(a)
        elif t is Disconnect:
            self.quorum.drop(a.sid)
        elif t is Deliver:
            self._deliver(a.sid, a.msg)

    def _become(self, b: Become) -> None:
        engine = self.engine
        self.mode = ROLE_MODES[b.role]
        log.info("server %d: %s (leader %s, epoch %d)", self.peer.sid, self.mode, b.leader,
                 b.epoch)
        engine.stop_serving()
        if b.role == M.LOOKING:
            if self.config.readonly_mode_enabled:
                engine.read_only = engine.serving = True  # reads for clients that accept it
                self.mode = "read-only"
            return
        now = self.now()
        if b.role == M.LEADING:
            engine.prep.last_zxid = b.epoch << 32
            engine.prep.changes.clear()
            engine.prep.outstanding.clear()
            for sid, timeout in engine.tree.sessions.items():
                engine.sessions.add(sid, timeout, now)
            engine.request_sync = self.peer.local_sync
            engine.forward = None
        else:
            leader = b.leader
            assert leader is not None
            engine.forward = lambda req: self._to_leader(req)
            engine.request_sync = lambda token: self._to_leader(M.SyncRequest(token))
        engine.serving = True

    def _to_leader(self, msg: Any) -> None:
        leader = self.peer.leader
        if leader is not None:
            self.quorum.send(leader, msg)

    def _deliver(self, sid: int, msg: Any) -> None:
        engine = self.engine
        now = self.now()
        if type(msg) is M.Request:
            engine.remote_write(msg, now)
            self.commit()
        elif type(msg) is M.SyncReply:
            engine.sync_answered(msg.token, msg.zxid, now)
        elif type(msg) is M.PingReply:
            for session_id, _ in msg.touches:
                engine.sessions.touch(session_id, now)

    def _rebuild_tree(self) -> None:
        """After TRUNC: the newest snapshot on disk plus our history up to what is applied."""
        snaps = snapmod.snapshots(self.disk, self.snap_dir)
        tree = snapmod.load(self.disk, snaps[0][1]) if snaps else DataTree()
        for txn in self.peer.history:
            if tree.last_zxid < txn.zxid <= self.peer.applied_zxid:
                tree.apply(txn)
        self._replace_tree(tree)

    def _install(self, zxid: int, state: bytes) -> None:
        path = os.path.join(self.snap_dir, snapmod.snapshot_name(zxid))
        f = self.disk.open_log(path + ".tmp")
        f.truncate(0)
        f.write(state)
        snapmod.finish(self.disk, f, path)
        self.log_queue.append(Install(zxid, b""))
        self.log_wake.set()
        self._replace_tree(snapmod.load(self.disk, path))

    def _replace_tree(self, tree: Any) -> None:
        engine = self.engine
        tree.track_digest()
        tree.can_see = engine.tree.can_see
        engine.tree = tree
        engine.prep.tree = tree
        engine.prep.last_zxid = tree.last_zxid
        engine.prep.changes.clear()
        engine.prep.outstanding.clear()

    # -- tasks ----------------------------------------------------------------------------------

    async def start_tasks(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.election.run)
        await nursery.start(self.quorum.run)
        nursery.start_soon(self._log_writer)
        self.peer.start(self.now())
        self._run_actions()
        nursery.start_soon(self._ticker)

    async def _ticker(self) -> None:
        half = self.config.tick_time / 2000
        while True:
            await trio.sleep(half)
            try:
                self.peer.tick(self.now())
                self._run_actions()
            except DigestMismatch as e:
                log.critical("%s", e)
                raise

    async def _log_writer(self) -> None:
        while True:
            await self.log_wake.wait()
            self.log_wake = trio.Event()
            while self.log_queue:
                item = self.log_queue.popleft()
                if type(item) is Log:
                    txns = list(item.txns)
                    while self.log_queue and type(self.log_queue[0]) is Log:
                        txns.extend(self.log_queue.popleft().txns)
                    data = encode_batch(txns)
                    await trio.to_thread.run_sync(self.txnlog.append, txns[0].zxid, data)
                    self.since_snapshot += len(txns)
                    self.peer.logged(txns[-1].zxid)
                    self._run_actions()
                    if self.since_snapshot >= self.config.snap_count \
                            and not self.committer.snapshotting:
                        self.since_snapshot = 0
                        self.txnlog.roll()
                        await self.committer.snapshot()
                elif type(item) is Truncate:
                    await trio.to_thread.run_sync(self._truncate_files, item.zxid)
                else:  # Install: the snapshot is written; the log starts again after it
                    await trio.to_thread.run_sync(self._reset_log, item.zxid)
                    self.peer.logged(item.zxid)
                    self._run_actions()

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
