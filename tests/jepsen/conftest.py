"""The cluster under test for the Jepsen-style fault tests, selectable from the environment.

    (unset)                  both, each test once per kind
    JEPSEN_CLUSTER=realzk    Apache ZooKeeper, Debian's package (proves the harness)
    JEPSEN_CLUSTER=zkserver  our server, from the same zoo.cfg layout
    JEPSEN_NODES=3           ensemble size for the tests that do not fix one (1: standalone)

Environment variables rather than a pytest option: options can only be declared by the
root conftest, and these tests should not need it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import realzk

from tests.jepsen.nemesis import Ensemble, real_zookeeper, zkserver_ensemble

# kazoo logs every reconnection at INFO or WARNING; the nemesis causes hundreds.
logging.getLogger("kazoo").setLevel(logging.ERROR)

_ONLY = os.environ.get("JEPSEN_CLUSTER")
KINDS = [_ONLY] if _ONLY else ["realzk", "zkserver"]
NODES = int(os.environ.get("JEPSEN_NODES", "3"))


def make_cluster(kind: str, base: Path, n: int) -> Ensemble:
    if kind == "realzk":
        if not realzk.available():
            pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper); "
                        "run the README's test command, which installs it")
        return real_zookeeper(base, n)
    if kind == "zkserver":
        return zkserver_ensemble(base, n)
    raise pytest.UsageError(f"JEPSEN_CLUSTER must be realzk or zkserver, not {kind!r}")


@pytest.fixture
def cluster_nodes() -> int:
    return NODES


@pytest.fixture(params=KINDS)
def start_cluster(tmp_path: Path, request: pytest.FixtureRequest
                  ) -> Iterator[Callable[..., Ensemble]]:
    """start_cluster(n=NODES): a running cluster of the selected kind, stopped afterwards."""
    started: list[Ensemble] = []
    kind = request.param

    def start(n: int = NODES) -> Ensemble:
        cluster = make_cluster(kind, tmp_path / f"{kind}{len(started)}", n)
        started.append(cluster)
        return cluster.start()

    yield start
    for cluster in started:
        cluster.stop()
