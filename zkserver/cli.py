"""The `zkserver` command: run a server, or one of the tools that `zkserver --help` lists.

    zkserver                          standalone server on 127.0.0.1:2181, data in ./zkdata
    zkserver PATH/zoo.cfg             a server from a standard ZooKeeper zoo.cfg
    zkserver COMMAND [ARGS...]        a tool; `zkserver COMMAND --help` describes it

The tools live in `COMMANDS`, one line of help each, and each parses its own arguments (so that
`zkserver shell` takes exactly what `zkcli` takes). A tool's module is imported only when it
runs.

SIGTERM and SIGINT stop the server cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import textwrap
from collections.abc import Callable

import trio

from zkserver import __version__, progress
from zkserver.config import Config, ConfigError, default_config, load_config, with_sasl
from zkserver.server.server import Server

log = logging.getLogger("zkserver")


async def run_server(config: Config) -> None:
    # A long log to replay shows its progress on a terminal.
    bars = progress.for_terminal()
    # The recovered tree is most of what this process will hold, for as long as it runs. The
    # cyclic collector ran about ten full collections per million znodes while it loaded (a
    # third of the load), and would scan it again in every full collection after (0.3 s per
    # million znodes, the event loop stopped). So it is loaded with the collector off, and
    # then frozen: full collections skip it. Its nodes are still freed when deleted (by
    # reference counting: a node is in no cycle).
    gc.disable()
    try:
        server = Server(config, progress=bars)
    finally:
        gc.enable()
    gc.freeze()
    if bars is not None:
        bars.close()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            where = ", ".join(f"{h}:{p}" for h, p in server.addresses)
            print(f"zkserver {__version__} listening on {where} (data in {config.data_dir})",
                  flush=True)
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def _leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside nested groups (a port in use is one, however deep its nursery)."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for e in error.exceptions for leaf in _leaves(e)]
    return [error]


def _dump(name: str, argv: list[str]) -> int:
    from zkserver.storage import inspect
    from zkserver.storage.framing import CorruptFile

    what = "transaction log segment" if name == "dump-log" else "snapshot"
    parser = argparse.ArgumentParser(
        prog=f"zkserver {name}",
        description=f"Print a zkserver {what} (a file under <dataDir>/zkserver/ or "
                    f"<dataLogDir>/zkserver/) as text, one record a line.")
    parser.add_argument("file", help=f"the {what} file")
    if name == "dump-snapshot":
        parser.add_argument("-d", "--data", action="store_true", help="show data and ACLs")
    args = parser.parse_args(argv)
    try:
        if name == "dump-log":
            lines = inspect.dump_log(args.file)
        else:
            lines = inspect.dump_snapshot(args.file, args.data)
        # Lines counted on stderr while stdout goes to a file or a pipe.
        bars = progress.for_terminal() if not sys.stdout.isatty() else None
        what = f"dumping {os.path.basename(args.file)}"
        for i, line in enumerate(lines, 1):
            print(line)
            if bars is not None and i % 10_000 == 0:
                bars(what, i, None)
        if bars is not None:
            bars.close()
    except (CorruptFile, OSError) as e:
        print(f"zkserver: {e}", file=sys.stderr)
        return 1
    return 0


def _import_zookeeper(argv: list[str]) -> int:
    from zkserver.migrate.importer import main as import_main

    return import_main(argv)


def _ensemble(argv: list[str]) -> int:
    from zkserver.devensemble import main as ensemble_main

    return ensemble_main(argv)


def _shell(argv: list[str]) -> int:
    from zkserver.shell.main import main as shell_main

    return shell_main(argv, prog="zkserver shell")


# name -> (its line in `zkserver --help`, its main, given the arguments after the name)
COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "ensemble": ("run a local ensemble of N servers until Ctrl-C; prints the connection "
                 "string", _ensemble),
    "shell": ("the zkCli.sh-compatible shell (also installed as `zkcli`)", _shell),
    "dump-log": ("print a transaction log segment", lambda argv: _dump("dump-log", argv)),
    "dump-snapshot": ("print a snapshot (-d: with data and ACLs)",
                      lambda argv: _dump("dump-snapshot", argv)),
    "import-zookeeper": ("import an Apache ZooKeeper data directory (snapshots and logs)",
                         _import_zookeeper),
}


def parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in COMMANDS) + 2
    commands = "\n".join(f"  {name:<{width}}{line}" for name, (line, _) in COMMANDS.items())
    p = argparse.ArgumentParser(
        prog="zkserver",
        usage="zkserver [--log-level LEVEL] [zoo.cfg]\n       zkserver COMMAND [ARGS...]",
        description=textwrap.fill(
            "A ZooKeeper-compatible coordination service. Without a command it runs a server: "
            "from a standard zoo.cfg, or standalone on 127.0.0.1:2181 with its data in "
            "./zkdata.", 79),
        epilog=f"commands:\n{commands}\n\n`zkserver COMMAND --help` describes each command. "
               "SIGTERM or Ctrl-C stops a server cleanly.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="a ZooKeeper zoo.cfg (default: built-in)")
    p.add_argument("--log-level", default="INFO", metavar="LEVEL",
                   help="DEBUG, INFO (the default), WARNING or ERROR")
    p.add_argument("--jaas-config", metavar="FILE",
                   help="JAAS file with the SASL `Server` section (instead of "
                        "-Djava.security.auth.login.config= in SERVER_JVMFLAGS/JVMFLAGS)")
    p.add_argument("--version", action="version", version=f"zkserver {__version__}")
    return p


# How long a thread waiting for the interpreter lock lets the running one keep it (Python's
# default is 5 ms). The log's thread takes the lock back after every write and every sync;
# while the event loop is busy each of those waited up to 5 ms, so a busy server's group-commit
# round took 15 ms or more on top of its fsync. Standalone setData, 8 x 64 in flight, at load
# 5-7: 8,683-11,328 writes/s at 5 ms, 13,941-29,696 at 1 ms.
SWITCH_INTERVAL_S = 0.001

# When the cyclic collector runs (gc.set_threshold): a young collection once 50,000 more
# tracked objects live than at the last one, instead of Python's 700. A server holds every
# request in flight (8 sessions x 64 pipelined is 512 requests, several objects each) for a
# group-commit round, so at 700 nearly every young collection found them alive, scanned them
# and promoted them to the older generations, and those promotions triggered full collections
# of the growing tree. Standalone creates, 8 x 64: the collector took 8.2% of the server's CPU
# (py-spy), 0.9% with these; 39,501 / 40,346 / 39,526 creates/s against 43,110 / 44,186 /
# 44,813, alternating, with p99 36-56 ms against 20-25. Reads, setData and mixed did not move.
# A young collection now scans up to 50,000 objects at once: 5-6.5 ms, measured alone.
COLLECTOR_THRESHOLDS = (50_000, 20, 20)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]][1](argv[1:])
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.config:
            config = load_config(args.config, jaas_file=args.jaas_config)
        else:
            config = with_sasl(default_config(), os.environ, args.jaas_config)
    except ConfigError as e:
        print(f"zkserver: {e}", file=sys.stderr)
        return 2
    for warning in config.warnings:
        log.warning("%s", warning)
    failed = False
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    try:
        trio.run(run_server, config)
    except* OSError as group:
        for e in _leaves(group):
            print(f"zkserver: cannot serve: {e}", file=sys.stderr)
        failed = True
    return 1 if failed else 0
