"""Drive the real ZooKeeper command-line clients from tests.

* `ZkCli`: the Java shell `zkCli.sh` (Debian's `zookeeper` package), in interactive mode
  through a pipe. Without a terminal it reads one command per line and prints no prompt, so
  every command is followed by a *marker* command whose answer we know
  (`get /zkcli-marker-N` -> `Node does not exist: /zkcli-marker-N`); the lines between two
  markers are the command's output.
* `CliMt`: the C client shell `cli_mt` (Debian's `zookeeper-bin`). It runs commands
  asynchronously and prints their completions as they arrive, so a test waits for the line it
  expects (`expect`).

Both merge stdout and stderr (zkCli prints results such as `Created /x` on stderr) and read the
output in a thread; every wait has a deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Sequence

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"

# Lines zkCli prints that are no command's output.
_ZKCLI_NOISE = re.compile(r"^(SLF4J: |Connecting to |Welcome to ZooKeeper!|JLine support is )")
_WATCHER_LINE = re.compile(r"^(WATCHER::|WatchedEvent )")


def zkcli_env() -> dict[str, str]:
    env = dict(os.environ)
    # A small JVM that starts quickly (the C1 compiler only).
    env.setdefault("CLIENT_JVMFLAGS", "-Xmx128m -XX:TieredStopAtLevel=1")
    return env


def run_zkcli(server: str, *command: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """One non-interactive zkCli.sh invocation: `zkCli.sh -server HOST:PORT cmd args...`."""
    return subprocess.run([ZKCLI, "-server", server, *command], capture_output=True, text=True,
                          timeout=timeout, env=zkcli_env(), stdin=subprocess.DEVNULL)


def zkcli_output(proc: subprocess.CompletedProcess) -> list[str]:
    """The lines a one-shot zkCli run printed for its command (stdout + stderr, noise removed)."""
    lines = (proc.stdout + proc.stderr).splitlines()
    return [line for line in lines
            if line.strip() and not _ZKCLI_NOISE.match(line) and not _WATCHER_LINE.match(line)]


class _LineCollector:
    """Reads a process's output lines in a thread; waits on them with deadlines."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def wait_for(self, pattern: str | re.Pattern, start: int = 0, timeout: float = 20.0
                 ) -> tuple[int, re.Match]:
        """The first line at index >= start matching `pattern` (re.search): (index, match)."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return i, m
                    i += 1
                if self.done:
                    raise AssertionError(
                        f"process ended before a line matched {rx.pattern!r}; output:\n"
                        + "\n".join(self.lines[-60:]))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no line matched {rx.pattern!r} within {timeout}s; output:\n"
                        + "\n".join(self.lines[-60:]))
                self.cond.wait(remaining)

    def snapshot(self) -> list[str]:
        with self.cond:
            return list(self.lines)


class _Interactive:
    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
        self.out = _LineCollector(self.proc)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    @property
    def lines(self) -> list[str]:
        return self.out.snapshot()

    def wait_for(self, pattern: str | re.Pattern, start: int = 0, timeout: float = 20.0
                 ) -> tuple[int, re.Match]:
        return self.out.wait_for(pattern, start, timeout)

    def close(self, quit_command: str = "quit", timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            try:
                self.send(quit_command)
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.thread.join(5)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class ZkCli(_Interactive):
    """An interactive zkCli.sh session over a pipe."""

    def __init__(self, server: str) -> None:
        super().__init__([ZKCLI, "-server", server], env=zkcli_env())
        self.cursor = 0
        self.markers = 0
        self.wait_for(r"WatchedEvent state:SyncConnected type:None path:null", timeout=60)

    def __enter__(self) -> ZkCli:
        return self

    def run(self, command: str, timeout: float = 20.0) -> list[str]:
        """Run one command; returns its output lines (watch events and blank lines left out)."""
        self.markers += 1
        marker = f"/zkcli-marker-{self.markers}"
        self.send(command)
        self.send(f"get {marker}")
        end, _ = self.wait_for(rf"^Node does not exist: {re.escape(marker)}$", self.cursor,
                               timeout)
        out = self.lines[self.cursor:end]
        self.cursor = end + 1
        return [line for line in out
                if line.strip() and not _WATCHER_LINE.match(line) and not _ZKCLI_NOISE.match(line)]

    def wait_event(self, etype: str, path: str, start: int = 0, timeout: float = 20.0) -> int:
        """Wait for `WatchedEvent state:SyncConnected type:<etype> path:<path>`."""
        i, _ = self.wait_for(
            rf"^WatchedEvent state:SyncConnected type:{etype} path:{re.escape(path)}$",
            start, timeout)
        return i

    def events(self) -> list[str]:
        return [line for line in self.lines if line.startswith("WatchedEvent ")]


class CliMt(_Interactive):
    """An interactive cli_mt (C client) session over a pipe."""

    def __init__(self, server: str) -> None:
        super().__init__([CLI_MT, server])
        self.cursor = 0
        self.wait_for(r"^Watcher SESSION_EVENT state = CONNECTED_STATE$", timeout=20)

    def __enter__(self) -> CliMt:
        return self

    def command(self, line: str) -> int:
        """Send a command; returns the output index from which its answer can appear."""
        start = len(self.lines)
        self.send(line)
        return start

    def expect(self, pattern: str, start: int | None = None, timeout: float = 20.0
               ) -> tuple[int, re.Match]:
        """Wait for a line matching `pattern` at or after `start` (default: the cursor)."""
        i, m = self.wait_for(pattern, self.cursor if start is None else start, timeout)
        self.cursor = max(self.cursor, i + 1)
        return i, m

    def block_after(self, index: int, last: str, timeout: float = 20.0) -> list[str]:
        """The lines after `index` up to and including the next one matching `last`.

        A completion prints several lines; they can arrive after its first line is seen."""
        end, _ = self.wait_for(last, index + 1, timeout)
        self.cursor = max(self.cursor, end + 1)
        return self.lines[index + 1:end + 1]
