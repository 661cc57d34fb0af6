"""`zkcli`: zkCli.sh's shell on zkserver's Trio client.

    zkcli [-server host:port[,host:port...][/chroot]] [-timeout ms] [-r]
                                  interactive: prompt, history, tab completion
    zkcli -server h:p CMD ARGS... run one command; exit status 0, 1 on error, 127 unknown
    zkcli -server h:p < script    one command per line from stdin (not a terminal); the exit
                                  status is the last command's, as with zkCli.sh

The commands, their options and their output are zkCli.sh's (see docs/shell.md); `help`
lists them.

The client is async and Trio owns the main thread, so the prompt is read by `input()` in a
worker thread (`trio.to_thread`), where GNU readline edits the line; its tab completer asks the
Trio side for child nodes with `trio.from_thread.run`. Watch events print while the prompt
waits, and the prompt is then drawn again with what was typed so far. Ctrl-D or `quit` leave;
Ctrl-C leaves at once (status 130), the session closed either way.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import trio

from zkserver.shell.commands import QuitShell, Shell, complete
from zkserver.shell.text import usage_lines

# Commands that need no server: a one-shot run of these does not connect.
_OFFLINE = {"help", "version", "history", "printwatches"}


class Options:
    """The command line, parsed as zkCli parses its own (`MyCommandOptions.parseOptions`)."""

    def __init__(self) -> None:
        self.server = "localhost:2181"
        self.timeout_ms = 30000
        self.read_only = False
        self.command: list[str] = []
        self.help = False


def parse_argv(argv: list[str]) -> Options:
    """Leading `-server`, `-timeout`, `-r`; the first other word starts the command. Unknown
    dashed words are skipped, as zkCli skips them."""
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in ("-server", "-timeout", "-client-configuration"):
            if i >= len(argv):
                raise SystemExit(f"Error: no argument found for option {arg}")
            value = argv[i]
            i += 1
            if arg == "-server":
                opts.server = value
            elif arg == "-timeout":
                try:
                    opts.timeout_ms = int(value)
                except ValueError:
                    raise SystemExit(f"Error: -timeout needs milliseconds, not {value!r}") from None
        elif arg == "-r":
            opts.read_only = True
        elif arg in ("-h", "-help", "--help"):
            opts.help = True
            break
        elif not arg.startswith("-"):
            opts.command = argv[i - 1:]
            break
    return opts


def _install_completion(shell: Shell) -> Any:
    """Set up readline's tab completion (commands, then znode paths); the readline module, or
    None where there is none."""
    try:
        import readline
    except ImportError:
        return None

    def children(parent: str) -> list[str]:
        return trio.from_thread.run(shell.complete_children, parent)

    matches: list[str] = []

    def completer(text: str, state: int) -> str | None:
        if state == 0:
            try:
                before = readline.get_line_buffer()[:readline.get_endidx()]
                matches[:] = complete(before, text, children)
            except Exception:  # noqa: BLE001 (a failing completion must not kill the prompt)
                matches[:] = []
        return matches[state] if state < len(matches) else None

    readline.set_completer(completer)
    readline.set_completer_delims(" \t\n")
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    return readline


async def _interactive(shell: Shell, server: str) -> int:
    shell.out(f"Connecting to {server}", "Welcome to ZooKeeper!")
    readline = _install_completion(shell)
    reading = False
    prompt = ""

    def async_output(text: str) -> None:
        # An event while the prompt waits: print it below, then draw the prompt again with
        # what was typed so far (readline keeps editing that same buffer).
        if reading:
            typed = readline.get_line_buffer() if readline is not None else ""
            text += prompt + typed
        shell.stdout.write(text)
        shell.stdout.flush()

    shell.async_output = async_output
    await shell.connect(server)
    while True:
        prompt = shell.prompt()
        reading = True
        try:
            line = await trio.to_thread.run_sync(input, prompt, abandon_on_cancel=True)
        except EOFError:
            shell.out("")
            break
        finally:
            reading = False
        try:
            await shell.execute_line(line)
        except QuitShell:
            break
    return shell.status


async def _piped(shell: Shell, server: str) -> int:
    await shell.connect(server)
    while True:
        line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            break
        try:
            await shell.execute_line(line.rstrip("\r\n"))
        except QuitShell:
            break
    return shell.status


async def _one_shot(shell: Shell, server: str, command: list[str]) -> int:
    if command[0] not in _OFFLINE and not await shell.connect(server):
        return 1
    shell.history[0] = " ".join(command)
    try:
        return await shell.process(command)
    except QuitShell:
        return 0


async def run(opts: Options, interactive: bool) -> int:
    """The shell in one Trio run: the chosen front end, then the session closed.

    Ctrl-C cancels the front end (status 130). It is taken as a signal here rather than as
    Trio's KeyboardInterrupt, which lands in whatever task runs when it arrives: in the
    client's connection task it broke the connection the session's close then waited on, and
    the shell hung for the request timeout (tests/shell: once in a CI run)."""
    front: Callable[..., Any]
    status = 130
    with trio.open_signal_receiver(signal.SIGINT) as interrupts:
        async with trio.open_nursery() as nursery:
            shell = Shell(nursery, opts.server, timeout_ms=opts.timeout_ms,
                          read_only=opts.read_only, interactive=interactive)
            try:
                with trio.CancelScope() as scope:
                    nursery.start_soon(_cancel_on_first, interrupts, scope)
                    if opts.command:
                        status = await _one_shot(shell, opts.server, opts.command)
                    else:
                        front = _interactive if interactive else _piped
                        status = await front(shell, opts.server)
            finally:
                with trio.CancelScope(shield=True):
                    await shell.disconnect(announce=False)
                nursery.cancel_scope.cancel()  # the Ctrl-C watcher
    return status


async def _cancel_on_first(interrupts: Any, scope: trio.CancelScope) -> None:
    async for _ in interrupts:
        scope.cancel()
        return


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for e in error.exceptions for leaf in _leaves(e)]
    return [error]


OPTIONS = """\
usage: {prog} [-server host:port[,host:port...][/chroot]] [-timeout ms] [-r] [COMMAND ARGS...]

