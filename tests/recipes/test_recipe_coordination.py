"""Barrier, double barrier, counter and group membership, with many clients each; the counter
and the barriers also against kazoo's recipes on the same node."""

from __future__ import annotations

import struct
import threading
from typing import Any

import anyio
import pytest
from kazoo.recipe.barrier import DoubleBarrier as KazooDoubleBarrier
from kazoo.recipe.counter import Counter as KazooCounter
from support.kz import kazoo_client, stop_kazoo

from tests.recipes.recipe_support import connect, expire, make_root, proxied
from zkserver import client
from zkserver.recipes.barrier import Barrier
from zkserver.recipes.counter import Counter
from zkserver.recipes.double_barrier import DoubleBarrier
from zkserver.recipes.party import Party

pytestmark = pytest.mark.anyio


async def test_barrier_releases_every_waiter(hosts: str) -> None:
    async with connect(hosts) as zk, connect(hosts) as other:
        barrier = Barrier(zk, "/barrier")
        assert await barrier.wait(timeout=10)  # not up: returns at once, not at the deadline
        await barrier.create()
        released: list[int] = []

        async def waiter(i: int) -> None:
            assert await Barrier((zk, other)[i % 2], "/barrier").wait(timeout=5)
            released.append(i)

        async with anyio.create_task_group() as tasks:
            for i in range(6):
                tasks.start_soon(waiter, i)
            await anyio.sleep(0.3)
            assert released == []
            assert await Barrier(other, "/barrier").remove()
        assert sorted(released) == list(range(6))
        assert not await barrier.remove()
        await barrier.create()
        assert not await barrier.wait(timeout=0.2)


async def test_barrier_wait_survives_connection_loss(zks: Any, root: str, hosts: str) -> None:
    async with proxied(zks) as proxy, connect(proxy.hosts, root, session_timeout=4.0) as zk, \
            connect(hosts) as other:
        await Barrier(other, "/barrier").create()
        async with anyio.create_task_group() as tasks:
            done = anyio.Event()

            async def wait() -> None:
                assert await Barrier(zk, "/barrier").wait(timeout=10)
                done.set()

            tasks.start_soon(wait)
            await anyio.sleep(0.2)
            proxy.cut()
            await Barrier(other, "/barrier").remove()  # while the waiter is disconnected
            await anyio.sleep(0.3)
            proxy.restore()
            with anyio.fail_after(5):
                await done.wait()


async def test_double_barrier_enter_and_leave_together(hosts: str) -> None:
    n = 5
    log: list[tuple[str, int]] = []
    async with connect(hosts) as z1, connect(hosts) as z2:
        async def member(i: int) -> None:
            zk = (z1, z2)[i % 2]
            await anyio.sleep(0.05 * i)
            async with DoubleBarrier(zk, "/db", n, f"m{i}"):
                log.append(("in", i))
                await anyio.sleep(0.05 * (n - i))
                log.append(("work-done", i))
            log.append(("out", i))

        with anyio.fail_after(15):
            async with anyio.create_task_group() as tasks:
                for i in range(n):
                    tasks.start_soon(member, i)
        kinds = [k for k, _ in log]
        # Nobody starts before all have entered; nobody leaves before all are done.
        assert kinds[:n] == ["in"] * n
        assert kinds[n:2 * n] == ["work-done"] * n
        assert kinds[2 * n:] == ["out"] * n
        assert (await z1.get_children("/db")).children == []


async def test_double_barrier_enter_times_out_without_quorum(hosts: str) -> None:
    async with connect(hosts) as zk:
        barrier = DoubleBarrier(zk, "/db", 3)
        assert not await barrier.enter(timeout=0.3)
        assert (await zk.get_children("/db")).children == []


class _SlowAfterWake:
    """A member's client that reports when it has counted the group, and holds any `exists`
    made after that until `go` is set: as a member scheduled late on a busy machine would be,
    the ready node may come and go before its next request reaches the server."""

    def __init__(self, zk: client.Client) -> None:
        self._zk = zk
        self.counted = anyio.Event()
        self.go = anyio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._zk, name)

    async def get_children(self, *args: Any, **kwargs: Any) -> Any:
        result = await self._zk.get_children(*args, **kwargs)
        self.counted.set()
        return result

    async def exists(self, *args: Any, **kwargs: Any) -> Any:
        if self.counted.is_set():
            await self.go.wait()
        return await self._zk.exists(*args, **kwargs)


