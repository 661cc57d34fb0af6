"""The client as each event loop's own programs use it: `asyncio.run` with asyncio's native
timeouts, task cancellation and gather; `trio.run` with Trio's; `anyio.run` on either backend.

The rest of the client suite runs every test on both backends through AnyIO's pytest plugin;
these start the event loop themselves, as an application does, and use only that loop's own
API around the client.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import anyio
import pytest
import trio

from zkserver import client
from zkserver.client import EventType, State


def test_asyncio_run(server: Any) -> None:
    async def main() -> State:
        async with client.connect(server.hosts) as zk:
            path = await zk.create(f"/asyncio-{uuid.uuid4().hex[:8]}", b"x")
            _data, _stat, watch = await zk.get(path, watch=True)
            with pytest.raises(TimeoutError):  # asyncio's own timeout cancels the wait only
                async with asyncio.timeout(0.2):
                    await watch
            waiter = asyncio.create_task(watch.wait())
            await asyncio.sleep(0.05)
            waiter.cancel()  # and so does cancelling the task
            with pytest.raises(asyncio.CancelledError):
                await waiter
            replies = await asyncio.gather(*(zk.get(path) for _ in range(200)))
            assert {r.data for r in replies} == {b"x"}
            async with zk.add_watch(path) as events:
                await zk.set(path, b"y")
                assert (await watch).type == EventType.NODE_DATA_CHANGED  # still armed
                async with asyncio.timeout(5):
                    assert (await anext(events)).type == EventType.NODE_DATA_CHANGED
            await zk.delete(path)
        return zk.state

    assert asyncio.run(main()) == State.CLOSED


def test_trio_run(server: Any) -> None:
    async def main() -> State:
        async with client.connect(server.hosts) as zk:
            path = await zk.create(f"/trio-{uuid.uuid4().hex[:8]}", b"x")
            _data, _stat, watch = await zk.get(path, watch=True)
            with trio.move_on_after(0.2) as scope:
                await watch
            assert scope.cancelled_caught
            async with trio.open_nursery() as nursery:
                for _ in range(200):
                    nursery.start_soon(zk.get, path)
            await zk.set(path, b"y")
            assert (await watch).type == EventType.NODE_DATA_CHANGED
            await zk.delete(path)
        return zk.state

    assert trio.run(main) == State.CLOSED


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_anyio_run(server: Any, backend: str) -> None:
    async def main() -> State:
        async with client.connect(server.hosts) as zk:
            path = await zk.create(f"/anyio-{uuid.uuid4().hex[:8]}", b"x")
            with anyio.fail_after(5):
                async with anyio.create_task_group() as tasks:
                    for i in range(50):
                        tasks.start_soon(zk.set, path, b"%d" % i)
            assert (await zk.get(path)).stat.version == 50
            await zk.delete(path)
        return zk.state

    assert anyio.run(main, backend=backend) == State.CLOSED
