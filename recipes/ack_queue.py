"""A work queue with acknowledgement: take, process, ack. An item outlives consumers that die.

Layout under `<path>`:

* `items/item-<priority:03d>-<key>~<seq>`: PERSISTENT_SEQUENTIAL, data = the payload. The
  idempotency `key` is part of the name (`~` ends it: keys cannot contain it), so it can be
  read without the payload and a `put` retried after a lost reply finds the item it made.
* `taken/<item name>`: EPHEMERAL, data = the consumer's id. It is the claim on an item.

    await q.put(b"resize image 42", key="img-42")
    item = await q.take()
    if not already_done(item.key):       # consumer-side dedupe of redeliveries
        await process(item.data)
    await q.ack(item)
    # or: async with q.processing() as item: ...  (ack on success, release on error)

Guarantees, precisely:

1. At-least-once delivery. An item leaves the queue only through `ack` by the consumer that
   holds its claim; until then it is delivered again whenever it is unclaimed.
2. One claim at a time. Claiming is an atomic multi (create the ephemeral `taken/` node and
   bump the item's version): two consumers never hold the same item at once, as seen by
   ZooKeeper.
3. Redelivery after failure. A claim is an ephemeral node of the consumer's session: when the
   consumer closes, crashes or its session expires, the claim disappears and the item is
   delivered again. `release()` hands it back at once. (A consumer that only lost its
   connection keeps its claim if its session survives.)
4. Each item is acknowledged exactly once. `ack` deletes the item and the claim in one multi
   that fails if the claim is gone (`ClaimLostError`: someone else may be processing it); an
   ack whose reply was lost is checked on retry, never applied twice.
5. `Item.deliveries` counts claims (1 on the first delivery): the item's data version is bumped
   in the claiming multi, so a consumer can tell a redelivered item (`item.redelivered`).
6. Idempotency: every item has a key (given by the producer, or a random one). A consumer that
   records the keys it has handled (ideally together with the effect, e.g. in the same
   database transaction) drops a redelivered item it already handled and just acks it; an item
   that was processed but whose ack never landed is then not processed twice.
7. `put` is exactly-once per call, also across connection losses (the key finds the item).

Not guaranteed: processing order across consumers (items are handed out lowest priority
number first, then FIFO, but consumers finish in any order; a redelivered item is handed out
again in its original place); exactly-once *processing* (that is what the key is for);
progress for items whose consumer holds the claim but hangs while its session lives.
Recipes own their paths: nothing else may delete nodes under `<path>`.
"""

from __future__ import annotations

import re
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
    RecipeError,
    create_unique,
    drop_watch,
    ensure_path,
    guaranteed_delete,
    join,
    retrying,
    sequence,
    wait_any_watch,
)

if TYPE_CHECKING:
    from zkserver.client import Client

_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_ITEM_RE = re.compile(r"^item-(\d{3})-([A-Za-z0-9_.:-]+)~(?:-\d{9}|\d{10})$")


class ClaimLostError(RecipeError):
    """The consumer no longer holds the item's claim, so it may not acknowledge it."""


@attrs.frozen
class Item:
    key: str
    data: bytes
    name: str
    """The item node's name under `items/`."""
    priority: int
    deliveries: int
    """How many times the item has been claimed, this delivery included."""
    version: int = 0
    """The item node's version once claimed: the claim's identity, checked by `ack`."""

    @property
    def redelivered(self) -> bool:
        return self.deliveries > 1


def _order(name: str) -> tuple[int, int]:
    m = _ITEM_RE.match(name)
    assert m is not None
    return int(m.group(1)), sequence(name)


