"""go-zookeeper/zk v1.0.4's OWN test suite (`go test` of the package), once with Apache
ZooKeeper and once with zkserver as the server its tests start: the pass/fail lists must match.

The suite starts a fresh server (or a 3-server ensemble) per test through
`$ZOOKEEPER_BIN_PATH/zkServer.sh start-foreground <zoo.cfg>`; tests/support/zkbin/zkServer.sh
stands in for it and starts whichever server `ZKSUITE_SERVER` names. The test binary carries one
harness patch (tests/compat/gozk_suite/serving_test.go says why): without it the suite's cluster
helper cannot see a 3.7+ server start at all.

Each integration test runs in its own process (a failed cluster start panics, which would end a
whole run), and a failed one is run once more: on a loaded 2-core machine a 3-JVM ensemble can
miss the helper's 30 s start deadline. The tests that need no server run once per side as well.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from support import client_suites, realzk
from support.client_suites import Outcomes

ZKBIN = Path(__file__).parents[1] / "support" / "zkbin"
RESULT = re.compile(r"^\s*--- (PASS|FAIL|SKIP): (\S+)", re.M)
WORDS = {"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}

# Standalone tests of the core API for the default suite; the slow test runs everything.
QUICK = ["TestIntegration_Create", "TestIntegration_Multi", "TestIntegration_Auth",
         "TestIntegration_ChildWatch", "TestIntegration_Lock"]


@pytest.fixture(scope="module")
def go_suite() -> Path:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not available (tests/support/fetch_zookeeper.sh)")
    return client_suites.fetch("go", "go-zookeeper-zk-v1.0.4")


def _run(suite: Path, server: str, args: list[str], logs: Path, name: str) -> tuple[Outcomes, str]:
    env = client_suites.env_with(ZOOKEEPER_BIN_PATH=str(ZKBIN), ZKSUITE_SERVER=server)
    try:
        run = subprocess.run([str(suite / "zk.test"), "-test.v", "-test.count=1",
                              "-test.timeout=240s", *args], cwd=suite / "src", env=env,
                             capture_output=True, text=True, timeout=300)
        out = run.stdout + run.stderr
    except subprocess.TimeoutExpired as e:
        out = f"{e.stdout or ''}{e.stderr or ''}\n(timed out)"
    client_suites.write_log(logs, f"{server}-{name}.log", out)
    return {t: WORDS[w] for w, t in RESULT.findall(out)}, out


def run_suite(suite: Path, server: str, tests: list[str], logs: Path) -> Outcomes:
    outcomes: Outcomes = {}
    if not tests or any(not t.startswith("TestIntegration_") for t in tests):
        found, _ = _run(suite, server, ["-test.skip", "Integration"], logs, "unit")
        outcomes.update(found)
    for test in (t for t in tests if t.startswith("TestIntegration_")):
        found = {}
        for attempt in (1, 2):
            found, _ = _run(suite, server, ["-test.run", f"^{test}$"], logs, f"{test}-{attempt}")
            found.setdefault(test, "failed")  # no verdict line: it panicked or timed out
            if found[test] != "failed":
                break
        outcomes.update(found)
    return outcomes


def all_tests(suite: Path) -> list[str]:
    listing = subprocess.run([str(suite / "zk.test"), "-test.list", "^Test"], cwd=suite / "src",
                             capture_output=True, text=True, timeout=60, check=True)
    return listing.stdout.split()


def _both(suite: Path, tests: list[str], logs: Path) -> dict[str, Outcomes]:
    return {server: run_suite(suite, server, tests, logs / server)
            for server in ("zookeeper", "zkserver")}


def test_go_client_suite_quick(go_suite: Path, tmp_path: Path) -> None:
    reports = _both(go_suite, QUICK, tmp_path)
    print(client_suites.summary("go-zookeeper/zk v1.0.4 (quick)", reports))
    assert all(reports["zookeeper"][t] == "passed" for t in QUICK), reports["zookeeper"]
    assert client_suites.compare(reports) == []


@pytest.mark.slow
def test_go_client_suite_full(go_suite: Path, tmp_path: Path) -> None:
    tests = all_tests(go_suite)
    reports = _both(go_suite, tests, tmp_path)
    print(client_suites.summary("go-zookeeper/zk v1.0.4", reports))
    assert set(tests) <= set(reports["zookeeper"]), reports["zookeeper"]
    assert client_suites.compare(reports) == [], f"logs in {tmp_path}"
