"""The npm `zookeeper` package 7.3.0's OWN integration tests (Node over Apache ZooKeeper's C
client), against Apache ZooKeeper and against zkserver: the pass/fail lists must match.

The package's tests take the server's address as their one argument
(`ava tests/integration/*.js -- host:port`); they run here as its authors run them, with ava
6.4.1 (its own pin, ava 8, needs Node 22) and the native module built from the npm tarball.
The other pure-JS client on npm, node-zookeeper-client, ships only server-free unit tests.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import client_suites, realzk
from support.client_suites import Outcomes
from support.process import ZkServerProcess, side_by_side
from support.realzk import RealZooKeeper, free_port

TAP = re.compile(r"^(ok|not ok) \d+ - (.*?)(\s+# SKIP.*)?$", re.M)


@pytest.fixture(scope="module")
def node_suite() -> Path:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not available (tests/support/fetch_zookeeper.sh)")
    return client_suites.fetch("node", "node-zookeeper-7.3.0") / "pkg"


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("node-suite")
    ours = ZkServerProcess(base / "ours", free_port(), extra=["forceSync=no"])
    real = RealZooKeeper(base / "real", free_port(), extra=["forceSync=no"], heap="256m")
    with side_by_side(ours, real):
        yield {"zookeeper": real.hosts, "zkserver": ours.hosts}


def _ava(pkg: Path, hosts: str, files: list[str], match: list[str]) -> tuple[Outcomes, str]:
    run = subprocess.run([str(pkg / "node_modules" / ".bin" / "ava"), "--tap", "--timeout=60s",
                          *files, *(f"--match={m}" for m in match), "--", hosts],
                         cwd=pkg, capture_output=True, text=True, timeout=300)
    outcomes = {name: "skipped" if skip else ("passed" if verdict == "ok" else "failed")
                for verdict, name, skip in TAP.findall(run.stdout)}
    return outcomes, run.stdout + run.stderr


def run_suite(pkg: Path, hosts: str) -> tuple[Outcomes, str]:
    """All the integration tests; a failed one is run once more on its own (ava's per-test
    deadline is raised to 60 s from 10 s: the machine running both servers is loaded)."""
    files = sorted(str(p.relative_to(pkg)) for p in (pkg / "tests" / "integration").glob("*.js"))
    outcomes, out = _ava(pkg, hosts, files, [])
    for name in [n for n, o in outcomes.items() if o == "failed"]:
        stem, title = name.split(" › ", 1)
        again, more = _ava(pkg, hosts, [f"tests/integration/{stem}.js"], [title])
        outcomes[name] = again.get(name, "failed")
        out += f"\n--- rerun of {name}: {outcomes[name]}\n{more}"
    return outcomes, out


def test_node_client_suite(node_suite: Path, servers: dict[str, str], tmp_path: Path) -> None:
    reports = {}
    for server, hosts in servers.items():
        reports[server], out = run_suite(node_suite, hosts)
        client_suites.write_log(tmp_path, f"{server}.log", out)
    print(client_suites.summary("npm zookeeper 7.3.0", reports))
    assert len(reports["zookeeper"]) >= 14, reports["zookeeper"]
    assert all(o == "passed" for o in reports["zookeeper"].values()), reports["zookeeper"]
    assert client_suites.compare(reports) == []
