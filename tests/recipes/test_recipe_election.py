"""Leader election and leader latch: one leader at a time under connection loss and session
expiry, takeover when the leader dies, and elections shared with kazoo's Election."""

from __future__ import annotations

import threading
from collections import Counter as Tally
from typing import Any

import anyio
import pytest
from kazoo.exceptions import CancelledError as KazooCancelled
from kazoo.recipe.election import Election as KazooElection
from support.kz import kazoo_client, stop_kazoo

from tests.recipes.recipe_support import Chaos, History, connect, make_root, proxied
from zkserver import client
from zkserver.client import errors as E
from zkserver.recipes.election import Election, LeadershipLostError
from zkserver.recipes.leader_latch import LatchLostError, LeaderLatch

pytestmark = pytest.mark.anyio


async def candidate(name: str, hosts: str, root: str, history: History, stats: Tally,
                    stop: anyio.Event) -> None:
    async def lead() -> None:
        history.enter(name)
        try:
            stats["terms"] += 1
            await anyio.sleep(0.15)
        finally:
            history.exit(name)

    while not stop.is_set():
        try:
            async with connect(hosts, root, connect_timeout=3) as zk:
                election = Election(zk, "/election", name)
                while not stop.is_set():
                    await election.run(lead, requeue=True)
        except (E.SessionExpiredError, LeadershipLostError):
            stats["expired"] += 1
        except (E.ConnectionLossError, E.OperationTimeoutError):
            await anyio.sleep(0.1)


async def test_one_leader_at_a_time_under_faults(zks: Any, root: str) -> None:
    await make_root(zks.hosts, root)
    history = History()
    stats: Tally = Tally()
    stop = anyio.Event()
    async with proxied(zks) as p0, proxied(zks) as p1, proxied(zks) as p2, proxied(zks) as p3:
        proxies = [p0, p1, p2, p3]
        chaos = Chaos(proxies, seed=11)
        async with anyio.create_task_group() as tasks:
            for i, p in enumerate(proxies):
                tasks.start_soon(candidate, f"c{i}", p.hosts, root, history, stats, stop)
            await chaos.run(5.0)
            await anyio.sleep(0.5)
            stop.set()
    assert history.violations == []
    leaders = {who for who, _ in history.entries()}
    assert len(leaders) >= 3, (leaders, chaos.log)
    assert stats["terms"] > 10, stats


async def test_leader_is_cancelled_and_another_takes_over(hosts: str) -> None:
    async with connect(hosts) as follower_zk:
        follower = Election(follower_zk, "/election", "follower")
        took_over = anyio.Event()

        async def follow() -> str:
            took_over.set()
            return "done"

        async with anyio.create_task_group() as tasks:
            leader_running = anyio.Event()

            async def leader() -> None:
                async with connect(hosts) as zk:
                    election = Election(zk, "/election", "leader")

                    async def lead() -> None:
                        leader_running.set()
                        await anyio.sleep_forever()

                    with anyio.move_on_after(0.5):  # the leader "dies": its session closes
                        await election.run(lead)

            tasks.start_soon(leader)
            await leader_running.wait()
            assert await follower.contenders() == ["leader"]
            with anyio.fail_after(5):
                assert await follower.run(follow) == "done"
        assert took_over.is_set()


async def test_leadership_lost_on_disconnect(zks: Any, root: str, hosts: str) -> None:
    async with proxied(zks) as proxy, connect(proxy.hosts, root) as zk:
        cancelled = False

        async def lead() -> None:
            nonlocal cancelled
            proxy.cut()
            try:
                await anyio.sleep(10)
            except anyio.get_cancelled_exc_class():
                cancelled = True
                raise

        try:
            await Election(zk, "/election", "x").run(lead)
            raise AssertionError("leadership survived a disconnect")
        except LeadershipLostError:
            pass
        assert cancelled
        proxy.restore()


@pytest.mark.compat(client="kazoo", feature="recipes")
async def test_shares_an_election_with_kazoo(any_server: Any, root: str) -> None:
    await make_root(any_server.hosts, root)
    history = History()
    terms: Tally = Tally()
    stop = threading.Event()
    kz = kazoo_client(any_server.hosts + root)
    kz2 = kazoo_client(any_server.hosts + root)
    kazoo_elections: dict[str, Any] = {}

    def stop_all() -> None:
        """A kazoo candidate waits for its turn in a blocking call: cancel it, or the task group
        (which waits for the threads) can wait forever on a candidate whose turn never comes."""
        stop.set()
        for election in kazoo_elections.values():
            election.cancel()

    def kazoo_candidate(kzc: Any, name: str) -> None:
        def lead() -> None:
            history.enter(name)
            threading.Event().wait(0.05)
            history.exit(name)
            terms[name] += 1

        election = kazoo_elections[name] = KazooElection(kzc, "/election", name)
        while not stop.is_set():
            try:
                election.run(lead)
            except KazooCancelled:
                return  # stopped while waiting for its turn (see `stop_all`)

    async def our_candidate(zk: client.Client, name: str) -> None:
        async def lead() -> None:
            history.enter(name)
            await anyio.sleep(0.05)
            history.exit(name)
            terms[name] += 1

        election = Election(zk, "/election", name)
        while not stop.is_set():
            await election.run(lead)

    try:
        async with connect(any_server.hosts, root) as z1, connect(any_server.hosts, root) as z2:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(anyio.to_thread.run_sync, kazoo_candidate, kz, "k1")
                tasks.start_soon(anyio.to_thread.run_sync, kazoo_candidate, kz2, "k2")
                tasks.start_soon(our_candidate, z1, "t1")
                tasks.start_soon(our_candidate, z2, "t2")
                await anyio.sleep(2.0)
                try:
                    assert len(await Election(z1, "/election").contenders()) >= 3
                finally:
                    stop_all()
    finally:
        stop_all()
        stop_kazoo(kz)
        stop_kazoo(kz2)
    assert history.violations == []
    assert all(terms[n] > 0 for n in ("k1", "k2", "t1", "t2")), terms


