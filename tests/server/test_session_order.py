"""Sessions are established in the order their connections came, as in ZooKeeper.

A client opens ten sessions at once and then an eleventh: when the eleventh is connected, all
ten must be. First `HandshakeOrder` alone under Trio (handshakes that arrive in one scheduler
batch run in accept order; ConnectResponses are written in ticket order), then a zkserver
process with many concurrent raw connections, round after round.
"""

from __future__ import annotations

import select
import socket
import struct
import threading

import trio
import trio.testing
from support.process import ZkServerProcess
from support.realzk import free_port
from support.wire import connect_request, frame

from zkserver.server.handshake_order import HandshakeOrder


async def test_handshakes_of_one_batch_run_in_accept_order() -> None:
    order = HandshakeOrder()
    numbers = [order.accepted() for _ in range(12)]
    ran: list[int] = []
    results: dict[int, int] = {}

    async def connection(n: int) -> None:
        def run() -> int:
            ran.append(n)
            return n * 10
        results[n] = await order.admit(n, run)

    async with trio.open_nursery() as nursery:
        for n in reversed(numbers):  # started (and so woken) in the wrong order
            nursery.start_soon(connection, n)
    assert ran == numbers
    assert results == {n: n * 10 for n in numbers}


async def test_connect_responses_are_written_in_ticket_order() -> None:
    order = HandshakeOrder()
    tickets = [order.ticket() for _ in range(6)]
    written: list[int] = []

    async def sender(t: int) -> None:
        await order.turn(t)
        written.append(t)
        order.sent(t)

    async with trio.open_nursery() as nursery:
        for t in reversed(tickets):
            if t != 3:  # the connection of ticket 3 goes away unanswered
                nursery.start_soon(sender, t)
        await trio.testing.wait_all_tasks_blocked()
        assert written == [1, 2]
        order.sent(3)
    assert written == [1, 2, 4, 5, 6]


def _open(port: int, out: list[socket.socket], lock: threading.Lock) -> None:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(frame(connect_request(10_000)))
    with lock:
        out.append(s)


def _read_response(s: socket.socket) -> int:
    """The session id of the ConnectResponse waiting on `s` (it must all be there)."""
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack_from(">i", data)[0]:
        chunk = s.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    return struct.unpack_from(">iiq", data, 4)[2]


def test_an_eleventh_session_connects_after_the_ten_before_it(tmp_path) -> None:
    rounds, violations = 25, []
    with ZkServerProcess(tmp_path, free_port(), extra=["forceSync=no"]) as server:
        for r in range(rounds):
            ten: list[socket.socket] = []
            lock = threading.Lock()
            threads = [threading.Thread(target=_open, args=(server.port, ten, lock))
                       for _ in range(10)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(ten) == 10
            eleventh = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            try:
                eleventh.sendall(frame(connect_request(10_000)))
                last = _read_response(eleventh)
                # On loopback a written reply is already in the peer's receive queue.
                ready, _, _ = select.select(ten, [], [], 0)
                if len(ready) != 10:
                    violations.append((r, 10 - len(ready)))
                sids = [_read_response(s) for s in ten]
                assert last not in sids and len(set(sids)) == 10
            finally:
                for s in [*ten, eleventh]:
                    s.close()
    assert violations == [], f"(round, sessions not yet connected) out of {rounds} rounds"
