"""A distributed lock guarding a shared counter that is updated the unsafe way.

    ZK_HOSTS=127.0.0.1:2181 python examples/lock.py [--backend trio|asyncio]

Three worker processes, each running two tasks with their own ZooKeeper session, add 1 to a
counter stored in a znode, ten times each, with a deliberately racy read-sleep-write (no
version check). Without the lock, updates would be lost; with it, the counter ends at exactly
60. Each critical section also shows its fencing token (the lock node's czxid), which grows
from one holder to the next. Exits 1 if the count is wrong.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import anyio
from backend import run  # examples/backend.py: --backend trio|asyncio

from zkserver import client
from zkserver.recipes.lock import Lock

PROCESSES, TASKS, ROUNDS = 3, 2, 10


async def worker(hosts: str, base: str, name: str) -> None:
    async with client.connect(hosts) as zk:
        lock = Lock(zk, f"{base}/lock", name)
        for _ in range(ROUNDS):
            async with lock.hold() as held:
                data, _stat = await zk.get(f"{base}/counter")
                await anyio.sleep(0.002)  # widen the race window
                await zk.set(f"{base}/counter", b"%d" % (int(data or b"0") + 1))
                print(f"{name}: counter {int(data or b'0') + 1} (fencing token {held.token})")


async def run_workers(hosts: str, base: str, process: str) -> None:
    async with anyio.create_task_group() as tasks:
        for t in range(TASKS):
            tasks.start_soon(worker, hosts, base, f"p{process}-t{t}")


async def main() -> int:
    hosts = os.environ.get("ZK_HOSTS", "127.0.0.1:2181")
    base = f"/example-lock-{uuid.uuid4().hex[:8]}"
    async with client.connect(hosts) as zk:
        await zk.create(f"{base}/counter", b"0", make_parents=True)
        procs = [subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--worker", base,
                                   str(i)])
                 for i in range(PROCESSES)]
        codes = await anyio.to_thread.run_sync(lambda: [p.wait() for p in procs])
        total = int((await zk.get(f"{base}/counter")).data or b"0")
        await zk.delete(base, recursive=True)
    expected = PROCESSES * TASKS * ROUNDS
    print(f"counter = {total}, expected {expected}; workers exited {codes}")
    return 0 if total == expected and codes == [0] * PROCESSES else 1


if __name__ == "__main__":
    if "--worker" in sys.argv:
        i = sys.argv.index("--worker")
        run(run_workers, os.environ.get("ZK_HOSTS", "127.0.0.1:2181"), *sys.argv[i + 1:i + 3])
    else:
        sys.exit(run(main))
