"""The shell proper: one session at a time, and zkCli.sh's commands on it.

`Shell` owns the session in a task of its own (`client.connect()` is an async context manager,
and `connect`/`close` must be able to end one session and open another while the shell goes
on), plus one small task per watch it has set: zkCli hands every watch to one default watcher
that prints `WATCHER::` lines whenever an event comes, so the shell awaits each watch in the
background and prints its event as it arrives, between prompts if need be.

The Java default watcher is one object held in sets, so an event that fires several of the
shell's watches at once (a deletion seen by a data and a child watch) prints once; the shell
gets the same by printing a (type, path, zxid) only once.

Output goes where zkCli sends it, so scripts that split the streams keep working: results on
stdout, and `Created /x`, warnings and errors on stderr. Every command returns an exit status
(0, 1 on failure, 127 for an unknown command), which the non-interactive forms exit with.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

import trio

from zkserver import __version__, client
from zkserver.client import errors as E
from zkserver.client.states import State
from zkserver.client.watches import PersistentWatch, Watch, WatchKind
from zkserver.proto.codes import CreateMode, EventType, KeeperState
from zkserver.proto.records import OPEN_ACL_UNSAFE
from zkserver.shell.text import (
    MAX_TTL_MS,
    USAGE,
    UsageError,
    acl_lines,
    child_path,
    cli_message,
    client_config,
    command_usage,
    error_code,
    event_lines,
    int_option,
    keeper_message,
    members_from_file,
    parse_acl,
    parse_options,
    parse_reconfig,
    path_error,
    stat_lines,
    tokenize,
    usage_lines,
)

COMMANDS = sorted(USAGE)

# What the prompt shows, in the Java client's `ZooKeeper.States` words.
_PROMPT_STATES = {
    State.CONNECTING: "CONNECTING",
    State.CONNECTED: "CONNECTED",
    State.READ_ONLY: "CONNECTEDREADONLY",
    State.SUSPENDED: "CONNECTING",
    State.EXPIRED: "CLOSED",
    State.AUTH_FAILED: "AUTH_FAILED",
    State.CLOSED: "CLOSED",
}
# Connection changes as the default watcher reports them.
_STATE_EVENTS = {
    State.CONNECTED: KeeperState.SYNC_CONNECTED,
    State.READ_ONLY: KeeperState.CONNECTED_READ_ONLY,
    State.SUSPENDED: KeeperState.DISCONNECTED,
    State.EXPIRED: KeeperState.EXPIRED,
    State.AUTH_FAILED: KeeperState.AUTH_FAILED,
    State.CLOSED: KeeperState.CLOSED,
}
_DATA_KINDS = frozenset({WatchKind.DATA, WatchKind.EXIST})
_CHILD_KINDS = frozenset({WatchKind.CHILD})


class QuitShell(Exception):
    """`quit`: leave the shell with the status of the command before it, as zkCli does."""


class CommandFailed(Exception):
    """A command failed; `lines` go to stderr and the command's status is `code`."""

    def __init__(self, *lines: str, code: int = 1) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        self.code = code


Handler = Callable[[list[str]], Awaitable[int | None]]


