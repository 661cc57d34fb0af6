"""The exclusive lock: mutual exclusion under faults, fencing, revocation, cancellation, and
exclusion with kazoo's Lock on the same path."""

from __future__ import annotations

import threading
from collections import Counter as Tally
from typing import Any

import anyio
import pytest
from kazoo.recipe.lock import Lock as KazooLock
from support.kz import kazoo_client, stop_kazoo

from tests.recipes.recipe_support import Chaos, History, connect, expire, make_root, proxied
from zkserver import client
from zkserver.client import errors as E
from zkserver.recipes._common import SessionLostError
from zkserver.recipes.lock import Lock, LockLostError, LockTimeout, revoke
from zkserver.recipes.multilock import MultiLock
from zkserver.recipes.semaphore import Semaphore

pytestmark = pytest.mark.anyio

WORKERS = 5


async def lock_worker(name: str, hosts: str, root: str, history: History, stats: Tally,
                      stop: anyio.Event) -> None:
    """Take the lock again and again; inside, increment /counter with a compare-and-set that
    can only fail if someone else wrote in between, i.e. if exclusion broke."""
    while not stop.is_set():
        try:
            async with connect(hosts, root, connect_timeout=3) as zk:
                lock = Lock(zk, "/lock", name)
                while not stop.is_set():
                    try:
                        async with lock.hold(timeout=5) as held:
                            history.enter(name, held.token)
                            try:
                                data, stat = await zk.get("/counter")
                                await anyio.sleep(0.005)
                                stats["attempted"] += 1
                                try:
                                    await zk.set("/counter", b"%d" % (int(data) + 1),
                                                 stat.version)
                                    stats["ok"] += 1
                                except E.BadVersionError:
                                    stats["badversion"] += 1
                            finally:
                                history.exit(name)
                    except (LockLostError, LockTimeout):
                        stats["lost"] += 1
                    except (E.ConnectionLossError, E.OperationTimeoutError):
                        stats["connloss"] += 1
        except E.SessionExpiredError:
            stats["expired"] += 1
        except E.ConnectionLossError:
            await anyio.sleep(0.2)


async def test_mutual_exclusion_under_faults(zks: Any, root: str) -> None:
    await check_exclusion(zks, root, 6.0)


@pytest.mark.slow
async def test_mutual_exclusion_soak(zks: Any, root: str) -> None:
    await check_exclusion(zks, root, 90.0)


async def check_exclusion(zks: Any, root: str, duration: float) -> None:
    await make_root(zks.hosts, root)
    async with connect(zks.hosts, root) as admin:
        await admin.create("/counter", b"0")
    history = History()
    stats: Tally = Tally()
    stop = anyio.Event()
    async with proxied(zks) as p0, proxied(zks) as p1, proxied(zks) as p2, \
            proxied(zks) as p3, proxied(zks) as p4:
        proxies = [p0, p1, p2, p3, p4]
        chaos = Chaos(proxies)
        async with anyio.create_task_group() as tasks:
            for i, p in enumerate(proxies):
                tasks.start_soon(lock_worker, f"w{i}", p.hosts, root, history, stats, stop)
            await chaos.run(duration)
            await anyio.sleep(1.0)
            stop.set()
    async with connect(zks.hosts, root) as admin:
        final = int((await admin.get("/counter")).data)
        leftovers = (await admin.get_children("/lock")).children
    assert history.violations == []
    assert stats["badversion"] == 0
    assert stats["ok"] <= final <= stats["attempted"], (final, stats)
    tokens = [token for _who, token in history.entries()]
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)
    assert stats["ok"] > 20, stats
    assert stats["lost"] + stats["expired"] > 0, (stats, chaos.log)
    assert leftovers == []


