"""The compatibility matrix: which real clients were shown to work with zkserver, feature by
feature, and by which tests. docs/compatibility-matrix.md is generated from a run, not written.

A test that drives a real client against zkserver says what it shows with a marker (one per
client and feature it covers):

    @pytest.mark.compat(client="kazoo", feature="watches")

Client and feature must be among CLIENTS and FEATURES below (a typo fails the run). As a pytest
plugin (tests/conftest.py loads it) this module registers the marker and, given
`--compat-results=FILE`, writes every marked test's outcome there as JSON. As a program it turns
such a file into the page:

    python -m pytest -q --compat-results=/tmp/compat.json \\
        $(python -m tests.support.compat_matrix --files)
    python -m tests.support.compat_matrix /tmp/compat.json > docs/compatibility-matrix.md

tests/devex/test_compat_matrix.py checks that the page lists exactly the tests that carry the
marker today, so a new, renamed or removed compatibility test makes the suite fail until the
page is generated again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

CLIENTS = {
    "kazoo": "kazoo (Python)",
    "zkCli.sh": "zkCli.sh (Java)",
    "cli_mt": "cli_mt (C)",
    "go": "go-zookeeper (Go)",
    "curator": "Curator (Java)",
    "zkserver.client": "zkserver.client (Python)",
}
FEATURES = {
    "basic operations": "create, read, update, list and delete nodes",
    "watches": "one-time (and, where the client has them, persistent) watches fire as in ZooKeeper",
    "ephemerals and sessions": "ephemeral nodes live and die with their session",
    "multi": "transactions, all or nothing",
    "ACLs and digest auth": "ACLs, addAuth digest, who may do what",
    "SASL": "DIGEST-MD5 from a JAAS file, optional and required",
    "recipes": "the client's own recipes on the same nodes as ours (locks, elections, ...)",
    "dynamic reconfiguration": "getConfig and reconfig (joining, leaving, new members, "
                               "fromConfig) against an ensemble, and their errors",
}
MARKER = "compat"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
MARK_USE = re.compile(r"pytest\.mark\.compat\(")


# -- the pytest plugin ---------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--compat-results", metavar="FILE", default=None,
                     help="write the outcome of every @pytest.mark.compat test to FILE (JSON)")
    parser.addoption("--compat-list", metavar="FILE", default=None,
                     help="write every collected @pytest.mark.compat test and its cells to FILE "
                          "(JSON), as the check of the page does")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(client, feature): the test shows `client` doing `feature` "
                   "against zkserver (tests/support/compat_matrix.py; one marker per pair)")
    config.stash[_RESULTS] = {}


_RESULTS = pytest.StashKey[dict[str, dict[str, Any]]]()


def cells_of(item: pytest.Item) -> list[tuple[str, str]]:
    """The (client, feature) pairs a test's markers name; a name not in the lists fails."""
    cells = []
    for mark in item.iter_markers(MARKER):
        client, feature = mark.kwargs.get("client"), mark.kwargs.get("feature")
        if client not in CLIENTS or feature not in FEATURES:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.compat(client={client!r}, feature={feature!r}): "
                f"client must be one of {sorted(CLIENTS)}, feature one of {sorted(FEATURES)}")
        cells.append((client, feature))
    return cells


def pytest_collection_finish(session: pytest.Session) -> None:
    marked = {item.nodeid: cells_of(item) for item in session.items}  # names checked here
    path = session.config.getoption("--compat-list")
    if path:
        Path(path).write_text(json.dumps({k: v for k, v in marked.items() if v}, indent=1,
                                         sort_keys=True) + "\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    cells = cells_of(item)
    if cells:
        results = item.config.stash[_RESULTS]
        entry = results.setdefault(item.nodeid, {"cells": cells, "outcome": PASSED})
        # A test passes only if its setup, call and teardown all did.
        if report.failed:
            entry["outcome"] = FAILED
        elif report.skipped and entry["outcome"] == PASSED:
            entry["outcome"] = SKIPPED
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--compat-results")
    if path:
        results = session.config.stash[_RESULTS]
        Path(path).write_text(json.dumps({
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
            "tests": results,
        }, indent=1, sort_keys=True) + "\n")


# -- the page ------------------------------------------------------------------------------------


def marked_files() -> list[str]:
    """The test files that use the marker (relative to the repository)."""
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")
                  if MARK_USE.search(p.read_text()))


