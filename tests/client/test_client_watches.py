"""One-time watches as awaitables, persistent and recursive watches as async iterators."""

from __future__ import annotations

import anyio
import pytest

from zkserver import client
from zkserver.client import CreateMode, EventType, KeeperState

pytestmark = pytest.mark.anyio

WAIT = 5  # seconds any single event may take


async def next_event(events: client.PersistentWatch) -> client.WatchedEvent:
    """The next node event of a persistent watch (skipping connection events)."""
    with anyio.fail_after(WAIT):
        async for event in events:
            if event.type != EventType.NONE:
                return event
    raise AssertionError("watch ended")


@pytest.mark.compat(client="zkserver.client", feature="watches")
async def test_data_watch_fires_on_change(zk: client.Client, admin: client.Client,
                                          root: str) -> None:
    await zk.create("/w", b"1")
    data, stat, watch = await zk.get("/w", watch=True)
    assert data == b"1" and not watch.fired
    await admin.set(root + "/w", b"2")
    with anyio.fail_after(WAIT):
        event = await watch
    assert event.type == EventType.NODE_DATA_CHANGED
    assert event.path == "/w"  # chroot stripped
    assert event.state == KeeperState.SYNC_CONNECTED
    assert watch.fired


async def test_event_comes_before_the_write_reply(zk: client.Client) -> None:
    await zk.create("/w", b"1")
    _, _, watch = await zk.get("/w", watch=True)
    await zk.set("/w", b"2")
    # ZooKeeper queues the notification before the writer's reply on the same connection.
    assert watch.fired
    assert (await watch.wait()).type == EventType.NODE_DATA_CHANGED


async def test_data_watch_fires_on_delete(zk: client.Client) -> None:
    await zk.create("/w")
    _, _, watch = await zk.get("/w", watch=True)
    await zk.delete("/w")
    with anyio.fail_after(WAIT):
        assert (await watch).type == EventType.NODE_DELETED


async def test_exists_watch_on_missing_node_fires_on_create(zk: client.Client) -> None:
    stat, watch = await zk.exists("/later", watch=True)
    assert stat is None
    await zk.create("/later")
    with anyio.fail_after(WAIT):
        event = await watch
    assert event.type == EventType.NODE_CREATED and event.path == "/later"


async def test_exists_watch_on_existing_node(zk: client.Client) -> None:
    await zk.create("/x")
    stat, watch = await zk.exists("/x", watch=True)
    assert stat is not None
    await zk.set("/x", b"new")
    with anyio.fail_after(WAIT):
        assert (await watch).type == EventType.NODE_DATA_CHANGED


@pytest.mark.compat(client="zkserver.client", feature="watches")
async def test_child_watch(zk: client.Client) -> None:
    await zk.create("/p")
    children, stat, watch = await zk.get_children("/p", watch=True)
    assert children == []
    await zk.set("/p", b"data changes do not fire child watches")
    assert not watch.fired
    await zk.create("/p/c")
    with anyio.fail_after(WAIT):
        event = await watch
    assert event.type == EventType.NODE_CHILDREN_CHANGED and event.path == "/p"


async def test_child_watch_fires_on_delete_of_parent(zk: client.Client) -> None:
    await zk.create("/p")
    _, _, cw = await zk.get_children("/p", watch=True)
    _, _, dw = await zk.get("/p", watch=True)
    await zk.delete("/p")
    with anyio.fail_after(WAIT):
        assert (await cw).type == EventType.NODE_DELETED
        assert (await dw).type == EventType.NODE_DELETED


async def test_watch_is_one_time(zk: client.Client) -> None:
    await zk.create("/once", b"0")
    _, _, watch = await zk.get("/once", watch=True)
    _, _, watch2 = await zk.get("/once", watch=True)
    await zk.set("/once", b"1")
    await zk.set("/once", b"2")
    # Both local watches share one server watch; each gets that single event.
    assert (await watch).type == EventType.NODE_DATA_CHANGED
    assert (await watch2).type == EventType.NODE_DATA_CHANGED
    _, _, watch3 = await zk.get("/once", watch=True)
    assert not watch3.fired


async def test_no_watch_on_failed_get(zk: client.Client) -> None:
    with pytest.raises(client.NoNodeError):
        await zk.get("/missing", watch=True)
    with pytest.raises(client.NoNodeError):
        await zk.get_children("/missing", watch=True)


async def test_remove_watch(zk: client.Client) -> None:
    await zk.create("/r")
    _, _, watch = await zk.get("/r", watch=True)
    await watch.remove()
    event = await watch
    assert event.type == EventType.DATA_WATCH_REMOVED
    _, _, cw = await zk.get_children("/r", watch=True)
    await cw.remove()
    assert (await cw).type == EventType.CHILD_WATCH_REMOVED
    await zk.set("/r", b"x")
    await zk.create("/r/c")
    # A fresh watch on the same node still works after the removal.
    _, _, again = await zk.get("/r", watch=True)
    await zk.set("/r", b"y")
    assert (await again).type == EventType.NODE_DATA_CHANGED


async def test_remove_one_of_two_watches_keeps_the_other(zk: client.Client) -> None:
    await zk.create("/r")
    _, _, keep = await zk.get("/r", watch=True)
    _, _, drop = await zk.get("/r", watch=True)
    await drop.remove()
    await zk.set("/r", b"x")
    with anyio.fail_after(WAIT):
        assert (await keep).type == EventType.NODE_DATA_CHANGED