async def test_fencing_token_rejects_a_paused_holder(zks: Any, hosts: str, root: str) -> None:
    """A holder frozen past its session timeout still believes it holds the lock when it wakes;
    its fencing token is lower than the next holder's, so a fenced store refuses it."""
    async def fenced_write(zk: client.Client, token: int, value: bytes) -> bool:
        while True:
            data, stat = await zk.get("/store")
            if token < int(data.split(b":")[0]):
                return False
            try:
                await zk.set("/store", b"%d:%s" % (token, value), stat.version)
                return True
            except E.BadVersionError:
                continue

    async with connect(hosts) as admin:
        await admin.create("/store", b"0:")
    async with proxied(zks) as proxy, connect(proxy.hosts, root) as a, connect(hosts) as b:
        lock_a, lock_b = Lock(a, "/lock", "a"), Lock(b, "/lock", "b")
        assert await lock_a.acquire()
        token_a = lock_a.fencing_token
        assert token_a is not None
        proxy.freeze()  # a is "paused": its session expires while it thinks it holds the lock
        with anyio.fail_after(10):
            assert await lock_b.acquire()
        token_b = lock_b.fencing_token
        assert token_b is not None and token_b > token_a
        assert await fenced_write(b, token_b, b"from b")
        # a wakes up and writes with its stale token (the store is reached through b's
        # session here, as any client of the store would reach it): refused.
        assert not await fenced_write(b, token_a, b"from a")
        assert (await b.get("/store")).data == b"%d:from b" % token_b
        proxy.restore()
        await lock_b.release()


async def test_hold_is_cancelled_when_the_connection_drops(zks: Any, hosts: str,
                                                           root: str) -> None:
    async with proxied(zks) as proxy, connect(proxy.hosts, root) as zk:
        lock = Lock(zk, "/lock")
        reached = False
        with pytest.raises(LockLostError):
            async with lock.hold():
                proxy.cut()
                await anyio.sleep(5)
                reached = True
        assert not reached
        proxy.restore()
    async with connect(hosts) as other:
        with anyio.fail_after(5):
            while (await other.get_children("/lock")).children:
                await anyio.sleep(0.1)


@pytest.mark.parametrize("kind", ["lock", "semaphore", "multilock"])
async def test_plain_async_with_is_as_safe_as_hold(zks: Any, hosts: str, root: str,
                                                   kind: str) -> None:
    """`async with lock:` (and a semaphore's, a multi-lock's) is `hold()`: its body is
    cancelled when the connection drops, and the lock is released."""
    async with proxied(zks) as proxy, connect(proxy.hosts, root) as zk:
        held = {"lock": lambda: Lock(zk, "/lock"),
                "semaphore": lambda: Semaphore(zk, "/lock", max_leases=2),
                "multilock": lambda: MultiLock(zk, ["/lock", "/lock2"])}[kind]()
        reached = False
        with pytest.raises(SessionLostError):  # LockLostError, or LeaseLostError
            async with held:
                assert held.is_acquired
                proxy.cut()
                await anyio.sleep(5)
                reached = True
        assert not reached and not held.is_acquired
        proxy.restore()
    async with connect(hosts) as other:
        with anyio.fail_after(5):
            while (await other.get_children("/lock")).children:
                await anyio.sleep(0.1)


async def test_session_expiry_loses_the_lock(zks: Any, hosts: str, root: str) -> None:
    async with proxied(zks) as proxy, connect(proxy.hosts, root) as zk, \
            connect(hosts) as other:
        lock = Lock(zk, "/lock")
        with pytest.raises(LockLostError, match="EXPIRED"):
            async with lock.hold(suspended_is_lost=False):
                await expire(zk, proxy)
                await anyio.sleep(5)
        assert await Lock(other, "/lock").acquire(timeout=5)


async def test_revocation(hosts: str) -> None:
    async with connect(hosts) as a, connect(hosts) as b:
        holder = Lock(a, "/lock", "a")
        got_b = anyio.Event()

        async def take_b() -> None:
            lock = Lock(b, "/lock", "b")
            assert await lock.acquire(timeout=5)
            got_b.set()
            await lock.release()

        async with anyio.create_task_group() as tasks:
            with pytest.raises(LockLostError, match="revoked"):
                async with holder.hold(revocable=True):
                    tasks.start_soon(take_b)
                    await anyio.sleep(0.2)
                    assert await revoke(b, "/lock") is not None
                    await anyio.sleep(5)
            with anyio.fail_after(5):
                await got_b.wait()


