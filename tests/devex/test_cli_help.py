"""`zkserver --help` names every command with a line each, and every command has its own
`--help`, run as a user runs them (`python -m zkserver`, a child process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from zkserver.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]


def zkserver(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "zkserver", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO, env=env)


def test_help_lists_every_command() -> None:
    r = zkserver("--help")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "usage: zkserver [--log-level LEVEL] [zoo.cfg]"
    listed = lines[lines.index("commands:") + 1:]
    names = [line.split()[0] for line in listed if line.startswith("  ")]
    assert names == ["ensemble", "shell", "dump-log", "dump-snapshot", "import-zookeeper"]
    assert set(names) == set(COMMANDS)
    for line in listed:
        if line.startswith("  "):
            assert len(line.split(None, 1)) == 2, f"no description: {line!r}"
    assert "`zkserver COMMAND --help`" in r.stdout


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_has_its_own_help(command: str) -> None:
    r = zkserver(command, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: zkserver {command} ")
    assert r.stderr == ""


def test_shell_help_lists_options_then_commands() -> None:
    out = zkserver("shell", "--help").stdout.splitlines()
    assert "  -server HOSTS   where to connect (default localhost:2181); a /chroot may end " \
           "the list" in out
    commands = out[out.index("commands:") + 1:]
    assert "\tls [-s] [-w] [-R] path" in commands
    assert "\tcreate [-s] [-e] [-c] [-t ttl] path [data] [acl]" in commands


def test_version() -> None:
    r = zkserver("--version")
    assert r.returncode == 0 and r.stdout.startswith("zkserver ")


def test_an_unknown_option_is_a_usage_error() -> None:
    r = zkserver("--no-such-option")
    assert r.returncode == 2
    assert "unrecognized arguments: --no-such-option" in r.stderr
