"""An exclusive lock, node for node the same as kazoo's `Lock`, so both exclude each other.

Layout: contenders are EPHEMERAL_SEQUENTIAL children `<path>/<uuid4 hex>__lock__<seq>` whose
data is the contender's identifier. The lowest sequence holds the lock.

    lock = Lock(zk, "/locks/accounts", "worker-1")
    async with lock.hold() as held:          # cancelled if the lock may be lost
        await write_somewhere(fencing_token=held.token)

Why it is built the way it is:

* No herd: a waiter lists the children without a watch and watches only its immediate
  predecessor (with getData, so no watch is left behind on a missing node), so a release
  wakes exactly one waiter.
* Protected create: the GUID in the name lets a retry after a lost reply find the node the
  first attempt made (and only one this session owns) instead of queueing twice.
* Cancellation-safe: a cancelled or timed-out acquire, and every release, delete our node in a
  shielded cleanup that retries across reconnects (`_common.guaranteed_delete`); a node left
  behind would block every other contender for as long as our session lives.
* `hold()` (and `async with lock:`, which is the same) runs its body only while the lock is
  certainly ours: the body is cancelled the
  moment the connection drops (SUSPENDED: nobody can tell whether the session survives), the
  session ends, our node vanishes or (with `revocable=True`) someone revokes the lock; the
  `async with` then raises `LockLostError`.
* Fencing: `Held.token` is the czxid of our lock node. Successive holders' tokens increase,
  so a resource that remembers the highest token it has seen can refuse a holder that was
  paused past its session timeout and still believes it holds the lock (Curator TN10).
* Sequence numbers are compared as signed integers, not strings, so the order survives the
  32-bit counter's wrap (kazoo compares strings, which agrees until then).

Not re-entrant: acquiring a Lock object that is held (or being acquired) raises RuntimeError.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import attrs

from zkserver.client import CreateMode
from zkserver.client import errors as E
from zkserver.recipes._common import (
    REVOKE,
    RecipeError,
    SessionLostError,
    create_unique,
    delete_by_prefix,
    ensure_path,
    guaranteed_delete,
    guarded,
    join,
    retrying,
    sequence,
    wait_watch,
)
from zkserver.recipes._lifetime import Lifetime

if TYPE_CHECKING:
    from zkserver.client import Client, Stat


def _names_re(names: Sequence[str]) -> re.Pattern[str]:
    """Matches node names ending in one of `names` and a sequence suffix."""
    alternatives = "|".join(re.escape(n) for n in names)
    return re.compile(rf"(?:{alternatives})(?:-\d{{9}}|\d{{10}})$")


class LockTimeout(RecipeError, TimeoutError):
    """The lock was not acquired within the time asked for."""


class LockLostError(SessionLostError):
    """The lock may have passed to someone else while the `hold()` body ran."""


@attrs.frozen
class Held:
    """A held lock, as `hold()` yields it."""

    lock: Lock
    node: str
    """Our lock node's path."""
    token: int
    """Fencing token: the czxid of our lock node. It grows from one holder to the next."""

    async def still_held(self) -> bool:
        """Ask the server whether our node still exists and belongs to our session (a check
        at one instant, for code that did not use `hold()`'s cancellation)."""
        zk = self.lock.zk
        try:
            stat = await zk.exists(self.node)
        except E.ZooKeeperError:
            return False
        return (stat is not None and stat.czxid == self.token
                and stat.ephemeralOwner == zk.session_id)