The zkCli.sh shell on zkserver's client, for zkserver or Apache ZooKeeper. With a command it runs
that one and exits (status 0, 1 on error, 127 for an unknown command); without one it reads
commands from stdin, a prompt with history and completion on a terminal, or one command a line
from a pipe or file, each command's output printed in order as zkCli.sh prints it.

options:
  -server HOSTS   where to connect (default localhost:2181); a /chroot may end the list
  -timeout MS     session timeout in milliseconds (default 30000)
  -r              read-only mode: connect to a server that lost its quorum
  -h, --help      this help, then the commands

commands:"""


def main(argv: list[str] | None = None, prog: str = "zkcli") -> int:
    opts = parse_argv(sys.argv[1:] if argv is None else argv)
    if opts.help:
        print(OPTIONS.format(prog=prog))
        print("\n".join(usage_lines()[1:]))
        return 0
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    interactive = not opts.command and sys.stdin.isatty()
    saved = _save_terminal() if interactive else None
    try:
        return trio.run(run, opts, interactive)
    except BaseException as error:
        leaves = _leaves(error)
        if any(isinstance(e, KeyboardInterrupt) for e in leaves):
            return 130
        if all(isinstance(e, BrokenPipeError) for e in leaves):
            # The reader went away (`zkcli ... | head`): say nothing more.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except OSError:
                pass
            return 1
        raise
    finally:
        if saved is not None:
            _restore_terminal(saved)


def _save_terminal() -> Any:
    """The terminal's settings, to put back if Ctrl-C leaves readline mid-line (its thread is
    abandoned, so it never restores them itself)."""
    try:
        import termios

        return termios.tcgetattr(sys.stdin.fileno())
    except (ImportError, OSError, ValueError):
        return None


def _restore_terminal(saved: Any) -> None:
    try:
        import termios

        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
    except (ImportError, OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
