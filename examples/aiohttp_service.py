"""An asyncio web service (aiohttp) that holds a lock per request and a leader latch.

    ZK_HOSTS=127.0.0.1:2181 python examples/aiohttp_service.py --name a --port 8081 --base /svc

Run two or more with the same `--base`. Each one:

* serves `POST /increment`: a read-modify-write of a counter znode with no version check (the
  unsafe way, with a pause in the middle), done inside `async with lock:`, so concurrent
  requests to any instance never lose an update. The body of `async with lock:` is cancelled if
  the lock may be lost (connection drop, session expiry), and the request then fails with 503
  instead of writing under a lock it no longer holds;
* takes part in a leader election (`LeaderLatch`) and, while it leads, runs a leader-only job
  inside `latch.leading()`: it stamps `<base>/leader` with its name every 100 ms. The job is
  cancelled the moment leadership is in doubt, and resumes if it is won back;
* serves `GET /status`: `{"name": ..., "leader": true|false, "ticks": n}`.

The ZooKeeper client lives in aiohttp's `cleanup_ctx`: it is connected before the first request
and closed (ephemeral nodes gone, leadership handed over at once) when the app shuts down, for
example on SIGTERM or SIGINT. The same client and recipes run under Trio too; nothing here is
specific to them but aiohttp itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
from aiohttp import web

from zkserver import client
from zkserver.recipes.leader_latch import LatchLostError, LeaderLatch
from zkserver.recipes.lock import Lock, LockLostError


@dataclass
class Config:
    hosts: str
    base: str
    name: str


CONFIG = web.AppKey("config", Config)
ZK = web.AppKey("zk", client.Client)
LATCH = web.AppKey("latch", LeaderLatch)
TICKS = web.AppKey("ticks", list)


async def increment(request: web.Request) -> web.Response:
    zk, config = request.app[ZK], request.app[CONFIG]
    base, name = config.base, config.name
    try:
        async with Lock(zk, f"{base}/lock", name):
            data, _stat = await zk.get(f"{base}/counter")
            await asyncio.sleep(0.005)  # widen the race window
            value = int(data or b"0") + 1
            await zk.set(f"{base}/counter", b"%d" % value)
    except (LockLostError, client.ZooKeeperError) as e:
        raise web.HTTPServiceUnavailable(text=f"lock lost or ZooKeeper unreachable: {e}") from e
    return web.json_response({"value": value, "by": name})


async def status(request: web.Request) -> web.Response:
    latch = request.app[LATCH]
    return web.json_response({"name": request.app[CONFIG].name, "leader": latch.is_leader,
                              "ticks": len(request.app[TICKS])})


async def leader_job(app: web.Application) -> None:
    """Leader-only work, run only while this instance certainly leads."""
    zk, latch, config = app[ZK], app[LATCH], app[CONFIG]
    while True:
        try:
            async with latch.leading():
                print(f"{config.name}: leading", flush=True)
                while True:
                    await zk.set(f"{config.base}/leader", config.name.encode())
                    app[TICKS].append(1)
                    await asyncio.sleep(0.1)
        except (LatchLostError, client.ConnectionLossError, client.OperationTimeoutError):
            print(f"{config.name}: leadership lost", flush=True)
        except client.SessionExpiredError:
            print(f"{config.name}: session expired; restart the service", flush=True)
            return


async def zookeeper(app: web.Application) -> AsyncIterator[None]:
    """The client, the latch and the leader job, for the life of the app."""
    config = app[CONFIG]
    async with client.connect(config.hosts, session_timeout=4.0) as zk:
        await zk.ensure_path(config.base)
        for node in ("counter", "leader"):
            try:
                await zk.create(f"{config.base}/{node}", b"0" if node == "counter" else b"")
            except client.NodeExistsError:
                pass
        async with LeaderLatch(zk, f"{config.base}/latch", config.name) as latch, \
                anyio.create_task_group() as tasks:
            app[ZK], app[LATCH] = zk, latch
            tasks.start_soon(leader_job, app)
            yield
            tasks.cancel_scope.cancel()


def make_app(hosts: str, base: str, name: str) -> web.Application:
    app = web.Application()
    app[CONFIG] = Config(hosts, base, name)
    app[TICKS] = []
    app.cleanup_ctx.append(zookeeper)
    app.add_routes([web.post("/increment", increment), web.get("/status", status)])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="an aiohttp service holding a ZooKeeper lock "
                                                 "and a leader latch")
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base", default="/aiohttp-service")
    args = parser.parse_args()
    hosts = os.environ.get("ZK_HOSTS", "127.0.0.1:2181")
    web.run_app(make_app(hosts, args.base, args.name), host="127.0.0.1", port=args.port,
                print=lambda *_: print(f"{args.name}: serving on {args.port}", flush=True))


if __name__ == "__main__":
    main()
