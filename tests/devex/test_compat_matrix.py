"""docs/compatibility-matrix.md is generated from a test run (tests/support/compat_matrix.py)
and must list exactly the tests that carry `@pytest.mark.compat` now: a compatibility test
added, renamed, re-marked or removed fails here until the page is generated again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from support.compat_matrix import (
    CLIENTS,
    FEATURES,
    as_written,
    marked_files,
    page_cells,
    render,
)

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "compatibility-matrix.md"
REGENERATE = ("regenerate it: see the docstring of tests/support/compat_matrix.py "
              "(a run of the marked tests, then the script)")


def test_the_page_lists_exactly_the_marked_tests(tmp_path: Path) -> None:
    listing = tmp_path / "marked.json"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only",
                        "-p", "no:cacheprovider", f"--compat-list={listing}", *marked_files()],
                       capture_output=True, text=True, cwd=REPO, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    marked: dict[tuple[str, str], set[str]] = defaultdict(set)
    for nodeid, cells in json.loads(listing.read_text()).items():
        for client, feature in cells:
            marked[(client, feature)].add(as_written(nodeid))
    assert marked, "no test carries @pytest.mark.compat"
    listed = page_cells(PAGE.read_text())
    assert listed == dict(marked), (
        f"{PAGE.name} is out of date; {REGENERATE}.\n"
        f"only marked: {sorted(set(marked) - set(listed))}\n"
        f"only on the page: {sorted(set(listed) - set(marked))}\n"
        f"different tests: {sorted(k for k in marked if k in listed and marked[k] != listed[k])}")


def test_the_page_shows_no_failure() -> None:
    """The checked-in page comes from a green run."""
    table = [line for line in PAGE.read_text().splitlines() if line.startswith("| ")]
    assert table and not [line for line in table if "FAIL" in line or "skipped" in line], table


def test_render_counts_outcomes_per_cell() -> None:
    results = {"date": "2026-01-01", "tests": {
        "tests/a.py::test_x[zkserver]": {"cells": [["kazoo", "watches"]], "outcome": "passed"},
        "tests/a.py::test_x[zookeeper]": {"cells": [["kazoo", "watches"]], "outcome": "failed"},
        "tests/b.py::test_y": {"cells": [["go", "multi"], ["go", "watches"]],
                               "outcome": "passed"},
    }}
    page = render(results)
    assert "| watches | FAIL 1/2 | pass 1/1 |" in page, page
    assert "| multi |  | pass 1/1 |" in page, page
    assert "    * `tests/a.py::test_x` (1/2 passed)" in page
    assert page_cells(page) == {("kazoo", "watches"): {"tests/a.py::test_x"},
                                ("go", "multi"): {"tests/b.py::test_y"},
                                ("go", "watches"): {"tests/b.py::test_y"}}
    assert set(CLIENTS) >= {"kazoo", "go"} and "watches" in FEATURES
