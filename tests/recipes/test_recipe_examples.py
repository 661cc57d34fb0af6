"""Every example in examples/ (but the client's quickstart) runs to the end against a fresh
zkserver and exits 0, each within a few seconds, under Trio and under asyncio (`--backend`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CASES = {
    "lock.py": ["counter = 60, expected 60"],
    "election.py": ["took over", "main: killing"],
    "service_registry.py": ["everyone left: cache = []"],
    "ack_queue.py": ["processed 20 of 20 jobs, 0 left in the queue",
                     "was already handled by", "(redelivered)"],
}


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(zk_server: Any, name: str, backend: str) -> None:
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(EXAMPLES / name), "--backend", backend],
                            capture_output=True,
                            text=True, timeout=60, env={**os.environ, "ZK_HOSTS": zk_server.hosts})
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for expected in CASES[name]:
        assert expected in result.stdout, result.stdout[-2000:]
    assert elapsed < 20, f"{name} took {elapsed:.1f}s"


def test_every_example_is_tested() -> None:
    # quickstart.py and aiohttp_service.py have tests of their own; backend.py is what the
    # others share to pick their event loop.
    present = {p.name for p in EXAMPLES.glob("*.py")} - {"quickstart.py", "aiohttp_service.py",
                                                         "backend.py"}
    assert present == set(CASES)
