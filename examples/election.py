"""Leader election: kill the leader, watch another candidate take over.

    ZK_HOSTS=127.0.0.1:2181 python examples/election.py [--backend trio|asyncio]

Three candidate processes join an election; the leader does "work" (prints a tick) for as long
as it leads. The main process watches who leads, kills the leader with SIGKILL (no goodbye to
ZooKeeper: its session simply stops), and waits for the survivors to elect a new leader, which
happens once the dead leader's session times out. Then it stops everyone and exits 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import anyio
from backend import run  # examples/backend.py: --backend trio|asyncio

from zkserver import client
from zkserver.recipes.election import Election

SESSION_TIMEOUT = 4.0  # the smallest a default server (tickTime=2000) grants


async def candidate(hosts: str, path: str, name: str) -> None:
    async def lead() -> None:
        print(f"{name}: elected, leading", flush=True)
        while True:
            print(f"{name}: tick", flush=True)
            await anyio.sleep(0.5)

    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tasks:
            async def stop_on_sigterm() -> None:
                async for _ in signals:
                    tasks.cancel_scope.cancel()  # leave cleanly: the session is closed

            tasks.start_soon(stop_on_sigterm)
            async with client.connect(hosts, session_timeout=SESSION_TIMEOUT) as zk:
                await Election(zk, path, name).run(lead, requeue=True)


async def main() -> int:
    hosts = os.environ.get("ZK_HOSTS", "127.0.0.1:2181")
    path = f"/example-election-{uuid.uuid4().hex[:8]}"
    procs = {f"candidate-{i}": subprocess.Popen(
        [sys.executable, __file__, *sys.argv[1:], "--candidate", path, f"candidate-{i}"])
        for i in range(3)}
    try:
        async with client.connect(hosts) as zk:
            election = Election(zk, path)

            async def leader_other_than(old: str | None) -> str:
                with anyio.fail_after(30):
                    while True:
                        leader = await election.leader()
                        if leader is not None and leader != old:
                            return leader
                        await anyio.sleep(0.1)

            first = await leader_other_than(None)
            print(f"main: {first} leads; contenders {await election.contenders()}")
            await anyio.sleep(1.0)
            print(f"main: killing {first} (SIGKILL)")
            killed_at = time.monotonic()
            procs[first].send_signal(signal.SIGKILL)
            second = await leader_other_than(first)
            print(f"main: {second} took over {time.monotonic() - killed_at:.1f}s later")
            await anyio.sleep(1.0)
            stop(procs)
            await zk.delete(path, recursive=True)
        return 0
    finally:
        stop(procs)


def stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        p.wait()


if __name__ == "__main__":
    if "--candidate" in sys.argv:
        i = sys.argv.index("--candidate")
        run(candidate, os.environ.get("ZK_HOSTS", "127.0.0.1:2181"), *sys.argv[i + 1:i + 3])
    else:
        sys.exit(run(main))
