"""kill -9 the server under concurrent writes, many times: nothing acknowledged is ever lost.

Several kazoo clients write their own keys concurrently and record every acknowledged write
(and every write whose answer was lost with the connection: it may or may not have happened).
The server is SIGKILLed at random points and restarted at once. At the end every acknowledged
write is present with its data and version, the clients are still in the sessions they began
with (they resumed them after each restart, so their lastZxidSeen was never ahead of the
restarted server), and the ephemeral of a session that went away during the run is gone.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss
from support.process import ZkServerProcess
from support.realzk import free_port
from support.waiting import wait_for

from zkserver.proto import records as R
from zkserver.proto.codes import Op

WRITERS = 4
KEYS = 3
KILLS = 6


class Writer(threading.Thread):
    def __init__(self, hosts: str, index: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.index = index
        self.stop_flag = stop
        self.client = KazooClient(hosts, timeout=30, connection_retry={"max_tries": -1,
                                                                       "delay": 0.05,
                                                                       "max_delay": 0.2})
        self.connected = threading.Event()
        self.client.add_listener(self._state)
        self.acked: dict[str, tuple[int, bytes]] = {}
        self.unsure: dict[str, set[bytes]] = {}
        self.created: list[str] = []
        self.errors: list[BaseException] = []
        self.expired = False

    def _state(self, state: str) -> None:
        if state == KazooState.CONNECTED:
            self.connected.set()
        else:
            self.connected.clear()
            if state == KazooState.LOST:
                self.expired = True

    def setup(self) -> None:
        self.client.start(timeout=10)
        self.session = self.client.client_id[0]
        for k in range(KEYS):
            path = f"/crash/w{self.index}/k{k}"
            self.client.ensure_path(path)
            self.acked[path] = (0, b"")
            self.unsure[path] = set()
        self.client.ensure_path(f"/crash/seq{self.index}")

    def run(self) -> None:
        n = 0
        try:
            while not self.stop_flag.is_set():
                n += 1
                path = f"/crash/w{self.index}/k{n % KEYS}"
                value = f"{self.index}-{n}".encode()
                try:
                    stat = self.client.set(path, value)
                    self.acked[path] = (stat.version, value)
                    if n % 5 == 0:
                        self.created.append(self.client.create(
                            f"/crash/seq{self.index}/s-", value, sequence=True))
                except ConnectionLoss:
                    self.unsure[path].add(value)
                    self.connected.wait(20)
        except BaseException as e:  # noqa: BLE001 - reported to the test thread
            self.errors.append(e)


def ephemeral_session(port: int) -> socket.socket:
    """A raw session with a 4 s timeout and one ephemeral; the caller drops it unclosed."""
    s = socket.create_connection(("127.0.0.1", port))
    body = R.ConnectRequest(0, 0, 4000, 0, b"\0" * 16, False).encode()
    s.sendall(struct.pack(">i", len(body)) + body)
    _recv_frame(s)
    req = R.CreateRequest("/crash/orphan", b"x", R.OPEN_ACL_UNSAFE, 1).encode()
    body = struct.pack(">ii", 1, Op.CREATE) + req
    s.sendall(struct.pack(">i", len(body)) + body)
    xid, _, err = struct.unpack(">iqi", _recv_frame(s)[:16])
    assert (xid, err) == (1, 0)
    return s


def _recv_frame(s: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            assert chunk, "server closed the connection"
            buf += chunk
        return buf
    return exactly(struct.unpack(">i", exactly(4))[0])


def test_kill_9_under_load_loses_no_acknowledged_write(tmp_path):
    rng = random.Random(20261124)
    server = ZkServerProcess(tmp_path, free_port(), extra=["snapCount=300"])
    server.start()
    stop = threading.Event()
    writers = [Writer(server.hosts, i, stop) for i in range(WRITERS)]
    orphan = None
    try:
        for w in writers:
            w.setup()
        for w in writers:
            w.start()
        for i in range(KILLS):
            mark = sum(len(w.created) for w in writers)
            wait_for(lambda m=mark: sum(len(w.created) for w in writers) >= m + 5,
                     30, "writes to flow again")
            time.sleep(rng.uniform(0.05, 0.4))  # a random point in the write stream
            if i == KILLS // 2:
                orphan = ephemeral_session(server.port)
                orphan.close()  # the session is never closed: it must expire
            server.kill()
            server.start()
        stop.set()
        for w in writers:
            w.join(30)
            assert not w.is_alive()
            assert not w.errors, w.errors
            assert not w.expired, f"writer {w.index} lost its session"
            assert w.client.client_id[0] == w.session, "the session was not resumed"

        check = KazooClient(server.hosts)
        check.start(timeout=10)
        total = 0
        for w in writers:
            for path, (version, value) in w.acked.items():
                data, stat = check.get(path)
                assert stat.version >= version, f"{path}: acknowledged version {version} lost"
                if stat.version == version:
                    assert data == value, f"{path}: acknowledged data lost"
                else:
                    assert data in w.unsure[path], f"{path}: data nobody wrote"
                total += 1
            present = set(check.get_children(f"/crash/seq{w.index}"))
            for created in w.created:
                assert created.rsplit("/", 1)[1] in present, f"{created} lost"
                total += 1
        assert total > 100
        # The orphan's session had a 4 s timeout: after a restart it gets a fresh deadline
        # and then expires, taking its ephemeral with it.
        wait_for(lambda: check.exists("/crash/orphan") is None, 15, "the orphan to expire")
        check.stop()
    finally:
        stop.set()
        for w in writers:
            w.client.stop()
            w.client.close()
        server.kill()
