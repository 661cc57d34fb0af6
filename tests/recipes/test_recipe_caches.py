"""Node and tree caches on persistent watches, configuration publish/subscribe, and two-phase
commit."""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest

from tests.recipes.recipe_support import connect, proxied
from zkserver import client
from zkserver.recipes.config import ConfigValue, Version
from zkserver.recipes.node_cache import NodeCache
from zkserver.recipes.tree_cache import TreeCache, TreeEventType
from zkserver.recipes.two_phase_commit import Coordinator, Participant, Transaction

pytestmark = pytest.mark.anyio


async def tree_of(zk: client.Client, path: str) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}

    async def walk(p: str) -> None:
        out[p] = (await zk.get(p)).data
        for child in (await zk.get_children(p)).children:
            await walk(f"{p.rstrip('/')}/{child}")

    await walk(path)
    return out


async def test_node_cache_follows_one_node(zks: Any, root: str, hosts: str) -> None:
    async with proxied(zks) as proxy, connect(proxy.hosts, root, session_timeout=4.0) as zk, \
            connect(hosts) as writer:
        async with NodeCache(zk, "/flag") as cache:
            await cache.initialized.wait()
            assert cache.node is None
            await writer.create("/flag", b"1")
            with anyio.fail_after(5):
                await cache.wait_for(lambda n: n is not None and n.data == b"1")
            await writer.set("/flag", b"2")
            with anyio.fail_after(5):
                await cache.wait_for(lambda n: n is not None and n.data == b"2")
            proxy.cut()  # changes while disconnected are not replayed: the cache re-reads
            await writer.set("/flag", b"3")
            await anyio.sleep(0.3)
            proxy.restore()
            with anyio.fail_after(5):
                await cache.wait_for(lambda n: n is not None and n.data == b"3")
            await writer.delete("/flag")
            with anyio.fail_after(5):
                await cache.wait_for(lambda n: n is None)


async def test_tree_cache_converges_under_random_changes(zks: Any, root: str,
                                                         hosts: str) -> None:
    rng = random.Random(4)
    async with proxied(zks) as proxy, connect(proxy.hosts, root, session_timeout=4.0) as zk, \
            connect(hosts) as writer:
        await writer.create("/tree")
        async with TreeCache(zk, "/tree") as cache:
            await cache.initialized.wait()
            added: list[str] = []
            async with cache.listen() as events:
                paths = ["/tree"]
                for step in range(150):
                    if step == 60:
                        proxy.cut()
                    if step == 90:
                        proxy.restore()
                    op = rng.random()
                    if op < 0.5 or len(paths) < 3:
                        parent = rng.choice(paths)
                        path = f"{parent}/n{step}"
                        await writer.create(path, b"%d" % step)
                        paths.append(path)
                    elif op < 0.8:
                        await writer.set(rng.choice(paths), b"v%d" % step)
                    else:
                        victim = rng.choice(paths[1:])
                        await writer.delete(victim, recursive=True)
                        paths = [p for p in paths if p != victim and
                                 not p.startswith(victim + "/")]
                expected = await tree_of(writer, "/tree")
                with anyio.fail_after(10):
                    await cache.wait_for(lambda c: c.snapshot() == expected)
                while True:
                    with anyio.move_on_after(0.2):
                        event = await events.receive()
                        if event.type == TreeEventType.NODE_ADDED:
                            assert event.node is not None
                            added.append(event.node.path)
                        continue
                    break
            assert added
            assert cache.children("/tree") == sorted(
                p.rsplit("/", 1)[1] for p in expected if p.count("/") == 2)
            assert cache.get("/tree") is not None and cache.get("/nope") is None


async def test_tree_cache_depth_limit(hosts: str) -> None:
    async with connect(hosts) as zk:
        await zk.create("/d/a/b/c", make_parents=True)
        async with TreeCache(zk, "/d", max_depth=1) as cache:
            await cache.initialized.wait()
            assert set(cache.snapshot()) == {"/d", "/d/a"}
            await zk.create("/d/x")
            await zk.create("/d/a/y")
            with anyio.fail_after(5):
                await cache.wait_for(lambda c: "/d/x" in c.nodes)
            assert "/d/a/y" not in cache.nodes


