"""A double barrier: a group starts a computation together and finishes it together.

ZooKeeper's recipe on kazoo's `DoubleBarrier` layout: each member owns an EPHEMERAL node
`<path>/<uuid4 hex>` (data: its identifier); the member whose arrival completes the group
creates `<path>/ready`, which wakes the ones waiting on it.

A waiting member enters when its watch on `ready` reports the creation, as the recipe says,
without reading `ready` again: the group may complete, do its work and start leaving before the
waiter's next request reaches the server (a busy machine is enough), and a re-read then finds
nothing and waits for a creation that never comes. For the same reason `ready` is removed by
the last member out, not by each member as it starts leaving (kazoo does that): while any member
of the round may still be waiting, `ready` exists, so a waiter whose watch is re-armed after a
reconnection (the server then reports an exists watch's node only if it exists) still sees it.

Leaving follows the recipe's low/high protocol so that one deletion wakes one member rather
than all of them: the member with the lowest name waits for the highest to go; every other
member deletes its node and waits for the lowest; the last one out removes `ready` and its own
node and returns. Members are ephemeral, so one that dies drops out of the count instead of
blocking the others forever.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING

import anyio

from zkserver.client import CreateMode, EventType
from zkserver.recipes._common import (
    create_unique,
    drop_watch,
    ensure_path,
    guaranteed_delete,
    join,
    retrying,
    wait_watch,
)

if TYPE_CHECKING:
    from zkserver.client import Client, Watch

READY = "ready"


class DoubleBarrier:
    """`async with DoubleBarrier(zk, path, 3):` enters (waiting for 3 members) and leaves
    (waiting for all of them to be done)."""

    def __init__(self, zk: Client, path: str, num_clients: int,
                 identifier: str | None = None) -> None:
        self.zk = zk
        self.path = path.rstrip("/")
        self.num_clients = num_clients
        self.identifier = identifier or f"{socket.getfqdn()}-{os.getpid()}"
        self.name = uuid.uuid4().hex
        self.node = join(self.path, self.name)
        self.participating = False

    async def enter(self, timeout: float | None = None) -> bool:
        """Join and wait until `num_clients` members have; False (and not joined) after
        `timeout` seconds."""
        entered = False
        try:
            with anyio.move_on_after(timeout):
                await ensure_path(self.zk, self.path)
                ready = join(self.path, READY)
                # Armed before our node exists: whoever completes the group after our count
                # below creates `ready` under this watch.
                stat, watch = await retrying(self.zk.exists, ready, watch=True)
                await create_unique(self.zk, self.path, self.name, self.identifier.encode(),
                                    mode=CreateMode.EPHEMERAL)
                if stat is None:
                    children = (await retrying(self.zk.get_children, self.path)).children
                    members = [c for c in children if c != READY]
                    if len(members) < self.num_clients:
                        await self._wait_ready(watch)
                    elif await self._nobody_made_ready(watch):
                        await ensure_path(self.zk, ready)
                await drop_watch(watch)
                entered = True
            return entered
        finally:
            self.participating = entered
            if not entered:
                await guaranteed_delete(self.zk, self.node)

    async def leave(self, timeout: float | None = None) -> bool:
        """Wait until every member has left; False after `timeout` seconds."""
        try:
            with anyio.move_on_after(timeout):
                while True:
                    children = (await retrying(self.zk.get_children, self.path)).children
                    members = sorted(c for c in children if c != READY)
                    if not members or members == [self.name]:
                        # Nobody of this round is still entering: `ready` may go.
                        await guaranteed_delete(self.zk, join(self.path, READY))
                        await guaranteed_delete(self.zk, self.node)
                        return True
                    if self.name == members[0]:
                        target = members[-1]
                    else:
                        if self.name in members:
                            await guaranteed_delete(self.zk, self.node)
                        target = members[0]
                    stat, watch = await retrying(self.zk.exists, join(self.path, target),
                                                 watch=True)
                    if stat is None:
                        await drop_watch(watch)
                        continue
                    await wait_watch(watch)
            return False
        finally:
            self.participating = False
            await guaranteed_delete(self.zk, self.node)

    async def _nobody_made_ready(self, watch: Watch) -> bool:
        """Whether `ready` is still to be made by us, who counted a complete group.

        Another member may have counted it complete too, made `ready`, entered and, if it is
        kazoo's, removed `ready` again as it began to leave (kazoo's leave does that first).
        Made once more, `ready` would stay to the end (we remove it last), and kazoo's lowest
        member, which waits for the highest child to go and sorts `ready` among the members,
        would wait for it forever. `watch` was armed before our node existed, and the server
        sends its event before the reply to any later request: after this round trip it has
        fired if anyone made `ready` since."""
        stat = await retrying(self.zk.exists, join(self.path, READY))
        return stat is None and not watch.fired

    async def _wait_ready(self, watch: Watch) -> None:
        """Return once `ready` has been created, `watch` being an exists watch armed while it
        was missing. Its NodeCreated is the signal: `ready` may be gone again by the time we
        could read it. Any other end of the watch (it was removed) means read and re-arm."""
        while True:
            event = await wait_watch(watch)
            if event.type == EventType.NODE_CREATED:
                return
            stat, watch = await retrying(self.zk.exists, join(self.path, READY), watch=True)
            if stat is not None:
                await drop_watch(watch)
                return

    async def __aenter__(self) -> DoubleBarrier:
        await self.enter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()
