"""Several locks taken as one (Curator's InterProcessMultiLock), all or none.

The locks are acquired one after the other, in a single global order (sorted by path) so two
multi-locks over overlapping sets cannot deadlock each other by taking them in opposite
orders. If any acquisition fails, times out or is cancelled, the ones already taken are
released before the error leaves. `hold()` cancels its body as soon as any one of the locks
may be lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from zkserver.recipes._lifetime import Lifetime
from zkserver.recipes.lock import Held, Lock, LockTimeout

if TYPE_CHECKING:
    from zkserver.client import Client


class MultiLock(Lifetime):
    """`MultiLock(zk, ["/locks/a", "/locks/b"])`, or `MultiLock.of(lock1, lock2, ...)`."""

    def __init__(self, zk: Client, paths: Sequence[str], identifier: str = "") -> None:
        self.locks = [Lock(zk, p, identifier) for p in sorted(set(paths))]

    @classmethod
    def of(cls, *locks: Lock) -> MultiLock:
        """A multi-lock over existing lock objects (any kind, e.g. write locks)."""
        self = cls.__new__(cls)
        self.locks = sorted(locks, key=lambda lk: lk.path)
        return self

    @property
    def is_acquired(self) -> bool:
        return all(lk.is_acquired for lk in self.locks)

    @property
    def fencing_tokens(self) -> dict[str, int | None]:
        return {lk.path: lk.fencing_token for lk in self.locks}

    async def acquire(self, *, timeout: float | None = None) -> bool:
        """Take every lock (False, holding none, if that took more than `timeout`)."""
        done = False
        try:
            with anyio.move_on_after(timeout):
                for lk in self.locks:
                    if not await lk.acquire():
                        break
                else:
                    done = True
            return done
        finally:
            if not done:
                await self.release()

    async def release(self) -> None:
        """Release every lock held, in reverse order (shielded, like each lock's release)."""
        for lk in reversed(self.locks):
            if lk.is_acquired:
                await lk.release()

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[MultiLock]:
        """`async with multi:` is `async with multi.hold():` (the body is cancelled, and
        `LockLostError` raised, when any lock may be lost), yielding the multilock."""
        async with self.hold():
            yield self

    @asynccontextmanager
    async def hold(self, *, timeout: float | None = None,
                   suspended_is_lost: bool = True) -> AsyncIterator[list[Held]]:
        """Hold all the locks; the body is cancelled (then `LockLostError`) if any is lost."""
        deadline = anyio.current_time() + timeout if timeout is not None else float("inf")
        async with AsyncExitStack() as stack:
            helds = []
            for lk in self.locks:
                remaining = max(deadline - anyio.current_time(), 0.0)
                try:
                    helds.append(await stack.enter_async_context(lk.hold(
                        timeout=None if timeout is None else remaining,
                        suspended_is_lost=suspended_is_lost)))
                except LockTimeout:
                    raise LockTimeout(f"could not take {lk.path} within {timeout}s") from None
            yield helds