async def test_cancelled_acquire_leaves_no_node(hosts: str) -> None:
    async with connect(hosts) as a, connect(hosts) as b:
        first = Lock(a, "/lock")
        assert await first.acquire()
        waiter = Lock(b, "/lock")
        with anyio.move_on_after(0.3):
            await waiter.acquire()
        assert not waiter.is_acquired
        assert len((await a.get_children("/lock")).children) == 1
        assert not await waiter.acquire(timeout=0.2)
        assert not await waiter.acquire(blocking=False)
        assert len((await a.get_children("/lock")).children) == 1
        await first.release()
        assert await waiter.acquire(blocking=False)
        with pytest.raises(RuntimeError):
            await waiter.acquire()
        assert await first.contenders() == [""]
        await waiter.release()


async def test_acquire_survives_a_lost_create_reply(zks: Any, hosts: str, root: str) -> None:
    """The create is applied but its reply is lost: the retry finds our node by its GUID
    instead of queueing a second one behind it."""
    async with proxied(zks) as proxy, connect(proxy.hosts, root, session_timeout=3.0) as zk:
        lock = Lock(zk, "/lock")
        await zk.ensure_path("/lock")
        proxy.drop_replies()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lock.acquire)
            await anyio.sleep(0.3)
            proxy.cut()
            proxy.restore()
        assert lock.is_acquired
        assert len((await zk.get_children("/lock")).children) == 1
        await lock.release()
        assert (await zk.get_children("/lock")).children == []


async def test_only_the_predecessor_is_watched(hosts: str) -> None:
    """Herd-free: with several waiters, each waits on its predecessor, and a release wakes
    exactly the next in line (the order of acquisition is the queue's order)."""
    async with connect(hosts) as zk:
        order: list[int] = []
        locks = [Lock(zk, "/lock", f"c{i}") for i in range(6)]
        assert await locks[0].acquire()

        async def contender(i: int) -> None:
            async with locks[i]:
                order.append(i)

        async with anyio.create_task_group() as tasks:
            for i in range(1, 6):
                tasks.start_soon(contender, i)
                with anyio.fail_after(10):  # in line before the next one starts
                    while len(await locks[0].contenders()) < i + 1:
                        await anyio.sleep(0.01)
            assert await locks[0].contenders() == [f"c{i}" for i in range(6)]
            await locks[0].release()
        assert order == [1, 2, 3, 4, 5]


@pytest.mark.compat(client="kazoo", feature="recipes")
@pytest.mark.parametrize("kazoo_first", [True, False])
async def test_excludes_kazoo_lock(any_server: Any, root: str, kazoo_first: bool) -> None:
    await make_root(any_server.hosts, root)
    history = History()
    stop = threading.Event()
    kz = kazoo_client(any_server.hosts + root)
    rounds = Tally()

    def kazoo_worker(name: str) -> None:
        lock = KazooLock(kz, "/lock", name)
        while not stop.is_set():
            with lock:
                history.enter(name)
                threading.Event().wait(0.01)
                history.exit(name)
                rounds[name] += 1

    async def our_worker(zk: client.Client, name: str) -> None:
        lock = Lock(zk, "/lock", name)
        while not stop.is_set():
            async with lock:
                history.enter(name)
                await anyio.sleep(0.01)
                history.exit(name)
                rounds[name] += 1

    try:
        async with connect(any_server.hosts, root) as z1, connect(any_server.hosts, root) as z2:
            async with anyio.create_task_group() as tasks:
                if kazoo_first:
                    tasks.start_soon(anyio.to_thread.run_sync, kazoo_worker, "k1")
                    await anyio.sleep(0.2)
                tasks.start_soon(our_worker, z1, "t1")
                tasks.start_soon(our_worker, z2, "t2")
                if not kazoo_first:
                    await anyio.sleep(0.2)
                    tasks.start_soon(anyio.to_thread.run_sync, kazoo_worker, "k1")
                tasks.start_soon(anyio.to_thread.run_sync, kazoo_worker, "k2")
                await anyio.sleep(1.5)
                stop.set()
    finally:
        stop.set()
        stop_kazoo(kz)
    assert history.violations == []
    assert all(rounds[w] > 0 for w in ("k1", "k2", "t1", "t2")), rounds
