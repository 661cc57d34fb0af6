"""Fixtures of the recipe suite.

`zks` is a zkserver shared by a test module, with a 200 ms tick so sessions may be as short as
0.4 s: the fault-injection tests expire sessions by cutting a proxy for a couple of seconds
instead of the default server's four or more. Each test works under its own chroot (`root`),
so tests sharing a server stay independent. `real` is the same for Apache ZooKeeper, for the
interoperation tests that also run against the oracle.
"""

from __future__ import annotations

import os
import sys
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
from tests.recipes.recipe_support import make_root

FAST_TICKS = ["tickTime=200", "extendedTypesEnabled=true"]


def _command() -> list[str] | None:
    """`ZKSERVER_PYTHONPATH=dir` runs the suite against the zkserver package in `dir` (say, an
    exported older commit) instead of this checkout's."""
    where = os.environ.get("ZKSERVER_PYTHONPATH")
    if not where:
        return None
    return ["env", "-C", where, f"PYTHONPATH={where}", sys.executable, "-m", "zkserver"]


@pytest.fixture(scope="module")
def zks(tmp_path_factory: Any) -> Iterator[ZkServerProcess]:
    with ZkServerProcess(tmp_path_factory.mktemp("zks"), free_port(), extra=FAST_TICKS,
                         command=_command()) as s:
        yield s


@pytest.fixture(scope="module")
def real(tmp_path_factory: Any) -> Iterator[RealZooKeeper]:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper); "
                    "run the README's test command, which installs it")
    with RealZooKeeper(tmp_path_factory.mktemp("realzk"), free_port(), extra=FAST_TICKS) as s:
        yield s


@pytest.fixture(params=["zkserver", "zookeeper"])
def any_server(request: Any) -> Any:
    """zkserver, then Apache ZooKeeper (each shared by the module)."""
    return request.getfixturevalue("zks" if request.param == "zkserver" else "real")


@pytest.fixture
def root() -> str:
    """A fresh chroot for one test."""
    return f"/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def hosts(zks: ZkServerProcess, root: str) -> AsyncIterator[str]:
    """zkserver's connection string under the test's own chroot."""
    await make_root(zks.hosts, root)
    yield zks.hosts + root
