"""A double barrier: a group starts a computation together and finishes it together.

ZooKeeper's recipe on kazoo's `DoubleBarrier` layout: each member owns an EPHEMERAL node
`<path>/<uuid4 hex>` (data: its identifier); the member whose arrival completes the group
creates `<path>/ready`, which wakes the ones waiting on it.

Leaving follows the recipe's low/high protocol so that one deletion wakes one member rather
than all of them: the member with the lowest name waits for the highest to go; every other
member deletes its node and waits for the lowest; the last one out returns at once. Members are
ephemeral, so one that dies drops out of the count instead of blocking the others forever.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING

import anyio

from zkserver.client import CreateMode
from zkserver.client import errors as E
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
    from zkserver.client import Client

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
                stat, watch = await retrying(self.zk.exists, ready, watch=True)
                await create_unique(self.zk, self.path, self.name, self.identifier.encode(),
                                    mode=CreateMode.EPHEMERAL)
                if stat is None:
                    children = (await retrying(self.zk.get_children, self.path)).children
                    members = [c for c in children if c != READY]
                    if len(members) < self.num_clients:
                        while True:
                            await wait_watch(watch)
                            stat, watch = await retrying(self.zk.exists, ready, watch=True)
                            if stat is not None:
                                break
                    else:
                        await ensure_path(self.zk, ready)
                if not watch.fired:
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
                try:
                    await retrying(self.zk.delete, join(self.path, READY))
                except E.NoNodeError:
                    pass
                while True:
                    children = (await retrying(self.zk.get_children, self.path)).children
                    members = sorted(c for c in children if c != READY)
                    if not members:
                        return True
                    if members == [self.name]:
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

    async def __aenter__(self) -> DoubleBarrier:
        await self.enter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()
