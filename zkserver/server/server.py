"""A standalone server: the engine, the client listener, the committer and the timers.

This is the Trio edge around the sans-IO `Engine`: it owns the sockets, the clock and (through
the committer) the disk. At start-up it recovers the tree from the newest snapshot and the log;
every write the engine prepares then goes through `commit()`, which hands it to the group
committer: logged and synced first, applied and answered after.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import trio

from zkserver.engine import Client, Engine
from zkserver.server.committer import Committer
from zkserver.server.connection import serve_connection
from zkserver.storage import snapshot as snapmod
from zkserver.storage.files import Disk
from zkserver.storage.purge import purge
from zkserver.storage.recovery import recover
from zkserver.storage.txnlog import TxnLog
from zkserver.tree.reaper import due_for_reaping

log = logging.getLogger(__name__)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Server:
    engine_class: type[Engine] = Engine

    def __init__(self, config: Any, disk: Disk | None = None) -> None:
        self.config = config
        self.disk = disk or Disk()
        self.snap_dir = os.path.join(config.data_dir, "zkserver")
        self.log_dir = os.path.join(config.data_log_dir, "zkserver")
        self.disk.makedirs(self.snap_dir)
        self.disk.makedirs(self.log_dir)
        self.started = wall_ms()
        recovered = recover(self.disk, self.snap_dir, self.log_dir)
        for warning in recovered.warnings:
            log.warning("%s", warning)
        self.recovered = recovered
        now = self.now()
        self.engine = self.engine_class(
            tree=recovered.tree,
            tick_time=config.tick_time,
            min_session_timeout=config.min_session_timeout,
            max_session_timeout=config.max_session_timeout,
            server_id=config.server_id,
            now=now,
            extended_types=config.extended_types_enabled,
            skip_acl=config.skip_acl,
            super_digest=config.super_digest,
            reconfig_enabled=config.reconfig_enabled,
            max_buffer=config.jute_max_buffer,
        )
        for sid, timeout in recovered.tree.sessions.items():
            self.engine.sessions.add(sid, timeout, now)
        self.txnlog = TxnLog(self.disk, self.log_dir, config.pre_alloc_size_kb * 1024,
                             config.force_sync)
        self.committer = Committer(self, self.disk, self.txnlog, self.snap_dir,
                                   config.snap_count)
        self.max_buffer = config.jute_max_buffer
        self.handshake_timeout = self.engine.max_timeout / 1000
        self.connections_per_ip: dict[str, int] = {}
        self.listeners: list[trio.SocketListener] = []
        self.trace_mask = 306  # ZooKeeper's default trace mask
        self.serving = False
        self.mode = "standalone"
        self.after_recovery(now)

    def after_recovery(self, now: int) -> None:
        """A standalone server snapshots what it replayed, so the next start is quick."""
        if self.recovered.replayed:
            snapmod.write(self.disk, self.snap_dir, self.recovered.tree, now)

    @staticmethod
    def now() -> int:
        return wall_ms()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [lis.socket.getsockname()[:2] for lis in self.listeners]

    # -- the commit path ----------------------------------------------------------------------

    def commit(self) -> None:
        """Hand prepared transactions to the group committer."""
        if self.engine.to_commit:
            self.committer.kick()

    # -- connection accounting ------------------------------------------------------------------

    def connection_opened(self, client: Client) -> None:
        ip = client.remote[0]
        self.connections_per_ip[ip] = self.connections_per_ip.get(ip, 0) + 1

    def connection_closed(self, client: Client) -> None:
        ip = client.remote[0]
        n = self.connections_per_ip.get(ip, 1) - 1
        if n:
            self.connections_per_ip[ip] = n
        else:
            self.connections_per_ip.pop(ip, None)

    async def _handle(self, stream: trio.SocketStream) -> None:
        limit = self.config.max_client_cnxns
        try:
            ip = str(stream.socket.getpeername()[0])
        except OSError:
            await stream.aclose()
            return
        if limit and self.connections_per_ip.get(ip, 0) >= limit:
            log.warning("too many connections from %s (maxClientCnxns=%d)", ip, limit)
            await stream.aclose()
            return
        await serve_connection(self, stream)

    # -- timers -------------------------------------------------------------------------------

    async def _expire_sessions(self) -> None:
        tick = self.config.tick_time
        while True:
            now = self.now()
            await trio.sleep(((now // tick + 1) * tick - now) / 1000)
            if self.expires_sessions() and self.engine.expire_sessions(self.now()):
                self.commit()

    def expires_sessions(self) -> bool:
        """Whether this server runs the session and container timers (an ensemble's leader)."""
        return True

    def is_serving(self) -> bool:
        return self.serving

    def quorum_metrics(self) -> dict[str, object]:
        """Extra `mntr` lines of an ensemble member (none for a standalone server)."""
        return {}

    async def _reap_containers(self) -> None:
        """ZooKeeper's ContainerManager: delete empty used containers and expired TTL nodes."""
        interval = self.config.container_check_interval_ms / 1000
        while True:
            await trio.sleep(interval)
            if self.expires_sessions():
                self.reap_once()

    def reap_once(self) -> int:
        engine = self.engine
        cfg = self.config
        now = self.now()
        victims = due_for_reaping(engine.tree, now, cfg.container_max_never_used_interval_ms)
        per_round = max(1, cfg.container_max_per_minute * cfg.container_check_interval_ms // 60000)
        done = 0
        for path in victims[:per_round]:
            txn = engine.prep.delete_container(path, now)
            if txn is not None:
                engine.to_commit.append((txn, None, None))
                done += 1
        self.commit()
        return done

    async def _autopurge(self) -> None:
        cfg = self.config
        while True:
            await trio.sleep(cfg.autopurge_purge_interval * 3600)
            removed = await trio.to_thread.run_sync(
                purge, self.disk, self.snap_dir, self.log_dir, cfg.autopurge_snap_retain_count)
            log.info("autopurge removed %d files", len(removed))

    async def start_tasks(self, nursery: trio.Nursery) -> None:
        """What commits transactions: here, the group committer on the local log."""
        await nursery.start(self.committer.run)

    # -- running ------------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        cfg = self.config
        host = cfg.client_port_address
        port = cfg.client_port if cfg.client_port is not None else 2181
        if cfg.this_server is not None and cfg.this_server.client_port:
            port = cfg.this_server.client_port
            host = cfg.this_server.client_host or host
        backlog = cfg.client_port_listen_backlog if cfg.client_port_listen_backlog > 0 else None
        try:
            self.listeners = await trio.open_tcp_listeners(port, host=host, backlog=backlog)
        except OSError as e:
            raise OSError(e.errno, f"client port {host or '*'}:{port}: {e.strerror}") from e
        self.serving = True
        try:
            async with trio.open_nursery() as nursery:
                await self.start_tasks(nursery)
                nursery.start_soon(self._expire_sessions)
                if cfg.autopurge_purge_interval > 0:
                    nursery.start_soon(self._autopurge)
                nursery.start_soon(self._reap_containers)
                nursery.start_soon(trio.serve_listeners, self._handle, self.listeners)
                task_status.started(self)
        finally:
            self.serving = False
