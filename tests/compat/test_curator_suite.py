"""Apache Curator 5.9.0's OWN tests (the curator-framework and curator-recipes test jars from Maven
Central), run with JUnit against Apache ZooKeeper and against zkserver: the pass/fail lists must
match.

Curator's tests start their servers themselves (TestingServer, TestingCluster) inside the test
JVM; tests/compat/curator_suite/ replaces the one curator-test class they start them through,
so every server becomes a child process: ZooKeeper 3.9.5's QuorumPeerMain on one side, zkserver
on the other, with the settings Curator gives its own (see the class for the details). Both
sides run the same way, so a difference is the server's.

Every Curator test starts its own server (a JVM per test on ZooKeeper's side), so the runs are
long: QUICK (two small framework classes, about half a minute idle) is in the default suite;
SELECTION (locks, leader election, caches, barriers, nodes, counters, shared values) and WIDE
(every framework and recipe test class that runs against external single servers) are slow.
Left out of WIDE, for time or because no server is involved, not for how a server fares: the
classes whose tests start a multi-server TestingCluster (TestReadOnly, TestReconfiguration,
TestWithCluster and the recipes' *Cluster classes), the long randomized soaks
(TestTreeCacheRandomTree, TestCuratorCacheConsistency, TestLongNetworkPartition), the tests that
need no server (TestCircuitBreaker*, TestQueueItem) and TestSchema (needs Jackson, not fetched).
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
PACKAGE = "org.apache.curator."
QUICK = ["framework.imps.TestCompression", "framework.imps.TestCompressionInTransactionOld"]
SELECTION = [f"framework.recipes.{c}" for c in (
    "locks.TestInterProcessMutex", "leader.TestLeaderLatch", "cache.TestCuratorCache",
    "barriers.TestDistributedBarrier", "nodes.TestPersistentNode",
    "atomic.TestDistributedAtomicLong", "shared.TestSharedCount",
)]
WIDE = SELECTION + [
    "framework.imps.TestBlockUntilConnected", "framework.imps.TestCleanState",
    "framework.imps.TestCompression", "framework.imps.TestCompressionInTransactionNew",
    "framework.imps.TestCompressionInTransactionOld", "framework.imps.TestCreate",
    "framework.imps.TestCreateReturningStat", "framework.imps.TestDelete",
    "framework.imps.TestEnabledSessionExpiredState", "framework.imps.TestEnsureContainers",
    "framework.imps.TestExistsBuilder", "framework.imps.TestFailedDeleteManager",
    "framework.imps.TestFramework", "framework.imps.TestFrameworkBackground",
    "framework.imps.TestFrameworkEdges", "framework.imps.TestGzipCompressionProvider",
    "framework.imps.TestMultiClient", "framework.imps.TestNamespaceFacade",
    "framework.imps.TestNeverConnected", "framework.imps.TestSetData",
    "framework.imps.TestTempFramework", "framework.imps.TestTransactionsNew",
    "framework.imps.TestTransactionsOld", "framework.imps.TestTtlNodes",
    "framework.imps.TestWatcherIdentity", "framework.imps.TestWatcherRemovalManager",
    "framework.imps.TestWatchesBuilder", "framework.state.TestConnectionStateManager",
    "framework.ensemble.TestEnsembleProvider", "connection.TestThreadLocalRetryLoop",
    "framework.client.TestBackgroundStates",
    "framework.client.TestResetConnectionWithBackgroundFailure",
] + [f"framework.recipes.{c}" for c in (
    "atomic.TestCachedAtomicCounter", "barriers.TestDistributedDoubleBarrier",
    "cache.TestCuratorCacheBridge", "cache.TestCuratorCacheEdges",
    "cache.TestCuratorCacheEventOrdering", "cache.TestCuratorCacheWrappers",
    "cache.TestEventOrdering", "cache.TestNodeCache", "cache.TestPathChildrenCache",
    "cache.TestPathChildrenCacheEventOrdering", "cache.TestTreeCache",
    "cache.TestTreeCacheEventOrdering", "cache.TestTreeCacheIteratorAndSize",
    "cache.TestWrappedNodeCache", "leader.TestLeaderAcls", "leader.TestLeaderSelector",
    "leader.TestLeaderSelectorEdges", "leader.TestLeaderSelectorParticipants",
    "leader.TestLeaderSelectorWithExecutor", "locks.TestInterProcessMultiMutex",
    "locks.TestInterProcessReadWriteLock", "locks.TestInterProcessSemaphore",
    "locks.TestInterProcessSemaphoreMutex", "locks.TestLockACLs", "locks.TestLockInternals",
    "nodes.TestGroupMember", "nodes.TestPersistentEphemeralNode",
    "nodes.TestPersistentEphemeralNodeListener", "nodes.TestPersistentTtlNode",
    "queue.TestBoundedDistributedQueue", "queue.TestDistributedDelayQueue",
    "queue.TestDistributedIdQueue", "queue.TestDistributedPriorityQueue",
    "queue.TestDistributedQueue", "queue.TestQueueSharder", "queue.TestSimpleDistributedQueue",
    "watch.TestPersistentWatcher",
)]
# Tests not run, each because the test itself decides its outcome, not the server:
# testNoServerAtStart's listener counts its latch down BEFORE it increments the leader count
# the test then asserts on, so when the latch wakes the test thread first (the test thread was
# already waiting, as the election comes after the new server answered) the count read is 0:
# "Elected too many times ==> expected: <0> but was: <1>" (the count is JUnit's "expected").
# It failed so in 5 of 10 runs against ZooKeeper 3.9.5 and 3 of 10 against zkserver, the
# same failure every time (docs/compatibility.md).
EXCLUDED = ["framework.recipes.leader.TestLeaderLatch#testNoServerAtStart"]


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
        *(f"--exclude-methodname={PACKAGE}{name}".replace(".", r"\.") for name in EXCLUDED),
    ]
    with open(out / "junit.log", "wb") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=5400)
    outcomes: Outcomes = {}
    for case in ET.parse(reports / "TEST-junit-jupiter.xml").getroot().iter("testcase"):
        name = f"{case.get('classname', '').removeprefix(PACKAGE)}#{case.get('name')}"
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
    outcomes = _junit(suite, server, [f"--select-class={PACKAGE}{c}" for c in classes], out)
    failed = [name for name, outcome in outcomes.items() if outcome == "failed"]
    if failed:
        again = _junit(suite, server, [f"--select-method={PACKAGE}{n.removesuffix('()')}"
                                       for n in failed], out / "rerun")
        rerun = {n: again.get(n, "failed") for n in failed}
        client_suites.write_log(out, "rerun.txt", "".join(f"{n}: {o}\n" for n, o in rerun.items()))
        outcomes.update(rerun)
    return outcomes


def _both(suite: Path, classes: list[str], tmp_path: Path) -> dict[str, Outcomes]:
    return {server: run_suite(suite, server, classes, tmp_path / server)
            for server in ("zookeeper", "zkserver")}


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
    assert client_suites.compare(reports) == [], f"logs in {tmp_path}"


@pytest.mark.slow
def test_curator_suite_wide(curator_suite: Path, tmp_path: Path) -> None:
    reports = _both(curator_suite, WIDE, tmp_path)
    print(client_suites.summary("Curator 5.9.0 framework and recipes (wide)", reports))
    assert len(reports["zookeeper"]) >= 400, reports["zookeeper"]
    assert client_suites.compare(reports) == [], f"logs in {tmp_path}"
