"""A counting semaphore: at most `max_leases` holders at once. kazoo's `Semaphore` layout.

Layout: the node `<path>` holds `max_leases` as ASCII digits; each holder owns an EPHEMERAL
lease `<path>/<uuid4 hex>` whose data is its identifier; acquirers take turns through a
`Lock` on the sibling path `<path>-__lock__`.

Why: only the one acquirer that holds the sibling lock looks at the lease list (and watches
it while the semaphore is full), so a released lease wakes one waiter, not all of them; and
because acquirers are serialised, two of them can never both see a free slot and take it.
Leases are ephemeral, so a holder that dies frees its slot when its session ends. The lease
node name is the GUID, so a create whose reply was lost is found again instead of repeated.

The limit is written by the first user of the path; a user that asks for a different limit
gets ValueError (delete the node to change it), as in kazoo.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import attrs

from zkserver.client import CreateMode
from zkserver.client import errors as E
from zkserver.recipes._common import (
    RETRYABLE,
    SessionLostError,
    create_unique,
    delete_by_prefix,
    drop_watch,
    ensure_path,
    guaranteed_delete,
    guarded,
    join,
    retrying,
    wait_watch,
)
from zkserver.recipes._lifetime import Lifetime
from zkserver.recipes.lock import Lock, LockTimeout

if TYPE_CHECKING:
    from zkserver.client import Client


class LeaseLostError(SessionLostError):
    """The lease may have been lost while the `hold()` body ran."""


@attrs.frozen
class Lease:
    node: str
    token: int
    """The czxid of the lease node."""


class Semaphore(Lifetime):
    """`async with Semaphore(zk, path, max_leases=3):` or `acquire()`/`release()`."""

    def __init__(self, zk: Client, path: str, identifier: str = "", *,
                 max_leases: int = 1) -> None:
        if max_leases < 1:
            raise ValueError("max_leases must be at least 1")
        self.zk = zk
        self.path = path.rstrip("/")
        self.identifier = identifier
        self.max_leases = max_leases
        self.lock_path = f"{self.path}-__lock__"
        self.node: str | None = None
        self.lease: Lease | None = None
        self.is_acquired = False

    async def _ensure(self) -> None:
        await ensure_path(self.zk, self.path)
        data, stat = await retrying(self.zk.get, self.path)
        if data:
            stored = int(data.decode())
            if stored != self.max_leases:
                raise ValueError(f"{self.path} allows {stored} leases, not {self.max_leases}")
            return
        try:
            await self.zk.set(self.path, str(self.max_leases).encode(), version=stat.version)
        except (E.BadVersionError, *RETRYABLE):
            await self._ensure()  # someone (maybe our lost attempt) wrote it: check it

    async def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a lease; False if none came within `timeout` (or at once, with
        `blocking=False`). Cancellation leaves no lease behind."""
        if self.is_acquired:
            raise RuntimeError("this Semaphore object already holds a lease")
        prefix = uuid.uuid4().hex
        got = False
        try:
            with anyio.move_on_after(timeout):
                await self._ensure()
                lock = Lock(self.zk, self.lock_path, self.identifier)
                async with lock:
                    got = await self._take(prefix, blocking)
            return got
        finally:
            if got:
                self.is_acquired = True
            else:
                node, self.node, self.lease = self.node, None, None
                if node is not None:
                    await guaranteed_delete(self.zk, node)
                await delete_by_prefix(self.zk, self.path, prefix)

    async def _take(self, prefix: str, blocking: bool) -> bool:
        while True:
            children, _stat, watch = await retrying(self.zk.get_children, self.path,
                                                    watch=True)
            if len(children) < self.max_leases:
                await drop_watch(watch)
                self.node, stat = await create_unique(
                    self.zk, self.path, prefix, self.identifier.encode(),
                    mode=CreateMode.EPHEMERAL)
                self.lease = Lease(self.node, stat.czxid)
                return True
            if not blocking:
                await drop_watch(watch)
                return False
            await wait_watch(watch)

    async def release(self) -> None:
        """Give the lease back (shielded from cancellation)."""
        node, self.node, self.lease = self.node, None, None
        self.is_acquired = False
        if node is not None:
            await guaranteed_delete(self.zk, node)

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[Semaphore]:
        """`async with sem:` is `async with sem.hold():` (the body is cancelled, and
        `LeaseLostError` raised, when the lease may be lost), yielding the semaphore."""
        async with self.hold():
            yield self

    @asynccontextmanager
    async def hold(self, *, timeout: float | None = None,
                   suspended_is_lost: bool = True) -> AsyncIterator[Lease]:
        """Acquire, run the body while the lease is certainly ours (cancelled on connection
        loss, session end or the lease node's deletion, then `LeaseLostError`), release."""
        if not await self.acquire(timeout=timeout):
            raise LockTimeout(f"no lease on {self.path} within {timeout}s")
        try:
            assert self.lease is not None
            async with guarded(self.zk, self.lease.node, suspended_is_lost=suspended_is_lost,
                               error=LeaseLostError):
                yield self.lease
        finally:
            await self.release()

    async def lease_holders(self) -> list[str]:
        """The identifiers of the current lease holders."""
        try:
            children = (await retrying(self.zk.get_children, self.path)).children
        except E.NoNodeError:
            return []
        out = []
        for child in children:
            try:
                data, _ = await retrying(self.zk.get, join(self.path, child))
            except E.NoNodeError:
                continue
            out.append((data or b"").decode(errors="replace"))
        return out
