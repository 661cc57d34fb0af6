"""Sessions across connection loss and expiry, through a proxy the tests cut and restore."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from tests.client.conftest import SESSION_TIMEOUT
from tests.client.proxy import Proxy, open_proxy
from zkserver import client
from zkserver.client import CreateMode, EventType, KeeperState, State

pytestmark = pytest.mark.anyio

WAIT = 10  # seconds any reconnect may take
S = State


@pytest.fixture
async def pzk(server: Any, proxy: Proxy, root: str) -> AsyncIterator[client.Client]:
    """A client under the test's chroot, connected through the proxy."""
    async with client.connect(server.hosts) as admin:
        await admin.create(root)
    async with client.connect(proxy.hosts + root, session_timeout=SESSION_TIMEOUT) as c:
        yield c


async def states_until(stream: client.StateStream, last: State) -> list[State]:
    """The states a stream yields, up to the first change into `last`."""
    seen: list[State] = []
    with anyio.fail_after(WAIT + SESSION_TIMEOUT * 3):
        async for state in stream:
            seen.append(state)
            if state == last and len(seen) > 1:
                break
    return seen


async def reconnect(zk: client.Client, proxy: Proxy) -> None:
    """Cut the link, check the client notices, restore it and wait until it is back."""
    proxy.cut()
    with anyio.fail_after(WAIT):
        await zk.wait_for_state(S.SUSPENDED)
    proxy.restore()
    with anyio.fail_after(WAIT):
        await zk.wait_for_state(S.CONNECTED)


@pytest.mark.compat(client="zkserver.client", feature="ephemerals and sessions")
async def test_session_resumes_after_connection_loss(pzk: client.Client, proxy: Proxy,
                                                     admin: client.Client, root: str) -> None:
    sid, passwd = pzk.session_id, pzk.session_password
    eph = await pzk.create("/eph", mode=CreateMode.EPHEMERAL)
    states = pzk.states()
    await reconnect(pzk, proxy)
    assert await states_until(states, S.CONNECTED) == [S.CONNECTED, S.SUSPENDED, S.CONNECTED]
    assert (pzk.session_id, pzk.session_password) == (sid, passwd)
    assert proxy.connections >= 2
    stat = await admin.exists(root + eph)
    assert stat is not None and stat.ephemeralOwner == sid
    assert (await pzk.get("/eph")).stat == stat


async def test_pending_calls_fail_with_connection_loss(pzk: client.Client,
                                                       proxy: Proxy) -> None:
    await pzk.create("/n", b"x")
    proxy.drop_replies()
    results: list[Any] = []

    async def call() -> None:
        try:
            results.append(await pzk.get("/n"))
        except client.ZooKeeperError as e:
            results.append(e)

    async with anyio.create_task_group() as tasks:
        for _ in range(5):
            tasks.start_soon(call)
        with anyio.fail_after(WAIT):
            while len(pzk._conn.pending) < 5:  # type: ignore[union-attr]
                await anyio.sleep(0.01)
        proxy.cut()
    assert len(results) == 5
    assert all(isinstance(r, client.ConnectionLossError) for r in results)
    proxy.restore()
    with anyio.fail_after(WAIT):
        await pzk.wait_for_state(S.CONNECTED)
    assert (await pzk.get("/n")).data == b"x"


async def test_calls_made_while_suspended_wait_for_the_session(pzk: client.Client,
                                                               proxy: Proxy) -> None:
    await pzk.create("/n", b"x")
    proxy.cut()
    with anyio.fail_after(WAIT):
        await pzk.wait_for_state(S.SUSPENDED)
    got: list[bytes | None] = []

    async def call() -> None:
        got.append((await pzk.get("/n")).data)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(call)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        proxy.restore()
    assert got == [b"x"]


