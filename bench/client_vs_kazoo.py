"""Pipelined throughput of the Trio client beside kazoo's, for the same work on the same server.

    python bench/client_vs_kazoo.py [--ops 20000] [--window 64] [--hosts HOST:PORT]

Without --hosts it starts a real Apache ZooKeeper (Debian's package) on a free loopback port.
Each workload keeps `window` requests outstanding on one connection: the Trio client with that
many tasks sharing it, kazoo with its `*_async` API and a sliding window of that size. Payloads
are 64 bytes on 64 nodes. A warm-up round runs first (the JVM compiles its hot paths), then
the best of `--rounds` is kept. Prints ops/s per client and our ratio to kazoo, and the client
process's CPU time per request (user + system, kazoo's threads included), which shows the
client's own cost even when the server is what limits throughput.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import client  # noqa: E402
from tests.support.realzk import RealZooKeeper, free_port  # noqa: E402

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
        async with trio.open_nursery() as nursery:
            for w in range(window):
                nursery.start_soon(worker, w)
        return per_task * window / (time.perf_counter() - start)


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


Row = tuple[str, float, float, float, float]


def run(hosts: str, ops: int, window: int, rounds: int) -> list[Row]:
    trio.run(setup, hosts)
    trio.run(ours, hosts, "get", ops, window)  # warm-up
    kazoo(hosts, "get", ops // 4, window)
    rows = []
    for op in ("get", "set"):
        a: list[tuple[float, float]] = []
        b: list[tuple[float, float]] = []
        for _ in range(rounds):  # interleaved, so drift in the server hits both alike
            a.append(measured(functools.partial(trio.run, ours, hosts, op, ops, window), ops))
            b.append(measured(functools.partial(kazoo, hosts, op, ops, window), ops))
        (ra, ca), (rb, cb) = max(a), max(b)
        rows.append((op, ra, rb, ca, cb))
    return rows


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
    print(f"{'workload':<10} {'trio client ops/s':>18} {'kazoo ops/s':>12} {'ratio':>7}"
          f" {'CPU us/op trio':>15} {'CPU us/op kazoo':>16}")
    for op, a, b, ca, cb in rows:
        name = "getData" if op == "get" else "setData"
        print(f"{name:<10} {a:>18,.0f} {b:>12,.0f} {a / b:>6.1f}x {ca:>15.0f} {cb:>16.0f}")


if __name__ == "__main__":
    main()
