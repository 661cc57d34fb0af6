"""FIFO and priority queues (also with kazoo's Queue on the same node), and the queue with
acknowledgement under consumer crashes, connection loss and session expiry."""

from __future__ import annotations

import random
from collections import Counter as Tally
from typing import Any

import anyio
import pytest
from kazoo.recipe.queue import Queue as KazooQueue
from support.kz import kazoo_client, stop_kazoo

from tests.recipes.recipe_support import Chaos, connect, make_root, proxied
from zkserver.client import errors as E
from zkserver.recipes.ack_queue import AckQueue, ClaimLostError
from zkserver.recipes.queue import PriorityQueue, Queue

pytestmark = pytest.mark.anyio


async def test_fifo_order_and_priorities(hosts: str) -> None:
    async with connect(hosts) as zk:
        q = Queue(zk, "/q")
        for i in range(5):
            await q.put(b"%d" % i)
        await q.put_all([b"5", b"6"])
        assert await q.size() == 7
        assert [await q.get() for _ in range(7)] == [b"%d" % i for i in range(7)]
        assert await q.get_nowait() is None
        assert await q.get(timeout=0.1) is None

        pq = PriorityQueue(zk, "/pq")
        for item, prio in ((b"low", 500), (b"urgent", 1), (b"normal", 100), (b"urgent2", 1)):
            await pq.put(item, prio)
        assert [await pq.get() for _ in range(4)] == [b"urgent", b"urgent2", b"normal", b"low"]
        with pytest.raises(ValueError):
            await pq.put(b"x", 1000)


async def test_blocking_get_wakes_on_put(hosts: str) -> None:
    async with connect(hosts) as a, connect(hosts) as b:
        got: list[bytes | None] = []
        async with anyio.create_task_group() as tasks:
            async def consume() -> None:
                got.append(await Queue(a, "/q").get(timeout=5))

            tasks.start_soon(consume)
            await anyio.sleep(0.2)
            await Queue(b, "/q").put(b"hello")
        assert got == [b"hello"]


async def test_concurrent_consumers_take_each_item_once(hosts: str) -> None:
    async with connect(hosts) as producer, connect(hosts) as c1, connect(hosts) as c2:
        n = 120
        q = Queue(producer, "/q")
        for chunk in range(0, n, 20):
            await q.put_all([b"%d" % i for i in range(chunk, chunk + 20)])
        taken: list[bytes] = []

        async def consumer(zk: Any) -> None:
            queue = Queue(zk, "/q")
            while (item := await queue.get(timeout=0.5)) is not None:
                taken.append(item)

        async with anyio.create_task_group() as tasks:
            for zk in (c1, c2, c1, c2):
                tasks.start_soon(consumer, zk)
        assert sorted(taken, key=int) == [b"%d" % i for i in range(n)]


@pytest.mark.compat(client="kazoo", feature="recipes")
async def test_shares_the_queue_with_kazoo(any_server: Any, root: str) -> None:
    await make_root(any_server.hosts, root)
    kz = kazoo_client(any_server.hosts + root)
    try:
        async with connect(any_server.hosts, root) as zk:
            ours = PriorityQueue(zk, "/q")
            theirs = KazooQueue(kz, "/q")
            await anyio.to_thread.run_sync(lambda: theirs.put(b"k-normal"))
            await anyio.to_thread.run_sync(lambda: theirs.put(b"k-urgent", priority=5))
            await ours.put(b"t-urgent", 4)
            assert await ours.get() == b"t-urgent"
            assert await anyio.to_thread.run_sync(theirs.get) == b"k-urgent"
            await ours.put(b"t-late")
            assert await ours.get() == b"k-normal"
            assert await anyio.to_thread.run_sync(theirs.get) == b"t-late"
            assert await ours.size() == 0
    finally:
        stop_kazoo(kz)


class Crash(Exception):
    """A consumer "dies" holding an item: its client closes without acknowledging."""