async def test_config_subscribers_see_every_version(hosts: str) -> None:
    async with connect(hosts) as publisher_zk, connect(hosts) as s1, connect(hosts) as s2:
        value = ConfigValue(publisher_zk, "/config", keep=1000)
        assert await value.current() is None
        seen: dict[str, list[Version]] = {"s1": [], "s2": []}
        n = 40

        async def subscriber(name: str, zk: client.Client) -> None:
            async for version in ConfigValue(zk, "/config").versions():
                seen[name].append(version)
                if version.number == n:
                    return

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(subscriber, "s1", s1)
            tasks.start_soon(subscriber, "s2", s2)
            await anyio.sleep(0.2)
            publishers = [ConfigValue(z, "/config") for z in (publisher_zk, s1)]
            for i in range(n):  # as fast as possible, from two publishers
                await publishers[i % 2].publish(b"config %d" % (i + 1))
        for versions in seen.values():
            assert [v.number for v in versions] == list(range(1, n + 1))
            assert all(v.data == b"config %d" % v.number and v.missed == 0 for v in versions)
        current = await value.current()
        assert current is not None and current.number == n


async def test_config_slow_subscriber_is_told_what_it_missed(hosts: str) -> None:
    async with connect(hosts) as zk:
        value = ConfigValue(zk, "/config", keep=3)
        await value.publish(b"v1")
        versions = value.versions()
        first = await versions.__anext__()
        assert (first.number, first.data) == (1, b"v1")
        for i in range(2, 10):
            await value.publish(b"v%d" % i)
        nxt = await versions.__anext__()
        assert nxt.number == 7 and nxt.missed == 5  # 2..6 were trimmed before it looked
        assert [(await versions.__anext__()).number for _ in range(2)] == [8, 9]
        await versions.aclose()
        assert len((await zk.get_children("/config")).children) == 3


@pytest.mark.parametrize("votes", [("yes", "yes", "yes"), ("yes", "no", "yes")])
async def test_two_phase_commit(hosts: str, votes: tuple[str, ...]) -> None:
    applied: dict[str, str] = {}
    async with connect(hosts) as coordinator_zk, connect(hosts) as pz:
        async def site(name: str, vote: str) -> None:
            async def prepare(tx: Transaction) -> bool:
                return vote == "yes"

            async def commit(tx: Transaction) -> None:
                applied[name] = "commit:" + tx.payload.decode()

            async def abort(tx: Transaction) -> None:
                applied[name] = "abort"

            await Participant(pz, "/2pc", name).serve(prepare, commit, abort)

        names = [f"site{i}" for i in range(len(votes))]
        async with anyio.create_task_group() as tasks:
            for name, vote in zip(names, votes, strict=True):
                tasks.start_soon(site, name, vote)
            outcome = await Coordinator(coordinator_zk, "/2pc").run(b"set x=1", names,
                                                                    timeout=5)
            tasks.cancel_scope.cancel()
        committed = all(v == "yes" for v in votes)
        assert outcome.committed == committed
        expected = "commit:set x=1" if committed else "abort"
        assert applied == {name: expected for name in names}
        assert (await coordinator_zk.get_children("/2pc")).children == []  # cleaned up


async def test_two_phase_commit_times_out_and_a_late_site_resumes(hosts: str) -> None:
    async with connect(hosts) as zk, connect(hosts) as pz:
        outcome = await Coordinator(zk, "/2pc").run(b"p", ["a", "b"], timeout=0.5,
                                                    txid="tx1", cleanup_timeout=None)
        assert not outcome.committed and outcome.votes == {"a": None, "b": None}
        # Site a comes up late: it finds the transaction, sees the decision, applies it.
        participant = Participant(pz, "/2pc", "a")
        async for tx in participant.transactions():
            assert tx.txid == "tx1" and tx.vote is None
            await tx.cast(True)  # too late to change anything
            assert await tx.outcome() is False
            await tx.done()
            break
        assert await zk.exists("/2pc/tx1/done/a") is not None