async def test_double_barrier_enters_on_a_ready_node_that_is_already_gone(hosts: str) -> None:
    """The completing member creates `ready`, runs a short body and starts leaving (kazoo's
    leave deletes `ready` first) before a waiting member re-reads it: the watch's NodeCreated is
    what lets the waiter in (ZooKeeper's recipe: wait for the watch, then proceed). Re-checking
    `exists(ready)` instead found nothing and waited for a creation that never came: the docs
    example hung in CI this way under load."""
    async with connect(hosts) as zk, connect(hosts) as other:
        slow = _SlowAfterWake(zk)
        barrier = DoubleBarrier(slow, "/db", 2, "waiter")  # type: ignore[arg-type]
        result: list[bool] = []
        done = anyio.Event()

        async def enter() -> None:
            result.append(await barrier.enter())
            done.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(enter)
            with anyio.fail_after(10):
                await slow.counted.wait()  # one member of two: it waits for `ready`
            await other.create("/db/other-member", b"other", mode=client.CreateMode.EPHEMERAL)
            await other.create("/db/ready")
            await other.delete("/db/ready")
            slow.go.set()
            with anyio.move_on_after(5):
                await done.wait()
            tasks.cancel_scope.cancel()
        assert result == [True], "the waiter missed a ready node that was created and deleted"


class _ReportsWaiting:
    """A member's client that reports when it arms a watch on a member node: the point where a
    leaving member has done all it does before waiting for the others."""

    def __init__(self, zk: client.Client) -> None:
        self._zk = zk
        self.waiting = anyio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._zk, name)

    async def exists(self, path: str, *, watch: bool = False) -> Any:
        result = await self._zk.exists(path, watch=watch)
        if watch and not path.endswith("/ready"):
            self.waiting.set()
        return result


class _OvertakenAfterCounting:
    """A member's client on which another member, as kazoo's does, completes the group just
    after our count of the members: it makes `ready`, enters, and removes `ready` again as
    it begins to leave."""

    def __init__(self, zk: client.Client, other: client.Client) -> None:
        self._zk = zk
        self._other = other
        self.overtaken = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._zk, name)

    async def get_children(self, path: str, **kw: Any) -> Any:
        result = await self._zk.get_children(path, **kw)
        if not self.overtaken:
            self.overtaken = True
            await self._other.create("/db/ready")
            await self._other.delete("/db/ready")
        return result


async def test_double_barrier_does_not_make_ready_again_after_a_member_removed_it(
        hosts: str) -> None:
    """Made again, `ready` would stay to the end, and a kazoo member that is the lowest
    waits for the highest child, `ready` among them, to go: both would wait forever."""
    async with connect(hosts) as z1, connect(hosts) as z2:
        await z2.create("/db/" + "0" * 32, b"kazoo's", mode=client.CreateMode.EPHEMERAL,
                        make_parents=True)
        overtaken = _OvertakenAfterCounting(z1, z2)
        ours = DoubleBarrier(overtaken, "/db", 2)  # type: ignore[arg-type]
        with anyio.fail_after(10):
            assert await ours.enter()
        assert overtaken.overtaken
        assert await z2.exists("/db/ready") is None


async def test_double_barrier_keeps_ready_until_the_last_member_leaves(hosts: str) -> None:
    """`ready` stays while any member of the round is still inside, so a member that was
    disconnected while the group completed finds it when its watch is re-armed (the server
    reports an exists watch's node only if it exists then); the last one out removes it."""
    async with connect(hosts) as z1, connect(hosts) as z2:
        reporting = _ReportsWaiting(z1)
        first = DoubleBarrier(reporting, "/db", 2, "first")  # type: ignore[arg-type]
        second = DoubleBarrier(z2, "/db", 2, "second")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(first.enter)
                tasks.start_soon(second.enter)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(first.leave)
                await reporting.waiting.wait()  # first is waiting for second
                assert await z2.exists("/db/ready") is not None
                assert await second.leave()
        assert (await z2.get_children("/db")).children == []


