"""One client connection: bytes in -> engine -> bytes out, in Trio.

Two tasks per connection, in one nursery: the receiver parses *every* frame a receive returned
and hands them to the engine in order. Replies the engine queues during a driver step are
written straight to the socket when the step ends (server/flush.py); the sender waits until the
engine has queued output that could not go that way (a full socket buffer, TLS, output made
outside a step) and writes all of it with one send. A client that stops reading is not allowed
to grow our buffer without bound: the receiver stops reading until the sender has drained it.
Nor may the server take on more than `globalOutstandingLimit` requests: past it, connections
that already have requests in hand stop reading until the backlog shrinks.

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
from zkserver.server.flush import Flusher
from zkserver.server.handshake_order import HandshakeOrder

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


class _Wakeup:
    """The sender's doorbell: the engine rings it, the sender waits on it. `ticket`: the
    connection's place in the order of ConnectResponses while its own is not yet written.

    Rung during a driver step, it lets the server's `Flusher` write the replies straight to
    the socket when the step ends (`flush`); the sender takes only what that cannot."""

    __slots__ = ("event", "drained", "ticket", "flusher", "client", "fd", "busy", "queued")

    def __init__(self, flusher: Flusher, client: Client | None = None, fd: int = -1) -> None:
        self.event = trio.Event()
        self.drained = trio.Event()
        self.ticket = 0
        self.flusher = flusher
        self.client = client
        self.fd = fd  # a plain TCP socket's, written directly (-1: TLS, or closed)
        self.busy = False  # the sender is writing: nobody else may
        self.queued = False  # noted by the flusher for the end of this step

    def ring(self) -> None:
        if not self.flusher.note(self):
            self.event.set()

    def flush(self) -> None:
        client = self.client
        if client is None:
            self.event.set()
            return
        out = client.out
        if out and self.fd >= 0 and not self.busy and not self.ticket \
                and not client.close_after_flush:
            try:
                sent = os.write(self.fd, out)
            except OSError:  # full (EAGAIN) or broken: the sender waits, or finds out
                sent = 0
            if sent:
                del out[:sent]
            if not out:
                return
        self.event.set()


async def serve_connection(server: Server, stream: trio.abc.Stream, remote: tuple[str, int],
                           auth_ids: Sequence[Identity] = (), secure: bool = False) -> None:
    """Serve one accepted connection (plain, or TLS already past its handshake) until it ends.

    `auth_ids` are identities the transport proved (a TLS client certificate's `x509` id);
    the connection holds them from the start, next to its `ip` identity.
    """
    wakeup = _Wakeup(server.flusher)
    engine = server.engine
    order = server.handshake_order
    number = order.accepted()
    client = engine.connect(remote, wakeup.ring, server.now(), server.wall())
    wakeup.client = client
    if isinstance(stream, trio.SocketStream):
        wakeup.fd = stream.socket.fileno()
    for ident in auth_ids:
        if ident not in client.auth_ids:
            client.auth_ids.append(ident)
    if secure:
        server.tls_clients.add(client)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sender, stream, client, wakeup, order, nursery.cancel_scope)
            await _receiver(server, stream, client, wakeup, order, number)
            nursery.cancel_scope.cancel()
    except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # the client went away (a reset included): its session lives on
    finally:
        wakeup.fd = -1  # closing: nothing more is written past the sender
        if wakeup.ticket:
            order.sent(wakeup.ticket)  # gone before its ConnectResponse: nobody waits for it
        engine.disconnect(client)
        server.tls_clients.discard(client)
        await close_stream(stream)


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


async def _sender(stream: trio.abc.Stream, client: Client, wakeup: _Wakeup,
                  order: HandshakeOrder, scope: trio.CancelScope) -> None:
    while True:
        await wakeup.event.wait()
        wakeup.event = trio.Event()
        if client.out:
            ticket = wakeup.ticket
            if ticket:
                await order.turn(ticket)  # earlier sessions' ConnectResponses go out first
            data = bytes(client.out)
            client.out.clear()
            wakeup.busy = True
            try:
                await stream.send_all(data)
            finally:
                wakeup.busy = False
            if ticket:
                wakeup.ticket = 0
                order.sent(ticket)
        if not client.out:
            wakeup.drained.set()
            wakeup.drained = trio.Event()
        if client.close_after_flush and not client.out:
            scope.cancel()
            return


async def _receiver(server: Server, stream: trio.abc.Stream, client: Client,
                    wakeup: _Wakeup, order: HandshakeOrder, number: int) -> None:
    engine = server.engine
    splitter = FrameSplitter(server.max_buffer)
    # The first four bytes decide: a four-letter word, or the length of a ConnectRequest.
    with trio.move_on_after(server.handshake_timeout) as scope:
        while True:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                return
            server.bytes_received += len(data)
            splitter.buf += data
            word = bytes(splitter.buf[:4])
            if len(word) == 4 and word.decode("latin-1") in fourletter.COMMANDS:
                await fourletter.answer(server, stream, word.decode(), splitter.buf[4:])
                return
            try:
                frames = splitter.feed(b"")
            except FrameError:
                return
            if frames:
                break
    if scope.cancelled_caught:
        return

    def run() -> int:
        if not engine.handshake(client, frames[0], server.now(), server.wall()):
            return REFUSED
        queue = client.queue
        if queue and queue[0].op == Op.CREATE_SESSION:  # answered once committed
            wakeup.ticket = order.ticket()
        return 0

    if await order.admit(number, run) == REFUSED:
        return
    server.commit()
    pending = frames[1:]
    while True:
        if client.close_after_flush:
            await trio.sleep_forever()  # the sender closes once the reply is out
        if pending:
            done = 0
            while done < len(pending):
                # One step per run of frames: the replies it made leave as it ends (flush.py).
                # The throttle's wait is outside it, so that no step spans an await.
                throttled = False
                with server.flusher:
                    now, wall = server.now(), server.wall()
                    while done < len(pending):
                        engine.handle(client, pending[done], now, wall)
                        done += 1
                        # globalOutstandingLimit: while the server has too many requests in
                        # hand, a connection with requests of its own outstanding stops taking
                        # more (ZooKeeper's throttle); connections with nothing outstanding
                        # keep going.
                        if client.queue and server.over_outstanding_limit():
                            throttled = True
                            break
                    server.commit()
                if throttled:
                    while client.queue and server.over_outstanding_limit() \
                            and not client.closed:
                        await trio.sleep(THROTTLE_POLL)
            while len(client.out) > HIGH_WATER and not client.closed:
                await wakeup.drained.wait()
        data = await stream.receive_some(RECEIVE_SIZE)
        if not data:
            return
        server.bytes_received += len(data)
        try:
            pending = splitter.feed(data)
        except FrameError as e:
            log.info("closing %s:%d: %s", client.remote[0], client.remote[1], e)
            return
