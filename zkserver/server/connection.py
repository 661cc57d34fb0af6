"""One client connection: bytes in -> engine -> bytes out, in Trio.

A connection that is doing something has a task: it parses *every* frame a receive returned and
hands them to the engine in order, in one driver step. Replies the engine queues during a step
are written straight to the socket when the step ends (server/flush.py); a sender task, in the
same nursery, waits until the engine has queued output that could not go that way (a full
socket buffer, TLS, output made outside a step) and writes all of it with one send. A client
that stops reading is not allowed to grow our buffer without bound: the receiver stops reading
until the sender has drained it. Nor may the server take on more than `globalOutstandingLimit`
requests: past it, connections that already have requests in hand stop reading until the
backlog shrinks.

A plain TCP connection with nothing to do (established, nothing to send, nothing read but not
yet handled) gives its tasks up and parks in the server's `IdleConnections` (idle.py): an idle
session then costs its objects, not two parked tasks. The idle set reads a parked connection
when bytes arrive and runs the same driver step (`Connection.readable`); what needs waiting
wakes the connection's task again (`Connection.wake_task`). TLS connections keep their task.

The stream is a plain TCP stream or a `trio.SSLStream` whose handshake the server has done.
Handshakes reach the engine, and ConnectResponses the sockets, in the order connections were
accepted and created sessions (handshake_order.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

from zkserver.proto.codes import Op
from zkserver.proto.frames import FrameError, FrameSplitter
from zkserver.server import fourletter

if TYPE_CHECKING:
    from zkserver.engine import Client
    from zkserver.server.server import Server
    from zkserver.tree.acl import Identity

log = logging.getLogger(__name__)

RECEIVE_SIZE = 256 * 1024
HIGH_WATER = 4 * 1024 * 1024
CLOSE_NOTIFY_TIMEOUT = 1.0
THROTTLE_POLL = 0.002  # how often a throttled connection looks whether it may read again


REFUSED = -1  # what a handshake run by `HandshakeOrder.admit` returns when it closes at once


class Connection:
    """What the connection layer keeps of one connection, with or without a task.

    It is the engine's doorbell (`ring`) and the flusher's outlet (`flush`). `ticket`: the
    connection's place in the order of ConnectResponses while its own is not yet written.
    `event` rings the sender and `drained` the receiver; both exist only while the connection
    has a task (None while it is parked)."""

    __slots__ = ("server", "stream", "client", "splitter", "fd", "ticket", "queued",
                 "parked", "event", "drained", "read_scope")

    def __init__(self, server: Server, stream: trio.abc.Stream, remote: tuple[str, int]) -> None:
        self.server = server
        self.stream = stream
        self.client: Client = server.engine.connect(remote, self.ring, server.now(),
                                                    server.wall())
        self.splitter = FrameSplitter(server.max_buffer)
        # A plain TCP socket's descriptor, written directly and parked when idle (-1: TLS, or
        # closed).
        self.fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        self.ticket = 0
        self.queued = False  # noted by the flusher for the end of this step
        self.parked = False
        self.event: trio.Event | None = trio.Event()
        self.drained: trio.Event | None = trio.Event()
        self.read_scope: trio.CancelScope | None = None  # the receiver's wait for bytes

    # -- the engine's and the flusher's side ------------------------------------------------

    def ring(self) -> None:
        if not self.server.flusher.note(self):
            self._wake_sender()

    def flush(self) -> None:
        client = self.client
        out = client.out
        if out and self.fd >= 0 and not self.ticket and not client.close_after_flush:
            try:
                sent = os.write(self.fd, out)
            except OSError:  # full (EAGAIN) or broken: the sender waits, or finds out
                sent = 0
            if sent:
                del out[:sent]
            if not out:
                return
        self._wake_sender()

    def _wake_sender(self) -> None:
        if self.parked:
            self.wake_task((), False)
        elif self.event is not None:
            self.event.set()

    # -- parking --------------------------------------------------------------------------------

    def can_park(self) -> bool:
        """Nothing to send or wait for, on a plain socket, while the idle set takes connections."""
        client = self.client
        return (self.fd >= 0 and not self.ticket and not client.out
                and not client.close_after_flush and not client.closed
                and self.server.idle.open)

    def wake_task(self, pending: Sequence[bytes], throttled: bool) -> None:
        """Parked, and something needs waiting for: the connection gets its task back."""
        self.server.idle.unpark(self)
        self.parked = False
        self.event = trio.Event()
        self.drained = trio.Event()
        self.server.idle.start(_serve, self, 0, pending, throttled)

    def readable(self, buf: memoryview) -> None:
        """Parked, and bytes arrived: what the receiver does with them, without a task."""
        try:
            n = os.readv(self.fd, [buf])
        except BlockingIOError:
            return
        except OSError:
            n = 0  # reset: gone
        if not n:
            self.close_now()
            return
        pending = self.frames(buf[:n])
        if pending is None:
            self.close_now()
            return
        if not pending:
            return
        self.parked = False  # in hand: what the step leaves to a task is seen to after it
        try:
            done, throttled = _step(self, pending, 0)
        finally:
            self.parked = True
        if throttled or not self.can_park():
            self.wake_task(pending[done:], throttled)

    def frames(self, data: bytes | memoryview) -> list[bytes] | None:
        """The frames `data` completes (its bytes counted as received); None after a malformed
        one: the connection is to close."""
        self.server.bytes_received += len(data)
        try:
            return self.splitter.feed(data)
        except FrameError as e:
            log.info("closing %s:%d: %s", self.client.remote[0], self.client.remote[1], e)
            return None

    # -- closing ----------------------------------------------------------------------------

    def _release(self) -> None:
        """Forget the connection everywhere but its socket."""
        self.fd = -1  # closing: nothing more is written past the sender
        if self.ticket:
            self.server.handshake_order.sent(self.ticket)  # gone before its ConnectResponse
            self.ticket = 0
        client = self.client
        self.server.engine.disconnect(client)
        self.server.tls_clients.discard(client)

    def close_now(self) -> None:
        """Close a parked connection (a plain socket: closing it needs no waiting)."""
        self.server.idle.unpark(self)
        self.parked = False
        self._release()
        assert isinstance(self.stream, trio.SocketStream)
        self.stream.socket.close()
        self.server.connection_closed(self.client.remote[0])

    async def close(self) -> None:
        self._release()
        try:
            await close_stream(self.stream)
        finally:
            self.server.connection_closed(self.client.remote[0])


async def serve_connection(server: Server, stream: trio.abc.Stream, remote: tuple[str, int],
                           auth_ids: Sequence[Identity] = (), secure: bool = False) -> None:
    """Serve one accepted connection (plain, or TLS already past its handshake) until it ends
    or parks; from here on the connection's close (and `Server.connection_closed`) is taken
    care of.

    `auth_ids` are identities the transport proved (a TLS client certificate's `x509` id);
    the connection holds them from the start, next to its `ip` identity.
    """
    number = server.handshake_order.accepted()
    conn = Connection(server, stream, remote)
    client = conn.client
    for ident in auth_ids:
        if ident not in client.auth_ids:
            client.auth_ids.append(ident)
    if secure:
        server.tls_clients.add(client)
    await _serve(conn, number, (), False)


async def _serve(conn: Connection, number: int, pending: Sequence[bytes],
                 throttled: bool) -> None:
    """A stretch of a connection's life with a task: from its accept (the handshake first,
    `number` its accept number) or from a wake-up while parked (`pending`: frames still to
    handle), until it closes or parks again."""
    keep = False
    try:
        while True:
            park = False
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_sender, conn, nursery.cancel_scope)
                if number:
                    pending = await _handshake(conn, number)
                    number = 0
                if pending is not None:
                    park = await _receiver(conn, pending, throttled)
                nursery.cancel_scope.cancel()
            if not park:
                break
            if conn.can_park():
                keep = conn.server.idle.park(conn)
                if keep:
                    conn.parked = True
                    conn.event = conn.drained = None
                    return
                break
            pending, throttled = (), False  # something came up while the sender stopped
    except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # the client went away (a reset included): its session lives on
    finally:
        if not keep:
            await conn.close()


async def close_stream(stream: trio.abc.Stream) -> None:
    """Close, even when cancelled; a TLS close_notify gets a moment, never a hang."""
    with trio.CancelScope(shield=True):
        if isinstance(stream, trio.SSLStream):
            with trio.move_on_after(CLOSE_NOTIFY_TIMEOUT):
                try:
                    await stream.aclose()
                    return
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
            await trio.aclose_forcefully(stream.transport_stream)
        else:
            await stream.aclose()


async def _sender(conn: Connection, scope: trio.CancelScope) -> None:
    client = conn.client
    stream = conn.stream
    order = conn.server.handshake_order
    while True:
        if not client.out and not client.close_after_flush:
            assert conn.event is not None
            await conn.event.wait()
            conn.event = trio.Event()
        if client.out:
            ticket = conn.ticket
            if ticket:
                await order.turn(ticket)  # earlier sessions' ConnectResponses go out first
            if conn.fd >= 0:
                await _write_out(conn)
            else:
                data = bytes(client.out)  # TLS: never parks, cancelled only as it closes
                client.out.clear()
                await stream.send_all(data)
            if ticket:
                conn.ticket = 0
                order.sent(ticket)
        if not client.out:
            assert conn.drained is not None
            conn.drained.set()
            conn.drained = trio.Event()
        if client.close_after_flush and not client.out:
            scope.cancel()
            return
        if conn.read_scope is not None and conn.can_park():
            conn.read_scope.cancel()  # the receiver waits for bytes: it parks instead


async def _write_out(conn: Connection) -> None:
    """Write a plain socket's queued output until none is left, taking off `client.out` only
    what the socket took. The sender is cancelled whenever its connection parks; a copy handed
    to `send_all` would lose its unsent tail then, and the client would read the next reply
    from the middle of a frame."""
    out, fd = conn.client.out, conn.fd
    while out:
        try:
            sent = os.write(fd, out)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(fd)
            continue
        except OSError as e:
            raise trio.BrokenResourceError(f"send failed: {e}") from e
        del out[:sent]
    await trio.lowlevel.checkpoint()


async def _handshake(conn: Connection, number: int) -> Sequence[bytes] | None:
    """The connection's first bytes: a four-letter word (answered), or a ConnectRequest for
    the engine. The frames that came after it, or None when the connection is to close."""
    server, stream, client = conn.server, conn.stream, conn.client
    engine = server.engine
    order = server.handshake_order
    splitter = conn.splitter
    # The first four bytes decide: a four-letter word, or the length of a ConnectRequest.
    with trio.move_on_after(server.handshake_timeout) as scope:
        while True:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                return None
            server.bytes_received += len(data)
            splitter.buf += data
            word = bytes(splitter.buf[:4])
            if len(word) == 4 and word.decode("latin-1") in fourletter.COMMANDS:
                await fourletter.answer(server, stream, word.decode(), splitter.buf[4:])
                return None
            try:
                frames = splitter.feed(b"")
            except FrameError:
                return None
            if frames:
                break
    if scope.cancelled_caught:
        return None

    def run() -> int:
        if not engine.handshake(client, frames[0], server.now(), server.wall()):
            return REFUSED
        queue = client.queue
        if queue and queue[0].op == Op.CREATE_SESSION:  # answered once committed
            conn.ticket = order.ticket()
        return 0

    if await order.admit(number, run) == REFUSED:
        return None
    server.commit()
    return frames[1:]


def _step(conn: Connection, pending: Sequence[bytes], done: int) -> tuple[int, bool]:
    """Hand the engine frames from `done` on, in one driver step: the replies it made leave
    as it ends (flush.py). Returns how far it got, and whether it stopped for the throttle
    (whose wait is outside the step, so that no step spans an await)."""
    server, client = conn.server, conn.client
    engine = server.engine
    throttled = False
    with server.flusher:
        now, wall = server.now(), server.wall()
        while done < len(pending):
            engine.handle(client, pending[done], now, wall)
            done += 1
            # globalOutstandingLimit: while the server has too many requests in hand, a
            # connection with requests of its own outstanding stops taking more (ZooKeeper's
            # throttle); connections with nothing outstanding keep going.
            if client.queue and server.over_outstanding_limit():
                throttled = True
                break
        server.commit()
    return done, throttled


async def _receiver(conn: Connection, pending: Sequence[bytes], throttled: bool) -> bool:
    """Handle `pending`, then read and handle until the connection closes (False) or may
    park (True)."""
    server, stream, client = conn.server, conn.stream, conn.client
    while True:
        if client.close_after_flush:
            await trio.sleep_forever()  # the sender closes once the reply is out
        done = 0
        while True:
            if throttled:
                while client.queue and server.over_outstanding_limit() and not client.closed:
                    await trio.sleep(THROTTLE_POLL)
            if done >= len(pending):
                break
            done, throttled = _step(conn, pending, done)
        while len(client.out) > HIGH_WATER and not client.closed:
            assert conn.drained is not None
            await conn.drained.wait()
        if conn.can_park():
            return True
        if conn.fd >= 0:
            # The sender cancels this wait once nothing is left to send: then the connection
            # parks (a new session's, once its ConnectResponse is out).
            with trio.CancelScope() as scope:
                conn.read_scope = scope
                try:
                    data = await stream.receive_some(RECEIVE_SIZE)
                finally:
                    conn.read_scope = None
            if scope.cancelled_caught:
                pending = ()
                continue
        else:
            data = await stream.receive_some(RECEIVE_SIZE)
        if not data:
            return False
        frames = conn.frames(data)
        if frames is None:
            return False
        pending = frames
