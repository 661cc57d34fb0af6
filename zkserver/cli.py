"""The `zkserver` command.

    zkserver                          standalone server on 127.0.0.1:2181, data in ./zkdata
    zkserver PATH/zoo.cfg             a server from a standard ZooKeeper zoo.cfg
    zkserver dump-log FILE            print a transaction log segment
    zkserver dump-snapshot FILE [-d]  print a snapshot (-d: with data and ACLs)
    zkserver import-zookeeper ZK_DATA_DIR DATA_DIR
                                      import an Apache ZooKeeper data directory
    zkserver ensemble --size N        a local N-server ensemble for development
    zkserver shell [-server h:p] ...  the zkcli shell (also installed as `zkcli`)

SIGTERM and SIGINT stop the server cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import trio

from zkserver import __version__
from zkserver.config import Config, ConfigError, default_config, load_config, with_sasl
from zkserver.server.server import Server

log = logging.getLogger("zkserver")


async def run_server(config: Config) -> None:
    server = Server(config)
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


def _tool(argv: list[str]) -> int:
    from zkserver.storage import inspect
    from zkserver.storage.framing import CorruptFile

    parser = argparse.ArgumentParser(prog=f"zkserver {argv[0]}")
    parser.add_argument("file")
    parser.add_argument("-d", "--data", action="store_true", help="show data and ACLs")
    args = parser.parse_args(argv[1:])
    try:
        if argv[0] == "dump-log":
            lines = inspect.dump_log(args.file)
        else:
            lines = inspect.dump_snapshot(args.file, args.data)
        for line in lines:
            print(line)
    except (CorruptFile, OSError) as e:
        print(f"zkserver: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("dump-log", "dump-snapshot"):
        return _tool(argv)
    if argv and argv[0] == "import-zookeeper":
        from zkserver.migrate.importer import main as import_main
        return import_main(argv[1:])
    if argv and argv[0] == "ensemble":
        from zkserver.devensemble import main as ensemble_main
        return ensemble_main(argv[1:])
    if argv and argv[0] == "shell":
        from zkserver.shell.main import main as shell_main
        return shell_main(argv[1:])
    parser = argparse.ArgumentParser(prog="zkserver", description=__doc__.split("\n")[0])
    parser.add_argument("config", nargs="?", help="a ZooKeeper zoo.cfg (default: built-in)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--jaas-config", metavar="FILE",
                        help="JAAS file with the SASL `Server` section (instead of "
                             "-Djava.security.auth.login.config= in SERVER_JVMFLAGS/JVMFLAGS)")
    parser.add_argument("--version", action="version", version=f"zkserver {__version__}")
    args = parser.parse_args(argv)
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
    try:
        trio.run(run_server, config)
    except* OSError as group:
        for e in group.exceptions:
            print(f"zkserver: cannot serve: {e}", file=sys.stderr)
        failed = True
    return 1 if failed else 0
