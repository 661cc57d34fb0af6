"""`zkserver ensemble`: a local N-server ensemble in one command, for development.

    zkserver ensemble --size 3                  three servers on free loopback ports
    zkserver ensemble --size 5 --observers 2    three voters and two observers
    zkserver ensemble --size 3 --base-port 21000 --dir ./zkensemble
                                                client ports 21001-21003, data kept in ./zkensemble

Trying code against a real quorum (leader elections, follower reads, a server killed by hand)
should not take a page of zoo.cfg files. This writes one per server (`DIR/sI/zoo.cfg`, data in
`DIR/sI/data`, the server's output in `DIR/sI/server.log`), starts every server as a child
process, and prints each one's client address and mode as soon as it serves, then the
connection string; later mode changes and unexpected exits are printed as they happen. It stays
in the foreground until Ctrl-C or SIGTERM, then stops every server cleanly (SIGTERM, wait) and
exits 0.

Ports follow the test harness's layout (`ZkServerEnsemble`): client BASE+i, quorum BASE+100+i,
election BASE+200+i. Unlike the harness (tickTime 200 so tests run fast), the default tickTime is
ZooKeeper's usual 2000 ms, so timeouts behave as they would in production. Without `--dir` the
data lives in a temporary directory that is removed on exit.

The servers run in their own process groups, so a Ctrl-C at the terminal reaches only this
process, which then shuts them down in order instead of all at once; on Linux they also get
SIGTERM if this process dies without doing so.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import trio

SERVING_MODES = ("leader", "follower", "observer", "standalone")
POLL_INTERVAL = 0.1
STOP_TIMEOUT = 15.0


def free_port_base(n: int, extra: Callable[[int], Iterable[int]] | None = None) -> int:
    """A base port b such that b+1..b+n, b+101..b+100+n and b+201..b+200+n are all free now
    (an ensemble's client, quorum and election ports), and `extra(b)` too if given.

    Free now, not reserved: another process may take a port before the servers bind it, so a
    random base keeps two ensembles started at once from racing for the same block. The block
    lies below the kernel's ephemeral range: a port in it that is free now may become the local
    end of some outgoing connection (any process's) before the server binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, min(ephemeral_low, 32768) - 500)
        ports = [base + off + i for off in (0, 100, 200) for i in range(1, n + 1)]
        if extra is not None:
            ports += extra(base)
        socks = []
        try:
            for p in ports:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of ports")


class Member:
    """One server of the ensemble: its files, its process and what it last said its mode was."""

    def __init__(self, sid: int, base: Path, host: str, client_port: int) -> None:
        self.sid = sid
        self.dir = base / f"s{sid}"
        self.host = host
        self.client_port = client_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.mode: str | None = None
        self.reported_exit = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def config_path(self) -> Path:
        return self.dir / "zoo.cfg"

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    def write_config(self, lines: list[str], observer: bool) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "myid").write_text(f"{self.sid}\n")
        own = [f"dataDir={data}", f"clientPort={self.client_port}",
               f"clientPortAddress={self.host}"]
        if observer:
            own.append("peerType=observer")
        self.config_path.write_text("\n".join([*lines, *own]) + "\n")

    def start(self, log_level: str) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "zkserver", "--log-level", log_level,
                 str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the ensemble process dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def build(args: argparse.Namespace, base_dir: Path) -> list[Member]:
    """Write every member's zoo.cfg; the members, not started."""
    n, observers = args.size, args.observers
    base = args.base_port if args.base_port is not None else free_port_base(n)
    host = args.host
    members = [Member(i, base_dir, host, base + i) for i in range(1, n + 1)]
    servers = []
    for i in range(1, n + 1):
        role = ":observer" if i > n - observers else ""
        servers.append(f"server.{i}={host}:{base + 100 + i}:{base + 200 + i}{role}")
    common = [f"tickTime={args.tick_time}", "initLimit=10", "syncLimit=5",
              "admin.enableServer=false", "4lw.commands.whitelist=*", *servers, *args.set]
    for m in members:
        m.write_config(common, observer=m.sid > n - observers)
    return members


async def query_mode(host: str, port: int) -> str | None:
    """The server's `Mode:` from `srvr`, or None while it does not serve."""
    try:
        with trio.fail_after(1):
            stream = await trio.open_tcp_stream(host, port)
            async with stream:
                await stream.send_all(b"srvr")
                chunks = []
                while chunk := await stream.receive_some(4096):
                    chunks.append(chunk)
    except (OSError, trio.TooSlowError, trio.BrokenResourceError):
        return None
    for line in b"".join(chunks).decode(errors="replace").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


async def watch(members: list[Member]) -> None:
    """Print each member's mode when it first serves and whenever it changes, the connection
    string once all serve, and any member that exits on its own."""
    announced = False
    while True:
        for m in members:
            if m.proc is not None and m.proc.poll() is not None:
                if not m.reported_exit:
                    m.reported_exit = True
                    say(f"server.{m.sid} {m.address} exited with status {m.proc.returncode} "
                        f"(log: {m.log_path})")
                m.mode = None
                continue
            mode = await query_mode(m.host, m.client_port)
            serving = mode if mode in SERVING_MODES else None
            if serving != m.mode:
                if serving is not None and m.mode is None and not announced:
                    say(f"server.{m.sid} {m.address} {serving}")
                elif serving is not None:
                    say(f"server.{m.sid} {m.address} now {serving}")
                else:
                    say(f"server.{m.sid} {m.address} not serving")
                m.mode = serving
        if not announced and all(m.mode is not None for m in members):
            announced = True
            say("ensemble serving: " + ",".join(m.address for m in members))
        await trio.sleep(POLL_INTERVAL if not announced else 1.0)


def say(line: str) -> None:
    print(line, flush=True)


def stop(members: list[Member], timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM every running member, then wait for all (SIGKILL after `timeout`). True when each
    stopped on its own."""
    for m in members:
        if m.proc is not None and m.proc.poll() is None:
            m.proc.send_signal(signal.SIGTERM)
    clean = True
    for m in members:
        if m.proc is None:
            continue
        try:
            m.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            clean = False
            os.killpg(m.proc.pid, signal.SIGKILL)
            m.proc.wait()
    return clean


async def run(args: argparse.Namespace, base_dir: Path) -> int:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        members = build(args, base_dir)
        say(f"zkserver ensemble: {args.size} servers ({args.observers} observers), "
            f"tickTime {args.tick_time} ms, data in {base_dir}")
        try:
            for m in members:
                m.start(args.log_level)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, members)
                async for signum in signals:
                    say(f"received {signal.Signals(signum).name}, stopping the servers")
                    break
                nursery.cancel_scope.cancel()
        finally:
            clean = stop(members)
    say("all servers stopped" if clean else "some servers had to be killed")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zkserver ensemble",
        description="Run a local ZooKeeper-compatible ensemble in the foreground until Ctrl-C.")
    p.add_argument("--size", type=int, default=3, help="number of servers (default 3)")
    p.add_argument("--observers", type=int, default=0,
                   help="how many of them are observers (default 0)")
    p.add_argument("--base-port", type=int, default=None,
                   help="client ports BASE+1..BASE+N, quorum BASE+101.., election BASE+201.. "
                        "(default: a free block)")
    p.add_argument("--dir", default=None,
                   help="directory for the servers' configs, data and logs (default: a "
                        "temporary directory, removed on exit)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default loopback)")
    p.add_argument("--tick-time", type=int, default=2000, help="tickTime in ms (default 2000)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra zoo.cfg line for every server (repeatable)")
    p.add_argument("--log-level", default="INFO", help="the servers' log level")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.size < 1:
        print("zkserver ensemble: --size must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.observers < args.size:
        print("zkserver ensemble: --observers must leave at least one voting server",
              file=sys.stderr)
        return 2
    if args.size == 1:
        print("zkserver ensemble: one server is not an ensemble; run `zkserver` instead",
              file=sys.stderr)
        return 2
    for item in args.set:
        if "=" not in item:
            print(f"zkserver ensemble: --set needs KEY=VALUE, not {item!r}", file=sys.stderr)
            return 2
    if args.dir is not None:
        base_dir = Path(args.dir).resolve()
        base_dir.mkdir(parents=True, exist_ok=True)
        temporary = False
    else:
        base_dir = Path(tempfile.mkdtemp(prefix="zkensemble-"))
        temporary = True
    try:
        return trio.run(run, args, base_dir)
    finally:
        if temporary:
            shutil.rmtree(base_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