async def test_data_watch_rearmed_and_fires_once(pzk: client.Client, proxy: Proxy,
                                                 admin: client.Client, root: str) -> None:
    await pzk.create("/w", b"0")
    _, _, changed_while_away = await pzk.get("/w", watch=True)
    await pzk.create("/v", b"0")
    _, _, changed_after = await pzk.get("/v", watch=True)
    proxy.cut()
    with anyio.fail_after(WAIT):
        await pzk.wait_for_state(S.SUSPENDED)
    await admin.set(root + "/w", b"1")  # while the client is away
    proxy.restore()
    with anyio.fail_after(WAIT):
        await pzk.wait_for_state(S.CONNECTED)
        event = await changed_while_away  # setWatches' catch-up event
    assert (event.type, event.path) == (EventType.NODE_DATA_CHANGED, "/w")
    assert not changed_after.fired
    await admin.set(root + "/v", b"1")
    with anyio.fail_after(WAIT):
        assert (await changed_after).type == EventType.NODE_DATA_CHANGED
    # Each fired exactly once: they are gone from the client's table.
    assert pzk._watches.is_empty()


async def test_exists_and_child_watches_rearmed(pzk: client.Client, proxy: Proxy,
                                                admin: client.Client, root: str) -> None:
    await pzk.create("/parent")
    stat, created = await pzk.exists("/newnode", watch=True)
    assert stat is None
    _, _, children = await pzk.get_children("/parent", watch=True)
    proxy.cut()
    with anyio.fail_after(WAIT):
        await pzk.wait_for_state(S.SUSPENDED)
    await admin.create(root + "/newnode")
    await admin.create(root + "/parent/kid")
    proxy.restore()
    with anyio.fail_after(WAIT):
        e1 = await created
        e2 = await children
    assert (e1.type, e1.path) == (EventType.NODE_CREATED, "/newnode")
    assert (e2.type, e2.path) == (EventType.NODE_CHILDREN_CHANGED, "/parent")


async def test_watch_rearmed_without_change_fires_later(pzk: client.Client, proxy: Proxy,
                                                        admin: client.Client,
                                                        root: str) -> None:
    await pzk.create("/q", b"0")
    _, _, watch = await pzk.get("/q", watch=True)
    await reconnect(pzk, proxy)
    assert not watch.fired
    await admin.set(root + "/q", b"1")
    with anyio.fail_after(WAIT):
        assert (await watch).type == EventType.NODE_DATA_CHANGED


async def test_persistent_watch_rearmed_with_set_watches2(pzk: client.Client, proxy: Proxy,
                                                          admin: client.Client,
                                                          root: str) -> None:
    await pzk.create("/pw")
    async with pzk.add_watch("/pw", recursive=True) as events:
        await reconnect(pzk, proxy)
        await admin.create(root + "/pw/child")
        seen = []
        with anyio.fail_after(WAIT):
            async for event in events:
                seen.append((event.type, event.state, event.path))
                if event.type != EventType.NONE:
                    break
    assert seen == [
        (EventType.NONE, KeeperState.DISCONNECTED, None),
        (EventType.NONE, KeeperState.SYNC_CONNECTED, None),
        (EventType.NODE_CREATED, KeeperState.SYNC_CONNECTED, "/pw/child"),
    ]


async def test_auth_resent_after_reconnect(pzk: client.Client, proxy: Proxy) -> None:
    await pzk.add_auth("digest", "bob:pw")
    await pzk.create("/mine", b"m", acl=[client.digest_acl("bob", "pw")])
    await reconnect(pzk, proxy)
    assert client.Id("ip", "127.0.0.1") in await pzk.whoami()
    assert (await pzk.get("/mine")).data == b"m"


async def test_next_host_after_loss(server: Any, root: str, admin: client.Client) -> None:
    await admin.create(root)
    async with open_proxy("127.0.0.1", server.port) as first, \
            open_proxy("127.0.0.1", server.port) as second:
        hosts = f"{first.hosts},{second.hosts}{root}"
        async with client.connect(hosts, session_timeout=SESSION_TIMEOUT,
                                  randomize_hosts=False) as zk:
            assert (first.connections, second.connections) == (1, 0)
            sid = zk.session_id
            first.cut()
            with anyio.fail_after(WAIT):
                await second.wait_connections(1)
                await zk.wait_for_state(S.CONNECTED)
            await zk.create("/via-second")
            assert zk.session_id == sid
            assert str(zk.server_address) == second.hosts


async def test_pings_keep_an_idle_session(pzk: client.Client) -> None:
    with anyio.move_on_after(SESSION_TIMEOUT * 1.5) as idle:
        await pzk.wait_for_state(S.SUSPENDED, S.EXPIRED)
    assert idle.cancelled_caught, "the idle connection dropped"
    assert pzk.state == S.CONNECTED
    await pzk.sync("/")


