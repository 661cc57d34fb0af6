"""go-zookeeper/zk (github.com/go-zookeeper/zk v1.0.4), a Go client, against zkserver and against
Apache ZooKeeper: the same program (tests/compat/gozk) checks auth, ACLs, children, watches,
multi and the lock recipe on both, and the two reports must be equal and all PASS.

The client sends addAuth with an ordinary positive xid and waits for that xid; zkserver used to
answer -4, and the client (and the program) hung. The program is built here with the machine's
Go; its one dependency comes through the Go module proxy into the usual module cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import realzk
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port

PROGRAM = Path(__file__).parent / "gozk"


@pytest.fixture(scope="module")
def gozk(tmp_path_factory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.fail("the go command is not installed (the polyglot machine has it)")
    out = tmp_path_factory.mktemp("gozk") / "gozk"
    build = subprocess.run([go, "build", "-o", str(out), "."], cwd=PROGRAM, capture_output=True,
                           text=True, timeout=300, env={**os.environ, "GOFLAGS": "-buildvcs=false"})
    assert build.returncode == 0, build.stderr
    return out


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, str]]:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not available (tests/support/fetch_zookeeper.sh)")
    base = tmp_path_factory.mktemp("gozk-servers")
    ours = ZkServerProcess(base / "ours", free_port(), extra=["forceSync=no"]).start()
    try:
        real = RealZooKeeper(base / "real", free_port(), extra=["forceSync=no"]).start()
    except BaseException:
        ours.kill()
        raise
    try:
        yield {"zookeeper": real.hosts, "zkserver": ours.hosts}
    finally:
        ours.kill()
        real.stop()


def _report(gozk: Path, hosts: str) -> list[str]:
    run = subprocess.run([str(gozk), hosts], capture_output=True, text=True, timeout=300)
    return run.stdout.splitlines()


@pytest.mark.compat(client="go", feature="basic operations")
@pytest.mark.compat(client="go", feature="watches")
@pytest.mark.compat(client="go", feature="multi")
@pytest.mark.compat(client="go", feature="ACLs and digest auth")
@pytest.mark.compat(client="go", feature="recipes")
def test_go_client_checks_pass_on_both(gozk: Path, servers: dict[str, str]) -> None:
    reports = {name: _report(gozk, hosts) for name, hosts in servers.items()}
    expected = [f"PASS {c}" for c in ("auth", "acl", "children", "watch", "multi", "lock")]
    assert reports["zookeeper"] == [*expected, "6 passed, 0 failed"], reports["zookeeper"]
    assert reports["zkserver"] == reports["zookeeper"]
