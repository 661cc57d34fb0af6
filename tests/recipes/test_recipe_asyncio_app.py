"""examples/aiohttp_service.py, an asyncio web service as users write them, run for real.

Two instances share a zkserver. Concurrent requests to both do an unsafe read-modify-write of
a counter under `async with lock:`, and no update is lost; exactly one instance leads and runs
the leader-only job; stopping the leader (SIGTERM: aiohttp shuts down, the client closes its
session) hands leadership to the other at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from support.kz import kazoo_client, stop_kazoo
from support.realzk import free_port
from support.waiting import wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aiohttp_service.py"
REQUESTS = 40


def call(port: int, path: str, method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def statuses(ports: dict[str, int]) -> dict[str, dict[str, Any]]:
    return {name: call(port, "/status") for name, port in ports.items()}


@pytest.fixture
def instances(zk_server: Any) -> Iterator[tuple[dict[str, int], dict[str, Any], str]]:
    base = f"/svc-{uuid.uuid4().hex[:8]}"
    ports = {"a": free_port(), "b": free_port()}
    procs = {name: subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--name", name, "--port", str(port), "--base", base],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "ZK_HOSTS": zk_server.hosts}) for name, port in ports.items()}
    try:
        def up() -> bool:
            try:
                statuses(ports)
                return True
            except OSError:
                return False

        wait_for(up, 30, "both instances to serve")
        yield ports, procs, base
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()


def test_lock_and_leader_latch_in_an_aiohttp_app(zk_server: Any, instances: Any) -> None:
    ports, procs, base = instances
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda i: call(ports["ab"[i % 2]], "/increment", "POST"),
                                range(REQUESTS)))
    assert sorted(r["value"] for r in replies) == list(range(1, REQUESTS + 1))
    assert {r["by"] for r in replies} == {"a", "b"}

    wait_for(lambda: sum(s["leader"] for s in statuses(ports).values()) == 1, 15,
               "one leader")
    leader = next(name for name, s in statuses(ports).items() if s["leader"])
    follower = "b" if leader == "a" else "a"
    wait_for(lambda: statuses(ports)[leader]["ticks"] > 0, 10, "the leader job to run")
    assert statuses(ports)[follower]["ticks"] == 0
    kz: KazooClient = kazoo_client(zk_server.hosts)
    try:
        assert kz.get(f"{base}/leader")[0] == leader.encode()
        procs[leader].send_signal(signal.SIGTERM)
        assert procs[leader].wait(timeout=20) == 0, procs[leader].stdout.read()
        del ports[leader]
        started = time.monotonic()
        wait_for(lambda: statuses(ports)[follower]["leader"], 10, "the follower to lead")
        assert time.monotonic() - started < 5  # handed over on close, not on session expiry
        wait_for(lambda: kz.get(f"{base}/leader")[0] == follower.encode(), 10,
                   "the new leader's job to run")
    finally:
        stop_kazoo(kz)