async def test_hung_server_is_detected_by_read_timeout(pzk: client.Client,
                                                       proxy: Proxy) -> None:
    sid = pzk.session_id
    proxy.freeze()
    with anyio.fail_after(SESSION_TIMEOUT):  # 2/3 of it, plus a little
        await pzk.wait_for_state(S.SUSPENDED)
    proxy.restore()
    with anyio.fail_after(WAIT):
        await pzk.wait_for_state(S.CONNECTED)
    assert pzk.session_id == sid
    await pzk.sync("/")


async def test_request_timeout(server: Any, proxy: Proxy) -> None:
    async with client.connect(proxy.hosts, request_timeout=0.3) as zk:
        proxy.drop_replies()
        with pytest.raises(client.OperationTimeoutError):
            await zk.get("/")
        proxy.restore()
        # The late reply is skipped and the session carries on (or reconnects) by itself.
        with anyio.fail_after(WAIT):
            while True:
                try:
                    await zk.get("/")
                    break
                except (client.ConnectionLossError, client.OperationTimeoutError):
                    await zk.wait_for_state(S.CONNECTED)


@pytest.mark.compat(client="zkserver.client", feature="ephemerals and sessions")
async def test_session_expiry(pzk: client.Client, proxy: Proxy, admin: client.Client,
                              root: str) -> None:
    eph = await pzk.create("/eph", mode=CreateMode.EPHEMERAL)
    await pzk.create("/node")
    _, _, watch = await pzk.get("/node", watch=True)
    states = pzk.states()
    stat, gone = await admin.exists(root + eph, watch=True)
    assert stat is not None
    proxy.cut()
    with anyio.fail_after(WAIT):
        await pzk.wait_for_state(S.SUSPENDED)
    outcome: list[BaseException] = []

    async def pending_call() -> None:
        try:
            await pzk.get("/node")
        except client.ZooKeeperError as e:
            outcome.append(e)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(pending_call)  # waits for the session, which never comes back
        # The server expires the session: its ephemeral goes.
        with anyio.fail_after(SESSION_TIMEOUT * 3):
            assert (await gone).type == EventType.NODE_DELETED
        proxy.restore()
        with anyio.fail_after(WAIT):
            await pzk.wait_for_state(S.EXPIRED)
    assert [type(e) for e in outcome] == [client.SessionExpiredError]
    assert await states_until(states, S.EXPIRED) == [S.CONNECTED, S.SUSPENDED, S.EXPIRED]
    with pytest.raises(client.SessionExpiredError):
        await pzk.get("/node")
    with pytest.raises(client.SessionExpiredError):
        await pzk.create("/x")
    with pytest.raises(client.SessionExpiredError):
        await watch
    assert pzk.state == S.EXPIRED


async def test_many_watches_rearmed_in_chunks(pzk: client.Client, proxy: Proxy,
                                              admin: client.Client, root: str) -> None:
    """More watched path text than fits one setWatches frame (128 KiB): split, all re-armed."""
    long = "n" * 400
    paths = [f"/{long}{i}" for i in range(400)]
    watches: list[client.Watch] = []

    async def arm(path: str) -> None:
        await pzk.create(path)
        watches.append((await pzk.get(path, watch=True)).watch)

    async with anyio.create_task_group() as tasks:
        for p in paths:
            tasks.start_soon(arm, p)
    await reconnect(pzk, proxy)
    assert not any(w.fired for w in watches)
    async with anyio.create_task_group() as tasks:
        for p in paths:
            tasks.start_soon(admin.set, root + p, b"x")
    with anyio.fail_after(WAIT):
        for w in watches:
            assert (await w).type == EventType.NODE_DATA_CHANGED


async def test_auth_option_applies_from_the_first_connection(server: Any, root: str,
                                                             admin: client.Client) -> None:
    await admin.create(root, acl=[client.digest_acl("carol", "pw")])
    async with client.connect(server.hosts + root, auth=[("digest", "carol:pw")]) as zk:
        assert (await zk.get("/")).stat.aversion == 0


async def test_state_stream_ends_after_close(server: Any) -> None:
    async with client.connect(server.hosts) as zk:
        stream = zk.states()
    assert [s async for s in stream] == [S.CONNECTED, S.CLOSED]