class AckQueue:
    def __init__(self, zk: Client, path: str, consumer_id: str | None = None) -> None:
        self.zk = zk
        self.path = path.rstrip("/")
        self.items_path = join(self.path, "items")
        self.taken_path = join(self.path, "taken")
        self.consumer_id = consumer_id or uuid.uuid4().hex
        self._ensured = False

    async def _ensure(self) -> None:
        if not self._ensured:
            await ensure_path(self.zk, self.items_path)
            await ensure_path(self.zk, self.taken_path)
            self._ensured = True

    # -- producing ------------------------------------------------------------------------------

    async def put(self, data: bytes, *, key: str | None = None, priority: int = 100) -> str:
        """Enqueue `data` under idempotency `key` (random if None); returns the key."""
        key = key if key is not None else uuid.uuid4().hex
        if not _KEY_RE.match(key):
            raise ValueError("a key is 1-128 characters of A-Z a-z 0-9 _ . : -")
        if not 0 <= priority <= 999:
            raise ValueError("priority must be between 0 and 999")
        await self._ensure()
        await create_unique(self.zk, self.items_path, f"item-{priority:03d}-{key}~", data,
                            mode=CreateMode.PERSISTENT_SEQUENTIAL)
        return key

    # -- consuming ------------------------------------------------------------------------------

    async def _available(self, watch: bool) -> tuple[list[str], list]:  # type: ignore[type-arg]
        if watch:
            items, _, wi = await retrying(self.zk.get_children, self.items_path, watch=True)
            taken, _, wt = await retrying(self.zk.get_children, self.taken_path, watch=True)
            watches = [wi, wt]
        else:
            items = (await retrying(self.zk.get_children, self.items_path)).children
            taken = (await retrying(self.zk.get_children, self.taken_path)).children
            watches = []
        claimed = set(taken)
        free = [n for n in items if _ITEM_RE.match(n) and n not in claimed]
        return sorted(free, key=_order), watches

    async def _claim(self, name: str) -> Item | None:
        """Try to claim one item; None if someone else has it or it is gone."""
        item_path = join(self.items_path, name)
        claim_path = join(self.taken_path, name)
        while True:
            try:
                data, stat = await retrying(self.zk.get, item_path)
            except E.NoNodeError:
                return None
            try:
                await (self.zk.transaction()
                       .create(claim_path, self.consumer_id.encode(), mode=CreateMode.EPHEMERAL)
                       .set_data(item_path, data, version=stat.version)
                       .commit())
                deliveries = version = stat.version + 1
            except (E.NodeExistsError, E.NoNodeError):
                return None
            except E.BadVersionError:
                continue  # claimed and released meanwhile: look again
            except RETRYABLE:
                owner = await retrying(self.zk.exists, claim_path)
                if owner is None or owner.ephemeralOwner != self.zk.session_id:
                    continue
                try:
                    data, stat = await retrying(self.zk.get, item_path)
                except E.NoNodeError:
                    await guaranteed_delete(self.zk, claim_path)
                    return None
                deliveries = version = stat.version
            m = _ITEM_RE.match(name)
            assert m is not None
            return Item(m.group(2), data or b"", name, int(m.group(1)), deliveries, version)

    async def take(self, timeout: float | None = None) -> Item | None:
        """Claim the first unclaimed item, waiting for one (None after `timeout` seconds).

        A take that is cancelled after claiming releases the claim again."""
        await self._ensure()
        with anyio.move_on_after(timeout):
            while True:
                free, _ = await self._available(watch=False)
                if not free:
                    free, watches = await self._available(watch=True)
                    if not free:
                        await wait_any_watch(watches)
                        continue
                    for w in watches:
                        await drop_watch(w)
                for name in free:
                    try:
                        item = await self._claim(name)
                    except BaseException:
                        # Cancelled (or failed) mid-claim: hand back a claim we may have made.
                        if await self._owns(name):
                            await guaranteed_delete(self.zk, join(self.taken_path, name))
                        raise
                    if item is not None:
                        return item
        return None

    async def _owns(self, name: str) -> bool:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
            try:
                stat = await self.zk.exists(join(self.taken_path, name))
                return stat is not None and stat.ephemeralOwner == self.zk.session_id
            except E.ZooKeeperError:
                return False
        return False

    async def ack(self, item: Item) -> None:
        """Remove the item for good. `ClaimLostError` if this consumer's claim is gone (the
        item was released, or our session ended, and it may be claimed again); acknowledging
        an item that is already gone is a no-op (only the claim holder removes it)."""
        item_path = join(self.items_path, item.name)
        claim_path = join(self.taken_path, item.name)
        while True:
            try:
                # The version is our claim's: any later claim bumped it.
                await (self.zk.transaction().delete(item_path, version=item.version)
                       .delete(claim_path).commit())
                return
            except E.BadVersionError as e:
                raise ClaimLostError(f"{item.name} was claimed again since") from e
            except E.NoNodeError as e:
                if getattr(e, "index", None) == 0:
                    await guaranteed_delete(self.zk, claim_path)
                    return
                raise ClaimLostError(f"no claim on {item.name} any more") from e
            except RETRYABLE:
                stat = await retrying(self.zk.exists, item_path)
                if stat is None:
                    return  # our multi landed
                owner = await retrying(self.zk.exists, claim_path)
                if owner is None or owner.ephemeralOwner != self.zk.session_id:
                    raise ClaimLostError(f"no claim on {item.name} any more") from None

    async def release(self, item: Item) -> None:
        """Give the item back unprocessed: it is delivered again (shielded)."""
        await guaranteed_delete(self.zk, join(self.taken_path, item.name))

    @asynccontextmanager
    async def processing(self, timeout: float | None = None) -> AsyncIterator[Item | None]:
        """Take an item for the block: acked if the block succeeds, released if it raises or
        is cancelled. Yields None if nothing came within `timeout`."""
        item = await self.take(timeout)
        if item is None:
            yield None
            return
        try:
            yield item
        except BaseException:
            await self.release(item)
            raise
        await self.ack(item)

    # -- looking on -----------------------------------------------------------------------------

    async def size(self) -> int:
        """Items not yet acknowledged (claimed or not)."""
        await self._ensure()
        children = (await retrying(self.zk.get_children, self.items_path)).children
        return sum(1 for c in children if _ITEM_RE.match(c))

    async def in_flight(self) -> int:
        """Items claimed right now."""
        await self._ensure()
        return len((await retrying(self.zk.get_children, self.taken_path)).children)
