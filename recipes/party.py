"""Group membership (kazoo's `Party` layout): who is in the group right now.

Each member owns an EPHEMERAL node `<path>/<uuid4 hex>__party__` whose data is its identifier,
so a member that dies leaves the group when its session ends, with nobody having to notice.
The node name carries the GUID, so a join whose reply was lost is found, not repeated.

`members()` reads the group once; `watch()` yields the member list again each time it changes
(a children watch, re-armed on every change and kept across reconnections by the client).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from zkserver.client import CreateMode
from zkserver.client import errors as E
from zkserver.recipes._common import (
    create_unique,
    ensure_path,
    guaranteed_delete,
    join,
    retrying,
    wait_watch,
)

if TYPE_CHECKING:
    from zkserver.client import Client

NODE_NAME = "__party__"


class Party:
    """`async with Party(zk, "/parties/workers", "host-a") as party:` joins for the block."""

    def __init__(self, zk: Client, path: str, identifier: str = "") -> None:
        self.zk = zk
        self.path = path.rstrip("/")
        self.identifier = identifier
        self.name = uuid.uuid4().hex + NODE_NAME
        self.node = join(self.path, self.name)
        self.participating = False

    async def join(self) -> None:
        """Join the group (again, if our node was removed)."""
        await ensure_path(self.zk, self.path)
        try:
            await create_unique(self.zk, self.path, self.name, self.identifier.encode(),
                                mode=CreateMode.EPHEMERAL)
        except E.NodeExistsError:
            pass
        self.participating = True

    async def leave(self) -> None:
        """Leave the group (shielded from cancellation)."""
        self.participating = False
        await guaranteed_delete(self.zk, self.node)

    async def __aenter__(self) -> Party:
        await self.join()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()

    async def _identifiers(self, children: list[str]) -> list[str]:
        out = []
        for child in sorted(children):
            if not child.endswith(NODE_NAME):
                continue
            try:
                data, _ = await retrying(self.zk.get, join(self.path, child))
            except E.NoNodeError:
                continue
            out.append((data or b"").decode(errors="replace"))
        return out

    async def members(self) -> list[str]:
        """The identifiers of the current members."""
        try:
            children = (await retrying(self.zk.get_children, self.path)).children
        except E.NoNodeError:
            return []
        return await self._identifiers(children)

    async def size(self) -> int:
        try:
            children = (await retrying(self.zk.get_children, self.path)).children
        except E.NoNodeError:
            return 0
        return sum(1 for c in children if c.endswith(NODE_NAME))

    async def watch(self) -> AsyncIterator[list[str]]:
        """The member list now, then again after every change (consecutive duplicates
        skipped)."""
        await ensure_path(self.zk, self.path)
        last: list[str] | None = None
        while True:
            children, _stat, w = await retrying(self.zk.get_children, self.path, watch=True)
            current = await self._identifiers(children)
            if current != last:
                last = current
                yield current
            await wait_watch(w)