async def test_many_watchers_from_many_tasks(zk: client.Client) -> None:
    await zk.create("/many", b"")
    events: list[client.WatchedEvent] = []

    async def watcher() -> None:
        _, _, w = await zk.get("/many", watch=True)
        events.append(await w)

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(watcher)
            while len(zk._watches.tables[client.watches.WatchKind.DATA].get(
                    zk._chroot.to_server("/many"), ())) < 20:
                await anyio.sleep(0.01)
            await zk.set("/many", b"x")
    assert len(events) == 20
    assert all(e.type == EventType.NODE_DATA_CHANGED for e in events)


@pytest.mark.compat(client="zkserver.client", feature="watches")
async def test_persistent_watch(zk: client.Client) -> None:
    await zk.create("/pw", b"0")
    async with zk.add_watch("/pw") as events:
        await zk.set("/pw", b"1")
        e = await next_event(events)
        assert (e.type, e.path) == (EventType.NODE_DATA_CHANGED, "/pw")
        await zk.set("/pw", b"2")  # still armed: persistent
        e = await next_event(events)
        assert e.type == EventType.NODE_DATA_CHANGED
        await zk.create("/pw/child")
        e = await next_event(events)
        assert (e.type, e.path) == (EventType.NODE_CHILDREN_CHANGED, "/pw")
        await zk.create("/pw/child/grandchild")  # not for a non-recursive watch
        await zk.delete("/pw/child/grandchild")
        await zk.delete("/pw/child")
        e = await next_event(events)
        assert (e.type, e.path) == (EventType.NODE_CHILDREN_CHANGED, "/pw")
        await zk.delete("/pw")
        e = await next_event(events)
        assert (e.type, e.path) == (EventType.NODE_DELETED, "/pw")
        await zk.create("/pw")
        e = await next_event(events)
        assert (e.type, e.path) == (EventType.NODE_CREATED, "/pw")


@pytest.mark.compat(client="zkserver.client", feature="watches")
async def test_recursive_watch(zk: client.Client) -> None:
    await zk.create("/tree")
    async with zk.add_watch("/tree", recursive=True) as events:
        await zk.create("/tree/a")
        await zk.create("/tree/a/b", b"x")
        await zk.set("/tree/a/b", b"y")
        await zk.delete("/tree/a/b")
        await zk.create("/elsewhere")
        await zk.set("/tree", b"top")
        seen = [await next_event(events) for _ in range(5)]
    assert [(e.type, e.path) for e in seen] == [
        (EventType.NODE_CREATED, "/tree/a"),
        (EventType.NODE_CREATED, "/tree/a/b"),
        (EventType.NODE_DATA_CHANGED, "/tree/a/b"),
        (EventType.NODE_DELETED, "/tree/a/b"),
        (EventType.NODE_DATA_CHANGED, "/tree"),
    ]


async def test_persistent_watch_close_ends_iteration(zk: client.Client) -> None:
    await zk.create("/c")
    watch = await zk.add_watch("/c")
    await zk.set("/c", b"1")
    await watch.aclose()
    # Events already delivered stay readable; then the stream ends.
    remaining = [e async for e in watch]
    assert [e.type for e in remaining] == [EventType.NODE_DATA_CHANGED]


async def test_closing_persistent_watch_keeps_one_time_watch(zk: client.Client) -> None:
    await zk.create("/mix", b"0")
    _, _, one_time = await zk.get("/mix", watch=True)
    async with zk.add_watch("/mix") as events:
        await zk.create("/mix/c")
        e = await next_event(events)
        assert e.type == EventType.NODE_CHILDREN_CHANGED
    # The persistent watch is removed from the server; the one-time watch must still fire.
    await zk.set("/mix", b"1")
    with anyio.fail_after(WAIT):
        assert (await one_time).type == EventType.NODE_DATA_CHANGED


async def test_persistent_watch_removed_on_server(zk: client.Client, admin: client.Client,
                                                  root: str) -> None:
    await zk.create("/gone")
    async with zk.add_watch("/gone"):
        pass
    # Nothing is registered for the path any more, on either side: removing again finds none.
    from zkserver.proto import records as R
    from zkserver.proto.codes import Op, WatcherType

    with pytest.raises(client.NoWatcherError):
        await zk._call(Op.REMOVE_WATCHES,
                       R.WatchesRequest(zk._chroot.to_server("/gone"), WatcherType.ANY))


async def test_two_persistent_watches_on_one_path(zk: client.Client) -> None:
    await zk.create("/two")
    async with zk.add_watch("/two") as first:
        async with zk.add_watch("/two") as second:
            await zk.set("/two", b"1")
            assert (await next_event(first)).type == EventType.NODE_DATA_CHANGED
            assert (await next_event(second)).type == EventType.NODE_DATA_CHANGED
        await zk.set("/two", b"2")  # closing the second must not disarm the first
        assert (await next_event(first)).type == EventType.NODE_DATA_CHANGED


async def test_ephemeral_delete_on_close_fires_watch(server: object,
                                                     zk: client.Client, root: str) -> None:
    async with client.connect(server.hosts + root) as other:  # type: ignore[attr-defined]
        await other.create("/eph", mode=CreateMode.EPHEMERAL)
        _, _, watch = await zk.get("/eph", watch=True)
    with anyio.fail_after(WAIT):
        assert (await watch).type == EventType.NODE_DELETED


async def test_watch_raises_when_client_closes(server: object, root: str) -> None:
    async with client.connect(server.hosts) as other:  # type: ignore[attr-defined]
        _, _, watch = await other.get("/", watch=True)
    with pytest.raises(client.ClientClosedError):
        await watch
