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

Growing and shrinking it while it runs, from another terminal:

    zkserver ensemble add --dir DIR [--observer]     start server N+1 and reconfig it in
    zkserver ensemble remove --dir DIR ID            reconfig server ID out and stop it

The servers run with reconfigEnabled and a super user whose password this process draws at
random and keeps in `DIR/super.password` (so `zkcli` can `addauth digest super:PASSWORD` and
run `reconfig` itself). `add` and `remove` talk to the running process over the Unix socket
`DIR/control.sock`, because that process owns the servers: it starts the new member (its
zoo.cfg is the current configuration, read from `/zookeeper/config`, plus itself), sends the
reconfig and watches the member like the others; a removed member is stopped once the new
configuration has committed. One change at a time: a second waits for the first.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import trio

from zkserver import client
from zkserver.client import errors as client_errors

SERVING_MODES = ("leader", "follower", "observer", "standalone")
POLL_INTERVAL = 0.1
STOP_TIMEOUT = 15.0
JOIN_TIMEOUT = 120.0
CONTROL_SOCKET = "control.sock"
PASSWORD_FILE = "super.password"


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

    def __init__(self, sid: int, base: Path, host: str, port_base: int) -> None:
        self.sid = sid
        self.dir = base / f"s{sid}"
        self.host = host
        self.client_port = port_base + sid
        self.quorum_port = port_base + 100 + sid
        self.election_port = port_base + 200 + sid
        self.proc: subprocess.Popen[bytes] | None = None
        self.mode: str | None = None
        self.reported_exit = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.client_port}"

    def spec(self, observer: bool) -> str:
        """Its `server.N=` line, client address included, as a reconfig names a joiner."""
        role = "observer" if observer else "participant"
        return (f"server.{self.sid}={self.host}:{self.quorum_port}:{self.election_port}:{role};"
                f"{self.host}:{self.client_port}")

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


class Plan:
    """What every member shares: the port layout and the zoo.cfg lines besides `server.N`."""

    def __init__(self, args: argparse.Namespace, base_dir: Path, port_base: int,
                 password: str) -> None:
        self.base_dir = base_dir
        self.host = args.host
        self.port_base = port_base
        digest = base64.b64encode(hashlib.sha1(f"super:{password}".encode()).digest()).decode()
        self.common = [f"tickTime={args.tick_time}", "initLimit=10", "syncLimit=5",
                       "admin.enableServer=false", "4lw.commands.whitelist=*",
                       "reconfigEnabled=true",
                       f"DigestAuthenticationProvider.superDigest=super:{digest}", *args.set]
        self.password = password
        self.log_level = args.log_level


def build(args: argparse.Namespace, base_dir: Path) -> tuple[Plan, list[Member]]:
    """Write every member's zoo.cfg (and the super user's password); the members, not
    started."""
    n, observers = args.size, args.observers
    base = args.base_port if args.base_port is not None else free_port_base(n)
    password_file = base_dir / PASSWORD_FILE
    if password_file.exists():  # a kept --dir: its servers' dynamic configs name this one
        password = password_file.read_text().strip()
    else:
        password = secrets.token_hex(12)
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n")
    plan = Plan(args, base_dir, base, password)
    members = [Member(i, base_dir, args.host, base) for i in range(1, n + 1)]
    servers = []
    for m in members:
        role = ":observer" if m.sid > n - observers else ""
        servers.append(f"server.{m.sid}={m.host}:{m.quorum_port}:{m.election_port}{role}")
    for m in members:
        m.write_config([*plan.common, *servers], observer=m.sid > n - observers)
    return plan, members


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
        for m in list(members):  # `add` and `remove` change the list meanwhile
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
        plan, members = build(args, base_dir)
        say(f"zkserver ensemble: {args.size} servers ({args.observers} observers), "
            f"tickTime {args.tick_time} ms, data in {base_dir}")
        try:
            for m in members:
                m.start(args.log_level)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, members)
                control = Control(plan, members)
                await nursery.start(control.serve, base_dir / CONTROL_SOCKET)
                async for signum in signals:
                    say(f"received {signal.Signals(signum).name}, stopping the servers")
                    break
                nursery.cancel_scope.cancel()
        finally:
            clean = stop(members)
    say("all servers stopped" if clean else "some servers had to be killed")
    return 0


