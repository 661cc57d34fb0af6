"""A work queue with acknowledgement: a consumer that dies loses nothing.

    ZK_HOSTS=127.0.0.1:2181 python examples/ack_queue.py [--backend trio|asyncio]

A producer enqueues 20 jobs, each with an idempotency key. Three consumers take jobs,
"process" them (record the key in a results table, which is where the dedupe happens) and
acknowledge them. One consumer crashes twice: once before processing a job, once after
processing but before acknowledging. Both jobs are delivered again to another consumer; the
second one is recognised by its key and only acknowledged. At the end every job has been
processed exactly once and the queue is empty; otherwise the program exits 1.
"""

from __future__ import annotations

import os
import sys
import uuid

import anyio
from backend import run  # examples/backend.py: --backend trio|asyncio

from zkserver import client
from zkserver.recipes.ack_queue import AckQueue

JOBS = 20


class Crash(Exception):
    pass


async def consumer(hosts: str, path: str, name: str, results: dict[str, str],
                   crash_plan: list[str], done: anyio.Event) -> None:
    while not done.is_set():
        try:
            async with client.connect(hosts) as zk:
                queue = AckQueue(zk, path, name)
                while not done.is_set():
                    item = await queue.take(timeout=0.2)
                    if item is None:
                        continue
                    note = " (redelivered)" if item.redelivered else ""
                    if crash_plan and crash_plan[0] == "before":
                        crash_plan.pop(0)
                        print(f"{name}: took {item.key}{note} and crashed before processing")
                        raise Crash
                    if item.key in results:
                        print(f"{name}: {item.key}{note} was already handled by "
                              f"{results[item.key]}: just acknowledging it")
                    else:
                        await anyio.sleep(0.05)  # the work
                        results[item.key] = name  # the job's effect, keyed for dedupe
                        print(f"{name}: processed {item.key}{note}")
                        if crash_plan and crash_plan[0] == "after":
                            crash_plan.pop(0)
                            print(f"{name}: crashed before acknowledging {item.key}")
                            raise Crash
                    await queue.ack(item)
        except Crash:
            # The crashed consumer's session ends, so its claims vanish; it restarts.
            await anyio.sleep(0.1)


async def main() -> int:
    hosts = os.environ.get("ZK_HOSTS", "127.0.0.1:2181")
    path = f"/example-jobs-{uuid.uuid4().hex[:8]}"
    results: dict[str, str] = {}
    done = anyio.Event()
    async with client.connect(hosts) as zk:
        queue = AckQueue(zk, path)
        for i in range(JOBS):
            await queue.put(b"resize image %d" % i, key=f"job-{i:02d}")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consumer, hosts, path, "alice", results, ["before", "after"],
                               done)
            tasks.start_soon(consumer, hosts, path, "bob", results, [], done)
            tasks.start_soon(consumer, hosts, path, "carol", results, [], done)
            with anyio.fail_after(30):
                while await queue.size() > 0:
                    await anyio.sleep(0.05)
            done.set()
        remaining = await queue.size()
        await zk.delete(path, recursive=True)
    expected = {f"job-{i:02d}" for i in range(JOBS)}
    print(f"processed {len(results)} of {JOBS} jobs, {remaining} left in the queue")
    return 0 if set(results) == expected and remaining == 0 else 1


if __name__ == "__main__":
    sys.exit(run(main))
