"""Trio links between the servers of an ensemble, one `Links` per port (election, quorum).

Every server keeps one outbound TCP stream to each other server (opened on demand, and
announced with our server id) and accepts their outbound streams as its inbound ones. A stream
is FIFO, like the links ZAB assumes. On the quorum port a broken stream (either direction) is
reported as `lost(sid)`: messages queued for it are dropped, exactly as with a TCP connection
that died, and the ZAB core reacts (a follower looks for a new leader, a leader forgets the
learner). On the election port, losses are silent: notifications are re-sent anyway.

A server the configuration does not name may connect too (ZooKeeper 3.5+: a server about to be
added starts with a configuration listing the members and itself, elects, and syncs with the
leader before the reconfiguration that adds it can commit, which may need its
acknowledgement). We have no address for it, so we answer on the stream it opened, as
ZooKeeper's leader answers a learner on the learner's own connection; the server reads what
comes back on its outbound streams. Once a reconfiguration names it, that stream stays its link
(a second one could reorder messages) until it breaks; then links open to its address as to
any member.

A broken stream is noticed when it breaks, not at the next send: the other server never writes
on our outbound stream, so a task reads it and takes end-of-stream as the connection's end (a
killed leader's followers learn of it within milliseconds, and nothing is sent into a stream to
a server that has since restarted). `drop(sid)` closes at once, even a stream blocked mid-send.

With `sslQuorum=true` both ports speak TLS (`QuorumTLS`, from the `ssl.quorum.*` keys): each
side shows its certificate, each checks the other's against the trust store and, unless
`ssl.quorum.hostnameVerification=false`, that the certificate names the peer's address, as
ZooKeeper's quorum TLS does. With `quorum.auth.enableSasl=true` a new stream then carries a
SASL exchange before anything else (`auth`, zkserver/quorum/quorum_auth.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import struct
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import attrs
import trio

from zkserver.proto.frames import FrameError, FrameSplitter
from zkserver.quorum import messages
from zkserver.quorum.quorum_auth import QuorumAuth

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
MAX_MESSAGE = 1 << 30
CONNECT_TIMEOUT = 1.0
TLS_HANDSHAKE_TIMEOUT = 5.0
CLOSE_TIMEOUT = 1.0


@attrs.frozen
class QuorumTLS:
    """What a server needs to speak TLS to the other members (see zkserver.server.tls)."""

    server: ssl.SSLContext  # for the connections other members open to us
    client: ssl.SSLContext  # for the connections we open
    verify_hostnames: bool = True


async def _close(stream: trio.abc.Stream) -> None:
    with trio.CancelScope(shield=True):
        if isinstance(stream, trio.SSLStream):
            with trio.move_on_after(CLOSE_TIMEOUT):
                try:
                    await stream.aclose()
                    return
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
            await trio.aclose_forcefully(stream.transport_stream)
        else:
            await stream.aclose()


def _frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


class Reader:
    """Reads one member link's stream.

    On a plain socket it waits for the socket to turn readable and then reads into a buffer
    of its own, one system call: trio's `receive_some` first tried a read that found nothing
    (the messages of a link come one round trip apart) and after a read took a scheduling
    pass of its own. With the driver's plain step objects (quorum/node.py `StepScope`) this
    took a follower's CPU per write from 481 to 380 µs in a 3-server ensemble. A TLS stream
    is read through trio."""

    __slots__ = ("stream", "fd", "buf")

    SIZE = 1 << 18

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        self.buf = memoryview(bytearray(self.SIZE)) if self.fd >= 0 else None

    async def receive(self) -> bytes | memoryview:
        """The next bytes (empty at the stream's end); a memoryview is valid until the next
        call."""
        if self.buf is None:
            return await self.stream.receive_some(1 << 20)
        while True:
            await trio.lowlevel.wait_readable(self.fd)
            try:
                n = os.readv(self.fd, [self.buf])
            except BlockingIOError:
                continue
            return self.buf[:n]


def _peer(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except OSError:
        return "?"


class _Out:
    """Our outbound stream to one server, and the scope of the task watching it."""

    __slots__ = ("stream", "scope", "closed", "busy", "fd")

    def __init__(self, stream: trio.abc.Stream, scope: trio.CancelScope | None = None) -> None:
        self.stream = stream
        # Cancelled to close the stream: our watcher's, or for a stream the other server
        # opened (one we know no address of), the task that reads it.
        self.scope = scope if scope is not None else trio.CancelScope()
        self.closed = False
        self.busy = False  # the sender task is writing: nobody else may
        # A plain TCP stream's socket, which `Links.send` writes to directly (-1: TLS)
        self.fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1


class Links:
    def __init__(self, me: int, peers: dict[int, tuple[str, int]], listen: tuple[str, int],
                 on_message: Callable[[int, Any], None], on_lost: Callable[[int], None] | None,
                 name: str, tls: QuorumTLS | None = None, auth: QuorumAuth | None = None,
                 step: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext
                 ) -> None:
        self.me = me
        # The messages one read brings are handed to `on_message` inside one `step()`: the
        # owner's driver step, so that what they make leaves together at its end.
        self.step = step
        self.tls = tls
        self.auth = auth
        self.peers = peers
        self.listen = listen
        self.on_message = on_message
        self.on_lost = on_lost
        self.name = name
        self.queues: dict[int, list[bytes]] = {sid: [] for sid in peers}
        self.wake: dict[int, trio.Event] = {sid: trio.Event() for sid in peers}
        self.progress: dict[int, trio.Event] = {sid: trio.Event() for sid in peers}
        self.out: dict[int, _Out | None] = {sid: None for sid in peers}
        self.inbound: dict[int, trio.CancelScope] = {}
        self.senders: dict[int, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self._corked: dict[int, list[bytes]] | None = None  # see `hold`
        self._holds = 0
        self._last: tuple[Any, bytes] = (None, b"")  # the message sent last, and its frame

    def hold(self) -> None:
        """Hold what is sent from now on and write it at the matching `release`, one write
        per server; holds nest, and the outermost release writes.

        The driver carries out several Ready batches in one go (a COMMIT and the next
        PROPOSAL to the same follower, say); a write each cost a syscall and, on loopback, the
        receiver's share of the TCP work too, which made `send` a third of a busy leader's CPU.
        ZooKeeper's learner handlers coalesce the same way (a buffered stream flushed when
        their queue runs empty)."""
        self._holds += 1
        if self._corked is None:
            self._corked = {}

    def release(self) -> None:
        """End a `hold`; the outermost one writes what was held."""
        self._holds -= 1
        if self._holds:
            return
        held, self._corked = self._corked, None
        if held:
            for sid, parts in held.items():
                self._write(sid, parts[0] if len(parts) == 1 else b"".join(parts))

    def flush(self, sid: int) -> None:
        """Write what a `hold` keeps for `sid` now, ahead of the release (a leader's COMMIT
        that a follower's client waits for, sent before the leader applies)."""
        if self._corked is not None:
            parts = self._corked.pop(sid, None)
            if parts:
                self._write(sid, b"".join(parts))

    def holding(self) -> bool:
        """Whether a `hold` is open (what is sent is held until its release)."""
        return self._corked is not None

    def outermost(self) -> bool:
        """Whether exactly one `hold` is open: its release is the one that writes."""
        return self._holds == 1

    def set_peers(self, peers: dict[int, tuple[str, int]]) -> None:
        """The members changed (a reconfiguration committed): links to servers that joined
        (or moved) open on demand from now on, and those to servers that left close."""
        for sid in [s for s in self.peers if peers.get(s) != self.peers[s]]:
            self._remove_peer(sid)
        for sid, address in peers.items():
            if sid not in self.peers:
                self._add_peer(sid, address)

    def _add_peer(self, sid: int, address: tuple[str, int]) -> None:
        self.peers[sid] = address
        if sid in self.queues:
            return  # linked already, on the stream it opened: that stays its link
        self.queues[sid] = []
        self.wake[sid] = trio.Event()
        self.progress[sid] = trio.Event()
        self.out[sid] = None
        if self._nursery is not None:
            self._nursery.start_soon(self._sender, sid)

    def _remove_peer(self, sid: int) -> None:
        self.drop(sid)
        self.peers.pop(sid, None)
        self._forget(sid)

    def _forget(self, sid: int) -> None:
        """No more link to `sid`: its queue and sender go."""
        scope = self.senders.pop(sid, None)
        if scope is not None:
            scope.cancel()
        for table in (self.queues, self.wake, self.out):
            table.pop(sid, None)
        progress = self.progress.pop(sid, None)
        if progress is not None:
            progress.set()  # nobody waits for room in a queue that is gone

    def _adopt(self, sid: int, stream: trio.abc.Stream, scope: trio.CancelScope) -> _Out:
        """Server `sid`, which we know no address of, opened `stream`: our link to it (a
        newer stream of its replaces an older one)."""
        if sid not in self.queues:
            self.queues[sid] = []
            self.wake[sid] = trio.Event()
            self.progress[sid] = trio.Event()
            assert self._nursery is not None
            self._nursery.start_soon(self._sender, sid)
        else:
            self._retire(sid, self.out.get(sid))
        conn = self.out[sid] = _Out(stream, scope)
        return conn

    def send(self, sid: int, msg: Any) -> None:
        """Send `msg` to `sid`: written to its stream at once when the stream is idle, else
        queued for the stream's sender task.

        Written in place, a message leaves in the pass that made it; the hop through the
        sender task cost each of the four member-to-member messages on a write's path an extra
        scheduling pass. The socket is non-blocking: what it does not take (a full buffer), and
        any error, goes to the sender, which waits for room or reports the stream lost."""
        if sid not in self.queues:
            return
        if msg is self._last[0]:  # one PROPOSAL or COMMIT to every follower: encoded once
            data = self._last[1]
        else:
            data = _frame(messages.encode(msg))
            self._last = (msg, data)
        if self._corked is not None:
            self._corked.setdefault(sid, []).append(data)
            return
        self._write(sid, data)

    def _write(self, sid: int, data: bytes) -> None:
        q = self.queues.get(sid)
        if q is None:
            return  # dropped meanwhile
        conn = self.out[sid]
        if conn is not None and not q and not conn.busy and conn.fd >= 0:
            try:
                sent = os.write(conn.fd, data)
            except OSError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        q.append(data)
        self.wake[sid].set()

    async def wait_room(self, sid: int, limit: int) -> None:
        """Wait until fewer than `limit` messages wait in the queue for `sid` (a lost link
        drops its queue, which ends the wait too)."""
        queue = self.queues.get(sid)
        while queue is not None and len(queue) >= limit and sid in self.progress:
            await self.progress[sid].wait()

    def _take(self, sid: int) -> bytes:
        """Empty the queue for `sid` (to send it, or drop it) and wake whoever waits for room
        in it; what it held, as one buffer."""
        queue = self.queues[sid]
        data = b"".join(queue)
        queue.clear()
        self.progress[sid].set()
        self.progress[sid] = trio.Event()
        return data

    def drop(self, sid: int) -> None:
        """Close both streams to `sid` now, even mid-send (the other side sees the connection
        end); what was queued for it is dropped."""
        held = self._corked.pop(sid, None) if self._corked is not None else None
        if held:  # sent before the drop: to the stream being dropped, as without `hold`
            self._write(sid, b"".join(held))
        if sid in self.out:
            self._take(sid)
            self._retire(sid, self.out[sid])
        scope = self.inbound.pop(sid, None)
        if scope is not None:
            scope.cancel()

    def _lost(self, sid: int) -> None:
        if self.on_lost is not None:
            self.on_lost(sid)

    def use_tls(self, tls: QuorumTLS) -> None:
        """Make every later connection, either way, with these contexts (rotated
        certificates, `sslQuorumReloadCertFiles`); established ones keep theirs."""
        self.tls = tls

    def _retire(self, sid: int, conn: _Out | None) -> bool:
        """Stop using `conn`, whose watcher then closes it. True only the first time, so
        that one dead connection is reported lost once, whoever noticed first."""
        if conn is None or conn.closed:
            return False
        conn.closed = True
        conn.fd = -1
        if self.out.get(sid) is conn:
            self.out[sid] = None
        conn.scope.cancel()
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        host, port = self.listen
        try:
            listeners = await trio.open_tcp_listeners(port, host=host or None)
        except OSError as e:  # name the address: which of a member's ports is taken matters
            raise OSError(e.errno, f"{self.name} {host or '*'}:{port}: {e.strerror}") from e
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for sid in self.peers:
                nursery.start_soon(self._sender, sid)
            nursery.start_soon(trio.serve_listeners, self._inbound, listeners)
            task_status.started()

    async def _sender(self, sid: int) -> None:
        with trio.CancelScope() as scope:
            self.senders[sid] = scope
            await self._send_loop(sid)

    async def _send_loop(self, sid: int) -> None:
        while True:
            await self.wake[sid].wait()
            self.wake[sid] = trio.Event()
            if not self.queues[sid]:
                continue
            conn = self.out[sid]
            reused = conn is not None
            if conn is None:
                conn = await self._open(sid)
                if conn is None:
                    self._take(sid)
                    self._lost(sid)
                    continue
            data = self._take(sid)
            if await self._send(sid, conn, data) or not reused or self.on_lost is not None:
                continue
            # Election port: the stream died before its watcher said so (the server went down
            # and maybe came back). Notifications carry whole state and may repeat, so send
            # these again on a new connection rather than wait for the next resend.
            conn = await self._open(sid)
            if conn is not None:
                await self._send(sid, conn, data)

    async def _open(self, sid: int) -> _Out | None:
        if sid not in self.peers:
            return None  # one we only answer on the stream it opened, which is gone
        host, port = self.peers[sid]
        stream = await self._connect(sid, host, port)
        if stream is None:
            return None
        conn = self.out[sid] = _Out(stream)
        assert self._nursery is not None
        self._nursery.start_soon(self._watch, sid, conn)
        return conn

    async def _send(self, sid: int, conn: _Out, data: bytes) -> bool:
        conn.busy = True
        try:
            await conn.stream.send_all(data)
            return True
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            if self._retire(sid, conn):
                self._lost(sid)
            return False
        finally:
            conn.busy = False

    async def _watch(self, sid: int, conn: _Out) -> None:
        """Notice at once when the other end closes our outbound stream, and take what it
        sends on it.

        A server that knows our address never writes on it, so a read that ends means the
        connection is gone (the process died, or it dropped us). Without this, a dead stream
        was found only by the next send, which it lost; a stale stream to a restarted server
        lost the first message after the restart, and a follower whose leader had gone learnt
        of it late. One whose configuration does not name us yet answers on it.
        """
        splitter = FrameSplitter(MAX_MESSAGE)
        reader = Reader(conn.stream)
        with conn.scope:
            try:
                while data := await reader.receive():
                    with self.step():
                        for frame in splitter.feed(data):
                            self.on_message(sid, messages.decode(frame))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, FrameError):
                pass
            except messages.MessageError as e:
                log.warning("%s: server %s sent %s; closing our connection", self.name, sid, e)
        if self._retire(sid, conn):
            self._lost(sid)
        stream = conn.stream
        # Forcefully, and under the socket of a TLS stream: the sender may be mid-send_all,
        # which then fails at once instead of blocking on a link we gave up on.
        with trio.CancelScope(shield=True):
            if isinstance(stream, trio.SSLStream):
                await trio.aclose_forcefully(stream.transport_stream)
            else:
                await trio.aclose_forcefully(stream)

    async def _connect(self, sid: int, host: str, port: int) -> trio.abc.Stream | None:
        """A new outbound stream to `sid`, announced with our id (TLS first if configured)."""
        raw: trio.SocketStream | None = None
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                raw = await trio.open_tcp_stream(host, port)
            stream: trio.abc.Stream = raw
            if self.tls is not None:
                secure = trio.SSLStream(raw, self.tls.client, server_hostname=host)
                with trio.fail_after(TLS_HANDSHAKE_TIMEOUT):
                    await secure.do_handshake()
                stream = secure
            if self.auth is not None and not await self.auth.as_learner(stream, host, sid,
                                                                        self.name):
                await _close(stream)
                return None
            await stream.send_all(_frame(struct.pack(">q", self.me)))
            return stream
        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as e:
            if self.tls is not None and raw is not None:
                log.warning("%s: TLS to server %d (%s:%d) failed: %s", self.name, sid, host,
                            port, e.__cause__ or e)
            if raw is not None:
                await trio.aclose_forcefully(raw)
            return None

    async def _secure_inbound(self, stream: trio.SocketStream) -> trio.SSLStream | None:
        """The server side of a member's TLS connection, its certificate checked."""
        assert self.tls is not None
        try:
            ip = str(stream.socket.getpeername()[0])
        except OSError:
            return None
        secure = trio.SSLStream(stream, self.tls.server, server_side=True)
        try:
            with trio.fail_after(TLS_HANDSHAKE_TIMEOUT):
                await secure.do_handshake()
        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as e:
            log.warning("%s: TLS handshake with %s failed: %s", self.name, ip, e.__cause__ or e)
            return None
        der = secure.getpeercert(binary_form=True)
        if self.tls.verify_hostnames and der is not None:
            from zkserver.server.tls import peer_matches_host

            names: list[str] = []
            if not peer_matches_host(der, ip, []):
                try:
                    names = [(await trio.socket.getnameinfo((ip, 0), socket.NI_NAMEREQD))[0]]
                except OSError:
                    pass
                if not peer_matches_host(der, ip, names):
                    log.warning("%s: the certificate of %s does not name that address; "
                                "closing (ssl.quorum.hostnameVerification)", self.name, ip)
                    return None
        return secure

    async def _inbound(self, raw: trio.SocketStream) -> None:
        stream: trio.abc.Stream = raw
        if self.tls is not None:
            secure = await self._secure_inbound(raw)
            if secure is None:
                await trio.aclose_forcefully(raw)
                return
            stream = secure
        splitter = FrameSplitter(MAX_MESSAGE)
        reader = Reader(stream)
        sid = None
        adopted: _Out | None = None
        try:
            with trio.CancelScope() as scope:
                frames: list[bytes] = []
                if self.auth is not None:
                    admitted = await self.auth.as_server(stream, _peer(raw), self.name)
                    if admitted is None:
                        return
                    frames, rest = admitted
                    frames += splitter.feed(rest)
                while True:
                    if not frames:
                        data = await reader.receive()
                        if not data:
                            break
                        frames = splitter.feed(data)
                    batch, frames = frames, []
                    with self.step():
                        for frame in batch:
                            if sid is None:
                                if len(frame) != 8:
                                    log.warning("%s: a connection opened without a server id",
                                                self.name)
                                    return
                                sid = struct.unpack(">q", frame)[0]
                                if sid == self.me:
                                    log.warning("%s: a connection claiming our own id", self.name)
                                    return
                                old = self.inbound.get(sid)
                                if old is not None:
                                    old.cancel()
                                self.inbound[sid] = scope
                                if sid not in self.peers:  # not (yet) in our configuration
                                    adopted = self._adopt(sid, stream, scope)
                                continue
                            self.on_message(sid, messages.decode(frame))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, FrameError):
            pass
        except messages.MessageError as e:
            log.warning("%s: server %s sent %s; closing its connection", self.name, sid, e)
        finally:
            if sid is not None:
                current = self.inbound.get(sid) is scope
                if current:
                    del self.inbound[sid]
                if adopted is not None:
                    self._retire(sid, adopted)
                    if sid not in self.peers and sid not in self.inbound:
                        self._forget(sid)
                if current:
                    self._lost(sid)
            await _close(stream)