async def test_latch_single_leader_under_faults(zks: Any, root: str) -> None:
    """The leader's link is cut or frozen past its session timeout, again and again: another
    participant takes over each time, and no two latches ever say "leader" at once."""
    await make_root(zks.hosts, root)
    latches: dict[str, LeaderLatch] = {}
    violations: list[str] = []
    leaders_seen: list[str] = []
    stop = anyio.Event()

    async def participant(name: str, hosts: str) -> None:
        while not stop.is_set():
            try:
                async with connect(hosts, root, connect_timeout=3) as zk:
                    async with LeaderLatch(zk, "/latch", name) as latch:
                        latches[name] = latch
                        with anyio.CancelScope() as scope:
                            stopping.append(scope)
                            if stop.is_set():
                                # Reconnected after the stop was handed out: the loop below
                                # would wait for a leadership change nobody makes.
                                scope.cancel()
                            while True:
                                await latch.wait_leader()
                                leaders_seen.append(name)
                                await latch.wait_not_leader()
            except (E.SessionExpiredError, E.ConnectionLossError, E.OperationTimeoutError):
                await anyio.sleep(0.05)
            finally:
                latches.pop(name, None)

    async def monitor() -> None:
        while not stop.is_set():
            leading = [n for n, latch in latches.items() if latch.is_leader]
            if len(leading) > 1:
                violations.append(f"{leading} lead at once")
            await anyio.sleep(0.005)

    async def current_leader() -> str:
        with anyio.fail_after(10):
            while True:
                leading = [n for n, latch in latches.items() if latch.is_leader]
                if leading:
                    return leading[0]
                await anyio.sleep(0.02)

    stopping: list[anyio.CancelScope] = []
    async with proxied(zks) as p0, proxied(zks) as p1, proxied(zks) as p2:
        proxies = {"l0": p0, "l1": p1, "l2": p2}
        async with anyio.create_task_group() as tasks:
            for name, p in proxies.items():
                tasks.start_soon(participant, name, p.hosts)
            tasks.start_soon(monitor)
            for fault in ("cut", "freeze", "cut", "blip"):
                leader = await current_leader()
                proxy = proxies[leader]
                (proxy.freeze if fault == "freeze" else proxy.cut)()
                await anyio.sleep(0.1 if fault == "blip" else 2.6)
                proxy.cut()
                proxy.restore()
            await current_leader()
            stop.set()
            for scope in stopping:
                scope.cancel()
    assert violations == []
    assert len(set(leaders_seen)) >= 2, leaders_seen


async def test_latch_leading_is_cancelled_when_leadership_is_lost(zks: Any, root: str,
                                                                 hosts: str) -> None:
    async with proxied(zks) as proxy, connect(proxy.hosts, root) as zk:
        async with LeaderLatch(zk, "/latch", "x") as latch:
            reached = False
            with anyio.fail_after(10), pytest.raises(LatchLostError):
                async with latch.leading():
                    assert latch.is_leader
                    proxy.cut()
                    await anyio.sleep(5)
                    reached = True
            assert not reached and not latch.is_leader
            proxy.restore()


async def test_latch_hands_over_on_close(hosts: str) -> None:
    async with connect(hosts) as a, connect(hosts) as b:
        async with LeaderLatch(b, "/latch", "b") as second:
            with anyio.fail_after(5):
                await second.wait_leader()
            async with LeaderLatch(a, "/latch", "a") as first:
                with anyio.fail_after(5):
                    while len(await first.participants()) < 2:
                        await anyio.sleep(0.02)
                assert not first.is_leader and second.is_leader
                assert [p.id for p in await first.participants()] == ["b", "a"]
            with anyio.fail_after(5):
                await second.wait_leader()
            leader = await second.leader()
            assert leader is not None and leader.id == "b"
            # Our node deleted by someone else: the latch queues again.
            node = second.node
            assert node is not None
            await a.delete(node)
            with anyio.fail_after(5):
                while second.node in (None, node) or not second.is_leader:
                    await anyio.sleep(0.05)