@pytest.mark.compat(client="kazoo", feature="recipes")
async def test_double_barrier_with_kazoo_members(any_server: Any, root: str) -> None:
    await make_root(any_server.hosts, root)
    kz = kazoo_client(any_server.hosts + root)
    entered, left = threading.Event(), threading.Event()
    try:
        def kazoo_member() -> None:
            barrier = KazooDoubleBarrier(kz, "/db", 2)
            barrier.enter()
            entered.set()
            barrier.leave()
            left.set()

        # A thread of its own, not one the test awaits: kazoo's waits have no deadline,
        # and a member stuck in one must fail the test, not hold it.
        member = threading.Thread(target=kazoo_member, daemon=True)
        async with connect(any_server.hosts, root) as zk:
            member.start()
            with anyio.fail_after(10):
                async with DoubleBarrier(zk, "/db", 2, "ours"):
                    assert await anyio.to_thread.run_sync(entered.wait, 5)
            assert await anyio.to_thread.run_sync(left.wait, 10), "kazoo's member never left"
    finally:
        stop_kazoo(kz)


@pytest.mark.parametrize("curator", [False, True])
async def test_counter_concurrent_adds_never_lose_an_update(hosts: str, curator: bool) -> None:
    async with connect(hosts) as z1, connect(hosts) as z2, connect(hosts) as z3:
        afters: list[int] = []

        async def adder(zk: client.Client) -> None:
            counter = Counter(zk, "/count", curator=curator)
            for _ in range(15):
                afters.append((await counter.add(1)).post_value)

        async with anyio.create_task_group() as tasks:
            for zk in (z1, z2, z3, z1, z2, z3):
                tasks.start_soon(adder, zk)
        assert await Counter(z1, "/count", curator=curator).get() == 90
        assert sorted(afters) == list(range(1, 91))  # each value seen by exactly one add
        counter = Counter(z1, "/count", curator=curator)
        assert not await counter.compare_and_set(5, 6)
        assert await counter.compare_and_set(90, -3)
        raw = (await z1.get("/count")).data
        assert raw == (struct.pack(">i", -3) if curator else b"-3")


@pytest.mark.compat(client="kazoo", feature="recipes")
async def test_counter_shares_the_node_with_kazoo(any_server: Any, root: str) -> None:
    await make_root(any_server.hosts, root)
    kz = kazoo_client(any_server.hosts + root)
    try:
        async with connect(any_server.hosts, root) as zk:
            ours = Counter(zk, "/count")

            def kazoo_adds() -> None:
                counter = KazooCounter(kz, "/count")
                for _ in range(20):
                    counter += 1

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(anyio.to_thread.run_sync, kazoo_adds)
                for _ in range(20):
                    await ours.add(1)
            assert await ours.get() == 40
            assert await anyio.to_thread.run_sync(lambda: KazooCounter(kz, "/count").value) == 40
    finally:
        stop_kazoo(kz)


async def test_party_membership_follows_members(zks: Any, root: str, hosts: str) -> None:
    async with connect(hosts) as observer_zk:
        observer = Party(observer_zk, "/party")
        seen: list[list[str]] = []

        async def watch() -> None:
            async for members in observer.watch():
                seen.append(sorted(members))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch)
            async with proxied(zks) as proxy, connect(proxy.hosts, root) as doomed:
                async with connect(hosts) as a, Party(a, "/party", "a"), \
                        Party(doomed, "/party", "doomed"):
                    with anyio.fail_after(5):
                        while await observer.members() != ["a", "doomed"] and \
                                sorted(await observer.members()) != ["a", "doomed"]:
                            await anyio.sleep(0.02)
                    assert await observer.size() == 2
                    await expire(doomed, proxy)  # the member dies: it drops out by itself
                    with anyio.fail_after(5):
                        while await observer.members() != ["a"]:
                            await anyio.sleep(0.02)
            with anyio.fail_after(5):
                while not seen or seen[-1] != []:
                    await anyio.sleep(0.02)
            tasks.cancel_scope.cancel()
        assert ["a", "doomed"] in seen and ["a"] in seen