def as_written(nodeid: str) -> str:
    """A node id without its parameters: the test as written."""
    return nodeid.split("[", 1)[0]


def by_cell(tests: dict[str, dict[str, Any]]) -> dict[tuple[str, str], dict[str, str]]:
    cells: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for nodeid, entry in tests.items():
        for client, feature in entry["cells"]:
            cells[(client, feature)][nodeid] = entry["outcome"]
    return cells


def render(results: dict[str, Any]) -> str:
    cells = by_cell(results["tests"])
    clients = [c for c in CLIENTS if any(key[0] == c for key in cells)]
    out = [
        "# Compatibility matrix",
        "",
        "Which real ZooKeeper clients have been shown to work with zkserver, feature by feature:",
        "each cell counts the test runs behind it and how many passed. A test parametrized over",
        "servers, event loops or cases counts once per run; most of these tests run the same",
        "steps against Apache ZooKeeper too and compare, and those runs are counted with the",
        "rest. An empty cell means no test covers the pair, not that it fails; what zkserver",
        "supports in detail is in [Compatibility](compatibility.md).",
        "",
        f"Generated from a test run on {results['date']} by `tests/support/compat_matrix.py`",
        "(its docstring says how to run it again); `tests/devex/test_compat_matrix.py` fails",
        "when the page no longer lists exactly the tests marked `@pytest.mark.compat`.",
        "",
        "| feature | " + " | ".join(CLIENTS[c] for c in clients) + " |",
        "| --- | " + " | ".join("---" for _ in clients) + " |",
    ]
    for feature in FEATURES:
        row = []
        for client in clients:
            outcomes = list(cells.get((client, feature), {}).values())
            if not outcomes:
                row.append("")
                continue
            passed = outcomes.count(PASSED)
            mark = ("pass" if passed == len(outcomes) else
                    "FAIL" if FAILED in outcomes else "skipped")
            row.append(f"{mark} {passed}/{len(outcomes)}")
        if any(row):
            out.append(f"| {feature} | " + " | ".join(row) + " |")
    out += ["", "Features:", ""]
    out += [f"* **{name}**: {what}." for name, what in FEATURES.items()]
    out += ["", "## The tests behind each cell", ""]
    for client in clients:
        for feature in FEATURES:
            tests = cells.get((client, feature))
            if not tests:
                continue
            out.append(f"* {CLIENTS[client]}, {feature}:")
            names: dict[str, list[str]] = defaultdict(list)
            for nodeid, outcome in sorted(tests.items()):
                names[as_written(nodeid)].append(outcome)
            for name, outcomes in names.items():
                summary = (f"{outcomes.count(PASSED)}/{len(outcomes)} passed" if len(outcomes) > 1
                           else outcomes[0])
                out.append(f"    * `{name}` ({summary})")
    return "\n".join(out) + "\n"


PAGE_TEST = re.compile(r"^    \* `([^`]+)` \(")
PAGE_CELL = re.compile(r"^\* (.+), (.+):$")


def page_cells(text: str) -> dict[tuple[str, str], set[str]]:
    """What a rendered page lists: (client, feature) -> the tests (as written) behind it."""
    names = {label: key for key, label in CLIENTS.items()}
    cells: dict[tuple[str, str], set[str]] = {}
    current: set[str] | None = None
    for line in text.splitlines():
        if m := PAGE_CELL.match(line):
            current = cells.setdefault((names[m.group(1)], m.group(2)), set())
        elif (m := PAGE_TEST.match(line)) and current is not None:
            current.add(m.group(1))
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", help="the JSON a run wrote (--compat-results)")
    parser.add_argument("--files", action="store_true",
                        help="print the test files that carry the marker, for pytest")
    args = parser.parse_args(argv)
    if args.files:
        print("\n".join(marked_files()))
        return 0
    if not args.results:
        parser.error("give the results file, or --files")
    sys.stdout.write(render(json.loads(Path(args.results).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
