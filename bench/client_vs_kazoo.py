"""Pipelined throughput of our client under Trio and under asyncio, beside kazoo's and aiozk's,
for the same work on the same server in the same run.

    python bench/client_vs_kazoo.py [--ops 20000] [--window 64] [--hosts HOST:PORT]

Without --hosts it starts a real Apache ZooKeeper (the tests' oracle: 3.9.5 from Maven
Central, or Debian's with ZKSERVER_ORACLE=debian) on a free loopback port.
Each workload keeps `window` requests outstanding on one connection: our client (on AnyIO)
with that many tasks sharing it, once under `trio.run` and once under `asyncio.run`; aiozk
(PyPI `aiozk`, asyncio; skipped if not installed) with that many asyncio tasks; kazoo with its
`*_async` API and a sliding window of that size. Payloads are 64 bytes on 64 nodes. A warm-up
round runs first (the JVM compiles its hot paths), then the best of `--rounds` is kept, the
clients interleaved so drift in the server hits all alike. Prints ops/s per client and the
client process's CPU time per request (user + system, kazoo's threads included), which shows
the client's own cost even when the server is what limits throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import tempfile
import threading
import time
from collections.abc import Callable

import anyio
import trio

from tests.support.realzk import RealZooKeeper, free_port  # noqa: E402
from zkserver import client  # noqa: E402

NODES = 64
PAYLOAD = b"x" * 64
ROOT = "/bench-client-vs-kazoo"


def paths() -> list[str]:
    return [f"{ROOT}/n{i}" for i in range(NODES)]


async def ours(hosts: str, op: str, n: int, window: int) -> float:
    async with client.connect(hosts, max_outstanding=window) as zk:
        nodes = paths()
        per_task = n // window

        async def worker(w: int) -> None:
            for k in range(per_task):
                path = nodes[(w + k) % NODES]
                if op == "get":
                    await zk.get(path)
                else:
                    await zk.set(path, PAYLOAD)

        start = time.perf_counter()
        async with anyio.create_task_group() as tasks:
            for w in range(window):
                tasks.start_soon(worker, w)
        return per_task * window / (time.perf_counter() - start)


def ours_trio(hosts: str, op: str, n: int, window: int) -> float:
    return trio.run(ours, hosts, op, n, window)


def ours_asyncio(hosts: str, op: str, n: int, window: int) -> float:
    return asyncio.run(ours(hosts, op, n, window))


def aiozk_available() -> bool:
    try:
        import aiozk  # noqa: F401
    except ImportError:
        return False
    return True


async def _aiozk(hosts: str, op: str, n: int, window: int) -> float:
    import aiozk

    zk = aiozk.ZKClient(hosts)
    await zk.start()
    try:
        nodes = paths()
        per_task = n // window

        async def worker(w: int) -> None:
            for k in range(per_task):
                path = nodes[(w + k) % NODES]
                if op == "get":
                    await zk.get_data(path)
                else:
                    await zk.set_data(path, PAYLOAD, force=True)

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(window)))
        return per_task * window / (time.perf_counter() - start)
    finally:
        await zk.close()


def aiozk(hosts: str, op: str, n: int, window: int) -> float:
    return asyncio.run(_aiozk(hosts, op, n, window))


def kazoo(hosts: str, op: str, n: int, window: int) -> float:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=hosts)
    zk.start()
    try:
        nodes = paths()
        slots = threading.BoundedSemaphore(window)
        errors: list[BaseException] = []

        def done(result: object) -> None:
            try:
                result.get_nowait()  # type: ignore[attr-defined]
            except BaseException as e:  # noqa: BLE001 (report whatever kazoo raised)
                errors.append(e)
            slots.release()

        call: Callable[[str], object] = ((lambda p: zk.get_async(p)) if op == "get"
                                         else (lambda p: zk.set_async(p, PAYLOAD)))
        total = (n // window) * window
        start = time.perf_counter()
        for i in range(total):
            slots.acquire()
            call(nodes[i % NODES]).rawlink(done)  # type: ignore[attr-defined]
        for _ in range(window):
            slots.acquire()
        elapsed = time.perf_counter() - start
        if errors:
            raise errors[0]
        return total / elapsed
    finally:
        zk.stop()
        zk.close()


async def setup(hosts: str) -> None:
    async with client.connect(hosts) as zk:
        await zk.ensure_path(ROOT)
        for p in paths():
            try:
                await zk.create(p, PAYLOAD)
            except client.NodeExistsError:
                pass


def measured(fn: Callable[[], float], ops: int) -> tuple[float, float]:
    """(ops/s, CPU microseconds per op) of one run."""
    before = os.times()
    rate = fn()
    after = os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    return rate, cpu / ops * 1e6


CLIENTS: dict[str, Callable[[str, str, int, int], float]] = {
    "ours/trio": ours_trio, "ours/asyncio": ours_asyncio, "aiozk": aiozk, "kazoo": kazoo}


def run(hosts: str, ops: int, window: int, rounds: int,
        ) -> dict[str, dict[str, tuple[float, float]]]:
    """{workload: {client: (best ops/s, CPU us/op of that run)}}."""
    clients = {k: v for k, v in CLIENTS.items() if k != "aiozk" or aiozk_available()}
    trio.run(setup, hosts)
    for fn in clients.values():  # warm-up
        fn(hosts, "get", ops // 4, window)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for op in ("get", "set"):
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in clients}
        for _ in range(rounds):  # interleaved, so drift in the server hits all alike
            for name, fn in clients.items():
                runs[name].append(measured(functools.partial(fn, hosts, op, ops, window), ops))
        results[op] = {name: max(r) for name, r in runs.items()}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=20000, help="requests per workload")
    ap.add_argument("--window", type=int, default=64, help="requests outstanding at once")
    ap.add_argument("--rounds", type=int, default=3, help="runs per workload (best is kept)")
    ap.add_argument("--hosts", help="a running server (default: start a real ZooKeeper)")
    args = ap.parse_args()
    if args.hosts:
        rows = run(args.hosts, args.ops, args.window, args.rounds)
        where = args.hosts
    else:
        with tempfile.TemporaryDirectory() as d, RealZooKeeper(d, free_port()) as zk:
            rows = run(zk.hosts, args.ops, args.window, args.rounds)
        where = "Apache ZooKeeper 3.8 (local, standalone)"
    print(f"{args.ops} requests per workload, {args.window} outstanding, one connection; "
          f"server: {where}; best of {args.rounds}")
    names = list(next(iter(rows.values())))
    if "aiozk" not in names:
        print("(aiozk is not installed: pip install aiozk to compare it too)")
    print(f"{'workload':<10}" + "".join(f" {n + ' ops/s':>18}" for n in names)
          + "".join(f" {n + ' us/op':>18}" for n in names))
    for op, by_client in rows.items():
        label = "getData" if op == "get" else "setData"
        print(f"{label:<10}" + "".join(f" {by_client[n][0]:>18,.0f}" for n in names)
              + "".join(f" {by_client[n][1]:>18.0f}" for n in names))

if __name__ == "__main__":
    main()
