"""Read-only mode and protocol violations, against a scripted server.

A real read-only server is a ZooKeeper ensemble member that lost its quorum; a few lines of
Trio playing one are faster and deterministic, and let us break the protocol on purpose.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from zkserver import client
from zkserver.proto import records as R
from zkserver.proto.codes import PING_XID, Err, Op
from zkserver.proto.frames import FrameSplitter, frame, reply

pytestmark = pytest.mark.anyio

STAT = R.Stat(1, 1, 0, 0, 0, 0, 0, 0, 4, 0, 1)


class ScriptedServer:
    """Answers the handshake (read-only or not), pings, getData (optionally swapping each pair
    of replies, which breaks FIFO order) and refuses writes with NOTREADONLY."""

    def __init__(self, read_only: bool, swap_replies: bool = False) -> None:
        self.read_only = read_only
        self.swap_replies = swap_replies
        self.connects: list[R.ConnectRequest] = []
        self.port = 0

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        splitter = FrameSplitter()
        held: list[bytes] = []
        handshaken = False
        try:
            while True:
                data = await stream.receive(65536)
                for body in splitter.feed(data):
                    if not handshaken:
                        handshaken = True
                        out = self.connect(body)
                    else:
                        out = self.answer(body, held)
                    if out:
                        await stream.send(out)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass

    def connect(self, body: bytes) -> bytes:
        self.connects.append(R.ConnectRequest.decode(body))
        return frame(R.ConnectResponse(0, 4000, 0x42, b"p" * 16, self.read_only).encode())

    def answer(self, body: bytes, held: list[bytes]) -> bytes:
        xid, op = struct.unpack_from(">ii", body, 0)
        if xid == PING_XID:
            return reply(PING_XID, 7, 0)
        if op == Op.GET_DATA:
            out = reply(xid, 7, 0, R.GetDataResponse(b"data", STAT).encode())
            if not self.swap_replies:
                return out
            held.append(out)
            if len(held) < 2:
                return b""
            first, second = held
            held.clear()
            return second + first
        if op in (Op.CREATE, Op.SET_DATA, Op.DELETE):
            return reply(xid, 7, Err.NOTREADONLY)
        return reply(xid, 7, Err.UNIMPLEMENTED)


@asynccontextmanager
async def scripted(read_only: bool, swap_replies: bool = False,
                   ) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(read_only, swap_replies)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, server.handle)
        yield server
        tasks.cancel_scope.cancel()


async def test_read_only_server() -> None:
    async with scripted(read_only=True) as server:
        async with client.connect(f"127.0.0.1:{server.port}", can_be_read_only=True) as zk:
            assert zk.state == client.State.READ_ONLY
            assert server.connects[0].read_only is True
            assert (await zk.get("/x")).data == b"data"
            try:
                await zk.create("/x")
            except client.NotReadOnlyError:
                pass
            else:
                raise AssertionError("a write on a read-only server must fail")


async def test_read_write_server_sends_read_only_flag_false() -> None:
    async with scripted(read_only=False) as server:
        async with client.connect(f"127.0.0.1:{server.port}") as zk:
            assert zk.state == client.State.CONNECTED
            assert server.connects[0].read_only is False
            assert server.connects[0].session_id == 0
            assert zk.session_id == 0x42


async def test_out_of_order_reply_drops_the_connection() -> None:
    async with scripted(read_only=False, swap_replies=True) as server:
        async with client.connect(f"127.0.0.1:{server.port}") as zk:
            errors: list[BaseException] = []

            async def get() -> None:
                try:
                    await zk.get("/x")
                except client.ZooKeeperError as e:
                    errors.append(e)

            with anyio.fail_after(5):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(get)
                    tasks.start_soon(get)
            assert len(errors) == 2
            assert all(isinstance(e, client.ConnectionLossError) for e in errors)
            # It reconnects and resumes the session it had.
            with anyio.fail_after(5):
                while len(server.connects) < 2:
                    await anyio.sleep(0.01)
            assert server.connects[1].session_id == 0x42

