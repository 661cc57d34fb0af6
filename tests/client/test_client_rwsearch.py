"""The search for a read-write server while read-only (client/rwsearch.py): the probe schedule
on a fake clock, the `isro` probe against listeners that answer each way, and the client moving
between scripted servers (tests/client/test_client_rwsearch_ensemble.py does it on real
ensembles).
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import anyio.abc
import pytest
import trio
import trio.testing

from zkserver import client
from zkserver.client import State
from zkserver.client.hosts import Address
from zkserver.client.rwsearch import (
    FIRST_WAIT,
    LONGEST_WAIT,
    ProbeSchedule,
    is_read_write,
    others_after,
    seek_read_write,
)
from zkserver.proto import records as R
from zkserver.proto.codes import PING_XID, Err, Op
from zkserver.proto.frames import FrameSplitter, frame, reply

A, B, C = Address("a", 1), Address("b", 2), Address("c", 3)
T = TypeVar("T")


# -- the schedule --------------------------------------------------------------------------------

def test_schedule_doubles_from_100ms_to_60s_and_starts_over_when_found() -> None:
    s = ProbeSchedule(now=5.0)
    assert s.due == 5.0 + FIRST_WAIT == 5.1
    waits = []
    for _ in range(14):
        at = s.due
        s.probed(at)
        waits.append(round(s.due - at, 6))
    assert waits == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 60, 60, 60, 60, 60]
    assert LONGEST_WAIT == 60.0
    s.found()
    assert s.due == s.last + 0.1


def test_probes_go_to_the_other_servers_in_order() -> None:
    assert others_after([A, B, C], B) == [C, A]
    assert others_after([A, B, C], C) == [A, B]
    assert others_after([A], A) == []
    assert others_after([A, B], None) == [A, B]


def run_on_mock_clock(fn: Callable[[], Awaitable[T]]) -> T:
    """Run `fn` on a clock that jumps ahead whenever every task sleeps: hours pass at once."""
    return trio.run(fn, clock=trio.testing.MockClock(autojump_threshold=0))


def test_seek_probes_on_the_schedule_until_a_server_answers_rw() -> None:
    """On a fake clock: a probe at 0.1 s, then after 0.2, 0.4, ... s, the servers in turn; each
    probe takes 1 s here (a server that does not answer), which does not delay the next."""
    probes: list[tuple[float, Address]] = []

    async def probe(addr: Address) -> bool:
        probes.append((round(trio.current_time(), 6), addr))
        await trio.sleep(1.0)
        return len(probes) == 9

    async def main() -> Address:
        return await seek_read_write([B, C], ProbeSchedule(trio.current_time()), probe)

    assert run_on_mock_clock(main) == B
    assert probes == [(0.1, B), (1.1, C), (2.1, B), (3.1, C), (4.7, B), (7.9, C), (14.3, B),
                      (27.1, C), (52.7, B)]
    # ...which is 0.1, then 0.2, 0.4 and 0.8 s of waiting overtaken by the 1 s probes, then
    # 1.6, 3.2, 6.4, 12.8 and 25.6 s.


def test_seek_waits_at_most_60s_between_probes() -> None:
    probes: list[float] = []

    async def probe(addr: Address) -> bool:
        probes.append(trio.current_time())
        return len(probes) == 14

    async def main() -> Address:
        return await seek_read_write([A], ProbeSchedule(trio.current_time()), probe)

    run_on_mock_clock(main)
    gaps = [round(b - a, 6) for a, b in zip(probes, probes[1:], strict=False)]
    assert gaps == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 60, 60, 60, 60]


def test_seek_with_no_other_server_never_probes() -> None:
    async def probe(addr: Address) -> bool:
        raise AssertionError("nothing to probe")

    async def main() -> None:
        with trio.move_on_after(3600):
            await seek_read_write([], ProbeSchedule(trio.current_time()), probe)

    run_on_mock_clock(main)


# -- the probe -----------------------------------------------------------------------------------

@asynccontextmanager
async def listener(answer: bytes | None, got: list[bytes]) -> AsyncIterator[Address]:
    """A server that reads the command and answers `answer` and closes (None: says nothing)."""
    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            while len(data) < 4:
                data += await stream.receive(4)
            got.append(data)
            if answer is None:
                await anyio.sleep_forever()
            await stream.send(answer)

    server = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = server.extra(anyio.abc.SocketAttribute.local_port)
    async with server, anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve, handle)
        yield Address("127.0.0.1", port)
        tasks.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("answer,rw", [(b"rw", True), (b"ro", False), (b"null", False),
                                       (b"", False), (None, False)])
async def test_isro_probe(answer: bytes | None, rw: bool) -> None:
    got: list[bytes] = []
    async with listener(answer, got) as addr:
        with anyio.fail_after(5):
            assert await is_read_write(addr, timeout=0.5) is rw
    assert got == [b"isro"]


@pytest.mark.anyio
async def test_isro_probe_of_a_closed_port() -> None:
    server = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = server.extra(anyio.abc.SocketAttribute.local_port)
    await server.aclose()
    with anyio.fail_after(5):
        assert await is_read_write(Address("127.0.0.1", port)) is False


# -- the client, between scripted servers --------------------------------------------------------

class Scripted:
    """A server that is read-only or read-write (`read_only` may change), answers `isro`,
    handshakes (a new session is 0x77 on a read-only server, 0x42 on a read-write one; a
    presented one is kept), pings, getData, and refuses writes when read-only. `down` makes it
    close every connection at once."""

    def __init__(self, read_only: bool) -> None:
        self.read_only = read_only
        self.down = False
        self.connects: list[R.ConnectRequest] = []
        self.probes = 0  # isro answered
        self.accepted = 0  # connections, answered or not
        self.port = 0
        self._scopes: set[anyio.CancelScope] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def go_down(self) -> None:
        self.down = True
        for scope in self._scopes:
            scope.cancel()

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            self.accepted += 1
            try:
                async with stream:
                    if not self.down:
                        await self._serve(stream)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            finally:
                self._scopes.discard(scope)

    async def _serve(self, stream: anyio.abc.SocketStream) -> None:
        first = b""
        while len(first) < 4:
            first += await stream.receive(4 - len(first))
        if first == b"isro":
            self.probes += 1
            await stream.send(b"ro" if self.read_only else b"rw")
            return
        splitter = FrameSplitter()
        pending = splitter.feed(first)
        handshaken = False
        while True:
            for body in pending:
                if not handshaken:
                    handshaken = True
                    req = R.ConnectRequest.decode(body)
                    self.connects.append(req)
                    sid = req.session_id or (0x77 if self.read_only else 0x42)
                    await stream.send(frame(R.ConnectResponse(
                        0, 4000, sid, b"p" * 16, self.read_only).encode()))
                else:
                    await stream.send(self._answer(body))
            pending = splitter.feed(await stream.receive(65536))

    def _answer(self, body: bytes) -> bytes:
        xid, op = struct.unpack_from(">ii", body, 0)
        if xid == PING_XID:
            return reply(PING_XID, 7, 0)
        if op == Op.GET_DATA:
            stat = R.Stat(1, 1, 0, 0, 0, 0, 0, 0, 4, 0, 1)
            return reply(xid, 7, 0, R.GetDataResponse(b"data", stat).encode())
        if op == Op.CREATE and self.read_only:
            return reply(xid, 7, Err.NOTREADONLY)
        if op == Op.CREATE:
            return reply(xid, 7, 0, R.PathResponse("/x").encode())
        return reply(xid, 7, Err.UNIMPLEMENTED)


@asynccontextmanager
async def scripted(*read_only: bool) -> AsyncIterator[list[Scripted]]:
    servers = [Scripted(ro) for ro in read_only]
    async with anyio.create_task_group() as tasks:
        for s in servers:
            lst = await anyio.create_tcp_listener(local_host="127.0.0.1")
            s.port = lst.extra(anyio.abc.SocketAttribute.local_port)
            tasks.start_soon(lst.serve, s.handle)
        yield servers
        tasks.cancel_scope.cancel()


@pytest.mark.anyio
async def test_moves_from_a_read_only_server_to_a_read_write_one() -> None:
    """The read-only server stays read-only: only the search can move the client. Its session
    was made read-only, so it asks the read-write server for a new one (session id 0)."""
    async with scripted(True, False) as (ro, rw):
        rw.down = True
        async with client.connect(f"{ro.address},{rw.address}", can_be_read_only=True,
                                  randomize_hosts=False) as zk:
            async with zk.states() as states:
                assert zk.state == State.READ_ONLY and zk.session_id == 0x77
                with anyio.fail_after(5):
                    while rw.accepted < 2:  # probed twice, refused
                        await anyio.sleep(0.01)
                rw.down = False
                start = anyio.current_time()
                with anyio.fail_after(5):
                    seen = [s async for s in _until(states, State.CONNECTED)]
                took = anyio.current_time() - start
            assert seen == [State.READ_ONLY, State.SUSPENDED, State.CONNECTED]
            # The third probe is due 0.4 s after the second, the fourth 0.8 s after that.
            assert took < 2.0, took
            assert zk.server_address is not None and zk.server_address.port == rw.port
            assert [c.session_id for c in rw.connects] == [0]
            assert zk.session_id == 0x42
            assert rw.probes == 1 and ro.probes == 0  # it never asks the server it is on
            await zk.create("/x")


@pytest.mark.anyio
async def test_a_read_write_session_moves_back_with_its_id() -> None:
    """A session made on a read-write server, carried to a read-only one, is presented again
    when a read-write server is back (the Java client's seenRwServerBefore)."""
    async with scripted(False, True) as (rw, ro):
        async with client.connect(f"{rw.address},{ro.address}", can_be_read_only=True,
                                  randomize_hosts=False) as zk:
            assert zk.state == State.CONNECTED and zk.session_id == 0x42
            rw.go_down()
            with anyio.fail_after(5):
                await zk.wait_for_state(State.READ_ONLY)
            assert ro.connects[-1].session_id == 0x42
            down_since = rw.accepted
            with anyio.fail_after(5):
                while rw.accepted < down_since + 2:  # probed while down, still read-only
                    await anyio.sleep(0.01)
            assert zk.state == State.READ_ONLY
            rw.down = False
            with anyio.fail_after(10):
                await zk.wait_for_state(State.CONNECTED)
            assert [c.session_id for c in rw.connects] == [0, 0x42]
            assert zk.session_id == 0x42
            assert (await zk.get("/x")).data == b"data"


async def _until(states: client.StateStream, last: State) -> AsyncIterator[State]:
    async for s in states:
        yield s
        if s == last:
            return
