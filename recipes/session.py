"""A ZooKeeper session that outlives session expiry: a new client whenever the last one ends.

The client gives one session per `connect()`: once the server says it expired, that client is
finished and every call on it raises `SessionExpiredError` (as with the Java client). Recipes
whose whole point is to come back after that, such as a service registration or a cache that
must stay current, need somebody to open the next session. `Session` does that, and hands the
current client to whoever asks:

    async with Session("h1:2181,h2:2181", session_timeout=10) as session:
        async with ServiceDiscovery(session, "/services") as discovery: ...

`clients()` yields the live client, then each new one; a recipe runs its per-session work
for each and starts over on the next. Every recipe that takes a `Session` also takes a plain
`Client`, and then simply stops when that client's session ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc

from zkserver import client
from zkserver.client import Client, State
from zkserver.client import errors as E
from zkserver.recipes._common import background
from zkserver.recipes._lifetime import Lifetime


class Session(Lifetime):
    def __init__(self, hosts: str, **options: Any) -> None:
        self.hosts = hosts
        self.options = options
        self.generation = 0
        """How many sessions have been opened so far."""
        self._client: Client | None = None
        self._changed = anyio.Event()
        self._closed = False
        self.error: BaseException | None = None

    @property
    def client(self) -> Client:
        """The live client. RuntimeError between sessions: use `wait_client()` then."""
        if self._client is None:
            raise RuntimeError("no live session right now")
        return self._client

    async def wait_client(self) -> Client:
        while self._client is None or self._client.state.terminal:
            if self.error is not None:
                raise self.error
            if self._closed:
                raise E.ClientClosedError("the session manager is closed")
            await self._changed.wait()
        return self._client

    async def clients(self) -> AsyncIterator[Client]:
        """The live client, then each new one as sessions are replaced."""
        seen = 0
        while True:
            zk = await self.wait_client()
            if self.generation != seen:
                seen = self.generation
                yield zk
            else:
                await self._changed.wait()

    def _set(self, zk: Client | None) -> None:
        self._client = zk
        if zk is not None:
            self.generation += 1
        self._changed.set()
        self._changed = anyio.Event()

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[Session]:
        try:
            async with background() as tasks:
                await tasks.start(self._run)
                yield self
        finally:
            self._closed = True
            self._set(None)

    async def _run(self, *,
                   task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        started = False
        attempt = 0
        while True:
            try:
                async with client.connect(self.hosts, **self.options) as zk:
                    attempt = 0
                    self._set(zk)
                    if not started:
                        started = True
                        task_status.started()
                    state = await zk.wait_for_state(State.EXPIRED, State.AUTH_FAILED,
                                                    State.CLOSED)
                    self._set(None)
                    if state == State.AUTH_FAILED:
                        self.error = E.AuthFailedError("credentials refused; not reconnecting")
                        self._changed.set()
                        return
            except E.ConnectionLossError:
                if not started and attempt >= 2:
                    raise
                attempt += 1
                await anyio.sleep(min(0.1 * 2 ** attempt, 2.0))


async def each_client(zk: Client | Session) -> AsyncIterator[Client]:
    """The client to work with: a plain client once, or each client of a `Session`."""
    if isinstance(zk, Session):
        async for c in zk.clients():
            yield c
    else:
        yield zk
