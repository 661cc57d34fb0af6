"""One client connection: bytes in -> engine -> bytes out, in Trio.

Two tasks per connection, in one nursery: the receiver parses *every* frame a receive returned
and hands them to the engine in order; the sender waits until the engine has queued output for
this connection (its own replies, or notifications caused by other connections' writes) and
writes all of it with one send. A client that stops reading is not allowed to grow our buffer
without bound: the receiver stops reading until the sender has drained it. Nor may the server
take on more than `globalOutstandingLimit` requests: past it, connections that already have
requests in hand stop reading until the backlog shrinks.

The stream is a plain TCP stream or a `trio.SSLStream` whose handshake the server has done.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

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


class _Wakeup:
    """The sender's doorbell: the engine rings it, the sender waits on it."""

    __slots__ = ("event", "drained")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.drained = trio.Event()

    def ring(self) -> None:
        self.event.set()


async def serve_connection(server: Server, stream: trio.abc.Stream, remote: tuple[str, int],
                           auth_ids: Sequence[Identity] = (), secure: bool = False) -> None:
    """Serve one accepted connection (plain, or TLS already past its handshake) until it ends.

    `auth_ids` are identities the transport proved (a TLS client certificate's `x509` id);
    the connection holds them from the start, next to its `ip` identity.
    """
    wakeup = _Wakeup()
    engine = server.engine
    client = engine.connect(remote, wakeup.ring, server.now(), server.wall())
    for ident in auth_ids:
        if ident not in client.auth_ids:
            client.auth_ids.append(ident)
    if secure:
        server.tls_clients.add(client)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sender, stream, client, wakeup, nursery.cancel_scope)
            await _receiver(server, stream, client, wakeup)
            nursery.cancel_scope.cancel()
    except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # the client went away (a reset included): its session lives on
    finally:
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
                  scope: trio.CancelScope) -> None:
    while True:
        await wakeup.event.wait()
        wakeup.event = trio.Event()
        if client.out:
            data = bytes(client.out)
            client.out.clear()
            await stream.send_all(data)
        if not client.out:
            wakeup.drained.set()
            wakeup.drained = trio.Event()
        if client.close_after_flush and not client.out:
            scope.cancel()
            return


async def _receiver(server: Server, stream: trio.abc.Stream, client: Client,
                    wakeup: _Wakeup) -> None:
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
    if not engine.handshake(client, frames[0], server.now(), server.wall()):
        return
    server.commit()
    pending = frames[1:]
    while True:
        if client.close_after_flush:
            await trio.sleep_forever()  # the sender closes once the reply is out
        if pending:
            now, wall = server.now(), server.wall()
            for f in pending:
                engine.handle(client, f, now, wall)
                # globalOutstandingLimit: while the server has too many requests in hand, a
                # connection with requests of its own outstanding stops taking more (ZooKeeper's
                # throttle); connections with nothing outstanding keep going.
                if client.queue and server.over_outstanding_limit(1):
                    server.commit()
                    while client.queue and server.over_outstanding_limit(0) \
                            and not client.closed:
                        await trio.sleep(THROTTLE_POLL)
                    now, wall = server.now(), server.wall()
            server.commit()
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
