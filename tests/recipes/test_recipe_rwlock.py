"""Read/write lock, semaphore and multi-lock: their safety properties from recorded histories,
and the read/write lock sharing a path with kazoo's ReadLock/WriteLock."""

from __future__ import annotations

import threading
from collections import Counter as Tally
from typing import Any

import anyio
import pytest
from kazoo.recipe.lock import ReadLock as KazooReadLock
from kazoo.recipe.lock import WriteLock as KazooWriteLock
from support.kz import kazoo_client, stop_kazoo

from tests.recipes.recipe_support import History, connect, make_root
from zkserver import client
from zkserver.client import errors as E
from zkserver.recipes.lock import Lock
from zkserver.recipes.multilock import MultiLock
from zkserver.recipes.rwlock import ReadLock, ReadWriteLock, WriteLock
from zkserver.recipes.semaphore import Semaphore

pytestmark = pytest.mark.anyio


class RWHistory:
    """Readers may overlap readers; a writer overlaps nobody."""

    def __init__(self) -> None:
        self.readers: set[str] = set()
        self.writers: set[str] = set()
        self.violations: list[str] = []
        self.max_readers = 0
        self._lock = threading.Lock()

    def enter(self, who: str, write: bool) -> None:
        with self._lock:
            if self.writers or (write and self.readers):
                self.violations.append(f"{who} ({'w' if write else 'r'}) entered with "
                                       f"readers {self.readers} writers {self.writers}")
            (self.writers if write else self.readers).add(who)
            self.max_readers = max(self.max_readers, len(self.readers))

    def exit(self, who: str, write: bool) -> None:
        with self._lock:
            (self.writers if write else self.readers).discard(who)


async def test_readers_share_writers_exclude(hosts: str) -> None:
    history = RWHistory()
    rounds: Tally = Tally()
    stop = anyio.Event()

    async def worker(zk: client.Client, name: str, write: bool) -> None:
        lock = (WriteLock if write else ReadLock)(zk, "/rw", name)
        while not stop.is_set():
            async with lock.hold():
                history.enter(name, write)
                await anyio.sleep(0.02)
                history.exit(name, write)
                rounds[name] += 1

    async with connect(hosts) as z1, connect(hosts) as z2, connect(hosts) as z3:
        async with anyio.create_task_group() as tasks:
            for i, zk in enumerate((z1, z2, z3)):
                tasks.start_soon(worker, zk, f"r{i}", False)
                tasks.start_soon(worker, zk, f"r{i}b", False)
            tasks.start_soon(worker, z1, "w1", True)
            tasks.start_soon(worker, z2, "w2", True)
            await anyio.sleep(2.0)
            stop.set()
    assert history.violations == []
    assert history.max_readers > 1
    assert rounds["w1"] > 0 and rounds["w2"] > 0, rounds


async def test_a_waiting_writer_blocks_later_readers(hosts: str) -> None:
    async with connect(hosts) as zk:
        rw = ReadWriteLock(zk, "/rw", "a")
        assert await rw.read_lock.acquire()
        writer = WriteLock(zk, "/rw", "w")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(writer.acquire)
            await anyio.sleep(0.2)
            late_reader = ReadLock(zk, "/rw", "late")
            assert not await late_reader.acquire(timeout=0.3)
            await rw.read_lock.release()
        assert writer.is_acquired
        await writer.release()
        assert await late_reader.acquire(timeout=2)
        await late_reader.release()


