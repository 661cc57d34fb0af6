"""examples/quickstart.py runs to the end against each server, on Trio and on asyncio."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_quickstart(server: Any, backend: str) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLE), "--backend", backend],
                            capture_output=True, text=True,
                            timeout=60, env={**os.environ, "ZK_HOSTS": server.hosts})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("created /quickstart-", "watch fired: NODE_DATA_CHANGED",
                     "recursive watch: NODE_CREATED", "multi committed 3 ops",
                     "multi rolled back as a whole: NoNodeError at op 1", "closed: state CLOSED"):
        assert expected in out, out