async def test_ack_queue_processes_each_item_once_per_ack_under_faults(zks: Any,
                                                                      root: str) -> None:
    await make_root(zks.hosts, root)
    n = 60
    keys = [f"job{i}" for i in range(n)]
    acked: Tally = Tally()
    applied: Tally = Tally()      # effects, deduplicated by key as a consumer's store would
    processed: Tally = Tally()    # processing attempts (may repeat)
    stats: Tally = Tally()
    unknown: set[str] = set()     # acks interrupted by the end of their session
    rng = random.Random(3)
    done = anyio.Event()

    async def producer() -> None:
        async with connect(zks.hosts, root) as zk:
            q = AckQueue(zk, "/jobs")
            for key in keys:
                await q.put(key.encode(), key=key, priority=rng.choice((1, 100)))

    async def consumer(name: str, hosts: str) -> None:
        while not done.is_set():
            try:
                async with connect(hosts, root, connect_timeout=3) as zk:
                    q = AckQueue(zk, "/jobs", name)
                    while not done.is_set():
                        item = await q.take(timeout=0.3)
                        if item is None:
                            continue
                        if item.redelivered:
                            stats["redelivered"] += 1
                        if applied[item.key]:
                            stats["dropped-duplicate"] += 1  # handled before: just ack it
                        else:
                            processed[item.key] += 1
                            await anyio.sleep(0.005)
                            if rng.random() < 0.1:
                                stats["crash"] += 1
                                raise Crash
                            applied[item.key] += 1
                        try:
                            await q.ack(item)
                            acked[item.key] += 1
                        except ClaimLostError:
                            stats["claim-lost"] += 1
                        except BaseException:
                            unknown.add(item.key)  # the ack's outcome is unknown
                            raise
            except Crash:
                pass
            except (E.SessionExpiredError, E.ConnectionLossError, E.OperationTimeoutError):
                stats["session-lost"] += 1

    async with proxied(zks) as p0, proxied(zks) as p1, proxied(zks) as p2:
        proxies = [p0, p1, p2]
        async with anyio.create_task_group() as tasks:
            for i, p in enumerate(proxies):
                tasks.start_soon(consumer, f"c{i}", p.hosts)
            tasks.start_soon(producer)
            await Chaos(proxies, seed=9).run(5.0, pause=(0.4, 0.9))
            async with connect(zks.hosts, root) as zk:
                q = AckQueue(zk, "/jobs")
                with anyio.fail_after(40):
                    while len(applied) < n or await q.size() > 0:
                        await anyio.sleep(0.05)
                assert await q.in_flight() == 0
            done.set()
    # Every item was acknowledged once: by a consumer that knows it, or by one whose session
    # ended before it heard the answer (then nobody else acknowledged it).
    assert set(acked.values()) <= {1}
    assert set(acked) | unknown == set(keys)
    assert set(applied.values()) == {1} and len(applied) == n
    assert stats["crash"] > 0 and stats["redelivered"] > 0, stats


async def test_ack_queue_release_redelivers_and_put_is_idempotent(hosts: str) -> None:
    async with connect(hosts) as a, connect(hosts) as b:
        qa, qb = AckQueue(a, "/jobs", "a"), AckQueue(b, "/jobs", "b")
        await qa.put(b"payload", key="k1")
        first = await qa.take(timeout=1)
        assert first is not None and first.key == "k1" and first.deliveries == 1
        assert await qb.take(timeout=0.2) is None  # claimed by a
        await qa.release(first)
        again = await qb.take(timeout=1)
        assert again is not None and again.redelivered and again.deliveries == 2
        with pytest.raises(ClaimLostError):
            await qa.ack(first)  # a's claim is gone
        await qb.ack(again)
        await qb.ack(again)  # acknowledging twice is harmless: already gone
        assert await qa.size() == 0
        async with qa.processing(timeout=0.1) as nothing:
            assert nothing is None
        await qa.put(b"x", key="k2")
        with pytest.raises(RuntimeError):
            async with qa.processing(timeout=1) as item:
                assert item is not None
                raise RuntimeError("processing failed")
        async with qb.processing(timeout=1) as item:  # released, so b gets it
            assert item is not None and item.key == "k2" and item.redelivered
        assert await qa.size() == 0
        with pytest.raises(ValueError):
            await qa.put(b"x", key="bad/key")
