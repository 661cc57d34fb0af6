"""aiozk 0.32.0's OWN test suite (an asyncio client from PyPI; its tests ship in the sdist under
aiozk/test and find the server through ZK_HOST/ZK_PORT), against Apache ZooKeeper and against
zkserver: the pass/fail lists must match.

The suite runs from the sdist in its own venv (pytest and pytest-asyncio, which the project's
pytest-trio environment should not load), without the sdist's coverage options. The default
suite runs the client and lock tests; the slow test runs all of them.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import client_suites, realzk
from support.client_suites import Outcomes
from support.process import ZkServerProcess, side_by_side
from support.realzk import RealZooKeeper, free_port

VERSION = "0.32.0"
QUICK = ["aiozk/test/test_client.py", "aiozk/test/test_lock.py"]


@pytest.fixture(scope="module")
def aiozk_suite() -> Path:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not available (tests/support/fetch_zookeeper.sh)")
    return client_suites.fetch("aiozk", f"aiozk-{VERSION}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, tuple[str, int]]]:
    base = tmp_path_factory.mktemp("aiozk-suite")
    ours = ZkServerProcess(base / "ours", free_port(), extra=["forceSync=no"])
    real = RealZooKeeper(base / "real", free_port(), extra=["forceSync=no"], heap="256m")
    with side_by_side(ours, real):
        yield {"zookeeper": ("127.0.0.1", real.port), "zkserver": ("127.0.0.1", ours.port)}


def run_suite(suite: Path, host: tuple[str, int], paths: list[str], report: Path) -> Outcomes:
    sdist = suite / f"aiozk-{VERSION}"
    env = client_suites.env_with(ZK_HOST=host[0], ZK_PORT=str(host[1]))
    env.pop("PYTHONPATH", None)  # the suite's aiozk is the sdist's, not anything of ours
    subprocess.run([str(suite / "venv" / "bin" / "python"), "-m", "pytest", "-q",
                    "-o", "addopts=", "-p", "no:cacheprovider", f"--junitxml={report}", *paths],
                   cwd=sdist, env=env, capture_output=True, text=True, timeout=900)
    outcomes: Outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("skipped") is not None:
            outcomes[name] = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        else:
            outcomes[name] = "passed"
    return outcomes


def _both(suite: Path, servers: dict[str, tuple[str, int]], paths: list[str],
          tmp_path: Path) -> dict[str, Outcomes]:
    return {server: run_suite(suite, host, paths, tmp_path / f"{server}.xml")
            for server, host in servers.items()}


def test_aiozk_suite_quick(aiozk_suite: Path, servers, tmp_path: Path) -> None:
    reports = _both(aiozk_suite, servers, QUICK, tmp_path)
    print(client_suites.summary(f"aiozk {VERSION} (quick)", reports))
    assert len(reports["zookeeper"]) >= 16, reports["zookeeper"]
    assert client_suites.compare(reports) == []


@pytest.mark.slow
def test_aiozk_suite_full(aiozk_suite: Path, servers, tmp_path: Path) -> None:
    reports = _both(aiozk_suite, servers, ["aiozk/test"], tmp_path)
    print(client_suites.summary(f"aiozk {VERSION}", reports))
    assert len(reports["zookeeper"]) >= 85, reports["zookeeper"]
    assert client_suites.compare(reports) == []
