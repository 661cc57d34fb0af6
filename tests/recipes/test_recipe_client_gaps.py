"""A client behaviour the recipes have to work around, kept as a test that shows it.

Cancelling the scope that encloses `async with client.connect(...)` also cancels the client's
own connection tasks (they live in a tasks inside that scope), so the shielded `close()` in
`connect()`'s exit has no connection left to send closeSession on: the session stays open until
the server times it out, and every ephemeral it owns (lock nodes, leases, service
registrations) keeps blocking others for that long. Shielded cleanup that recipes run while
being cancelled cannot reach the server either (`recipes._common` gives up after 1 s then).
Leaving the block normally, or by an exception, closes the session at once.
"""

from __future__ import annotations

import anyio
import pytest

from tests.recipes.recipe_support import connect
from zkserver import client

pytestmark = pytest.mark.anyio


async def test_cancelled_connect_block_closes_the_session(hosts: str) -> None:
    with anyio.move_on_after(0.3):
        async with connect(hosts, session_timeout=4.0) as zk:
            await zk.create("/eph", b"", mode=client.CreateMode.EPHEMERAL)
            await anyio.sleep(10)
    async with connect(hosts) as other:
        assert await other.exists("/eph") is None


async def test_exception_in_connect_block_closes_the_session(hosts: str) -> None:
    with pytest.raises(KeyError):
        async with connect(hosts, session_timeout=4.0) as zk:
            await zk.create("/eph", b"", mode=client.CreateMode.EPHEMERAL)
            raise KeyError("bye")
    async with connect(hosts) as other:
        assert await other.exists("/eph") is None
