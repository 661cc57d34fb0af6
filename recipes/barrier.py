"""A barrier: everyone waiting on it proceeds once it is removed (ZooKeeper's recipe, kazoo's
and Curator's layout: the barrier is up while the node `<path>` exists).

Waiters use `exists` with a watch and check again after every event, so a barrier created and
removed again while a waiter was between two calls is never missed for long, and a connection
loss only delays the wait: the client re-arms the watch when it reconnects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from zkserver.client import errors as E
from zkserver.recipes._common import (
    drop_watch,
    ensure_path,
    retrying,
    wait_watch,
)

if TYPE_CHECKING:
    from zkserver.client import Client


class Barrier:
    def __init__(self, zk: Client, path: str) -> None:
        self.zk = zk
        self.path = path

    async def create(self) -> None:
        """Raise the barrier (no-op if it is up)."""
        await ensure_path(self.zk, self.path)

    async def remove(self) -> bool:
        """Lower the barrier; False if it was not up."""
        try:
            await retrying(self.zk.delete, self.path)
            return True
        except E.NoNodeError:
            return False

    async def wait(self, timeout: float | None = None) -> bool:
        """Return True once the barrier is down (at once if it is), False after `timeout`."""
        with anyio.move_on_after(timeout):
            while True:
                stat, watch = await retrying(self.zk.exists, self.path, watch=True)
                if stat is None:
                    await drop_watch(watch)
                    return True
                await wait_watch(watch)
        return False
