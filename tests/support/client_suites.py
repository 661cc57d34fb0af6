"""Run third-party ZooKeeper clients' own test suites against zkserver and Apache ZooKeeper, and
compare what passed, for tests/compat/test_*_suite.py.

Each suite is fetched and built once by `fetch_client_suites.sh` into the test cache; a suite
run gives an `Outcomes`: test name -> "passed", "failed" or "skipped". Both servers run the same
suite the same way, so the two outcome maps must be equal; `compare` says how they differ.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from support.realzk import CACHE

FETCH = Path(__file__).with_name("fetch_client_suites.sh")
SUITES = CACHE / "suites"

Outcomes = dict[str, str]


def fetch(name: str, subdir: str) -> Path:
    """The suite's directory, fetched and built if missing (idempotent)."""
    done = SUITES / subdir / "complete"
    if not done.exists():
        run = subprocess.run(["bash", str(FETCH), name], capture_output=True, text=True,
                             timeout=900)
        if run.returncode != 0 or not done.exists():
            pytest.fail(f"fetching the {name} suite failed:\n{run.stdout[-2000:]}"
                        f"\n{run.stderr[-4000:]}")
    return SUITES / subdir


def tally(outcomes: Outcomes) -> str:
    """"14 tests: 14 passed, 0 failed, 0 skipped", the figures for the compatibility table."""
    c = Counter(outcomes.values())
    return (f"{len(outcomes)} tests: {c['passed']} passed, {c['failed']} failed, "
            f"{c['skipped']} skipped")


def compare(reports: dict[str, Outcomes]) -> list[str]:
    """The tests whose outcome differs between the servers, one line each (empty: none)."""
    real, ours = reports["zookeeper"], reports["zkserver"]
    return [f"{name}: zookeeper {real.get(name, 'not run')}, zkserver {ours.get(name, 'not run')}"
            for name in sorted(set(real) | set(ours)) if real.get(name) != ours.get(name)]


def summary(suite: str, reports: dict[str, Outcomes]) -> str:
    lines = [f"{suite}:"]
    for server, outcomes in reports.items():
        lines.append(f"  {server}: {tally(outcomes)}")
        lines += [f"    {o}: {t}" for t, o in sorted(outcomes.items()) if o != "passed"]
    return "\n".join(lines)


def write_log(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}
