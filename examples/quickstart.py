"""A tour of the ZooKeeper client, on Trio or asyncio: create, read, update, list, watch,
multi, delete.

    ZK_HOSTS=127.0.0.1:2181 python examples/quickstart.py [--backend trio|asyncio]

Works against zkserver or Apache ZooKeeper. Everything happens under a fresh node, which is
removed at the end.
"""

from __future__ import annotations

import os
import uuid

import anyio
from backend import run  # examples/backend.py: --backend trio|asyncio

from zkserver import client
from zkserver.client import CreateMode


async def main() -> None:
    hosts = os.environ.get("ZK_HOSTS", "127.0.0.1:2181")
    base = f"/quickstart-{uuid.uuid4().hex[:8]}"
    async with client.connect(hosts) as zk:
        print(f"connected to {zk.server_address}: session 0x{zk.session_id:x}, "
              f"timeout {zk.negotiated_timeout} ms, state {zk.state.value}")

        await zk.create(base)
        path = await zk.create(f"{base}/greeting", b"hello")
        print(f"created {path}")

        data, stat = await zk.get(path)
        print(f"read {path}: {data!r} (version {stat.version})")

        stat = await zk.set(path, b"hello again", version=stat.version)
        print(f"updated {path} to version {stat.version}")

        for i in range(3):
            await zk.create(f"{base}/item-", str(i).encode(),
                            mode=CreateMode.PERSISTENT_SEQUENTIAL)
        children, parent_stat = await zk.get_children(base)
        print(f"{base} has {parent_stat.numChildren} children: {sorted(children)}")

        # A one-time watch is an awaitable: set it with the read, await the change.
        _, _, watch = await zk.get(path, watch=True)
        async with anyio.create_task_group() as tasks:

            async def change_it() -> None:
                await zk.set(path, b"changed")

            tasks.start_soon(change_it)
            with anyio.fail_after(10):
                event = await watch
        print(f"watch fired: {event.type.name} on {event.path}")

        # A persistent recursive watch is an async iterator, removed when the block ends.
        async with zk.add_watch(base, recursive=True) as events:
            await zk.create(f"{base}/watched", b"")
            with anyio.fail_after(10):
                async for event in events:
                    print(f"recursive watch: {event.type.name} on {event.path}")
                    break

        # A multi: all of it or none of it.
        results = await (zk.transaction()
                         .check(path, 2)
                         .set_data(path, b"via multi")
                         .create(f"{base}/from-multi", b"")
                         .commit())
        print(f"multi committed {len(results)} ops: {[type(r).__name__ for r in results]}")
        try:
            await zk.transaction().create(f"{base}/never").delete(f"{base}/missing").commit()
        except client.NoNodeError as e:
            print(f"multi rolled back as a whole: {type(e).__name__} at op {e.index}")  # type: ignore[attr-defined]

        await zk.delete(base, recursive=True)
        print(f"deleted {base}; exists now: {await zk.exists(base)}")
    print(f"closed: state {zk.state.value}")


if __name__ == "__main__":
    run(main)
