"""Helpers for the recipe tests: clients behind cuttable proxies, session killing, histories.

* `proxied_client(server, root)`: a client whose connection runs through its own `Proxy`
  (`tests/client/proxy.py`), so a test can drop (`cut`), silence (`freeze`) or restore that one
  client's link. Cutting for longer than the session timeout expires the session.
* `expire(zk, proxy)`: expires a session by cutting its proxy for longer than its timeout.
  (Stealing the session with a second client, as Curator's tests once did, races with this
  client's immediate reconnection on both servers, so it is not used.)
* `History`: a list of events from tasks of one Trio run (so appends are totally ordered) with
  the checks the concurrency tests need.
"""

from __future__ import annotations

import random
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from tests.client.proxy import Proxy, open_proxy
from zkserver import client

SESSION = 1.2
"""Session timeout of the fault-injection clients, seconds (the servers' tick is 200 ms)."""


async def make_root(hosts: str, root: str) -> None:
    """Create a test's chroot node."""
    async with client.connect(hosts) as admin:
        await admin.create(root)


@asynccontextmanager
async def proxied(server: Any) -> AsyncIterator[Proxy]:
    async with open_proxy("127.0.0.1", server.port) as proxy:
        yield proxy


@asynccontextmanager
async def connect(hosts: str, root: str = "", **options: Any) -> AsyncIterator[client.Client]:
    options.setdefault("session_timeout", SESSION)
    options.setdefault("request_timeout", 5.0)
    async with client.connect(hosts + root, **options) as zk:
        yield zk


async def expire(zk: client.Client, proxy: Proxy) -> None:
    """Expire `zk`'s session (it connects through `proxy`): cut the link for longer than the
    session timeout, restore it, and wait until the client has been told."""
    proxy.cut()
    await anyio.sleep(zk.negotiated_timeout / 1000 * 2 + 0.3)
    proxy.restore()
    with anyio.fail_after(15):
        await zk.wait_for_state(client.State.EXPIRED)


class Chaos:
    """Injects faults into a set of proxies for a while: short cuts (the session survives),
    long cuts and freezes (it expires). Records what it did."""

    def __init__(self, proxies: list[Proxy], *, seed: int = 7, session: float = SESSION) -> None:
        self.proxies = proxies
        self.rng = random.Random(seed)
        self.session = session
        self.log: list[tuple[str, int]] = []

    async def run(self, duration: float, *, pause: tuple[float, float] = (0.3, 0.8),
                  kinds: tuple[str, ...] = ("blip", "cut", "freeze")) -> None:
        deadline = anyio.current_time() + duration
        while anyio.current_time() < deadline:
            await anyio.sleep(self.rng.uniform(*pause))
            i = self.rng.randrange(len(self.proxies))
            proxy = self.proxies[i]
            kind = self.rng.choice(kinds)
            self.log.append((kind, i))
            if kind == "blip":
                proxy.cut()
                await anyio.sleep(0.1)
            elif kind == "cut":
                proxy.cut()
                await anyio.sleep(self.session * 2.2)
            else:
                proxy.freeze()
                await anyio.sleep(self.session * 2.2)
                proxy.cut()  # a frozen link's sockets are dead by now: drop them
            proxy.restore()


class History:
    """Enter/exit events of critical sections, in the one order a Trio run gives them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self._lock = threading.Lock()  # kazoo threads append too
        self.holders: set[str] = set()
        self.violations: list[str] = []
        self.max_concurrent = 0

    def enter(self, who: str, info: Any = None, *, limit: int = 1) -> None:
        with self._lock:
            self.events.append(("enter", who, info))
            if len(self.holders) >= limit:
                self.violations.append(f"{who} entered while {sorted(self.holders)} held")
            self.holders.add(who)
            self.max_concurrent = max(self.max_concurrent, len(self.holders))

    def exit(self, who: str, info: Any = None) -> None:
        with self._lock:
            self.events.append(("exit", who, info))
            self.holders.discard(who)

    def entries(self) -> list[tuple[str, Any]]:
        return [(who, info) for kind, who, info in self.events if kind == "enter"]