class Shell:
    """zkCli's command interpreter over the Trio client.

    `nursery` hosts the session task; `interactive` adds what only a person at a terminal
    wants (connection-state events). `async_output`, when set, is called with text that arrives
    between commands (watch events) so a front end can redraw its prompt around it."""

    def __init__(self, nursery: trio.Nursery, server: str = "localhost:2181", *,
                 timeout_ms: int = 30000, read_only: bool = False, interactive: bool = False,
                 stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self._nursery = nursery
        self.host = server
        self.timeout = max(timeout_ms, 1) / 1000
        self.read_only = read_only
        self.interactive = interactive
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.zk: client.Client | None = None
        self.history: dict[int, str] = {}
        self.count = 0
        self.status = 0
        self.print_watches = True
        self.async_output: Callable[[str], None] | None = None
        self._session_scope: trio.CancelScope | None = None
        self._session_done: trio.Event | None = None
        self._watch_nursery: trio.Nursery | None = None
        self._one_time: list[Watch] = []
        self._persistent: list[PersistentWatch] = []
        self._printed: deque[tuple[int, str | None, int]] = deque(maxlen=256)
        self._handlers: dict[str, Handler] = {
            "addWatch": self.cmd_add_watch, "addauth": self.cmd_addauth,
            "close": self.cmd_close, "config": self.cmd_config, "create": self.cmd_create,
            "delete": self.cmd_delete, "deleteall": self.cmd_deleteall, "rmr": self.cmd_deleteall,
            "get": self.cmd_get, "getAcl": self.cmd_get_acl,
            "getAllChildrenNumber": self.cmd_all_children,
            "getEphemerals": self.cmd_ephemerals, "ls": self.cmd_ls,
            "reconfig": self.cmd_reconfig, "removewatches": self.cmd_removewatches,
            "set": self.cmd_set,
            "setAcl": self.cmd_set_acl, "stat": self.cmd_stat, "sync": self.cmd_sync,
            "whoami": self.cmd_whoami,
        }

    # -- output ---------------------------------------------------------------------------------

    def out(self, *lines: str) -> None:
        for line in lines:
            self.stdout.write(line + "\n")
        self.stdout.flush()

    def err(self, *lines: str) -> None:
        self.stdout.flush()
        for line in lines:
            self.stderr.write(line + "\n")
        self.stderr.flush()

    def _emit(self, lines: Sequence[str]) -> None:
        """Print lines that arrive on their own (watch and connection events)."""
        text = "".join(line + "\n" for line in lines)
        if self.async_output is not None:
            self.async_output(text)
        else:
            self.stdout.write(text)
            self.stdout.flush()

    def _emit_state(self, state: KeeperState) -> None:
        if self.print_watches and self.interactive:
            self._emit(event_lines(EventType.NONE, state, None))

    def _emit_event(self, event: client.WatchedEvent) -> None:
        if event.type == EventType.NONE or not self.print_watches:
            return
        key = (int(event.type), event.path, event.zxid)
        if event.zxid != -1:
            if key in self._printed:
                return
            self._printed.append(key)
        self._emit(event_lines(event.type, event.state, event.path))

    # -- the session ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a session is open (connected, or reconnecting): zkCli's `isAlive()`."""
        return (self.zk is not None and self._session_scope is not None
                and not self.zk.state.terminal)

    def prompt(self) -> str:
        if self.zk is None or self._session_scope is None:
            state = "CLOSED"
        else:
            state = _PROMPT_STATES[self.zk.state]
        return f"[zk: {self.host}({state}) {self.count}] "

    async def connect(self, hosts: str) -> bool:
        """Close the current session, if any, and open one with `hosts`. False (with the reason
        on stderr) if no session could be established within the timeout."""
        await self.disconnect()
        self.host = hosts
        try:
            await self._nursery.start(self._session, hosts)
        except Exception as e:  # noqa: BLE001 (any failure to connect is reported, not raised)
            self.err(f"Unable to connect to {hosts}: {e}")
            return False
        assert self.zk is not None
        self._emit_state(_STATE_EVENTS.get(self.zk.state, KeeperState.SYNC_CONNECTED))
        return True

    async def disconnect(self, announce: bool = True) -> None:
        """Close the session (its ephemerals go) and forget its watches."""
        scope, done = self._session_scope, self._session_done
        if scope is None or done is None:
            return
        alive = self.zk is not None and not self.zk.state.terminal
        self._session_scope = None
        scope.cancel()
        await done.wait()
        if announce and alive:
            self._emit_state(KeeperState.CLOSED)

    async def _session(self, hosts: str, *,
                       task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        done = self._session_done = trio.Event()
        try:
            async with client.connect(hosts, session_timeout=self.timeout,
                                      connect_timeout=self.timeout,
                                      request_timeout=self.timeout,
                                      can_be_read_only=self.read_only) as zk:
                with trio.CancelScope() as scope:
                    async with trio.open_nursery() as watchers:
                        self.zk = zk
                        self._session_scope = scope
                        self._watch_nursery = watchers
                        watchers.start_soon(self._follow_states, zk)
                        task_status.started()
                        await trio.sleep_forever()
        finally:
            self._watch_nursery = None
            self._one_time.clear()
            self._persistent.clear()
            done.set()

    async def _follow_states(self, zk: client.Client) -> None:
        async with zk.states() as states:
            first = True
            async for state in states:
                if not first and state in _STATE_EVENTS:
                    self._emit_state(_STATE_EVENTS[state])
                first = False

    # -- watches --------------------------------------------------------------------------------

    def _track(self, watch: Watch) -> None:
        if self._watch_nursery is None:
            return
        self._one_time.append(watch)
        self._watch_nursery.start_soon(self._await_watch, watch)

    async def _await_watch(self, watch: Watch) -> None:
        try:
            event = await watch
        except E.ZooKeeperError:
            return
        finally:
            if watch in self._one_time:
                self._one_time.remove(watch)
        # A removal is announced once by `removewatches` itself, like the Java default watcher.
        if event.type not in (EventType.DATA_WATCH_REMOVED, EventType.CHILD_WATCH_REMOVED):
            self._emit_event(event)

    async def _pump(self, pw: PersistentWatch) -> None:
        try:
            async for event in pw:
                self._emit_event(event)
        except E.ZooKeeperError:
            pass

    # -- reading and running commands -----------------------------------------------------------

    async def execute_line(self, line: str) -> None:
        """Run one line typed at the prompt (or read from stdin); blank lines do nothing."""
        args = tokenize(line)
        if not args:
            return
        self.history[self.count] = line
        try:
            self.status = await self.process(args)
        finally:
            self.count += 1

    async def process(self, args: list[str]) -> int:
        """Run one command (name first); returns its exit status. Raises `QuitShell`."""
        cmd = args[0]
        if cmd not in USAGE:
            self.err(*usage_lines(), f"Command not found: Command not found {cmd}")
            return 127
        if cmd == "quit":
            raise QuitShell
        if cmd == "redo":
            return await self._redo(args)
        if cmd == "history":
            for i in range(max(self.count - 10, 0), self.count + 1):
                self.out(f"{i} - {self.history.get(i)}")
            return 0
        if cmd == "printwatches":
            if len(args) == 1:
                self.out(f"printwatches is {'on' if self.print_watches else 'off'}")
            else:
                self.print_watches = args[1] == "on"
            return 0
        if cmd == "help":
            self.out(*usage_lines())
            return 0
        if cmd == "version":
            self.out(f"ZooKeeper CLI version: zkserver {__version__} (zkcli)")
            return 0
        if cmd == "connect":
            return 0 if await self.connect(args[1] if len(args) > 1 else self.host) else 1
        if not self.connected:
            self.out("Not connected")
            return 1
        try:
            return await self._handlers[cmd](args) or 0
        except UsageError as e:
            self.err(str(e))
        except CommandFailed as e:
            self.err(*e.lines)
            return e.code
        except E.ZooKeeperError as e:
            self.err(cli_message(e))
        except ValueError as e:  # an argument the client refuses before sending
            self.err(str(e))
        return 1

    async def _redo(self, args: list[str]) -> int:
        if len(args) < 2:
            return 0  # zkCli ignores a bare `redo`
        try:
            index = int(args[1], 0)
        except ValueError:
            index = -1
        if index < 0 or index >= self.count:
            self.err("Command index out of range")
            return 1
        line = self.history[index]
        again = tokenize(line)
        if again[0] == "redo":
            self.err("No redoing redos")
            return 1
        self.history[self.count] = line
        return await self.process(again)

    # -- helpers for the commands -----------------------------------------------------------------

    @property
    def _zk(self) -> client.Client:
        assert self.zk is not None
        return self.zk

    @staticmethod
    def _check_path(path: str, sequential: bool = False) -> str:
        problem = path_error(path, sequential)
        if problem is not None:
            raise CommandFailed(problem)
        return path

    def _deprecated(self, name: str, old: str, new: str) -> None:
        self.err(f"'{name} {old}' has been deprecated. Please use '{name} {new}' instead.")

    async def _get(self, path: str, watch: bool) -> client.NodeData:
        if watch:
            data, stat, w = await self._zk.get(path, watch=True)
            self._track(w)
            return client.NodeData(data, stat)
        return await self._zk.get(path)

    async def _children(self, path: str, watch: bool) -> client.Children:
        if watch:
            children, stat, w = await self._zk.get_children(path, watch=True)
            self._track(w)
            return client.Children(children, stat)
        return await self._zk.get_children(path)

    async def _visit(self, path: str, watch: bool,
                     visit: Callable[[str], Awaitable[None]]) -> None:
        """`ZKUtil.visitSubTreeDFS`: the node (read first, so a missing one fails), then each
        node's children in name order before any grandchild, depth first. Children that vanish
        meanwhile are skipped. An explicit stack keeps deep trees off Python's recursion limit."""
        await self._get(path, watch)
        await visit(path)
        stack = [path]
        while stack:
            node = stack.pop()
            try:
                children = sorted((await self._children(node, watch)).children)
            except E.NoNodeError:
                continue
            paths = [child_path(node, c) for c in children]
            for p in paths:
                await visit(p)
            stack.extend(reversed(paths))

    async def complete_children(self, parent: str) -> list[str]:
        """Child names of `parent` for tab completion; nothing if it cannot be listed quickly."""
        if not self.connected or path_error(parent) is not None:
            return []
        with trio.move_on_after(2):
            try:
                return list((await self._zk.get_children(parent)).children)
            except (E.ZooKeeperError, ValueError):
                return []
        return []

    # -- the commands -----------------------------------------------------------------------------

    async def cmd_ls(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "swR?")
        if len(pos) > 2:
            self._deprecated("ls", "path [watch]", "[-w] path")
            opts["w"] = True
        if len(pos) < 2:
            raise UsageError(command_usage("ls"))
        path = self._check_path(pos[1])
        watch = "w" in opts
        if "R" in opts:
            async def show(p: str) -> None:
                self.out(p)

            await self._visit(path, watch, show)
            return
        children, stat = await self._children(path, watch)
        self.out("[" + ", ".join(sorted(children)) + "]")
        if "s" in opts and stat is not None:
            self.out(*stat_lines(stat))

    async def cmd_get(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "sw")
        if len(pos) < 2:
            raise UsageError(command_usage("get"))
        if len(pos) > 2:
            self._deprecated("get", "path [watch]", "[-s] [-w] path")
            opts["w"] = True
        path = self._check_path(pos[1])
        data, stat = await self._get(path, "w" in opts)
        self.out("null" if data is None else data.decode("utf-8", "replace"))
        if "s" in opts:
            self.out(*stat_lines(stat))

    async def cmd_set(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "s", "v")
        if len(pos) < 3:
            raise UsageError(command_usage("set"))
        version = int_option(opts["v"], "v") if "v" in opts else -1
        path = self._check_path(pos[1])
        stat = await self._zk.set(path, pos[2].encode(), version)
        if "s" in opts:
            self.out(*stat_lines(stat))

    async def cmd_create(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "esc", "t")
        if len(pos) < 2:
            raise UsageError(command_usage("create"))
        e, s, c, t = ("e" in opts), ("s" in opts), ("c" in opts), ("t" in opts)
        if c and (e or s):
            raise CommandFailed("-c cannot be combined with -s or -e. Containers cannot be "
                                "ephemeral or sequential.")
        ttl = int_option(opts["t"], "t", "a long") if t else 0
        if t and e:
            raise CommandFailed("TTLs cannot be used with Ephemeral znodes")
        if t and c:
            raise CommandFailed("TTLs cannot be used with Container znodes")
        if e:
            mode = CreateMode.EPHEMERAL_SEQUENTIAL if s else CreateMode.EPHEMERAL
        elif s:
            mode = CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL if t else \
                CreateMode.PERSISTENT_SEQUENTIAL
        elif c:
            mode = CreateMode.CONTAINER
        else:
            mode = CreateMode.PERSISTENT_WITH_TTL if t else CreateMode.PERSISTENT
        if t and not 0 < ttl <= MAX_TTL_MS:
            raise CommandFailed(f"ttl must be positive and cannot be larger than: {MAX_TTL_MS}")
        data = pos[2].encode() if len(pos) > 2 else None
        acl = OPEN_ACL_UNSAFE
        if len(pos) > 3:
            acl, warnings = parse_acl(pos[3])
            self.err(*warnings)
        path = self._check_path(pos[1], mode.sequential)
        if not acl:
            raise CommandFailed("KeeperErrorCode = InvalidACL", "Acl is not valid : null")
        try:
            created = await self._zk.create(path, data, acl=acl, mode=mode,
                                            ttl=ttl if t else None)
        except E.EphemeralOnLocalSessionError:
            self.err("Unable to create ephemeral node on a local session")
            raise
        except E.InvalidACLError as ex:
            self.err(keeper_message(ex))
            raise
        self.err(f"Created {created}")

    async def cmd_delete(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "", "v")
        if len(pos) < 2:
            raise UsageError(command_usage("delete"))
        if len(pos) > 2:
            self._deprecated("delete", "path [version]", "[-v version] path")
        version = int_option(opts["v"], "v") if "v" in opts else -1
        await self._zk.delete(self._check_path(pos[1]), version)

    async def cmd_deleteall(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "", "b")
        if len(pos) < 2:
            raise UsageError(command_usage(args[0]))
        if args[0] == "rmr":
            self.err("The command 'rmr' has been deprecated. Please use 'deleteall' instead.")
        batch = int_option(opts["b"], "b") if "b" in opts else 1000
        root = self._check_path(pos[1])
        # `ZKUtil.deleteRecursive`: list the tree breadth first, delete it deepest first, in
        # multis of `batch` deletes (one by one if batch <= 0).
        tree = [root]
        i = 0
        while i < len(tree):
            node = tree[i]
            i += 1
            tree.extend(child_path(node, c) for c in (await self._zk.get_children(node)).children)
        if batch <= 0:
            for p in reversed(tree):
                await self._zk.delete(p)
            return
        ops: list[str] = []
        for n, p in enumerate(reversed(tree)):
            ops.append(p)
            if len(ops) == batch or n == len(tree) - 1:
                txn = self._zk.transaction()
                for q in ops:
                    txn.delete(q)
                try:
                    await txn.commit()
                except E.ZooKeeperError:
                    raise CommandFailed("Failed to delete some node(s) in the subtree!") from None
                ops = []

    async def cmd_stat(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "w")
        if len(pos) < 2:
            raise UsageError(command_usage("stat"))
        if len(pos) > 2:
            self._deprecated("stat", "path [watch]", "[-w] path")
            opts["w"] = True
        path = self._check_path(pos[1])
        if "w" in opts:
            stat, w = await self._zk.exists(path, watch=True)
            self._track(w)
        else:
            stat = await self._zk.exists(path)
        if stat is None:
            raise E.NoNodeError(path=path)
        self.out(*stat_lines(stat))

    async def cmd_get_acl(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "s")
        if len(pos) < 2:
            raise UsageError(command_usage("getAcl"))
        acl, stat = await self._zk.get_acl(self._check_path(pos[1]))
        self.out(*acl_lines(acl))
        if "s" in opts:
            self.out(*stat_lines(stat))

    async def cmd_set_acl(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "sR", "v")
        if len(pos) < 3:
            raise UsageError(command_usage("setAcl"))
        acl, warnings = parse_acl(pos[2])
        self.err(*warnings)
        version = int_option(opts["v"], "v") if "v" in opts else -1
        path = self._check_path(pos[1])
        if not acl:
            raise CommandFailed("Acl is not valid : null")
        zk = self._zk
        if "R" in opts:
            failed = False

            async def set_one(p: str) -> None:
                nonlocal failed
                try:
                    await zk.set_acl(p, acl, version)
                except E.ZooKeeperError as ex:
                    # zkCli prints these without a line break; one per line reads better.
                    self.out(keeper_message(ex, p))
                    failed = True

            await self._visit(path, False, set_one)
            if failed:
                raise CommandFailed()
            return
        stat = await zk.set_acl(path, acl, version)
        if "s" in opts:
            self.out(*stat_lines(stat))

    async def cmd_addauth(self, args: list[str]) -> None:
        if len(args) < 2:
            raise UsageError(command_usage("addauth"))
        zk = self._zk
        try:
            await zk.add_auth(args[1], args[2].encode() if len(args) > 2 else b"")
        except E.AuthFailedError:
            # The server drops the connection after refusing credentials. zkCli's session is
            # then dead; the Trio client resumes it without them, so let that happen before
            # the next command rather than have it meet the dying connection.
            with trio.move_on_after(1):
                async with zk.states() as states:
                    async for state in states:
                        if not state.connected:
                            break
            with trio.move_on_after(self.timeout):
                await zk.wait_for_state(State.CONNECTED, State.READ_ONLY, State.CLOSED,
                                        State.EXPIRED, State.AUTH_FAILED)
            raise

    async def cmd_sync(self, args: list[str]) -> int:
        pos, _ = parse_options(args)
        if len(pos) < 2:
            raise UsageError(command_usage("sync"))
        path = self._check_path(pos[1])
        try:
            await self._zk.sync(path)
        except E.ZooKeeperError as ex:
            self.out(f"Sync has failed. rc={error_code(ex)}")
            return 1
        self.out("Sync is OK")
        return 0

    async def cmd_add_watch(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "", "m")
        if len(pos) != 2:
            raise UsageError(command_usage("addWatch"))
        mode = str(opts.get("m", "PERSISTENT_RECURSIVE")).upper()
        if mode not in ("PERSISTENT", "PERSISTENT_RECURSIVE"):
            raise UsageError(command_usage("addWatch"))
        path = self._check_path(pos[1])
        pw = self._zk.add_watch(path, recursive=mode == "PERSISTENT_RECURSIVE")
        await pw.start()
        if self._watch_nursery is not None:
            self._persistent.append(pw)
            self._watch_nursery.start_soon(self._pump, pw)

    async def cmd_removewatches(self, args: list[str]) -> None:
        pos, opts = parse_options(args, "cdal")
        if len(pos) < 2:
            raise UsageError(command_usage("removewatches"))
        path = self._check_path(pos[1])
        if "c" in opts:
            kinds, persistent = _CHILD_KINDS, False
        elif "d" in opts:
            kinds, persistent = _DATA_KINDS, False
        else:
            kinds, persistent = _CHILD_KINDS | _DATA_KINDS, True
        # The shell set every watch this session has, so it knows without asking the server
        # whether there is one to remove (the server would answer NoWatcher).
        one_time = [w for w in self._one_time if w.path == path and w.kind in kinds]
        streams = [pw for pw in self._persistent if pw.path == path] if persistent else []
        if not one_time and not streams:
            raise E.NoWatcherError(path=path)
        removed: list[EventType] = []
        for w in one_time:
            self._one_time.remove(w)
            await w.remove()
            removed.append(EventType.CHILD_WATCH_REMOVED if w.kind == WatchKind.CHILD
                           else EventType.DATA_WATCH_REMOVED)
        for pw in streams:
            self._persistent.remove(pw)
            await pw.aclose()
            removed.append(EventType.PERSISTENT_WATCH_REMOVED)
        for etype in (EventType.CHILD_WATCH_REMOVED, EventType.DATA_WATCH_REMOVED,
                      EventType.PERSISTENT_WATCH_REMOVED):
            if etype in removed and self.print_watches:
                self._emit(event_lines(etype, KeeperState.SYNC_CONNECTED, path))

    async def cmd_whoami(self, args: list[str]) -> None:
        ids = await self._zk.whoami()
        self.out("Auth scheme: User", *(f"{i.scheme}: {i.id}" for i in ids))

    async def cmd_ephemerals(self, args: list[str]) -> None:
        prefix = args[1] if len(args) > 1 else "/"
        paths = await self._zk.get_ephemerals(prefix)
        self.out("[" + ", ".join(paths) + "]")

    async def cmd_all_children(self, args: list[str]) -> None:
        if len(args) < 2:
            raise UsageError(command_usage("getAllChildrenNumber"))
        self.out(str(await self._zk.get_all_children_number(self._check_path(args[1]))))

    async def cmd_config(self, args: list[str]) -> None:
        _, opts = parse_options(args, "cws")
        if "w" in opts:
            data, stat, w = await self._zk.get_config(watch=True)
            self._track(w)
        else:
            data, stat = await self._zk.get_config()
        text = "null" if data is None else data.decode("utf-8", "replace")
        self.out(client_config(text) if "c" in opts else text)
        if "s" in opts:
            self.out(*stat_lines(stat))

    async def cmd_reconfig(self, args: list[str]) -> None:
        r = parse_reconfig(args)
        members = r.members
        if r.file is not None:
            try:
                with open(r.file, encoding="utf-8") as f:
                    members = members_from_file(f.read())
            except OSError as ex:  # worded as Java's FileNotFoundException
                raise CommandFailed(f"Error processing {r.file}{r.file} ({ex.strerror})") \
                    from None
            except ValueError as ex:
                raise CommandFailed(f"Error processing {r.file}{ex}") from None
        try:
            data, stat = await self._zk.reconfig(r.joining, r.leaving, members, r.version)
        except E.ZooKeeperError as ex:
            # ZooKeeperAdmin raises reconfig's errors with the path "", and zkCli prints that.
            raise CommandFailed(cli_message(ex, "")) from None
        self.out("Committed new configuration:",
                 "null" if data is None else data.decode("utf-8", "replace"))
        if r.stats:
            self.out(*stat_lines(stat))

    async def cmd_close(self, args: list[str]) -> None:
        await self.disconnect()


def complete(line_before: str, text: str, children: Callable[[str], list[str]]) -> list[str]:
    """Candidates for the word `text` that ends `line_before`: command names for the first
    word, znode paths for a word starting with `/` (`children(parent)` lists a node). A path is
    completed without a trailing space, so `/` can follow to go deeper."""
    if not line_before[:len(line_before) - len(text)].strip():
        names = [c for c in COMMANDS if c.startswith(text)]
        # Python's readline appends nothing to a sole match; a command wants its space.
        return [names[0] + " "] if len(names) == 1 else names
    if not text.startswith("/"):
        return []
    cut = text.rfind("/")
    parent = text[:cut] or "/"
    prefix = text[cut + 1:]
    return [child_path(parent, c) for c in sorted(children(parent)) if c.startswith(prefix)]
