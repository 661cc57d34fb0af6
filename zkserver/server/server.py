"""A server: the engine, the client listeners, the timers and a commit path.

This is the Trio edge around the sans-IO `Engine`: it owns the sockets, the clocks and (through
the commit path) the disk. Two clocks: every deadline (session expiry, handshakes, the reaper's and
the ensemble's timers, latencies) runs on the monotonic one, `now()`; the wall clock, `wall()`,
only stamps what ZooKeeper shows as a date (ctime/mtime, through the transactions prepared here;
snapshot headers; connection times) and is what TTL and container ages are measured against.

At start-up it recovers the tree from the newest snapshot and the log; every write the engine
prepares then goes through `commit()` to the commit path the configuration chose (see
`server.commit_path`): the local log of a standalone server (logged and synced first, applied
and answered after) or ZAB for an ensemble member (`quorum.node.Member`).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import ssl
import time
from typing import TYPE_CHECKING, Any

import trio

from zkserver.auth import principal
from zkserver.engine import Client
from zkserver.engine.sasl import SaslGate
from zkserver.progress import Progress
from zkserver.server import admin, lograte, metrics, tls, tls_reload
from zkserver.server.commit_path import CommitPath, LocalLog
from zkserver.server.connection import serve_connection
from zkserver.server.flush import Flusher
from zkserver.server.handshake_order import HandshakeOrder
from zkserver.server.idle import IdleConnections
from zkserver.storage.files import Disk
from zkserver.storage.purge import purge
from zkserver.storage.recovery import recover
from zkserver.storage.txnlog import TxnLog
from zkserver.tree import acl as aclmod
from zkserver.tree import quota as quotamod
from zkserver.tree.reaper import due_for_reaping

if TYPE_CHECKING:
    from zkserver.quorum.node import Member

log = logging.getLogger(__name__)

# accept() failing for lack of descriptors or memory: retry after a pause (as Trio's
# serve_listeners does) rather than stop listening.
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_RETRY = 0.1


def monotonic_ms() -> int:
    """The clock of every deadline: NTP steps and VM resumes leave it alone."""
    return time.monotonic_ns() // 1_000_000


def wall_ms() -> int:
    """The wall clock: for timestamps people read, never for deciding when something is due."""
    return time.time_ns() // 1_000_000


def commit_path_class(config: Any) -> type[LocalLog] | type[Member]:
    """ZAB for an ensemble member, the local log otherwise."""
    if config.is_quorum:
        from zkserver.quorum.node import Member
        return Member
    return LocalLog


class Server:
    def __init__(self, config: Any, disk: Disk | None = None,
                 progress: Progress | None = None) -> None:
        self.config = config
        self.disk = disk or Disk()
        self.snap_dir = os.path.join(config.data_dir, "zkserver")
        self.log_dir = os.path.join(config.data_log_dir, "zkserver")
        self.disk.makedirs(self.snap_dir)
        self.disk.makedirs(self.log_dir)
        self.started = self.now()  # for uptime
        path_class = commit_path_class(config)
        recovered = recover(self.disk, self.snap_dir, self.log_dir, path_class.keeps_history,
                            progress)
        for warning in recovered.warnings:
            log.warning("%s", warning)
        now = self.now()
        self.engine = path_class.engine_class(
            tree=recovered.tree,
            tick_time=config.tick_time,
            min_session_timeout=config.min_session_timeout,
            max_session_timeout=config.max_session_timeout,
            server_id=config.server_id,
            wall=self.wall(),
            extended_types=config.extended_types_enabled,
            skip_acl=config.skip_acl,
            super_digest=config.super_digest,
            reconfig_enabled=config.reconfig_enabled,
            enforce_quota=config.enforce_quota,
            max_buffer=config.jute_max_buffer,
            sasl=SaslGate(config.sasl),
        )
        if config.sasl.sasl_scheme:
            aclmod.register_scheme("sasl", principal.valid, functools.partial(
                principal.matches, let_any=config.sasl.let_any_sasl_user))
        self.engine.restore_sessions(now)
        self.metrics = metrics.Metrics()
        self.txnlog = metrics.TimedLog(
            TxnLog(self.disk, self.log_dir, config.pre_alloc_size_kb * 1024, config.force_sync),
            self.metrics.fsynctime)
        self.max_buffer = config.jute_max_buffer
        self.handshake_timeout = self.engine.max_timeout / 1000
        lograte.limit(quotamod.limits_log)  # one quota warning a second, as ZooKeeper's
        self.connections_per_ip: dict[str, int] = {}
        self.handshake_order = HandshakeOrder()  # sessions established in arrival order
        self.idle = IdleConnections()  # connections with nothing to do, without a task
        self.total_connections = 0
        self.listeners: list[trio.SocketListener] = []
        self.secure_listeners: list[trio.SocketListener] = []
        self.tls_context: ssl.SSLContext | None = None
        self.tls_clients: set[Client] = set()  # connections on the secure client port
        self.x509_super_user = config.properties.get(
            "zookeeper.X509AuthenticationProvider.superUser")
        # Counters for the metrics endpoints (ZooKeeper's names).
        self.bytes_received = 0
        self.connections_accepted = 0
        self.connections_rejected = 0
        self.unsuccessful_handshakes = 0
        self.tls_handshakes_in_progress = 0
        self.throttled = 0
        self.admin_address: tuple[str, int] | None = None
        self.metrics_address: tuple[str, int] | None = None
        self.trace_mask = 306  # ZooKeeper's default trace mask
        self.serving = False
        self.flusher = Flusher()  # replies written at the end of each driver step
        self.commit_path: CommitPath = path_class(self, recovered)
        self.outstanding_limit = self.commit_path.outstanding_limit

    @property
    def mode(self) -> str:
        return self.commit_path.mode

    @staticmethod
    def now() -> int:
        """Monotonic milliseconds: what every deadline and latency is measured on."""
        return monotonic_ms()

    @staticmethod
    def wall() -> int:
        """Wall-clock milliseconds: for the timestamps ZooKeeper shows."""
        return wall_ms()

    @staticmethod
    def wall_of(at: int) -> int:
        """A monotonic instant as wall-clock time, for display (ZooKeeper's elapsedTimeToDate)."""
        return wall_ms() - monotonic_ms() + at

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where the plain client port listens."""
        return [lis.socket.getsockname()[:2] for lis in self.listeners]

    @property
    def secure_addresses(self) -> list[tuple[str, int]]:
        """Where the TLS client port (secureClientPort) listens."""
        return [lis.socket.getsockname()[:2] for lis in self.secure_listeners]

    # -- the commit path ----------------------------------------------------------------------

    def commit(self) -> None:
        """Hand what the engine prepared to the commit path."""
        self.commit_path.submit()

    # -- connections --------------------------------------------------------------------------

    def secure_clients(self) -> set[Client]:
        return self.tls_clients

    def connection_opened(self, ip: str) -> None:
        self.connections_per_ip[ip] = self.connections_per_ip.get(ip, 0) + 1
        self.total_connections += 1

    def connection_closed(self, ip: str) -> None:
        self.total_connections -= 1
        n = self.connections_per_ip.get(ip, 1) - 1
        if n:
            self.connections_per_ip[ip] = n
        else:
            self.connections_per_ip.pop(ip, None)

    def _admit(self, ip: str) -> bool:
        """maxClientCnxns (per address) and maxCnxns (all connections, both ports)."""
        per_ip = self.config.max_client_cnxns
        if per_ip > 0 and self.connections_per_ip.get(ip, 0) >= per_ip:
            log.warning("Too many connections from /%s - max is %d (maxClientCnxns)", ip, per_ip)
            return False
        total = self.config.max_cnxns
        if total > 0 and self.total_connections >= total:
            log.warning("Too many connections %d - max is %d (maxCnxns)",
                        self.total_connections, total)
            return False
        return True

    def over_outstanding_limit(self) -> bool:
        """Whether more requests than globalOutstandingLimit are in hand, server-wide (every
        connection's waiting queue, counted as entries come and go)."""
        limit = self.outstanding_limit
        if limit <= 0:
            return False
        if self.engine.stats.in_hand > limit:
            self.throttled += 1
            return True
        return False

    async def _serve_listener(self, listener: trio.SocketListener, secure: bool) -> None:
        """Accept connections and give each a task in the nursery connection tasks run in.

        Trio's `serve_listeners`, except that a connection's stream is not closed when its
        first task ends: an idle connection lives on without one (server/idle.py)."""
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as e:
                    if e.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    log.error("accept returned %s (%s); retrying in %s seconds",
                              errno.errorcode[e.errno], os.strerror(e.errno), ACCEPT_RETRY)
                    await trio.sleep(ACCEPT_RETRY)
                    continue
                self.idle.start(self._accept, stream, self.tls_context if secure else None)

    async def _accept(self, stream: trio.SocketStream, context: ssl.SSLContext | None) -> None:
        try:
            peer = stream.socket.getpeername()
            remote = (str(peer[0]), int(peer[1]))
        except OSError:
            await stream.aclose()
            return
        ip = remote[0]
        if not self._admit(ip):
            self.connections_rejected += 1
            await stream.aclose()
            return
        self.connections_accepted += 1
        self.connection_opened(ip)
        handed_over = False  # serve_connection closes the connection (it may outlive this task)
        try:
            if context is None:
                handed_over = True
                await serve_connection(self, stream, remote)
                return
            secure = await self._tls_handshake(stream, context, remote)
            if secure is not None:
                handed_over = True
                await serve_connection(self, secure, remote, self._tls_identities(secure),
                                       secure=True)
        finally:
            if not handed_over:  # a TLS handshake that failed or was cancelled
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(stream)
                self.connection_closed(ip)

    async def _tls_handshake(self, stream: trio.SocketStream, context: ssl.SSLContext,
                             remote: tuple[str, int]) -> trio.SSLStream | None:
        """The TLS handshake, within the time a client gets to say hello at all."""
        secure = trio.SSLStream(stream, context, server_side=True)
        self.tls_handshakes_in_progress += 1
        try:
            with trio.move_on_after(self.handshake_timeout):
                await secure.do_handshake()
                return secure
            log.info("TLS handshake with %s:%d timed out", *remote)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            cause = e.__cause__ or e
            log.info("unsuccessful TLS handshake with %s:%d: %s", *remote, cause)
        finally:
            self.tls_handshakes_in_progress -= 1
        self.unsuccessful_handshakes += 1
        self.engine.stats.auth_failed += 1
        await trio.aclose_forcefully(stream)
        return None

    def _tls_identities(self, secure: trio.SSLStream) -> list[aclmod.Identity]:
        """A client certificate's `x509` identity (and `super` for the configured super user)."""
        der = secure.getpeercert(binary_form=True)
        if not der:
            return []  # clientAuth=want and no certificate: just the ip identity
        dn = tls.x509_identity(der)
        ids: list[aclmod.Identity] = [("x509", dn)]
        if self.x509_super_user is not None and dn == self.x509_super_user:
            ids.append(aclmod.SUPER)
        return ids

    # -- timers -------------------------------------------------------------------------------

    async def _expire_sessions(self) -> None:
        tick = self.config.tick_time
        while True:
            now = self.now()
            await trio.sleep(((now // tick + 1) * tick - now) / 1000)
            if self.commit_path.expires_sessions \
                    and self.engine.expire_sessions(self.now(), self.wall()):
                self.commit()

    def is_serving(self) -> bool:
        return self.serving and self.commit_path.serving

    async def _reap_containers(self) -> None:
        """ZooKeeper's ContainerManager: delete empty used containers and expired TTL nodes."""
        interval = self.config.container_check_interval_ms / 1000
        while True:
            await trio.sleep(interval)
            if self.commit_path.expires_sessions:
                self.reap_once()

    def reap_once(self) -> int:
        engine = self.engine
        cfg = self.config
        wall = self.wall()  # ages are wall time against mtime, as ZooKeeper's ContainerManager
        victims = due_for_reaping(engine.tree, wall, cfg.container_max_never_used_interval_ms)
        per_round = max(1, cfg.container_max_per_minute * cfg.container_check_interval_ms // 60000)
        done = engine.reap(victims[:per_round], wall)
        self.commit()
        return done

    async def _autopurge(self) -> None:
        cfg = self.config
        while True:
            await trio.sleep(cfg.autopurge_purge_interval * 3600)
            removed = await trio.to_thread.run_sync(
                purge, self.disk, self.snap_dir, self.log_dir, cfg.autopurge_snap_retain_count)
            log.info("autopurge removed %d files", len(removed))

    # -- running ------------------------------------------------------------------------------

    def setup_tls(self) -> None:
        """The secure client port's TLS context; TLS also registers the `x509` ACL scheme."""
        cfg = self.config
        if cfg.secure_client_port is not None:
            self.tls_context = tls.server_context(cfg.ssl, tls.CLIENT_PREFIX)
        if cfg.secure_client_port is not None or cfg.ssl_quorum:
            aclmod.register_scheme("x509", tls.valid_dn)

    def _reload_tls(self) -> None:
        self.tls_context = tls.server_context(self.config.ssl, tls.CLIENT_PREFIX)

    def _tls_store_files(self) -> tls_reload.StoreFiles | None:
        """The client port's store files, if `client.certReload=true` asks to watch them."""
        cfg = self.config
        flag = cfg.properties.get("zookeeper.client.certReload", "")
        if self.tls_context is None or flag.strip().lower() != "true":
            return None
        paths = [cfg.ssl.get(tls.CLIENT_PREFIX + key) for key in
                 ("keyStore.location", "trustStore.location")]
        return tls_reload.StoreFiles(p.strip() for p in paths if p and p.strip())

    async def _listen(self, what: str, port: int, host: str | None
                      ) -> list[trio.SocketListener]:
        cfg = self.config
        backlog = cfg.client_port_listen_backlog if cfg.client_port_listen_backlog > 0 else None
        try:
            return await trio.open_tcp_listeners(port, host=host, backlog=backlog)
        except OSError as e:
            raise OSError(e.errno, f"{what} {host or '*'}:{port}: {e.strerror}") from e

    async def serve(self, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        cfg = self.config
        host = cfg.client_port_address
        port = cfg.client_port
        if cfg.this_server is not None and cfg.this_server.client_port:
            port = cfg.this_server.client_port
            host = cfg.this_server.client_host or host
        if port is None and cfg.secure_client_port is None:
            port = 2181
        self.setup_tls()
        if port is not None:
            self.listeners = await self._listen("client port", port, host)
        if cfg.secure_client_port is not None:
            self.secure_listeners = await self._listen(
                "secure client port", cfg.secure_client_port, cfg.secure_client_port_address)
        self.serving = True
        try:
            async with trio.open_nursery() as nursery:
                await self.commit_path.start(nursery)
                nursery.start_soon(self._expire_sessions)
                if cfg.autopurge_purge_interval > 0:
                    nursery.start_soon(self._autopurge)
                nursery.start_soon(self._reap_containers)
                await nursery.start(self.idle.run)
                for listener in self.listeners:
                    nursery.start_soon(self._serve_listener, listener, False)
                for listener in self.secure_listeners:
                    nursery.start_soon(self._serve_listener, listener, True)
                if self.secure_listeners:
                    store_files = self._tls_store_files()
                    if store_files is not None:
                        nursery.start_soon(tls_reload.watch, store_files, self._reload_tls)
                if cfg.admin_enable_server:
                    try:
                        self.admin_address = await nursery.start(admin.serve, self)
                    except* OSError as group:  # as a ZooKeeper ensemble member: serve on
                        log.error("Problem starting AdminServer: %s", group.exceptions[0])
                if cfg.metrics_http_port is not None:
                    self.metrics_address = await nursery.start(metrics.serve, self)
                task_status.started(self)
        finally:
            self.serving = False