class Control:
    """Membership changes asked for over the control socket, one at a time. Each request is a
    line (`add participant`, `add observer`, `remove ID`); the answer is the lines to print,
    then `OK` or `FAILED`."""

    def __init__(self, plan: Plan, members: list[Member]) -> None:
        self.plan = plan
        self.members = members
        self.lock = trio.Lock()

    async def serve(self, path: Path, *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path.unlink(missing_ok=True)
        await sock.bind(str(path))
        sock.listen(8)
        try:
            task_status.started()
            await trio.serve_listeners(self.handle, [trio.SocketListener(sock)])
        finally:
            path.unlink(missing_ok=True)

    async def handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            request = b""
            with trio.move_on_after(10):
                while b"\n" not in request and len(request) < 1024:
                    chunk = await stream.receive_some(1024)
                    if not chunk:
                        break
                    request += chunk
            words = request.decode(errors="replace").split()

            async def reply(line: str) -> None:
                say(line)
                await stream.send_all(line.encode() + b"\n")

            try:
                async with self.lock:
                    ok = await self.change(words, reply)
                await stream.send_all(b"OK\n" if ok else b"FAILED\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the asking process went away; the change stands either way

    async def change(self, words: list[str], reply: Callable[[str], Awaitable[None]]) -> bool:
        try:
            if words[:1] == ["add"] and words[1:] in ([], ["participant"], ["observer"]):
                return await self.add(words[1:] == ["observer"], reply)
            if words[:1] == ["remove"] and len(words) == 2 and words[1].isdigit():
                return await self.remove(int(words[1]), reply)
            await reply(f"not a request: {' '.join(words)!r}")
        except client_errors.ZooKeeperError as e:
            await reply(f"reconfig failed: {type(e).__name__}")
        except (OSError, trio.TooSlowError) as e:
            await reply(f"failed: {e!r}")
        return False

    async def _reconfig(self, joining: str | None, leaving: str | None) -> bytes:
        """Send the change (or, with neither, read the configuration) through the members
        that stay: a removed server drops its clients when the change commits, which may be
        before its reply is sent. A connection lost all the same leaves the outcome unknown,
        so the configuration is read again to find out."""
        hosts = ",".join(m.address for m in self.members
                         if m.proc and m.proc.poll() is None and str(m.sid) != leaving)
        async with client.connect(hosts, connect_timeout=30, request_timeout=60) as zk:
            await zk.add_auth("digest", f"super:{self.plan.password}")
            if joining is None and leaving is None:
                return (await zk.get_config()).data or b""
            try:
                return (await zk.reconfig(joining=joining, leaving=leaving)).data or b""
            except client_errors.ConnectionLossError:
                data = (await zk.get_config()).data or b""
                lines = data.decode().splitlines()
                if joining is not None and joining in lines:
                    return data
                if leaving is not None and not any(
                        ln.startswith(f"server.{leaving}=") for ln in lines):
                    return data
                raise

    async def add(self, observer: bool, reply: Callable[[str], Awaitable[None]]) -> bool:
        sid = max(m.sid for m in self.members) + 1
        m = Member(sid, self.plan.base_dir, self.plan.host, self.plan.port_base)
        if m.dir.exists():
            await reply(f"{m.dir} exists already; remove it or start from another --dir")
            return False
        busy = [p for p in (m.client_port, m.quorum_port, m.election_port) if not _free(p)]
        if busy:
            await reply(f"server.{sid}'s ports are in use: {busy}")
            return False
        config = (await self._reconfig(None, None)).decode()
        servers = [ln for ln in config.splitlines() if ln.startswith("server.")]
        spec = m.spec(observer)
        m.write_config([*self.plan.common, *servers, spec], observer=observer)
        m.start(self.plan.log_level)
        self.members.append(m)
        await reply(f"server.{sid} {m.address} started; reconfig -add {spec}")
        data = await self._reconfig(spec, None)
        await reply("committed " + data.decode().splitlines()[-1])
        with trio.fail_after(JOIN_TIMEOUT):
            while await query_mode(m.host, m.client_port) not in SERVING_MODES:
                if m.proc is not None and m.proc.poll() is not None:
                    await reply(f"server.{sid} exited (log: {m.log_path})")
                    return False
                await trio.sleep(POLL_INTERVAL)
        await reply("ensemble: " + ",".join(x.address for x in self.members))
        return True

    async def remove(self, sid: int, reply: Callable[[str], Awaitable[None]]) -> bool:
        found = [m for m in self.members if m.sid == sid]
        if not found:
            await reply(f"no server.{sid} in this ensemble")
            return False
        data = await self._reconfig(None, str(sid))
        await reply("committed " + data.decode().splitlines()[-1])
        m = found[0]
        self.members.remove(m)
        await trio.to_thread.run_sync(stop, [m])
        await reply(f"server.{sid} {m.address} removed and stopped")
        await reply("ensemble: " + ",".join(x.address for x in self.members))
        return True


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ask(base_dir: Path, request: str) -> int:
    """`add` / `remove`: send the request to the ensemble running in `base_dir`, print what it
    answers; 0 when the change was made."""
    path = base_dir / CONTROL_SOCKET
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(path))
            s.sendall(request.encode() + b"\n")
            lines = s.makefile("r", encoding="utf-8").read().splitlines()
    except OSError as e:
        print(f"zkserver ensemble: no ensemble is running in {base_dir} ({path}: "
              f"{e.strerror})", file=sys.stderr)
        return 1
    for line in lines[:-1]:
        print(line, flush=True)
    return 0 if lines[-1:] == ["OK"] else 1


def change_parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"zkserver ensemble {command}",
        description="Add a server to a running `zkserver ensemble`: start it and reconfig it in."
        if command == "add" else
        "Remove a server from a running `zkserver ensemble`: reconfig it out and stop it.")
    p.add_argument("--dir", required=True,
                   help="the running ensemble's directory (its first output line names it)")
    if command == "add":
        p.add_argument("--observer", action="store_true",
                       help="add a non-voting observer (default: a voting participant)")
    else:
        p.add_argument("id", type=int, help="the server's id (server.ID)")
    return p


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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["add"], ["remove"]):
        command = argv[0]
        change = change_parser(command).parse_args(argv[1:])
        base_dir = Path(change.dir).resolve()
        if command == "add":
            return ask(base_dir, "add observer" if change.observer else "add participant")
        return ask(base_dir, f"remove {change.id}")
    args = parser().parse_args(argv)
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
