"""The network between a test's servers: a TCP proxy per ordered pair of servers and port.

What a cut models, and why proxies: see nemesis.py. `Network` runs the proxies with Trio in a
thread of the calling process. `NetworkProcess` runs the same proxies in a process of their
own and is driven through a pipe: a benchmark whose clients are Python threads should not
make the proxies, which stand in for the wire between servers, share the clients' GIL and
CPU, or its figure measures the test's process instead of the servers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import struct
import threading
from collections.abc import Callable, Collection, Sequence
from multiprocessing.connection import Connection
from typing import Any

import trio


class _Link:
    """One proxied path: `src` connects to `dst` through `listen_port` to `target_port`."""

    def __init__(self, src: int, dst: int, target_port: int, election: bool = False) -> None:
        self.src = src
        self.dst = dst
        self.target_port = target_port
        self.election = election
        self.listen_port = 0
        self.blocked = False
        self.refuse = False
        self.healed = trio.Event()
        self.healed.set()
        self.scopes: set[trio.CancelScope] = set()

    async def wait_open(self) -> None:
        while self.blocked:
            await self.healed.wait()


def _reset(stream: trio.SocketStream) -> None:
    """Close with RST rather than FIN, as a rejecting firewall does."""
    with contextlib.suppress(OSError):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# ZooKeeper's election handshake (QuorumCnxManager.InitialMessage): protocol version, sender
# id, then the sender's own election address, which the receiver connects back to when the
# sender's id is lower. That connection would go around the proxies, so election links
# rewrite the address to the proxy of the reverse link.
_ZK_ELECTION_PROTOCOLS = (-65536, -65535)


def _rewrite_initial_message(buf: bytes, reverse_port: int) -> tuple[bytes, bool]:
    """(new prefix, done): done is False while more bytes are needed to decide."""
    if len(buf) < 8:
        return buf, False
    (version,) = struct.unpack(">q", buf[:8])
    if version not in _ZK_ELECTION_PROTOCOLS:
        return buf, True  # not ZooKeeper's handshake (or the old one without an address)
    if len(buf) < 20:
        return buf, False
    (length,) = struct.unpack(">i", buf[16:20])
    if length <= 0 or length > 4096:
        return buf, True
    if len(buf) < 20 + length:
        return buf, False
    addr = f"127.0.0.1:{reverse_port}".encode()
    return buf[:16] + struct.pack(">i", len(addr)) + addr + buf[20 + length:], True


class Network:
    """TCP proxies for links between nodes, run by Trio in a background thread.

    `link(src, dst, target_port)` returns the port `src` should use to reach `target_port` of
    `dst`. `partition(groups)` cuts every link between different groups; `heal()` restores
    them. Thread-safe: every method hands its work to the Trio thread."""

    def __init__(self, connect_patience: float = 3.0) -> None:
        self.connect_patience = connect_patience
        self._links: list[_Link] = []
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop: trio.Event | None = None
        self.bytes_forwarded = 0
        self.chunks_forwarded: dict[bool, int] = {False: 0, True: 0}  # by election link

    def start(self) -> Network:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True,
                                        name="nemesis-network")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy thread did not start")
        return self

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def _run(self, fn, *args):  # noqa: ANN001, ANN202 - a thin bridge into the Trio thread
        assert self._token is not None, "Network.start() first"
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def stop(self) -> None:
        if self._token is None or self._thread is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)  # type: ignore
        self._thread.join(10)
        self._token = None

    def link(self, src: int, dst: int, target_port: int, election: bool = False) -> int:
        """A proxy port for `src` to reach `target_port` of `dst`. `election`: the target is
        a ZooKeeper election port (the handshake's address is rewritten, see above)."""
        return self._run(self._add_link, src, dst, target_port, election)

    async def _add_link(self, src: int, dst: int, target_port: int, election: bool) -> int:
        link = _Link(src, dst, target_port, election)
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        link.listen_port = listeners[0].socket.getsockname()[1]
        assert self._nursery is not None
        self._nursery.start_soon(self._serve, link, listeners)
        self._links.append(link)
        return link.listen_port

    async def _serve(self, link: _Link, listeners: list[trio.SocketListener]) -> None:
        async def handler(stream: trio.SocketStream) -> None:
            await self._handle(link, stream)

        await trio.serve_listeners(handler, listeners)

    async def _handle(self, link: _Link, downstream: trio.SocketStream) -> None:
        upstream: trio.SocketStream | None = None
        with trio.CancelScope() as scope:
            link.scopes.add(scope)
            try:
                if link.refuse:
                    return
                await link.wait_open()  # a dropped SYN: nothing happens until healed
                upstream = await self._connect(link)
                if upstream is None:
                    _reset(downstream)
                    return
                if link.election:
                    await self._handshake(link, downstream, upstream)
                async with trio.open_nursery() as pair:
                    pair.start_soon(self._pump, link, downstream, upstream, pair.cancel_scope)
                    pair.start_soon(self._pump, link, upstream, downstream, pair.cancel_scope)
            finally:
                link.scopes.discard(scope)
                for stream in (downstream, upstream):
                    if stream is None:
                        continue
                    if link.refuse:
                        _reset(stream)
                    with trio.CancelScope(shield=True):
                        await stream.aclose()

    async def _connect(self, link: _Link) -> trio.SocketStream | None:
        """Connect to the target, retrying refusals for `connect_patience` seconds.

        The kernel accepted the client's connection before we knew whether the target
        listens, so a refusal can only reach the client as a reset of an established
        connection, which servers treat differently (a ZooKeeper follower that connects a
        moment before the new leader listens retries a refused connect, but gives up
        following on a reset). Retrying a little bridges such starts; a server that stays
        down is still reported, as a reset, after the patience runs out."""
        deadline = trio.current_time() + self.connect_patience
        while True:
            try:
                return await trio.open_tcp_stream("127.0.0.1", link.target_port)
            except OSError:
                if trio.current_time() > deadline:
                    return None
                await trio.sleep(0.05)

    async def _handshake(self, link: _Link, downstream: trio.SocketStream,
                         upstream: trio.SocketStream) -> None:
        reverse = [r for r in self._links if r.election and (r.src, r.dst) == (link.dst, link.src)]
        if not reverse:
            return
        buf = b""
        while True:
            await link.wait_open()
            data = await downstream.receive_some(65536)
            if not data:
                break
            buf, done = _rewrite_initial_message(buf + data, reverse[0].listen_port)
            if done:
                break
        if buf:
            await link.wait_open()
            await upstream.send_all(buf)

    async def _pump(self, link: _Link, src: trio.SocketStream, dst: trio.SocketStream,
                    pair: trio.CancelScope) -> None:
        try:
            while True:
                await link.wait_open()
                data = await src.receive_some(65536)
                if not data:
                    break
                await link.wait_open()  # bytes read before a cut are held, not delivered
                await dst.send_all(data)
                self.bytes_forwarded += len(data)
                self.chunks_forwarded[link.election] += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        pair.cancel()  # one side closed: close both

    def partition(self, groups: Sequence[Collection[int]], refuse: bool = False) -> None:
        """Cut every link between nodes of different groups (a node in no group is cut
        from everyone). `refuse`: reset the cut connections instead of freezing them."""
        group_of = {node: g for g, members in enumerate(groups) for node in members}
        self._run(self._apply, lambda link: group_of.get(link.src, -1 - link.src)
                  != group_of.get(link.dst, -1 - link.dst), refuse)

    def isolate(self, nodes: Collection[int], refuse: bool = False) -> None:
        """Cut `nodes` off from the others (they still reach each other)."""
        iso = set(nodes)
        self._run(self._apply, lambda link: (link.src in iso) != (link.dst in iso), refuse)

    def cut(self, pairs: Collection[tuple[int, int]]) -> None:
        """Cut the links between each pair of nodes, both directions (and only those: the
        ensemble need not split into groups, e.g. two followers that each still reach the
        leader but not each other)."""
        cut = {frozenset(p) for p in pairs}
        self._run(self._apply, lambda link: frozenset((link.src, link.dst)) in cut, False)

    def heal(self) -> None:
        self._run(self._apply, lambda link: False, False)

    async def _apply(self, cut: Callable[[_Link], bool], refuse: bool) -> None:
        for link in self._links:
            if cut(link):
                if not link.blocked:
                    link.blocked = True
                    link.healed = trio.Event()
                link.refuse = refuse
                if refuse:
                    for scope in list(link.scopes):
                        scope.cancel()
            else:
                link.refuse = False
                if link.blocked:
                    link.blocked = False
                    link.healed.set()

    def blocked(self) -> list[tuple[int, int]]:
        return sorted({(link.src, link.dst) for link in self._links if link.blocked})


class NetworkProcess:
    """`Network`'s interface, served by a `Network` in a child process.

    Every call is one request and one reply over a pipe; the counters are read from the
    child when asked for. The child exits when told to or when the pipe closes (this process
    died), so no proxy outlives its test."""

    def __init__(self, connect_patience: float = 3.0) -> None:
        self.connect_patience = connect_patience
        self._conn: Connection | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._lock = threading.Lock()  # the nemesis thread and the test may both call
        self._counters: tuple[int, dict[bool, int]] = (0, {False: 0, True: 0})  # when stopped

    def start(self) -> NetworkProcess:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        ours, theirs = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_network, args=(theirs, self.connect_patience),
                                 daemon=True, name="nemesis-network")
        self._proc.start()
        theirs.close()
        self._conn = ours
        self._call("ping")
        return self

    def _call(self, method: str, *args: Any) -> Any:
        assert self._conn is not None, "NetworkProcess.start() first"
        with self._lock:
            self._conn.send((method, args))
            ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"the proxy process failed in {method}: {value}")
        return value

    def stop(self) -> None:
        if self._conn is None or self._proc is None:
            return
        with contextlib.suppress(OSError, EOFError, RuntimeError):
            self._counters = self._call("counters")
            self._call("stop")
        self._conn.close()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
        self._conn = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def link(self, src: int, dst: int, target_port: int, election: bool = False) -> int:
        return self._call("link", src, dst, target_port, election)

    def partition(self, groups: Sequence[Collection[int]], refuse: bool = False) -> None:
        self._call("partition", [list(g) for g in groups], refuse)

    def isolate(self, nodes: Collection[int], refuse: bool = False) -> None:
        self._call("isolate", list(nodes), refuse)

    def cut(self, pairs: Collection[tuple[int, int]]) -> None:
        self._call("cut", list(pairs))

    def heal(self) -> None:
        self._call("heal")

    def blocked(self) -> list[tuple[int, int]]:
        return self._call("blocked")

    def counters(self) -> tuple[int, dict[bool, int]]:
        """Bytes forwarded, and chunks by election link (the last figures once stopped)."""
        return self._call("counters") if self._conn is not None else self._counters

    @property
    def bytes_forwarded(self) -> int:
        return self.counters()[0]

    @property
    def chunks_forwarded(self) -> dict[bool, int]:
        return self.counters()[1]


def _serve_network(conn: Connection, connect_patience: float) -> None:
    """The child's main: a `Network`, and its methods called by name from the pipe."""
    net = Network(connect_patience).start()
    calls: dict[str, Callable[..., Any]] = {
        "ping": lambda: None, "link": net.link, "partition": net.partition,
        "isolate": net.isolate, "cut": net.cut, "heal": net.heal, "blocked": net.blocked,
        "counters": lambda: (net.bytes_forwarded, dict(net.chunks_forwarded))}
    try:
        while True:
            try:
                method, args = conn.recv()
            except EOFError:
                return  # the parent is gone
            if method == "stop":
                conn.send((True, None))
                return
            try:
                conn.send((True, calls[method](*args)))
            except Exception as e:  # noqa: BLE001 - reported to the caller, who raises it
                conn.send((False, repr(e)))
    finally:
        net.stop()
