"""The retry helper and protected creates, through a proxy that loses replies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from tests.client.conftest import SESSION_TIMEOUT
from tests.client.proxy import Proxy
from zkserver import client
from zkserver.client import CreateMode, RetryPolicy, State

pytestmark = pytest.mark.anyio

WAIT = 10


@pytest.fixture
async def pzk(server: Any, proxy: Proxy, root: str) -> AsyncIterator[client.Client]:
    async with client.connect(server.hosts) as admin:
        await admin.create(root)
    async with client.connect(proxy.hosts + root, session_timeout=SESSION_TIMEOUT) as c:
        yield c


async def lose_next_reply(zk: client.Client, proxy: Proxy,
                          applied: Callable[[], Awaitable[bool]] | None = None) -> None:
    """Once the client has a request on the wire whose reply the proxy swallows (and, if given,
    `applied()` sees its effect on the server), cut the link: the client sees a connection
    loss for a request the server carried out."""
    with anyio.fail_after(WAIT):
        while not (zk._conn and zk._conn.pending):
            await anyio.sleep(0.005)
        while applied is not None and not await applied():
            await anyio.sleep(0.01)
    proxy.cut()
    with anyio.fail_after(WAIT):
        await zk.wait_for_state(State.SUSPENDED)
    proxy.restore()


async def test_retry_reads_across_a_connection_loss(pzk: client.Client, proxy: Proxy) -> None:
    await pzk.create("/r", b"v")
    proxy.drop_replies()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lose_next_reply, pzk, proxy)
        with anyio.fail_after(WAIT):
            data, _ = await client.retry(pzk.get, "/r")
    assert data == b"v"


async def test_retry_refuses_non_idempotent_calls(pzk: client.Client) -> None:
    with pytest.raises(TypeError):
        await client.retry(pzk.create, "/x")
    with pytest.raises(TypeError):
        await pzk.retry(pzk.set, "/x", b"")
    assert await client.retry(pzk.create, "/x", idempotent=True) == "/x"


async def test_retry_gives_up(pzk: client.Client, proxy: Proxy) -> None:
    calls = 0

    async def always_lost() -> None:
        nonlocal calls
        calls += 1
        raise client.ConnectionLossError()

    with pytest.raises(client.ConnectionLossError):
        await client.retry(always_lost, policy=RetryPolicy(max_tries=3, delay=0.001))
    assert calls == 3


async def test_retry_never_retries_expiry() -> None:
    calls = 0

    async def expired() -> None:
        nonlocal calls
        calls += 1
        raise client.SessionExpiredError()

    with pytest.raises(client.SessionExpiredError):
        await client.retry(expired)
    assert calls == 1


async def test_retried_delete_of_a_node_it_already_deleted(pzk: client.Client, proxy: Proxy,
                                                           admin: client.Client,
                                                           root: str) -> None:
    await pzk.create("/d")
    proxy.drop_replies()

    async def deleted() -> bool:
        return await admin.exists(root + "/d") is None

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lose_next_reply, pzk, proxy, deleted)
        with anyio.fail_after(WAIT):
            await client.retry(pzk.delete, "/d")
    assert await pzk.exists("/d") is None


async def test_protected_create_survives_a_lost_reply(pzk: client.Client, proxy: Proxy,
                                                      admin: client.Client, root: str) -> None:
    await pzk.create("/locks")
    proxy.drop_replies()

    async def created() -> bool:
        return bool((await admin.get_children(root + "/locks")).children)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lose_next_reply, pzk, proxy, created)
        with anyio.fail_after(WAIT):
            path = await client.protected_create(pzk, "/locks/lock-")
    children = (await pzk.get_children("/locks")).children
    assert children == [path.rsplit("/", 1)[1]]  # made exactly once
    assert path.startswith("/locks/_c_") and path.endswith("-lock-0000000000")
    assert (await pzk.exists(path)).ephemeralOwner == pzk.session_id


async def test_protected_create_without_trouble(zk: client.Client) -> None:
    await zk.create("/q")
    p = await client.protected_create(zk, "/q/item-", b"x",
                                      mode=CreateMode.PERSISTENT_SEQUENTIAL)
    assert (await zk.get(p)).data == b"x"
    assert p.split("/")[-1].startswith("_c_")