@pytest.mark.compat(client="kazoo", feature="recipes")
async def test_interoperates_with_kazoo_read_write_locks(any_server: Any, root: str) -> None:
    await make_root(any_server.hosts, root)
    history = RWHistory()
    rounds: Tally = Tally()
    stop = threading.Event()
    kz = kazoo_client(any_server.hosts + root)

    def kazoo_worker(name: str, write: bool) -> None:
        lock = (KazooWriteLock if write else KazooReadLock)(kz, "/rw", name)
        while not stop.is_set():
            with lock:
                history.enter(name, write)
                threading.Event().wait(0.02)
                history.exit(name, write)
                rounds[name] += 1

    async def our_worker(zk: client.Client, name: str, write: bool) -> None:
        lock = (WriteLock if write else ReadLock)(zk, "/rw", name)
        while not stop.is_set():
            async with lock:
                history.enter(name, write)
                await anyio.sleep(0.02)
                history.exit(name, write)
                rounds[name] += 1

    try:
        async with connect(any_server.hosts, root) as zk:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(anyio.to_thread.run_sync, kazoo_worker, "kw", True)
                tasks.start_soon(anyio.to_thread.run_sync, kazoo_worker, "kr", False)
                tasks.start_soon(our_worker, zk, "tw", True)
                tasks.start_soon(our_worker, zk, "tr1", False)
                tasks.start_soon(our_worker, zk, "tr2", False)
                await anyio.sleep(2.0)
                stop.set()
    finally:
        stop.set()
        stop_kazoo(kz)
    assert history.violations == []
    assert all(rounds[w] > 0 for w in ("kw", "kr", "tw", "tr1", "tr2")), rounds
    assert history.max_readers >= 2


async def test_semaphore_bounds_holders(hosts: str) -> None:
    history = History()
    stop = anyio.Event()
    rounds: Tally = Tally()

    async def worker(zk: client.Client, name: str) -> None:
        sem = Semaphore(zk, "/sem", name, max_leases=2)
        while not stop.is_set():
            async with sem.hold():
                history.enter(name, limit=2)
                await anyio.sleep(0.1)  # long enough to overlap however slow acquiring is
                history.exit(name)
                rounds[name] += 1

    async with connect(hosts) as z1, connect(hosts) as z2:
        async with anyio.create_task_group() as tasks:
            for i in range(6):
                tasks.start_soon(worker, (z1, z2)[i % 2], f"s{i}")
            await anyio.sleep(2.0)
            stop.set()
        assert history.violations == []
        assert history.max_concurrent == 2
        assert len(rounds) == 6
        assert await Semaphore(z1, "/sem", max_leases=2).lease_holders() == []
        try:
            await Semaphore(z1, "/sem", max_leases=3).acquire()
            raise AssertionError("a different limit was accepted")
        except ValueError:
            pass


async def test_semaphore_lease_frees_when_holder_session_ends(hosts: str) -> None:
    async with connect(hosts) as waiter:
        async with connect(hosts) as holder:
            assert await Semaphore(holder, "/sem", "h", max_leases=1).acquire()
            assert not await Semaphore(waiter, "/sem", max_leases=1).acquire(timeout=0.2)
        sem = Semaphore(waiter, "/sem", "w", max_leases=1)
        assert await sem.acquire(timeout=3)
        assert await sem.lease_holders() == ["w"]
        await sem.release()


async def test_multilock_all_or_nothing(hosts: str) -> None:
    async with connect(hosts) as a, connect(hosts) as b:
        blocker = Lock(b, "/locks/y")
        assert await blocker.acquire()
        multi = MultiLock(a, ["/locks/y", "/locks/x"])
        assert not await multi.acquire(timeout=0.3)
        assert not multi.is_acquired
        assert (await a.get_children("/locks/x")).children == []
        await blocker.release()
        async with multi.hold() as helds:
            assert [h.lock.path for h in helds] == ["/locks/x", "/locks/y"]
            assert not await Lock(b, "/locks/x").acquire(blocking=False)
        assert (await a.get_children("/locks/x")).children == []

        history = History()

        async def crosser(zk: client.Client, name: str, paths: list[str]) -> None:
            for _ in range(5):
                async with MultiLock(zk, paths, name):
                    history.enter(name)
                    await anyio.sleep(0.01)
                    history.exit(name)

        # Opposite orders cannot deadlock: locks are always taken in path order.
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(crosser, a, "ab", ["/locks/p", "/locks/q"])
                tasks.start_soon(crosser, b, "ba", ["/locks/q", "/locks/p"])
        assert history.violations == []


async def test_lock_survives_parent_deletion(hosts: str) -> None:
    """Recipes recreate missing parents (they may be containers, or deleted by hand)."""
    async with connect(hosts) as zk:
        lock = Lock(zk, "/gone/lock")
        async with lock:
            pass
        await zk.delete("/gone", recursive=True)
        async with lock:
            assert lock.is_acquired
        try:
            await zk.delete("/gone/lock")
        except E.NotEmptyError:
            raise AssertionError("a node was left behind") from None
