"""Service registry and discovery: providers come and go, a consumer always sees the live set.

    ZK_HOSTS=127.0.0.1:2181 python examples/service_registry.py [--backend trio|asyncio]

Providers register an "api" instance (Curator's layout and JSON, so Java services using
curator-x-discovery would see them too), and leave again one by one. A consumer keeps a
watch-backed `ServiceCache`, prints the live set each time it changes, and picks instances
round-robin. At each step the program checks that the cache converged to exactly the
providers that are running; it exits 1 if it did not.
"""

from __future__ import annotations

import os
import sys
import uuid

import anyio
import anyio.abc
from backend import run  # examples/backend.py: --backend trio|asyncio

from zkserver import client
from zkserver.recipes.service_discovery import (
    RoundRobinStrategy,
    ServiceCache,
    ServiceDiscovery,
    ServiceInstance,
    ServiceProvider,
)
from zkserver.recipes.session import Session


async def provider(hosts: str, base: str, instance_id: str, port: int, stop: anyio.Event,
                   task_status: anyio.abc.TaskStatus[None]) -> None:
    # A Session re-opens the session (and re-registers) should it ever expire. Leaving the
    # blocks unregisters the instance and closes the session.
    async with Session(hosts) as session, ServiceDiscovery(session, base) as discovery:
        await discovery.register(ServiceInstance(
            name="api", id=instance_id, address="127.0.0.1", port=port,
            payload={"version": "1.0"}, uri_spec="{scheme}://{address}:{port}/v1"))
        task_status.started()
        await stop.wait()


async def main() -> int:
    hosts = os.environ.get("ZK_HOSTS", "127.0.0.1:2181")
    base = f"/example-services-{uuid.uuid4().hex[:8]}"
    live: set[str] = set()
    ok = True
    async with client.connect(hosts) as zk, ServiceCache(zk, base, "api") as cache:
        provider_pick = ServiceProvider(cache, RoundRobinStrategy())

        async def show_changes() -> None:
            async with cache.listen() as events:
                async for _event in events:
                    ids = sorted(i.id for i in cache.instances())
                    print(f"consumer: live set {ids}")

        async def check(step: str) -> None:
            nonlocal ok
            try:
                with anyio.fail_after(10):
                    await cache.wait_for(lambda found: {i.id for i in found} == live)
                picks = [provider_pick.get_instance() for _ in range(len(live))]
                uris = sorted(p.build_uri() for p in picks if p is not None)
                print(f"{step}: cache = {sorted(live)}; round-robin picks {uris}")
            except TimeoutError:
                ok = False
                print(f"{step}: cache did not converge to {sorted(live)}")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(show_changes)
            stops = {f"api-{i}": anyio.Event() for i in range(4)}
            for i in range(3):
                name = f"api-{i}"
                await tasks.start(provider, hosts, base, name, 8000 + i, stops[name])
                live.add(name)
                await check(f"{name} registered")
            for name in ("api-1", "api-0"):
                stops[name].set()  # leaves: its instance is unregistered
                live.discard(name)
                await check(f"{name} left")
            await tasks.start(provider, hosts, base, "api-3", 8003, stops["api-3"])
            live.add("api-3")
            await check("api-3 registered")
            for stop in stops.values():
                stop.set()
            live.clear()
            await check("everyone left")
            tasks.cancel_scope.cancel()
        await zk.delete(base, recursive=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run(main))
