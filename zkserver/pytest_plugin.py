"""pytest fixtures that run zkserver for your tests: no Java, no running ZooKeeper to set up.

Installed with zkserver and loaded by pytest on its own (the `pytest11` entry point "zkserver";
`-p no:zkserver` turns it off). The fixtures:

`zk_server`
    A fresh standalone zkserver for one test, on a free loopback port, its data in the test's
    temporary directory. `hosts` ("127.0.0.1:PORT"), `port`, `data_dir`, `stop()`, `restart()`
    (same port and data), `kill()` (a crash), `log_path`.
`zk_ensemble`
    A fresh 3-server ensemble for one test: `hosts` (all three), `members` (each like
    `zk_server`; member i is server id i + 1), `kill(i)`, `stop(i)`, `start(i)` (waits until it
    serves again), `leader()`.
`zk_server_session`
    One standalone server for the whole session, and for each test its own chroot:
    `hosts` is "127.0.0.1:PORT/zkt-<random>", so a test sees only its own nodes and no test
    needs to clean up. `server` is the shared `TestServer`. The cheapest choice per test.
`zk_client`
    A connected Trio client (`zkserver.client` API) on `zk_server`; needs pytest-trio (trio_mode,
    or mark the test `@pytest.mark.trio`).

Kazoo test suites (`KazooTestCase`, `KazooTestHarness`) run against zkserver too: see
`zkserver.testing.kazoo`; with this plugin loaded nothing more is needed unless
ZOOKEEPER_PATH, ZOOKEEPER_CLASSPATH or ZOOKEEPER_VERSION ask kazoo for its Java ZooKeeper.

This module imports nothing heavy at load time: a test run that asks for no server pays nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from zkserver.testing.servers import TestEnsemble, TestServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("zk_tick_time", "tickTime (ms) of the servers zkserver's fixtures start",
                  default="200")


def _tick(config: pytest.Config) -> int:
    return int(config.getini("zk_tick_time"))


@pytest.fixture
def zk_server(tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Iterator[TestServer]:
    """A fresh standalone zkserver for this test (see the module docstring)."""
    from zkserver.testing.servers import TestServer

    base = tmp_path_factory.mktemp("zk_server")
    with TestServer(base, tick_time=_tick(request.config)) as server:
        yield server


@pytest.fixture
def zk_ensemble(tmp_path_factory: pytest.TempPathFactory,
                request: pytest.FixtureRequest) -> Iterator[TestEnsemble]:
    """A fresh 3-server zkserver ensemble for this test."""
    from zkserver.testing.servers import TestEnsemble

    base = tmp_path_factory.mktemp("zk_ensemble")
    with TestEnsemble(base, 3, tick_time=_tick(request.config)) as ensemble:
        yield ensemble


@pytest.fixture(scope="session")
def _zk_shared_server(tmp_path_factory: pytest.TempPathFactory,
                      pytestconfig: pytest.Config) -> Iterator[TestServer]:
    from zkserver.testing.servers import TestServer

    base = tmp_path_factory.mktemp("zk_server_session")
    with TestServer(base, tick_time=_tick(pytestconfig)) as server:
        yield server


class ChrootedServer:
    """The session's server as one test sees it: `hosts` ends in the test's own chroot."""

    def __init__(self, server: TestServer, chroot: str) -> None:
        self.server = server
        self.chroot = chroot

    @property
    def hosts(self) -> str:
        return self.server.hosts + self.chroot

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture
def zk_server_session(_zk_shared_server: TestServer) -> ChrootedServer:
    """The session-wide zkserver, seen through a fresh chroot for this test."""
    from zkserver.testing.servers import create_node

    chroot = f"/zkt-{uuid.uuid4().hex[:12]}"
    create_node(_zk_shared_server.host, _zk_shared_server.port, chroot)
    return ChrootedServer(_zk_shared_server, chroot)


@pytest.fixture
async def zk_client(zk_server: TestServer) -> AsyncIterator[Any]:
    """A Trio client connected to `zk_server`, closed after the test."""
    from zkserver import client

    async with client.connect(zk_server.hosts) as zk:
        yield zk


def pytest_collection_finish(session: pytest.Session) -> None:
    """Point kazoo's test harness at zkserver when the collected tests use it and nothing asks
    kazoo for a Java ZooKeeper (which it would otherwise fail to find)."""
    import sys

    if "kazoo.testing.harness" not in sys.modules:
        return
    if any(os.environ.get(k) for k in ("ZOOKEEPER_PATH", "ZOOKEEPER_CLASSPATH",
                                       "ZOOKEEPER_VERSION")):
        return
    from zkserver.testing.kazoo import install

    install()
