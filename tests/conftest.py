"""Fixtures shared by the suite: a zkserver process, and a real Apache ZooKeeper as the oracle.

The real ZooKeeper comes from Debian's `zookeeper` package, which the README's test command
installs. A missing oracle is a failed setup, never a silent skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import realzk
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port

# @pytest.mark.compat and --compat-results: the compatibility matrix page's source.
pytest_plugins = ["support.compat_matrix"]


@pytest.fixture
def zk_server(tmp_path) -> Iterator[ZkServerProcess]:
    """A fresh zkserver on a free loopback port."""
    with ZkServerProcess(tmp_path / "zkserver", free_port()) as server:
        yield server


@pytest.fixture
def real_zk(tmp_path) -> Iterator[RealZooKeeper]:
    """A fresh Apache ZooKeeper (standalone) on a free loopback port."""
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper); "
                    "run the README's test command, which installs it")
    with RealZooKeeper(tmp_path / "realzk", free_port()) as zk:
        yield zk


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Soaks and long benchmarks (marked slow) run as long as they are meant to: the suite-wide
    per-test timeout in pyproject.toml is for catching hangs in the default suite."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(0))