class Lock(Lifetime):
    """A kazoo-compatible exclusive lock on `path`.

    `async with lock.hold() as held:` or `async with lock:` (both cancel the body when the
    lock may be lost), or `acquire()`/`release()` for code that checks `still_held()` itself."""

    NODE_NAME = "__lock__"
    """The name between the GUID and the sequence number."""
    EXCLUDE_NAMES: tuple[str, ...] = ("__lock__",)
    """Contender names that exclude us when their sequence number is lower."""

    def __init__(self, zk: Client, path: str, identifier: str = "", *,
                 extra_lock_patterns: Sequence[str] = ()) -> None:
        self.zk = zk
        self.path = path.rstrip("/") or "/"
        self.identifier = identifier
        self.data = identifier.encode()
        excluded = [*self.EXCLUDE_NAMES, *extra_lock_patterns]
        self._contender_re = _names_re(excluded)
        self._all_re = _names_re([*excluded, self.NODE_NAME])
        self.node: str | None = None
        self.stat: Stat | None = None
        self.is_acquired = False
        self._busy = False
        self._prefix = uuid.uuid4().hex + self.NODE_NAME

    @property
    def fencing_token(self) -> int | None:
        """The czxid of our lock node while held, else None."""
        return self.stat.czxid if self.is_acquired and self.stat is not None else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r} held={self.is_acquired}>"

    # -- acquiring ------------------------------------------------------------------------------

    async def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock. Waits as long as needed (or `timeout` seconds, then False); with
        `blocking=False` it only tries once. Cancelling it leaves no node behind."""
        if self._busy or self.is_acquired:
            raise RuntimeError(f"{self!r} is already held or being acquired (not re-entrant)")
        self._busy = True
        got = False
        try:
            with anyio.move_on_after(timeout):
                got = await self._acquire(blocking)
            return got
        finally:
            self._busy = False
            if got:
                self.is_acquired = True
            else:
                await self._cleanup(self._prefix)

    async def _enqueue(self) -> None:
        """Create our contender node under a fresh GUID."""
        self._prefix = uuid.uuid4().hex + self.NODE_NAME
        self.node, self.stat = await create_unique(self.zk, self.path, self._prefix, self.data,
                                                   mode=CreateMode.EPHEMERAL_SEQUENTIAL)

    async def _acquire(self, blocking: bool) -> bool:
        self._prefix = uuid.uuid4().hex + self.NODE_NAME
        await ensure_path(self.zk, self.path)
        await self._enqueue()
        assert self.node is not None
        while True:
            name = self.node.rsplit("/", 1)[1]
            children = (await retrying(self.zk.get_children, self.path)).children
            if name not in children:
                # Our node is gone (deleted by someone): queue again.
                await self._enqueue()
                continue
            predecessor = self._predecessor(name, children)
            if predecessor is None:
                return True
            if not blocking:
                return False
            try:
                _data, _stat, watch = await retrying(self.zk.get, join(self.path, predecessor),
                                                     watch=True)
            except E.NoNodeError:
                continue
            await wait_watch(watch)

    def _predecessor(self, name: str, children: Sequence[str]) -> str | None:
        """The contender just before `name` among those that exclude us, if any."""
        mine = sequence(name)
        best: tuple[int, str] | None = None
        for child in children:
            if child == name or not self._contender_re.search(child):
                continue
            seq = sequence(child)
            if seq < mine and (best is None or seq > best[0]):
                best = (seq, child)
        return best[1] if best else None

    async def _cleanup(self, prefix: str) -> None:
        node, self.node, self.stat = self.node, None, None
        if node is not None:
            await guaranteed_delete(self.zk, node)
        # A create whose reply we never saw may still have made a node with our GUID.
        await delete_by_prefix(self.zk, self.path, prefix)

    # -- releasing ------------------------------------------------------------------------------

    async def release(self) -> None:
        """Give the lock up: delete our node, even if the caller is being cancelled."""
        node, self.node, self.stat = self.node, None, None
        self.is_acquired = False
        if node is not None:
            await guaranteed_delete(self.zk, node)

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[Lock]:
        """`async with lock:` is `async with lock.hold():` (the body is cancelled, and
        `LockLostError` raised, when the lock may be lost), yielding the lock itself."""
        async with self.hold():
            yield self

    @asynccontextmanager
    async def hold(self, *, timeout: float | None = None, suspended_is_lost: bool = True,
                   revocable: bool = False) -> AsyncIterator[Held]:
        """Acquire, run the body while the lock is certainly ours, release.

        The body is cancelled, and `LockLostError` raised, when the connection drops (unless
        `suspended_is_lost=False`: then only when the session ends), when our node disappears,
        or, with `revocable`, when `revoke()` asks for the lock. `LockTimeout` if not acquired
        within `timeout` seconds."""
        if not await self.acquire(timeout=timeout):
            raise LockTimeout(f"could not lock {self.path} within {timeout}s")
        try:
            assert self.node is not None and self.stat is not None
            held = Held(self, self.node, self.stat.czxid)
            async with guarded(self.zk, self.node, suspended_is_lost=suspended_is_lost,
                               revocable=revocable, error=LockLostError):
                yield held
        finally:
            await self.release()

    # -- looking on -----------------------------------------------------------------------------

    async def contender_nodes(self) -> list[str]:
        """Every contender's node name (ours and the excluding kinds), lowest first."""
        try:
            children = (await retrying(self.zk.get_children, self.path)).children
        except E.NoNodeError:
            return []
        nodes = [c for c in children if self._all_re.search(c)]
        return sorted(nodes, key=sequence)

    async def contenders(self) -> list[str]:
        """The identifiers of the contenders, holder first (as kazoo's `contenders()`)."""
        out = []
        for node in await self.contender_nodes():
            try:
                data, _ = await retrying(self.zk.get, join(self.path, node))
            except E.NoNodeError:
                continue
            out.append((data or b"").decode(errors="replace"))
        return out


async def revoke(zk: Client, path: str, node: str | None = None) -> str | None:
    """Ask the holder of the lock at `path` (or the contender `node`) to give it up, by writing
    Curator's revocation value into its node. A holder inside `hold(revocable=True)` has its
    body cancelled and releases. Returns the node asked, or None if nobody held the lock."""
    if node is None:
        try:
            children = (await retrying(zk.get_children, path)).children
        except E.NoNodeError:
            return None
        seqs = [c for c in children if re.search(r"(?:-\d{9}|\d{10})$", c)]
        if not seqs:
            return None
        node = min(seqs, key=sequence)
    try:
        await zk.set(join(path, node), REVOKE)
    except E.NoNodeError:
        return None
    return node
