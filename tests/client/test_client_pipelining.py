"""Many tasks, one connection: pipelined requests answered in order, with back-pressure."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from zkserver import client
from zkserver.client import CreateMode

pytestmark = pytest.mark.anyio


async def test_many_tasks_many_requests(zk: client.Client) -> None:
    await zk.create("/p")
    n_tasks, per_task = 20, 50

    async def worker(i: int) -> None:
        path = f"/p/w{i}"
        await zk.create(path, b"0")
        for k in range(1, per_task):
            stat = await zk.set(path, str(k).encode(), version=k - 1)
            assert stat.version == k
        assert (await zk.get(path)).data == str(per_task - 1).encode()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tasks:
            for i in range(n_tasks):
                tasks.start_soon(worker, i)
    assert len((await zk.get_children("/p")).children) == n_tasks


async def test_replies_keep_submission_order(zk: client.Client) -> None:
    """Sequential creates issued back to back from many tasks get increasing suffixes in the
    order they were submitted, and each caller gets its own reply."""
    await zk.create("/seq")
    order: list[int] = []
    got: dict[int, str] = {}

    async def one(i: int, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        order.append(i)
        task_status.started()
        got[i] = await zk.create("/seq/n-", str(i).encode(),
                                 mode=CreateMode.PERSISTENT_SEQUENTIAL)

    async with anyio.create_task_group() as tasks:
        for i in range(200):
            await tasks.start(one, i)
    for i, path in got.items():
        assert (await zk.get(path)).data == str(i).encode()
    by_suffix = sorted(got, key=lambda i: got[i])
    assert by_suffix == order


async def test_back_pressure_bounds_outstanding_requests(server: Any, root: str) -> None:
    async with client.connect(server.hosts, max_outstanding=8) as zk:
        peak = 0
        done = 0

        async def reader() -> None:
            nonlocal peak, done
            for _ in range(25):
                await zk.exists("/")
                conn = zk._conn
                assert conn is not None
                peak = max(peak, len(conn.pending))
            done += 1

        async def sampler() -> None:
            nonlocal peak
            while done < 40:
                conn = zk._conn
                if conn is not None:
                    peak = max(peak, len(conn.pending))
                await anyio.sleep(0)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(sampler)
                for _ in range(40):
                    tasks.start_soon(reader)
        assert 1 < peak <= 8


async def test_cancelled_caller_does_not_break_the_pipeline(zk: client.Client) -> None:
    await zk.create("/c", b"x")
    for _ in range(20):
        with anyio.move_on_after(0):
            await zk.get("/c")
    with anyio.CancelScope() as scope:
        scope.cancel()
        await zk.get("/c")
    assert (await zk.get("/c")).data == b"x"
    assert zk.state == client.State.CONNECTED


@pytest.mark.compat(client="zkserver.client", feature="multi")
async def test_multi_transaction(zk: client.Client) -> None:
    await zk.create("/m", b"0")
    async with zk.transaction() as txn:
        txn.create("/m/a", b"a")
        txn.create("/m/s-", mode=CreateMode.PERSISTENT_SEQUENTIAL)
        txn.set_data("/m", b"1", version=0)
        txn.check("/m", 1)
    created, seq, setres, checked = txn.results
    assert created == client.Created("/m/a", None)
    assert seq.path == "/m/s-0000000001"
    assert setres.path == "/m" and setres.stat.version == 1
    assert checked == client.Checked("/m")
    txn2 = zk.transaction().delete("/m/a").delete(seq.path)
    results = await txn2.commit()
    assert results == [client.Deleted("/m/a"), client.Deleted(seq.path)]
    assert (await zk.get_children("/m")).children == []


@pytest.mark.compat(client="zkserver.client", feature="multi")
async def test_multi_failure_is_atomic(zk: client.Client) -> None:
    await zk.create("/f", b"0")
    txn = zk.transaction().create("/f/new").set_data("/f", b"1", version=7).delete("/f/none")
    with pytest.raises(client.BadVersionError) as info:
        await txn.commit()
    err = info.value
    assert err.index == 1  # type: ignore[attr-defined]
    assert [type(r) for r in err.results] == [  # type: ignore[attr-defined]
        client.RolledBackError, client.BadVersionError, client.RuntimeInconsistencyError]
    assert await zk.exists("/f/new") is None
    assert (await zk.get("/f")).data == b"0"


async def test_multi_with_container_and_ttl(zk: client.Client) -> None:
    results = await (zk.transaction()
                     .create("/cont", mode=CreateMode.CONTAINER)
                     .create("/ttl", mode=CreateMode.PERSISTENT_WITH_TTL, ttl=30_000)
                     .commit())
    assert [r.path for r in results] == ["/cont", "/ttl"]
    assert all(r.stat is not None for r in results)


async def test_empty_transaction(zk: client.Client) -> None:
    assert await zk.transaction().commit() == []


async def test_multi_read(zk: client.Client) -> None:
    await zk.create("/r", b"data")
    await zk.create("/r/kid")
    results = await zk.multi_read([client.GetDataOp("/r"), client.GetChildrenOp("/r"),
                                   client.GetDataOp("/missing")])
    data, children, missing = results
    assert isinstance(data, client.NodeData) and data.data == b"data"
    assert data.stat == await zk.exists("/r")
    assert isinstance(children, client.Children) and children.children == ["kid"]
    assert isinstance(missing, client.NoNodeError)


async def test_a_cancelled_caller_sends_nothing(zk: client.Client) -> None:
    """Code already cancelled (say, because the lock it held was lost) must not get a write out
    with its last breath."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        await zk.create("/never", b"")
    assert scope.cancelled_caught
    assert await zk.exists("/never") is None
