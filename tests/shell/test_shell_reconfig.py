"""zkcli's `config` and `reconfig` side by side with ZooKeeper 3.9.5's zkCli (ZooKeeperMain from
the Maven release's jars) against one zkserver ensemble with reconfigEnabled.

Each shell runs the same script from stdin; the script ends where it began (three servers), so
the second shell starts from the state the first left. Versions, zxids and mtimes differ between
the runs and are compared as placeholders; everything else, stdout and stderr apart, must be the
same lines. Watch events are checked apart: zkCli 3.9 adds the zxid to them and may print them
anywhere among the command output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import realzk
from support.process import ZkServerEnsemble, free_port_base

from zkserver.shell.text import client_config, java_properties, parse_reconfig

REPO = Path(__file__).resolve().parents[2]
EXTRA = ["reconfigEnabled=true", "skipACL=yes"]
_NOISE = re.compile(r"^(Connecting to |Welcome to ZooKeeper!|JLine support is |WATCHER::$"
                    r"|WatchedEvent )")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZkServerEnsemble]:
    base = free_port_base(3)
    with ZkServerEnsemble(tmp_path_factory.mktemp("ens"), base, n=3, extra=EXTRA) as ens:
        yield ens


def zkcli_395(hosts: str, script: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    if not realzk.available():
        pytest.fail("ZooKeeper 3.9.5's jars are missing: bash tests/support/fetch_zookeeper.sh")
    quiet = tmp / "logback-off.xml"
    quiet.write_text('<configuration><root level="OFF"/></configuration>\n')
    return subprocess.run(
        ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", f"-Dlogback.configurationFile={quiet}",
         "-cp", realzk.classpath(), "org.apache.zookeeper.ZooKeeperMain", "-server", hosts],
        input=script, text=True, capture_output=True, timeout=90)


def zkcli_ours(hosts: str, script: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "zkserver.shell", "-server", hosts],
                          input=script, text=True, capture_output=True, timeout=90, env=env,
                          cwd=REPO)


def normal(text: str) -> list[str]:
    """The command output lines, with what differs from run to run as placeholders."""
    out = []
    for line in text.splitlines():
        if not line.strip() or _NOISE.match(line):
            continue
        line = re.sub(r"(?<![0-9a-f])1[0-9a-f]{8,}\b", "ZXID", line)
        line = re.sub(r"^mtime = .*", "mtime = T", line)
        out.append(line)
    return out


def events(text: str) -> list[str]:
    return [re.sub(r" zxid: -?\d+$", "", line) for line in text.splitlines()
            if line.startswith("WatchedEvent ") and "type:None" not in line]


@pytest.mark.compat(client="zkCli.sh", feature="dynamic reconfiguration")
def test_config_and_reconfig_print_what_zkcli_prints(ensemble: ZkServerEnsemble,
                                                      tmp_path: Path) -> None:
    base = ensemble.port
    hosts = f"127.0.0.1:{base + 1}"
    joiner = f"server.100=127.0.0.1:{base + 150}:{base + 250}:observer;127.0.0.1:{base + 50}"
    members = tmp_path / "members.cfg"
    members.write_text("# the three and an observer\n" + "".join(
        f"server.{i}=127.0.0.1:{ensemble.quorum_port(i)}:{ensemble.election_port(i)}"
        f":participant\n" for i in ensemble.ids) + joiner + "\n")
    script = f"""config
config -c
config -s
reconfig
reconfig -s
reconfig -add {joiner} -members x
reconfig -file {members} -members x
reconfig -v zz -add {joiner}
reconfig -v 1 -add {joiner}
reconfig -add foo
config -w
reconfig -add {joiner} -s
config -c
reconfig -remove 100
reconfig -file /nonexistent/members.cfg
reconfig -file {members} -s
config
reconfig -remove 100
config
"""
    theirs = zkcli_395(hosts, script, tmp_path)
    mine = zkcli_ours(hosts, script)
    assert normal(theirs.stdout) == normal(mine.stdout)
    assert normal(theirs.stderr) == normal(mine.stderr)
    out = normal(mine.stdout)
    assert out.count("Committed new configuration:") == 4
    assert "version No is not valid : " in mine.stderr.splitlines()
    assert f"ZXID ,,,127.0.0.1:{base + 50}" in out or f"ZXID 127.0.0.1:{base + 50},,," in out
    change = "WatchedEvent state:SyncConnected type:NodeDataChanged path:/zookeeper/config"
    assert events(theirs.stdout) == events(mine.stdout) == [change]


def test_unrecognized_option_and_exit_status(ensemble: ZkServerEnsemble) -> None:
    hosts = f"127.0.0.1:{ensemble.port + 1}"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "zkserver.shell", "-server", hosts, "reconfig",
                        "-x", "1"], text=True, capture_output=True, timeout=60, env=env,
                       cwd=REPO)
    # zkCli prints commons-cli's class name before the message; zkcli does not (docs/shell.md).
    assert (r.returncode, r.stderr) == (1, "Unrecognized option: -x\n")
    r = subprocess.run([sys.executable, "-m", "zkserver.shell", "-server", hosts, "config"],
                       text=True, capture_output=True, timeout=60, env=env, cwd=REPO)
    assert r.returncode == 0 and r.stdout.splitlines()[-1].startswith("version=")


def test_the_parsers() -> None:
    r = parse_reconfig(["reconfig", "-s", "-v", "1A", "-add", "Server.5=H:1:2;3",
                        "-add", "ignored", "-remove", "4,6"])
    assert (r.joining, r.leaving, r.members, r.version, r.stats) == (
        "server.5=h:1:2;3", "4,6", None, 26, True)
    assert java_properties("a=1\n# c\n  b : 2\nc 3\\\n  4\n") == [
        ("a", "1"), ("b", "2"), ("c", "34")]
    # Java's Properties order, not the file's: server.2 hashes to an earlier bin than server.1.
    assert client_config("server.1=h:1:2;127.0.0.1:2181\nserver.2=h:1:2;2182\n"
                         "server.3=h:1:2\nversion=10") == "10 0.0.0.0:2182,127.0.0.1:2181,"
