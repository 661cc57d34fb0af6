"""The links between ensemble members: a connection that ends is noticed when it ends, a
dropped link closes at once, and a server that restarts gets the next message.

Real TCP on loopback under Trio; the "other server" is either another `Links` or a bare
listener the test controls.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncIterator, Iterator

import trio
from support.realzk import free_port

from zkserver.quorum.messages import Ack, Snap
from zkserver.quorum.messages import encode as messages_encode
from zkserver.quorum.transport import Links

ME, OTHER = 1, 2


def links(port: int, listen: int, got: list | None = None, lost: list | None = None,
          election: bool = False) -> Links:
    def on_message(sid: int, msg: object) -> None:
        if got is not None:
            got.append((sid, msg))

    on_lost = None if election else (lost.append if lost is not None else (lambda sid: None))
    return Links(ME, {OTHER: ("127.0.0.1", port)}, ("127.0.0.1", listen), on_message, on_lost,
                 "test")


async def read_id(stream: trio.SocketStream) -> int:
    data = b""
    while len(data) < 12:
        chunk = await stream.receive_some(12 - len(data))
        assert chunk, "closed before the server id"
        data += chunk
    return struct.unpack(">Iq", data)[1]


async def test_the_other_end_closing_is_reported_at_once_without_another_send():
    port, lost = free_port(), []
    closed = trio.Event()

    async def peer(stream: trio.SocketStream) -> None:
        assert await read_id(stream) == ME
        await stream.aclose()  # the other server drops us (or dies)
        closed.set()

    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, peer, listeners)
        ln = links(port, free_port(), lost=lost)
        await nursery.start(ln.run)
        ln.send(OTHER, Ack(1))
        await closed.wait()
        with trio.fail_after(2):
            while not lost:
                await trio.sleep(0.01)
        assert lost == [OTHER]
        nursery.cancel_scope.cancel()


async def test_drop_closes_a_link_whose_send_is_blocked():
    """The other server stopped reading (a silent network): our send blocks on full buffers.
    drop() still closes the link at once, and the next message goes on a new connection."""
    port = free_port()
    accepted: list[trio.SocketStream] = []
    second = trio.Event()

    async def peer(stream: trio.SocketStream) -> None:
        await read_id(stream)
        accepted.append(stream)
        if len(accepted) == 2:
            second.set()
        await trio.sleep_forever()  # never read the rest

    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, peer, listeners)
        ln = links(port, free_port())
        await nursery.start(ln.run)
        ln.send(OTHER, Snap(1, b"x" * (64 << 20), True, True))  # more than socket buffers hold
        with trio.fail_after(5):
            while not accepted:
                await trio.sleep(0.01)
        await trio.sleep(0.2)  # the sender is now blocked in send_all
        ln.drop(OTHER)
        ln.send(OTHER, Ack(2))
        with trio.fail_after(2):
            await second.wait()
        nursery.cancel_scope.cancel()


async def test_an_election_message_reaches_a_server_that_restarted():
    """The first notification after the other server restarted is delivered, not lost in the
    stream to the old process."""
    port, got = free_port(), []
    sender = links(port, free_port(), election=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(sender.run)
        for round_ in range(3):  # the other server's first life, then two restarts
            with trio.CancelScope() as life:
                other = Links(OTHER, {ME: ("127.0.0.1", free_port())}, ("127.0.0.1", port),
                              lambda sid, msg: got.append(msg), None, "other")
                async with trio.open_nursery() as inner:
                    await inner.start(other.run)
                    sender.send(OTHER, Ack(round_))
                    with trio.fail_after(2):
                        while Ack(round_) not in got:
                            await trio.sleep(0.01)
                    life.cancel()  # the process dies: its sockets close
            await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert got == [Ack(0), Ack(1), Ack(2)]


async def test_garbage_on_the_quorum_port_drops_that_connection_only():
    """A port scanner, a wrong-version peer or a hostile host: short ids, unknown servers,
    undecodable messages. Each ends its own connection; the listener and real links go on."""
    listen, got = free_port(), []
    ln = links(free_port(), listen, got=got)
    frame = lambda body: struct.pack(">I", len(body)) + body  # noqa: E731
    hostile = [
        frame(b"\x01\x02"),                                     # an id that is not 8 bytes
        frame(struct.pack(">q", OTHER)) + frame(b"\xff\xfe"),   # not CBOR
        frame(struct.pack(">q", OTHER)) + frame(b"\x82\x19\x03\xe7\x00"),  # unknown type 999
        frame(struct.pack(">q", OTHER)) + frame(b"\x81\x00"),   # a known type, fields missing
        b"\xff\xff\xff\xff",                                    # a negative length
    ]
    async with trio.open_nursery() as nursery:
        await nursery.start(ln.run)
        for data in hostile:
            s = await trio.open_tcp_stream("127.0.0.1", listen)
            await s.send_all(data)
            with trio.fail_after(5):
                while await s.receive_some(100):
                    pass  # the server closes the connection
            await s.aclose()
        s = await trio.open_tcp_stream("127.0.0.1", listen)
        await s.send_all(frame(struct.pack(">q", OTHER)) + frame(messages_encode(Ack(7))))
        with trio.fail_after(5):
            while not got:
                await trio.sleep(0.01)
        assert got == [(OTHER, Ack(7))]
        await s.aclose()
        nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _counting_writes(monkeypatch) -> AsyncIterator[tuple[Links, list, list[int]]]:
    """A sender linked to another server (its stream open, Ack(0) delivered), what that server
    got, and the size of each write the sender makes from then on."""
    import zkserver.quorum.transport as transport

    port, got = free_port(), []
    writes: list[int] = []
    real_write = transport.os.write
    other = Links(OTHER, {ME: ("127.0.0.1", free_port())}, ("127.0.0.1", port),
                  lambda sid, msg: got.append(msg), None, "other")
    sender = links(port, free_port())
    async with trio.open_nursery() as nursery:
        await nursery.start(other.run)
        await nursery.start(sender.run)
        sender.send(OTHER, Ack(0))  # opens the stream
        await _until(lambda: got == [Ack(0)])
        monkeypatch.setattr(transport.os, "write",
                            lambda fd, data: writes.append(len(data)) or real_write(fd, data))
        yield sender, got, writes
        nursery.cancel_scope.cancel()


async def test_corked_sends_leave_in_order_as_one_write(monkeypatch):
    """What a driver sends while its batches run goes out as one write per server, in order,
    when the outermost hold is released; the other server decodes every message."""
    async with _counting_writes(monkeypatch) as (sender, got, writes):
        assert not sender.holding()
        with _held(sender):
            with _held(sender):  # nested: the outer one writes
                sender.send(OTHER, Ack(1))
            sender.send(OTHER, Ack(2))
            sender.send(OTHER, Ack(3))
            assert writes == [] and sender.holding()
        assert len(writes) == 1 and not sender.holding()
        await _until(lambda: len(got) == 4)
        assert got == [Ack(0), Ack(1), Ack(2), Ack(3)]


async def test_flush_writes_what_is_held_for_one_server_ahead_of_the_release(monkeypatch):
    """`flush(sid)` writes what a hold keeps for that server at once, in order; what is sent
    after it in the same hold leaves at the release (a leader's COMMIT ahead of its apply)."""
    async with _counting_writes(monkeypatch) as (sender, got, writes):
        with _held(sender):
            sender.send(OTHER, Ack(1))
            sender.send(OTHER, Ack(2))
            sender.flush(OTHER)
            assert len(writes) == 1
            sender.flush(OTHER)  # nothing more held: no write
            sender.send(OTHER, Ack(3))
            assert len(writes) == 1 and sender.holding()
        assert len(writes) == 2
        await _until(lambda: len(got) == 4)
        assert got == [Ack(0), Ack(1), Ack(2), Ack(3)]


async def test_the_messages_of_one_read_are_handed_over_in_one_step():
    """The receiving driver gets every message one read brought inside one `step()` (its
    driver step: what they make leaves together at its end), and none outside a step."""
    port, got = free_port(), []
    steps: list[list[object]] = []
    depth = 0

    @contextlib.contextmanager
    def step() -> Iterator[None]:
        nonlocal depth
        depth += 1
        steps.append([])
        try:
            yield
        finally:
            depth -= 1

    def on_message(sid: int, msg: object) -> None:
        assert depth == 1, "a message handed over outside a step"
        steps[-1].append(msg)
        got.append(msg)

    other = Links(OTHER, {ME: ("127.0.0.1", free_port())}, ("127.0.0.1", port), on_message,
                  None, "other", step=step)
    sender = links(port, free_port())
    async with trio.open_nursery() as nursery:
        await nursery.start(other.run)
        await nursery.start(sender.run)
        sender.send(OTHER, Ack(0))  # opens the stream
        await _until(lambda: got == [Ack(0)])
        with _held(sender):  # one write, so one read on loopback
            for i in range(1, 4):
                sender.send(OTHER, Ack(i))
        await _until(lambda: len(got) == 4)
        assert [m for m in steps if m] == [[Ack(0)], [Ack(1), Ack(2), Ack(3)]]
        nursery.cancel_scope.cancel()


@contextlib.contextmanager
def _held(links: Links) -> Iterator[None]:
    """What is sent in the block leaves at its end (`Links.hold` / `release`)."""
    links.hold()
    try:
        yield
    finally:
        links.release()


async def _until(cond) -> None:
    with trio.fail_after(5):
        while not cond():
            await trio.sleep(0.01)


async def test_peers_that_join_are_reached_and_those_that_leave_are_cut():
    """A server our configuration does not name (one about to join) may connect: we answer on
    the stream it opened, and keep answering there once a reconfiguration names it, in order;
    a member that left loses its connection, and nothing more is sent to it."""
    third = 3
    port_a, port_b = free_port(), free_port()
    got_a: list = []
    got_b: list = []
    lost_a: list = []
    lost_b: list = []
    a = Links(ME, {}, ("127.0.0.1", port_a), lambda s, m: got_a.append((s, m)),
              lost_a.append, "test")
    b = Links(third, {ME: ("127.0.0.1", port_a)}, ("127.0.0.1", port_b),
              lambda s, m: got_b.append((s, m)), lost_b.append, "test")
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        b.send(ME, Ack(1))  # not a member of a's ensemble yet
        await _until(lambda: got_a)
        assert got_a == [(third, Ack(1))]
        a.send(third, Ack(2))  # answered on the stream it opened
        await _until(lambda: got_b)
        a.set_peers({third: ("127.0.0.1", port_b)})  # added: the same stream, still in order
        for n in range(3, 50):
            a.send(third, Ack(n))
        await _until(lambda: len(got_b) == 48)
        assert got_b == [(ME, Ack(n)) for n in range(2, 50)]
        b.send(ME, Ack(3))
        await _until(lambda: len(got_a) == 2)
        assert got_a[1] == (third, Ack(3)) and not lost_a and not lost_b
        a.set_peers({})  # removed: its link is cut
        await _until(lambda: lost_b)
        a.send(third, Ack(99))  # no link to it any more: nothing is sent
        await trio.sleep(0.3)
        assert got_b[-1] == (ME, Ack(49))
        nursery.cancel_scope.cancel()


async def test_a_server_we_do_not_know_reconnects_after_its_stream_breaks():
    """The stream of a server we know no address of breaks: it is reported lost, what we
    send it meanwhile goes nowhere, and when it calls again we answer on its new stream."""
    third = 3
    port_a, port_b = free_port(), free_port()
    got_a: list = []
    got_b: list = []
    lost_a: list = []
    a = Links(ME, {}, ("127.0.0.1", port_a), lambda s, m: got_a.append((s, m)),
              lost_a.append, "test")
    b = Links(third, {ME: ("127.0.0.1", port_a)}, ("127.0.0.1", port_b),
              lambda s, m: got_b.append((s, m)), lambda s: None, "test")
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        b.send(ME, Ack(1))
        await _until(lambda: got_a)
        b.drop(ME)
        await _until(lambda: lost_a)
        a.send(third, Ack(2))  # no stream of its, no address: nothing is sent
        b.send(ME, Ack(3))
        await _until(lambda: len(got_a) == 2)
        a.send(third, Ack(4))
        await _until(lambda: got_b)
        assert got_b == [(ME, Ack(4))]
        nursery.cancel_scope.cancel()


async def test_one_message_to_every_follower_is_encoded_once(monkeypatch):
    """A leader sends the same PROPOSAL or COMMIT object to each follower: its bytes are made
    once; a different message (even an equal one) is encoded afresh."""
    import zkserver.quorum.transport as transport

    encoded: list[object] = []
    real_encode = transport.messages.encode
    monkeypatch.setattr(transport.messages, "encode",
                        lambda msg: encoded.append(msg) or real_encode(msg))
    third = 3
    sender = Links(ME, {OTHER: ("127.0.0.1", free_port()), third: ("127.0.0.1", free_port())},
                   ("127.0.0.1", free_port()), lambda sid, msg: None, None, "quorum")
    ack = Ack(5)
    with _held(sender):  # nothing is written: no stream is open
        sender.send(OTHER, ack)
        sender.send(third, ack)
        sender.send(OTHER, Ack(5))
    assert encoded == [ack, Ack(5)] and encoded[1] is not ack
