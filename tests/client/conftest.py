"""Fixtures of the client suite: every test runs against zkserver and against a real Apache
ZooKeeper, with the same assertions.

`server` is parametrized over both and scoped to the module, so each server starts once per
test module (a JVM takes a second or so). Tests stay independent by working under a fresh chroot
each (`zk`), which also exercises the chroot code on every call.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from support import realzk
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port

from tests.client.anyio_backends import (  # noqa: F401 - the fixture and hooks, registered here
    anyio_backend,
    pytest_collection_finish,
    pytest_collection_modifyitems,
)
from tests.client.proxy import Proxy, open_proxy
from zkserver import client

# Both servers: TTL nodes need extended types; 2 s ticks make the smallest session 4 s.
SERVER_EXTRA = ["extendedTypesEnabled=true"]
SESSION_TIMEOUT = 4.0


@pytest.fixture(scope="module", params=["zkserver", "zookeeper"])
def server(request: Any, tmp_path_factory: Any) -> Iterator[Any]:
    base = tmp_path_factory.mktemp(request.param)
    if request.param == "zkserver":
        with ZkServerProcess(base, free_port(), extra=SERVER_EXTRA) as s:
            yield s
    else:
        if not realzk.available():
            pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper); "
                        "run the README's test command, which installs it")
        with RealZooKeeper(base, free_port(), extra=SERVER_EXTRA) as s:
            yield s


@pytest.fixture
def root() -> str:
    """A fresh chroot for one test."""
    return f"/test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def zk(server: Any, root: str) -> AsyncIterator[client.Client]:
    """A client under the test's own chroot."""
    async with client.connect(server.hosts) as admin:
        await admin.create(root)
    async with client.connect(server.hosts + root, session_timeout=SESSION_TIMEOUT) as c:
        yield c


@pytest.fixture
async def admin(server: Any) -> AsyncIterator[client.Client]:
    """A second client, on its own session, without a chroot."""
    async with client.connect(server.hosts) as c:
        yield c


@pytest.fixture
async def proxy(server: Any) -> AsyncIterator[Proxy]:
    """A cuttable TCP proxy in front of the server."""
    async with open_proxy("127.0.0.1", server.port) as p:
        yield p
