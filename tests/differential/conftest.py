"""Fixtures for the differential suite: one real ZooKeeper and one zkserver per test module.

Starting the JVM costs about a second, so each module starts its pair once and every test (and
every Hypothesis example) works under its own fresh top-level path. Both servers see exactly
the same operations in the same order, so their zxids stay equal from one test to the next.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import realzk  # noqa: E402
from support.process import ZkServerProcess  # noqa: E402
from support.realzk import RealZooKeeper, free_port  # noqa: E402
from zkdiff import Dual  # noqa: E402

# kazoo logs every connection at INFO; the suite opens thousands of them.
logging.getLogger("kazoo").setLevel(logging.WARNING)


class DualServers:
    """A real ZooKeeper and a zkserver, started together and restartable together."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.generation = 0
        self.real: RealZooKeeper | None = None
        self.ours: ZkServerProcess | None = None

    def start(self) -> DualServers:
        self.generation += 1
        d = self.base / f"gen{self.generation}"
        # forceSync=no on both: answers do not depend on fsync, and writes get 10x faster.
        self.real = RealZooKeeper(d / "real", free_port(), extra=["forceSync=no"]).start()
        try:
            self.ours = ZkServerProcess(d / "ours", free_port(), extra=["forceSync=no"]).start()
        except BaseException:
            self.real.stop()
            raise
        return self

    def stop(self) -> None:
        if self.ours is not None:
            self.ours.kill()
        if self.real is not None:
            self.real.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def hosts(self, side: str) -> str:
        server = self.real if side == "zk" else self.ours
        assert server is not None
        return server.hosts


@pytest.fixture(scope="module")
def dual_servers(tmp_path_factory) -> Iterator[DualServers]:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper); "
                    "run the README's test command, which installs it")
    servers = DualServers(tmp_path_factory.mktemp("dual")).start()
    try:
        yield servers
    finally:
        servers.stop()


OPERATIONS = [0]  # differential operations run by this pytest session (for the summary)


@pytest.fixture(scope="module")
def dual(dual_servers) -> Iterator[Dual]:
    d = Dual(dual_servers)
    yield d
    OPERATIONS[0] += d.ops
    for s in list(d.sessions):
        d._stop(s)


def pytest_terminal_summary(terminalreporter) -> None:
    if OPERATIONS[0]:
        terminalreporter.write_line(
            f"differential suite: {OPERATIONS[0]} operations compared with a real ZooKeeper")


@pytest.fixture
def fresh(dual) -> Iterator[Dual]:
    """The module's Dual, in step, with every session the test opened closed afterwards."""
    dual.begin()
    yield dual
    if not dual.diverged:
        dual.close_all()
    else:
        for s in list(dual.sessions):
            dual._stop(s)
        dual.sessions.clear()
