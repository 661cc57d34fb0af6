"""Curator 5.9.0's reconfig API (`getConfig()...forEnsemble()`, `reconfig().joining(...)
.leaving(...).withNewMembers(...).fromConfig(...)`, foreground and background, and its errors)
against a zkserver ensemble and an Apache ZooKeeper 3.9.5 ensemble started the same way (three
servers, reconfigEnabled, a super user): the program, compiled here from
tests/compat/curator_reconfig/CuratorReconfig.java, must print the same lines on both.

The program names ports by role and versions by order of appearance, so two ensembles on
different ports compare line for line.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from support import client_suites, realzk
from support.process import ZkServerEnsemble, free_port_base
from support.realzk import RealZooKeeper

SOURCE = Path(__file__).with_name("curator_reconfig") / "CuratorReconfig.java"
_DIGEST = base64.b64encode(hashlib.sha1(b"super:test").digest()).decode()
EXTRA = ["reconfigEnabled=true", f"DigestAuthenticationProvider.superDigest=super:{_DIGEST}"]


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The compiled program: the command that runs it, but for its arguments."""
    if shutil.which("javac") is None:
        pytest.fail("javac is missing (Java 17 JDK)")
    if not realzk.available():
        pytest.fail("ZooKeeper 3.9.5's jars are missing: bash tests/support/fetch_zookeeper.sh")
    suite = client_suites.fetch("curator", "curator-5.9.0")
    classpath = ":".join(sorted(str(p) for p in (suite / "lib").glob("*.jar")))
    out = tmp_path_factory.mktemp("curator-reconfig")
    subprocess.run(["javac", "-nowarn", "-cp", classpath, "-d", str(out), str(SOURCE)],
                   check=True, capture_output=True, timeout=180)
    return ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger."
            "defaultLogLevel=warn", "-cp", f"{classpath}:{out}", "CuratorReconfig"]


def run(program: list[str], hosts: str, base: int, log: Path) -> list[str]:
    r = subprocess.run([*program, hosts, str(base)], capture_output=True, text=True,
                       timeout=240)
    log.write_text(r.stdout + "\n---- stderr\n" + r.stderr)
    assert r.returncode == 0, f"exit {r.returncode}; see {log}:\n{r.stderr[-3000:]}"
    return r.stdout.splitlines()


@pytest.mark.compat(client="curator", feature="dynamic reconfiguration")
def test_curator_reconfig_api_as_on_zookeeper(program: list[str], tmp_path: Path) -> None:
    zk_base = free_port_base(45)
    with RealZooKeeper(tmp_path / "zk", zk_base, n=3, extra=EXTRA, heap="256m") as zk:
        theirs = run(program, zk.hosts, zk_base, tmp_path / "zookeeper.out")
    base = free_port_base(45)
    with ZkServerEnsemble(tmp_path / "ours", base, n=3, extra=EXTRA) as ens:
        mine = run(program, ens.hosts, base, tmp_path / "zkserver.out")
    assert len(theirs) > 30
    assert "watcher: NodeDataChanged /zookeeper/config" in theirs
    assert mine == theirs
