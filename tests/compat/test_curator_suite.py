"""Apache Curator 5.9.0's OWN recipe tests (the curator-recipes test jar from Maven Central), run
with JUnit against Apache ZooKeeper and against zkserver: the pass/fail lists must match.

Curator's tests start their servers themselves (TestingServer, TestingCluster) inside the test
JVM; tests/compat/curator_suite/ replaces the one curator-test class they start them through,
so every server becomes a child process: ZooKeeper 3.9.5's QuorumPeerMain on one side, zkserver
on the other, with the settings Curator gives its own (see the class for the details). Both
sides run the same way, so a difference is the server's.

Curator's whole recipe suite takes hours here (every test starts its own server; one class
takes minutes on a loaded 2-core machine), so both tests are slow: the selection covers locks,
leader election, caches, barriers, nodes, counters and shared values.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import client_suites, realzk
from support.client_suites import Outcomes

ROOT = Path(__file__).parents[2]
RECIPES = "org.apache.curator.framework.recipes."
QUICK = ["shared.TestSharedCount"]
SELECTION = [
    "locks.TestInterProcessMutex", "leader.TestLeaderLatch", "cache.TestCuratorCache",
    "barriers.TestDistributedBarrier", "nodes.TestPersistentNode",
    "atomic.TestDistributedAtomicLong", "shared.TestSharedCount",
]
# Differences seen and not explained yet, the only ones allowed: after its first server was
# closed and a new one started on the same port and data directory, a LeaderLatch was elected
# twice on zkserver in 2 of 4 runs, both under heavy load (it passed alone), once on ZooKeeper.
KNOWN = {"leader.TestLeaderLatch#testNoServerAtStart(): zookeeper passed, zkserver failed"}


@pytest.fixture(scope="module")
def curator_suite() -> Path:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not available (tests/support/fetch_zookeeper.sh)")
    return client_suites.fetch("curator", "curator-5.9.0")


def _junit(suite: Path, server: str, selectors: list[str], out: Path) -> Outcomes:
    jars = sorted(str(p) for p in (suite / "lib").glob("*.jar"))
    out.mkdir(parents=True, exist_ok=True)
    logback = next(a for a in realzk.log_args(out) if a.startswith("-Dlogback"))
    reports = out / "reports"
    command = [
        "java", "-Xmx512m", f"-Dzksuite.server={server}",
        f"-Dzksuite.zkClasspath={realzk.classpath()}",
        f"-Dzksuite.zkLogback={logback.split('=', 1)[1]}",
        f"-Dzksuite.python={sys.executable}", f"-Dzksuite.pythonPath={ROOT}",
        f"-Djava.io.tmpdir={out}",
        "-cp", ":".join([str(suite / "shim"), *jars]),
        "org.junit.platform.console.ConsoleLauncher", "execute", "--disable-banner",
        "--details=summary", f"--reports-dir={reports}", *selectors,
    ]
    with open(out / "junit.log", "wb") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=5400)
    outcomes: Outcomes = {}
    for case in ET.parse(reports / "TEST-junit-jupiter.xml").getroot().iter("testcase"):
        name = f"{case.get('classname', '').removeprefix(RECIPES)}#{case.get('name')}"
        if case.find("skipped") is not None:
            outcomes[name] = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        else:
            outcomes[name] = "passed"
    return outcomes


def run_suite(suite: Path, server: str, classes: list[str], out: Path) -> Outcomes:
    """The classes' tests on one server; a failed test is run once more on its own, as many
    of Curator's tests wait 2 s for an event, which a loaded machine can miss (seen on both
    servers; the same test then passes alone)."""
    outcomes = _junit(suite, server, [f"--select-class={RECIPES}{c}" for c in classes], out)
    failed = [name for name, outcome in outcomes.items() if outcome == "failed"]
    if failed:
        again = _junit(suite, server, [f"--select-method={RECIPES}{n.removesuffix('()')}"
                                       for n in failed], out / "rerun")
        rerun = {n: again.get(n, "failed") for n in failed}
        client_suites.write_log(out, "rerun.txt", "".join(f"{n}: {o}\n" for n, o in rerun.items()))
        outcomes.update(rerun)
    return outcomes


def _both(suite: Path, classes: list[str], tmp_path: Path) -> dict[str, Outcomes]:
    return {server: run_suite(suite, server, classes, tmp_path / server)
            for server in ("zookeeper", "zkserver")}


@pytest.mark.slow
def test_curator_suite_quick(curator_suite: Path, tmp_path: Path) -> None:
    reports = _both(curator_suite, QUICK, tmp_path)
    print(client_suites.summary("Curator 5.9.0 (quick)", reports))
    assert reports["zookeeper"] and all(o == "passed" for o in reports["zookeeper"].values())
    assert client_suites.compare(reports) == []


@pytest.mark.slow
def test_curator_suite_selection(curator_suite: Path, tmp_path: Path) -> None:
    reports = _both(curator_suite, SELECTION, tmp_path)
    print(client_suites.summary("Curator 5.9.0 recipes (selection)", reports))
    assert len(reports["zookeeper"]) >= 50, reports["zookeeper"]
    assert set(client_suites.compare(reports)) <= KNOWN, f"logs in {tmp_path}"
