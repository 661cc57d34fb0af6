"""One transport to one server: the handshake, then pipelined requests matched to replies.

Why it looks like this:

* **Submitting is synchronous.** `submit()` gives the request the next xid, appends its frame to
  the outgoing buffer and its record to the FIFO of pending requests, with no await in between.
  So the order of the FIFO is exactly the order on the wire, and a caller cancelled at any
  await can never leave a half-registered request behind.
* **One writer task** sends everything queued since its last send in one `send_all`, so a burst
  from many tasks costs one system call, not one each.
* **One reader task** splits every receive into frames and settles them in order: replies pop
  the FIFO head (a mismatched xid breaks the protocol and drops the connection), xid -1 goes to
  the watch table, -2 is a ping reply, -4 answers the oldest auth packet. Side effects that must
  happen before the next frame is read (registering a watch, remembering an auth) run here,
  synchronously, through the request's `on_reply` hook; the caller only decodes the body.
* **One pinger task** sends a ping whenever nothing was sent for a third of the session timeout
  and drops the connection when nothing was received for two thirds of it (a hung server looks
  like a dead one; the session is then resumed elsewhere while it is still alive).

Whatever ends the connection, every request still pending fails with `ConnectionLossError`.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc

from zkserver.proto.codes import AUTH_XID, NOTIFICATION_XID, PING_XID, Op
from zkserver.proto.frames import FrameError, FrameSplitter
from zkserver.proto.jute import JuteError
from zkserver.proto.records import REPLY_HEADER, ConnectRequest, ConnectResponse

from .errors import ConnectionLossError, ProtocolError, ZooKeeperError

log = logging.getLogger(__name__)

_FRAME_HEADER = struct.Struct(">iii")  # length, xid, opcode
_PING_FRAME = _FRAME_HEADER.pack(8, PING_XID, Op.PING)
_reply_unpack = REPLY_HEADER.unpack_from
_frame_pack = _FRAME_HEADER.pack
RECEIVE_SIZE = 256 * 1024
MAX_XID = 0x7FFFFFFF

# What a broken transport looks like to us: all of these end the connection, never the client.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream,
    FrameError, JuteError, ConnectionLossError, TimeoutError,
)


def event_factory() -> Callable[[], anyio.Event]:
    """A maker of the running backend's `anyio.Event`. `anyio.Event()` looks the backend up on
    every call, which costs several times the event itself; a connection makes one event per
    request, so it looks the backend up once, when it is created."""
    return type(anyio.Event())


class Pending:
    """A request on the wire, waiting for its reply."""

    __slots__ = ("xid", "op", "done", "err", "zxid", "body", "error", "abandoned", "on_reply",
                 "holds_slot")

    def __init__(self, xid: int, op: int, on_reply: Callable[[int], None] | None,
                 holds_slot: bool, done: anyio.Event) -> None:
        self.xid = xid
        self.op = op
        self.done = done
        self.err = 0
        self.zxid = 0
        self.body: bytes = b""
        self.error: ZooKeeperError | None = None
        self.abandoned = False
        self.on_reply = on_reply
        self.holds_slot = holds_slot


class Connection:
    """A handshaken connection. `run()` drives it until it breaks; `submit()` sends on it."""

    def __init__(self, stream: anyio.abc.ByteStream, splitter: FrameSplitter,
                 response: ConnectResponse, *,
                 on_notification: Callable[[int, bytes], None],
                 on_zxid: Callable[[int], None],
                 release_slot: Callable[[], None]) -> None:
        self.stream = stream
        self.splitter = splitter
        self.response = response
        self.timeout_s = response.timeout / 1000
        self.ping_interval = self.timeout_s / 3
        self.read_timeout = self.timeout_s * 2 / 3
        self._on_notification = on_notification
        self._on_zxid = on_zxid
        self._release_slot = release_slot
        self.out = bytearray()
        self._event = event_factory()
        self._wake = self._event()
        self.pending: deque[Pending] = deque()
        self.auth_pending: deque[Pending] = deque()
        self.closed = False
        self.reason: BaseException | None = None
        self._xid = 0
        now = anyio.current_time()
        self.last_send = now
        self.last_recv = now
        self._scope: anyio.CancelScope | None = None
        self.stopped = anyio.Event()

    # -- sending --------------------------------------------------------------------------------

    def _next_xid(self) -> int:
        x = self._xid + 1
        if x > MAX_XID:
            x = 1
        self._xid = x
        return x

    def submit(self, op: int, body: bytes, on_reply: Callable[[int], None] | None = None,
               holds_slot: bool = False) -> Pending:
        """Queue one request; its reply will settle the returned `Pending`."""
        if self.closed:
            raise ConnectionLossError("not connected")
        xid = AUTH_XID if op == Op.AUTH else self._next_xid()
        p = Pending(xid, op, on_reply, holds_slot, self._event())
        out = self.out
        out += _frame_pack(len(body) + 8, xid, op)
        out += body
        if op == Op.AUTH:
            self.auth_pending.append(p)
        else:
            self.pending.append(p)
        self._wake.set()
        return p

    async def _writer(self) -> None:
        stream = self.stream
        while True:
            await self._wake.wait()
            self._wake = self._event()
            while self.out:
                data = self.out
                self.out = bytearray()
                self.last_send = anyio.current_time()
                await stream.send(data)  # type: ignore[arg-type]  # any bytes-like will do

    async def _pinger(self) -> None:
        while True:
            now = anyio.current_time()
            if now - self.last_recv > self.read_timeout:
                raise ConnectionLossError(
                    f"nothing received for {now - self.last_recv:.1f}s (read timeout)")
            ping_due = self.last_send + self.ping_interval
            if now >= ping_due:
                self.out += _PING_FRAME
                self._wake.set()
                self.last_send = now
                ping_due = now + self.ping_interval
            await anyio.sleep_until(min(ping_due, self.last_recv + self.read_timeout + 0.001))

    # -- receiving ------------------------------------------------------------------------------

    async def _reader(self) -> None:
        stream = self.stream
        splitter = self.splitter
        handle = self._handle
        for body in splitter.feed(b""):
            handle(body)
        while True:
            try:
                data = await stream.receive(RECEIVE_SIZE)
            except anyio.EndOfStream:
                raise ConnectionLossError("the server closed the connection") from None
            self.last_recv = anyio.current_time()
            for body in splitter.feed(data):
                handle(body)

    def _handle(self, body: bytes) -> None:
        xid, zxid, err = _reply_unpack(body, 0)
        if xid == NOTIFICATION_XID:
            self._on_notification(zxid, body)
            return
        if xid == PING_XID:
            return
        if xid == AUTH_XID:
            if not self.auth_pending:
                raise ProtocolError("auth reply with no auth pending")
            self._settle(self.auth_pending.popleft(), err, zxid, body)
            return
        if not self.pending:
            raise ProtocolError(f"reply xid {xid} with no request pending")
        p = self.pending[0]
        if p.xid != xid:  # left pending, so it fails with the connection
            raise ProtocolError(f"reply xid {xid} out of order (expected {p.xid})")
        self.pending.popleft()
        if zxid > 0:
            self._on_zxid(zxid)
        self._settle(p, err, zxid, body)

    def _settle(self, p: Pending, err: int, zxid: int, body: bytes) -> None:
        p.err = err
        p.zxid = zxid
        p.body = body
        if p.holds_slot:
            p.holds_slot = False
            self._release_slot()
        if p.on_reply is not None and not p.abandoned:
            p.on_reply(err)
        p.done.set()

    # -- life cycle -----------------------------------------------------------------------------

    async def _guard(self, fn: Callable[[], Any]) -> None:
        try:
            await fn()
        except TRANSPORT_ERRORS as e:
            self.drop(e)

    def drop(self, reason: BaseException) -> None:
        """End the connection (from any task): `run()` then fails what is pending and returns."""
        if self.reason is None:
            self.reason = reason
        self.closed = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        """Serve the connection until it breaks or `drop()` is called."""
        try:
            if not self.closed:
                async with anyio.create_task_group() as tasks:
                    self._scope = tasks.cancel_scope
                    tasks.start_soon(self._guard, self._writer)
                    tasks.start_soon(self._guard, self._pinger)
                    await self._guard(self._reader)
        finally:
            self.closed = True
            if self.reason is not None:
                log.debug("connection dropped: %r", self.reason)
            self._fail_pending(ConnectionLossError(f"connection lost ({self.reason!r})"))
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(1):
                    try:
                        await self.stream.aclose()
                    except TRANSPORT_ERRORS:
                        pass
            self.stopped.set()

    def _fail_pending(self, error: ZooKeeperError) -> None:
        for queue in (self.pending, self.auth_pending):
            while queue:
                p = queue.popleft()
                p.error = error
                if p.holds_slot:
                    p.holds_slot = False
                    self._release_slot()
                p.done.set()


async def handshake(stream: anyio.abc.ByteStream, request: ConnectRequest,
                    max_buffer: int) -> tuple[ConnectResponse, FrameSplitter]:
    """Send the ConnectRequest and read the ConnectResponse (neither has a header)."""
    body = request.encode()
    await stream.send(struct.pack(">i", len(body)) + body)
    splitter = FrameSplitter(max_buffer)
    while True:
        try:
            data = await stream.receive(RECEIVE_SIZE)
        except anyio.EndOfStream:
            raise ConnectionLossError(
                "the server closed the connection during the handshake") from None
        frames = splitter.feed(data)
        if frames:
            break
    response = ConnectResponse.decode(frames[0])
    # Anything after the first frame stays for the reader (the server should send nothing).
    rest = b"".join(struct.pack(">i", len(f)) + f for f in frames[1:])
    if rest:
        splitter.buf[:0] = rest
    return response, splitter
