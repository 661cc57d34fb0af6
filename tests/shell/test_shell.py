"""zkcli, the shell: driven through a pseudo-terminal as a person would, as a one-shot command and
with a script on stdin, against zkserver; and compared with zkCli.sh against Apache ZooKeeper.

The terminal tests read the pty with deadlines (`Terminal.expect`), never fixed sleeps: each
step waits for the text it expects, so a slow machine only makes them slower.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.clis import ZKCLI, zkcli_env
from support.kz import kazoo_client, stop_kazoo
from support.realzk import free_port

from zkserver.shell.commands import complete
from zkserver.shell.text import parse_acl, path_error, tokenize

REPO = Path(__file__).resolve().parents[2]
SHELL = [sys.executable, "-m", "zkserver.shell"]
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|[\x07\x08]")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TERM="dumb", INPUTRC=os.devnull, PYTHONPATH=str(REPO))
    return env


class Terminal:
    """zkcli on a pseudo-terminal: what is typed goes in, and `expect` waits for what comes out
    (escape sequences and carriage returns removed)."""

    def __init__(self, hosts: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: become zkcli
            try:
                os.chdir(REPO)
                os.execve(sys.executable, [*SHELL, "-server", hosts], _env())
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        # Wide enough that readline never wraps a line.
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
        self.text = ""
        self.cursor = 0
        self.status: int | None = None

    def _read(self, until: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, until - time.monotonic()))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            raise EOFError
        self.text += _ESCAPES.sub("", chunk.decode(errors="replace").replace("\r", ""))
        return True

    def expect(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """Wait for `pattern` (a regex, multiline) after the cursor; move the cursor past it."""
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.text, self.cursor)
            if m:
                self.cursor = m.end()
                return m
            try:
                if not self._read(deadline) and time.monotonic() >= deadline:
                    raise AssertionError(f"no {pattern!r} within {timeout}s; the screen after "
                                         f"the cursor:\n{self.text[self.cursor:]}")
            except EOFError:
                raise AssertionError(f"zkcli ended before {pattern!r}:\n"
                                     f"{self.text[self.cursor:]}") from None

    def prompt(self, n: int, state: str = "CONNECTED") -> None:
        self.expect(rf"\[zk: [^(]+\({state}\) {n}\] ")

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def run(self, command: str, n: int) -> str:
        """Type a command at prompt `n`; its output, up to the next prompt."""
        self.send(command + "\n")
        start = self.expect(re.escape(command) + r"\n").end()
        end = self.expect(rf"\[zk: [^(]+\(\w+\) {n + 1}\] ").start()
        return self.text[start:end]

    def wait_exit(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            try:
                self._read(min(deadline, time.monotonic() + 0.05))
            except EOFError:
                pass
        raise AssertionError("zkcli did not exit")

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


@pytest.fixture
def terminal(zk_server) -> Iterator[Terminal]:
    term = Terminal(zk_server.hosts)
    try:
        yield term
    finally:
        term.close()


@pytest.fixture
def kz(zk_server):
    zk = kazoo_client(zk_server.hosts)
    yield zk
    stop_kazoo(zk)


def lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


# -- the interactive shell ------------------------------------------------------------------------


def test_interactive_session(terminal: Terminal, zk_server) -> None:
    t = terminal
    t.expect(r"^Welcome to ZooKeeper!$")
    t.expect(r"^WatchedEvent state:SyncConnected type:None path:null$")
    t.prompt(0)
    n = 0

    def run(command: str) -> list[str]:
        nonlocal n
        out = lines(t.run(command, n))
        n += 1
        return out

    assert run("create /sh hello") == ["Created /sh"]
    assert run("get /sh") == ["hello"]
    assert run('set /sh "hello world"') == []
    got = run("get -s /sh")
    assert got[0] == "hello world"
    assert "dataVersion = 1" in got and "dataLength = 11" in got
    assert run("create /sh/a 1") == ["Created /sh/a"]
    assert run("create -e /sh/eph") == ["Created /sh/eph"]
    assert run("create -s /sh/seq- x") == ["Created /sh/seq-0000000002"]
    assert run("create -c /sh/box") == ["Created /sh/box"]
    assert run("create /sh/box/in x") == ["Created /sh/box/in"]
    assert run("ls /sh") == ["[a, box, eph, seq-0000000002]"]
    assert run("ls -R /sh") == ["/sh", "/sh/a", "/sh/box", "/sh/eph", "/sh/seq-0000000002",
                                "/sh/box/in"]
    stat = run("stat /sh")
    assert len(stat) == 11 and "numChildren = 4" in stat and stat[0].startswith("cZxid = 0x")
    assert run("get /sh/eph") == ["null"]
    assert run("getAcl /sh") == ["'world,'anyone", ": cdrwa"]
    assert run("addauth digest alice:secret") == []
    assert run("create /sh/secret s") == ["Created /sh/secret"]
    assert run("setAcl /sh/secret auth:alice:cdrwa") == []
    assert run("getAcl /sh/secret") == ["'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=", ": cdrwa"]
    assert sorted(run("whoami")) == ["Auth scheme: User", "digest: alice", "ip: 127.0.0.1"]
    assert run("sync /sh") == ["Sync is OK"]
    assert run("getEphemerals") == ["[/sh/eph]"]
    assert run("getAllChildrenNumber /sh") == ["6"]
    assert run("get /nope") == ["Node does not exist: /nope"]
    assert run("delete /sh") == ["Node not empty: /sh"]
    assert run("set -v 7 /sh x") == ["version No is not valid : /sh"]
    assert run("create /sh/bad x world:anyone") == [
        "world:anyone does not have the form scheme:id:perm", "KeeperErrorCode = InvalidACL",
        "Acl is not valid : null"]
    assert run("frobnicate")[-1] == "Command not found: Command not found frobnicate"
    assert run("delete /sh/a") == []
    assert run("deleteall /sh/box") == []
    assert run("ls /sh") == ["[eph, secret, seq-0000000002]"]

    history = run("history")
    assert history[-1] == f"{n - 1} - history"
    assert history[-2] == f"{n - 2} - ls /sh"
    assert len(history) == 11
    assert run(f"redo {n - 2}") == ["[eph, secret, seq-0000000002]"]

    assert run("deleteall /sh") == []
    assert run("ls /") == ["[zookeeper]"]
    assert run("close") == ["WATCHER::", "WatchedEvent state:Closed type:None path:null"]
    assert run("ls /") == ["Not connected"]
    t.send("quit\n")
    assert t.wait_exit() == 1  # quit leaves with the status of the command before it


def test_watch_events_print_while_the_prompt_waits(terminal: Terminal, kz) -> None:
    t = terminal
    t.prompt(0)
    kz.create("/w", b"v0")
    assert lines(t.run("addWatch /w", 0)) == []
    assert lines(t.run("get -w /w", 1)) == ["v0"]
    t.send("ls /w")  # typed, not entered: the event must leave it in place
    kz.set("/w", b"v1")  # fires both watches: printed once
    t.expect(r"^WATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/w\n")
    t.expect(r"\[zk: [^(]+\(CONNECTED\) 2\] ls /w")  # the prompt again, with the typed text
    kz.create("/w/kid", b"")
    t.expect(r"WatchedEvent state:SyncConnected type:NodeCreated path:/w/kid\n")
    assert lines(t.run("", 2)) == ["[kid]"]
    assert t.text.count("type:NodeDataChanged path:/w\n") == 1
    assert lines(t.run("stat -w /w/later", 3)) == ["Node does not exist: /w/later"]
    assert lines(t.run("removewatches /w", 4)) == [
        "WATCHER::", "WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:/w"]
    kz.set("/w/kid", b"x")  # no watch left on it
    kz.create("/w/later", b"")
    t.expect(r"WatchedEvent state:SyncConnected type:NodeCreated path:/w/later\n")
    assert "path:/w/kid\n" not in t.text[t.text.index("PersistentWatchRemoved"):]
    assert lines(t.run("removewatches /w", 5)) == ["KeeperErrorCode = No such watcher for /w"]
    t.send("\x04")  # Ctrl-D
    assert t.wait_exit() == 1


def test_tab_completion(terminal: Terminal, kz) -> None:
    t = terminal
    kz.create("/completion/deep/er", b"", makepath=True)
    kz.create("/comet", b"")
    t.prompt(0)
    t.send("getAllCh\t")
    t.expect(r"getAllChildrenNumber $")
    t.send("/compl\t")
    t.expect(r"/completion$")
    t.send("\n")
    t.expect(r"^2$")
    t.prompt(1)
    t.send("ls /completion/d\t")
    t.expect(r"ls /completion/deep$")
    t.send("\n")
    t.expect(r"^\[er\]$")
    t.prompt(2)
    t.send("ls /com\t\t")  # two candidates: the second Tab lists them
    t.expect(r"/comet\s+/completion")
    t.send("\x15quit\n")  # Ctrl-U clears the line
    assert t.wait_exit() == 0


def test_ctrl_c_leaves_and_closes_the_session(terminal: Terminal, kz) -> None:
    t = terminal
    t.prompt(0)
    assert lines(t.run("create -e /mine x", 0)) == ["Created /mine"]
    t.send("get /mi")
    t.send("\x03")
    assert t.wait_exit() == 130
    deadline = time.monotonic() + 10
    while kz.exists("/mine") is not None:
        assert time.monotonic() < deadline, "the ephemeral outlived the shell's session"
        time.sleep(0.05)


# -- scripts: one command, or commands on stdin ----------------------------------------------------


def shell(hosts: str, *command: str, stdin: str | None = None,
          timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SHELL, "-server", hosts, *command], input=stdin, text=True,
                          capture_output=True, timeout=timeout, env=_env(), cwd=REPO,
                          stdin=subprocess.DEVNULL if stdin is None else None)


def test_one_command(zk_server) -> None:
    hosts = zk_server.hosts
    r = shell(hosts, "create", "/one", "two words")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "Created /one\n")
    r = shell(hosts, "get", "/one")
    assert (r.returncode, r.stdout, r.stderr) == (0, "two words\n", "")
    r = shell(hosts, "ls", "/")
    assert (r.returncode, r.stdout) == (0, "[one, zookeeper]\n")
    r = shell(hosts, "get", "/nope")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "Node does not exist: /nope\n")
    r = shell(hosts, "create", "/one")
    assert (r.returncode, r.stderr) == (1, "Node already exists: /one\n")
    r = shell(hosts, "get")
    assert (r.returncode, r.stderr) == (1, "get [-s] [-w] path\n")
    r = shell(hosts, "ls", "-z", "/")
    assert (r.returncode, r.stderr) == (1, "Unrecognized option: -z\n")
    r = shell(hosts, "nonsense")
    assert r.returncode == 127
    assert r.stderr.splitlines()[0] == "ZooKeeper -server host:port cmd args"
    assert r.stderr.splitlines()[-1] == "Command not found: Command not found nonsense"
    r = shell(hosts, "help")
    assert r.returncode == 0 and "\tls [-s] [-w] [-R] path" in r.stdout.splitlines()
    r = shell(hosts, "delete", "/one")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_one_command_without_a_server() -> None:
    start = time.monotonic()
    r = shell(f"127.0.0.1:{free_port()}", "-timeout", "1000", "ls", "/")
    assert r.returncode == 1
    assert r.stderr.startswith("Unable to connect to 127.0.0.1:")
    assert time.monotonic() - start < 15


def test_commands_from_stdin(zk_server) -> None:
    script = "create /p 1\n\nls /\nget /p\nset /p 2\nget -s /p\n"
    r = shell(zk_server.hosts, stdin=script)
    out = r.stdout.splitlines()
    assert r.returncode == 0, r.stderr
    assert r.stderr == "Created /p\n"
    assert out[:3] == ["[p, zookeeper]", "1", "2"]
    assert "dataVersion = 1" in out[3:]
    r = shell(zk_server.hosts, stdin="get /p\nget /missing\n")
    assert (r.returncode, r.stdout, r.stderr) == (1, "2\n", "Node does not exist: /missing\n")
    r = shell(zk_server.hosts, stdin="get /missing\nquit\nget /p\n")
    assert (r.returncode, r.stdout) == (1, "")  # quit: the previous command's status
    r = shell(zk_server.hosts, stdin="get -w /p\n")
    assert r.returncode == 0


# -- the same output as zkCli.sh -------------------------------------------------------------------

# Read-only commands (and failing writes) on a state zkCli.sh builds; both shells then run them
# against the same Apache ZooKeeper and must print the same lines.
SETUP = """create /cmp v1
create /cmp/a "some data"
create -s /cmp/s- x
create /cmp/c
create /cmp/c/d deep
create /cmp/ro r world:anyone:r
create /cmp/two x digest:bob:aYXlLOpEooaV1cRAvUL1fp9Qt7E=:cdrwa,ip:127.0.0.1:rw
set /cmp v2
"""
COMPARE = """ls /cmp
ls -s /cmp
ls -R /cmp
get /cmp
get -s /cmp/a
get /cmp/c
stat /cmp/c/d
getAcl /cmp/ro
getAcl -s /cmp/two
getAllChildrenNumber /cmp
getEphemerals /cmp
get /cmp/none
stat /cmp/none
ls /cmp/none
create /cmp v3
delete /cmp
set -v 9 /cmp v3
delete -v 9 /cmp/a
create /cmp/a/b/c x
create /cmp/bad x world:anyone
create cmp
get /cmp/
ls
setAcl /cmp/none world:anyone:r
sync /cmp
whoami
"""
_NOISE = re.compile(r"^(SLF4J: |Connecting to |Welcome to ZooKeeper!|JLine support is |WATCHER::$"
                    r"|WatchedEvent state:\w+ type:None path:null$)")


def _output(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not _NOISE.match(line)]


def test_output_matches_zkcli(real_zk) -> None:
    def zkcli(script: str) -> list[str]:
        r = subprocess.run([ZKCLI, "-server", real_zk.hosts], input=script, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                           env=zkcli_env())
        return _output(r.stdout)

    def ours(script: str) -> list[str]:
        r = subprocess.run([*SHELL, "-server", real_zk.hosts], input=script, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                           env=_env(), cwd=REPO)
        return _output(r.stdout)

    assert zkcli(SETUP)[0] == "Created /cmp"
    theirs, mine = zkcli(COMPARE), ours(COMPARE)
    assert len(theirs) > 60
    assert mine == theirs


# -- the pieces ------------------------------------------------------------------------------------


def test_tokenizer_and_parsers() -> None:
    assert tokenize('create /a "x y" \'p q\'  world:anyone:r') == [
        "create", "/a", "x y", "p q", "world:anyone:r"]
    assert tokenize('set /a ""') == ["set", "/a", ""]
    acl, warnings = parse_acl("world:anyone:rq,bad,digest:u:h=:cd")
    assert [(a.perms, a.id.scheme, a.id.id) for a in acl] == [(1, "world", "anyone"),
                                                              (12, "digest", "u:h=")]
    assert warnings == ["Unknown perm type: q", "bad does not have the form scheme:id:perm"]
    assert path_error("a") == "Path must start with / character"
    assert path_error("/a/") == "Path must not end with / character"
    assert path_error("/a/", sequential=True) is None
    assert path_error("/a//b") == 'Invalid path string "/a//b" caused by empty node name ' \
                                  'specified @3'
    assert path_error("/a/../b") == 'Invalid path string "/a/../b" caused by relative paths ' \
                                    'not allowed @4'


def test_completion_candidates() -> None:
    tree = {"/": ["app", "apex", "zookeeper"], "/app": ["one", "two"]}

    def children(p: str) -> list[str]:
        return tree.get(p, [])

    assert complete("getAc", "getAc", children) == ["getAcl "]
    assert complete("get", "get", children) == ["get", "getAcl", "getAllChildrenNumber",
                                                "getEphemerals"]
    assert complete("ls /ap", "/ap", children) == ["/apex", "/app"]
    assert complete("ls /app/t", "/app/t", children) == ["/app/two"]
    assert complete("ls -", "-", children) == []
    assert complete("create /x da", "da", children) == []


def test_piped_session_prints_in_order(zk_server) -> None:
    """`echo ... | zkcli`, stdout and stderr into one pipe as a terminal shows them: each
    command's output in the order of the commands, a line each, as zkCli.sh prints it."""
    script = "create /x 1\nls /\nget /x\nget /missing\nset /x 2\nget /x\ndelete /x\nls /\n"
    for command in ([*SHELL, "-server", zk_server.hosts],
                    [sys.executable, "-m", "zkserver", "shell", "-server", zk_server.hosts]):
        r = subprocess.run(command, input=script, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, env=_env(), cwd=REPO)
        assert r.stdout.splitlines() == [
            "Created /x", "[x, zookeeper]", "1", "Node does not exist: /missing", "2",
            "[zookeeper]"], r.stdout
        assert r.returncode == 0
