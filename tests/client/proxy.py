"""A TCP proxy for fault injection, on AnyIO, living in the test's own event loop (Trio or
asyncio).

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

import anyio
import anyio.abc


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        self._refusing = False
        self._drop_down = False
        self._frozen = False
        self._unfrozen = anyio.Event()
        self._scopes: set[anyio.CancelScope] = set()
        self.changed = anyio.Event()

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
        self._unfrozen = anyio.Event()

    async def wait_connections(self, n: int) -> None:
        """Wait until at least `n` connections have been proxied in all."""
        while self.connections < n:
            await self.changed.wait()

    async def _serve(self, tasks: anyio.abc.TaskGroup, *,
                     task_status: anyio.abc.TaskStatus[None]) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        async with listener:
            await listener.serve(self._handle, task_group=tasks)

    async def _handle(self, down: anyio.abc.SocketStream) -> None:
        if self._refusing:
            await anyio.aclose_forcefully(down)
            return
        try:
            up = await anyio.connect_tcp(*self.target)
        except OSError:
            await anyio.aclose_forcefully(down)
            return
        self.connections += 1
        self.changed.set()
        self.changed = anyio.Event()
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(self._pump, down, up, False, tasks.cancel_scope)
                    tasks.start_soon(self._pump, up, down, True, tasks.cancel_scope)
            finally:
                self._scopes.discard(scope)
        await anyio.aclose_forcefully(up)
        await anyio.aclose_forcefully(down)

    async def _pump(self, src: anyio.abc.SocketStream, dst: anyio.abc.SocketStream,
                    downstream: bool, scope: anyio.CancelScope) -> None:
        try:
            while True:
                data = await src.receive(65536)
                while self._frozen:
                    await self._unfrozen.wait()
                if downstream and self._drop_down:
                    continue
                await dst.send(data)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        scope.cancel()


@asynccontextmanager
async def open_proxy(host: str, port: int) -> AsyncIterator[Proxy]:
    proxy = Proxy(host, port)
    async with anyio.create_task_group() as tasks:
        await tasks.start(proxy._serve, tasks)
        yield proxy
        tasks.cancel_scope.cancel()
