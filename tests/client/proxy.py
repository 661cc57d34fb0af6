"""A TCP proxy for fault injection, in Trio, living in the test's own event loop.

The client connects to the proxy, the proxy to the server. A test can then:

* `cut()`: close every proxied connection at once and refuse new ones (each is accepted and
  closed at once), as when a network link dies;
* `restore()`: let connections through again;
* `drop_replies()`: keep forwarding the client's bytes but swallow the server's, so a request
  is applied without the client hearing of it (the "create succeeded but the reply was lost"
  case); `restore()` ends it;
* `freeze()`: forward nothing in either direction while keeping the sockets open, as with a
  hung server or a silent partition.

`connections` counts the connections ever proxied, so a test can wait for a reconnect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        self._refusing = False
        self._drop_down = False
        self._frozen = False
        self._unfrozen = trio.Event()
        self._scopes: set[trio.CancelScope] = set()
        self.changed = trio.Event()

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._refusing = True
        for scope in list(self._scopes):
            scope.cancel()

    def restore(self) -> None:
        self._refusing = False
        self._drop_down = False
        self._frozen = False
        self._unfrozen.set()

    def drop_replies(self) -> None:
        self._drop_down = True

    def freeze(self) -> None:
        self._frozen = True
        self._unfrozen = trio.Event()

    async def wait_connections(self, n: int) -> None:
        """Wait until at least `n` connections have been proxied in all."""
        while self.connections < n:
            await self.changed.wait()

    async def _serve(self, nursery: trio.Nursery, task_status: trio.TaskStatus[None]) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, down: trio.SocketStream) -> None:
        if self._refusing:
            await trio.aclose_forcefully(down)
            return
        try:
            up = await trio.open_tcp_stream(*self.target)
        except OSError:
            await trio.aclose_forcefully(down)
            return
        self.connections += 1
        self.changed.set()
        self.changed = trio.Event()
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, down, up, False, nursery.cancel_scope)
                    nursery.start_soon(self._pump, up, down, True, nursery.cancel_scope)
            finally:
                self._scopes.discard(scope)
        await trio.aclose_forcefully(up)
        await trio.aclose_forcefully(down)

    async def _pump(self, src: trio.SocketStream, dst: trio.SocketStream, downstream: bool,
                    scope: trio.CancelScope) -> None:
        try:
            while True:
                data = await src.receive_some(65536)
                if not data:
                    break
                while self._frozen:
                    await self._unfrozen.wait()
                if downstream and self._drop_down:
                    continue
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        scope.cancel()


@asynccontextmanager
async def open_proxy(host: str, port: int) -> AsyncIterator[Proxy]:
    proxy = Proxy(host, port)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy._serve, nursery)
        yield proxy
        nursery.cancel_scope.cancel()
