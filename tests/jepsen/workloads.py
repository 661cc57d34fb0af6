"""Workloads in the style of Jepsen's ZooKeeper tests: clients hammer a cluster while a nemesis
breaks it, every operation is recorded with its invocation and completion times, and the
history goes to the linearizability checker.

    cluster = real_zookeeper(tmp, 3).start()      # or zkserver_ensemble(tmp, 3)
    nemesis = Nemesis(cluster, [Kill("leader"), Pause("follower"), Isolate("leader", 8)])
    result = run(RegisterWorkload(), cluster.node_hosts, duration=10, nemesis=nemesis)
    assert result.valid, result.summary()

Any ZooKeeper-compatible servers will do: `run` needs only one "host:port" per server and,
optionally, a nemesis with start() and stop() (see tests.jepsen.nemesis for clusters that
it can kill, pause and partition: `Ensemble` for n servers from zoo.cfg files, whichever the
command, and `CallbackCluster` for servers started some other way).

Workloads (all through kazoo, one client per worker, workers spread over the servers):

* `RegisterWorkload`: compare-and-set registers, one znode per key. read = sync + get ->
  (value, version); write = set -> new version; cas(old, new) = sync + get, compare, set with
  the version read. Checked per key against a versioned CAS register.
* `UniqueIdWorkload`: ids from sequential creates. Checked: ids unique and increasing in
  linearization order; every acknowledged id present in a final read of the children.
* `CounterWorkload`: one znode holding a count; add = get + set with version (retried on
  BadVersion) -> new version; read = sync + get -> (value, version).
* `QueueWorkload`: enqueue = sequential create (the value in the name) -> sequence number;
  dequeue = sync + get children, delete the smallest, next one on NoNode; a final drain.

Outcomes: a reply is "ok"; an error that proves the operation did not happen (BadVersion on
a conditional set, a failure before the mutating request was sent) is "fail"; a lost
connection, an expired session or a timeout is "info" (it may yet happen). After the nemesis
heals the cluster, final reads (through every server) end the history, so "no acknowledged
write lost" is part of what linearizability checks.

Reads use sync first: a plain ZooKeeper read is served by the server the client talks to and
may be stale (ZooKeeper promises sequential consistency for reads, not linearizability).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import pickle
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
    SessionMovedError,
)
from kazoo.handlers.threading import KazooTimeoutError

from tests.jepsen.linearizability import (
    FAIL,
    INFO,
    OK,
    UNKNOWN,
    CASRegister,
    CheckResult,
    CounterModel,
    KeyedModel,
    Model,
    Operation,
    QueueModel,
    UniqueIdModel,
    check,
)

# Process numbers of the final operations (workers count up from 0, by `clients` per lost op).
FINAL_PROCESS = 1 << 40

# Errors after which the operation may or may not have happened.
INDEFINITE = (ConnectionLoss, OperationTimeoutError, SessionExpiredError, ConnectionClosedError,
              SessionMovedError, KazooTimeoutError)


class Failed(Exception):
    """The operation definitely did not take effect."""


class Client:
    """One kazoo session with a deadline on every request.

    kazoo's blocking calls wait until the reply or the connection's loss; against a paused
    server that can be a long time, so every request goes through the async API and gives
    up after `op_timeout` (outcome unknown: the request may still be executed)."""

    def __init__(self, hosts: str, session_timeout: float = 10.0, op_timeout: float = 5.0,
                 connect_timeout: float = 60.0) -> None:
        self.zk = KazooClient(hosts, timeout=session_timeout, randomize_hosts=False,
                              connection_retry={"max_tries": -1, "delay": 0.05,
                                                "max_delay": 0.5})
        self.op_timeout = op_timeout
        self.zk.start(timeout=connect_timeout)

    def _wait(self, async_result: Any) -> Any:
        return async_result.get(timeout=self.op_timeout)

    def sync(self, path: str) -> None:
        self._wait(self.zk.sync_async(path))

    def get(self, path: str) -> tuple[bytes, Any]:
        return self._wait(self.zk.get_async(path))

    def children(self, path: str) -> list[str]:
        return self._wait(self.zk.get_children_async(path))

    def set(self, path: str, data: bytes, version: int = -1) -> Any:
        return self._wait(self.zk.set_async(path, data, version))

    def create(self, path: str, data: bytes = b"", sequence: bool = False) -> str:
        return self._wait(self.zk.create_async(path, data, sequence=sequence))

    def delete(self, path: str) -> None:
        self._wait(self.zk.delete_async(path))

    def close(self) -> None:
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:  # noqa: BLE001 - best effort on a cluster that may be broken
            pass


def _int(data: bytes) -> int | None:
    return int(data) if data else None


def _seq(name: str) -> int:
    return int(name[-10:])


class Workload:
    """A kind of object in znodes, its operations and its model."""

    name = "workload"

    def __init__(self) -> None:
        self.root = f"/jepsen-{self.name}-{uuid.uuid4().hex[:8]}"

    def model(self) -> Model:
        raise NotImplementedError

    def setup(self, client: Client) -> None:
        """Create the znodes, before any recorded operation."""
        client.zk.ensure_path(self.root)

    def next_input(self, rng: random.Random) -> Any:
        raise NotImplementedError

    def invoke(self, client: Client, input: Any) -> Any:
        """Perform one operation and return its output. Raise `Failed` when it certainly
        did not happen; let INDEFINITE errors through when it may have."""
        raise NotImplementedError

    def final_inputs(self) -> list[Any]:
        """Operations for the end of the run, once the cluster is healed, through each
        server: they make lost acknowledged writes visible to the checker."""
        return []

    def model_history(self, history: list[Operation]) -> list[Operation]:
        """The operations the model checks (all, unless some are checked otherwise)."""
        return history

    def extra_checks(self, history: list[Operation]) -> dict[str, CheckResult | SetCheck]:
        return {}


class RegisterWorkload(Workload):
    """Compare-and-set registers on `keys` znodes; values from a small range, as in Jepsen,
    so that compare-and-sets succeed often."""

    name = "register"

    def __init__(self, keys: int = 5, values: int = 5) -> None:
        super().__init__()
        self.keys = keys
        self.values = values

    def path(self, key: int) -> str:
        return f"{self.root}/r{key}"

    def model(self) -> Model:
        return KeyedModel(CASRegister(versioned=True))

    def setup(self, client: Client) -> None:
        super().setup(client)
        for k in range(self.keys):
            client.zk.create(self.path(k), b"")

    def next_input(self, rng: random.Random) -> Any:
        key = rng.randrange(self.keys)
        r = rng.random()
        if r < 0.4:
            return (key, ("read", None))
        if r < 0.7:
            return (key, ("write", rng.randrange(self.values)))
        return (key, ("cas", (rng.randrange(self.values), rng.randrange(self.values))))

    def invoke(self, client: Client, input: Any) -> Any:
        key, (f, arg) = input
        path = self.path(key)
        if f == "write":
            return client.set(path, str(arg).encode()).version
        try:
            client.sync(path)
            data, stat = client.get(path)
        except INDEFINITE as e:
            raise Failed("lost before anything was written") from e
        value = _int(data)
        if f == "read":
            return (value, stat.version)
        expected, new = arg
        if value != expected:
            return False  # linearized at the (synced) read
        try:
            client.set(path, str(new).encode(), stat.version)
        except BadVersionError as e:
            raise Failed("the value changed between read and set") from e
        return True

    def final_inputs(self) -> list[Any]:
        return [(k, ("read", None)) for k in range(self.keys)]

    def extra_checks(self, history: list[Operation]) -> dict[str, Any]:
        """Each key's final version (read through every server) is at least the version
        of its last acknowledged write: a direct statement of "no acknowledged write lost",
        which linearizability also implies."""
        acked: dict[int, int] = {}
        for op in history:
            key, (f, _) = op.input
            if op.status == OK and f == "write":
                acked[key] = max(acked.get(key, 0), op.output)
        finals: dict[int, list[int]] = {}
        for op in _finals(history):
            finals.setdefault(op.input[0], []).append(op.output[1])
        lost = [f"key {k}: acknowledged version {v}, final {finals.get(k)}"
                for k, v in sorted(acked.items()) if min(finals.get(k, [-1])) < v]
        return {"durable": Durability(not lost, sum(op.status == OK and op.input[1][0] != "read"
                                                   for op in history), lost)}


class CounterWorkload(Workload):
    """A counter in one znode, incremented by read-modify-write with versions."""

    name = "counter"

    def __init__(self, attempts: int = 10) -> None:
        super().__init__()
        self.attempts = attempts
        self.path = f"{self.root}/counter"

    def model(self) -> Model:
        return CounterModel(versioned=True)

    def setup(self, client: Client) -> None:
        super().setup(client)
        client.zk.create(self.path, b"0")

    def next_input(self, rng: random.Random) -> Any:
        return ("add", 1) if rng.random() < 0.6 else ("read", None)

    def invoke(self, client: Client, input: Any) -> Any:
        f, delta = input
        if f == "read":
            client.sync(self.path)
            data, stat = client.get(self.path)
            return (_int(data), stat.version)
        for _ in range(self.attempts):
            try:
                data, stat = client.get(self.path)  # a stale read only costs a retry
            except INDEFINITE as e:
                raise Failed("lost before anything was written") from e
            try:
                return client.set(self.path, str(_int(data) + delta).encode(),
                                  stat.version).version
            except BadVersionError:
                continue  # someone else's add went first: nothing happened, try again
        raise Failed(f"BadVersion {self.attempts} times")

    def final_inputs(self) -> list[Any]:
        return [("read", None)]

    def extra_checks(self, history: list[Operation]) -> dict[str, Any]:
        """The final count (through every server) covers every acknowledged add, and at
        most the adds whose replies were lost come on top."""
        acked = sum(op.status == OK and op.input[0] == "add" for op in history)
        unknown = sum(op.status == INFO and op.input[0] == "add" for op in history)
        lost = [f"final count {op.output[0]}, {acked} adds acknowledged, {unknown} unknown"
                for op in _finals(history)
                if not acked <= op.output[0] <= acked + unknown]
        return {"durable": Durability(not lost, acked, lost)}


class UniqueIdWorkload(Workload):
    """Ids from sequential znodes under one parent."""

    name = "ids"

    def model(self) -> Model:
        return UniqueIdModel(monotonic=True)

    def next_input(self, rng: random.Random) -> Any:
        return ("generate", None)

    def invoke(self, client: Client, input: Any) -> Any:
        if input[0] == "read":
            client.sync(self.root)
            return frozenset(_seq(c) for c in client.children(self.root))
        return _seq(client.create(f"{self.root}/id-", sequence=True))

    def final_inputs(self) -> list[Any]:
        return [("read", None)]

    def model_history(self, history: list[Operation]) -> list[Operation]:
        return [op for op in history if op.input[0] == "generate"]

    def extra_checks(self, history: list[Operation]) -> dict[str, CheckResult | SetCheck]:
        return {"final-read": check_final_set(history)}


class QueueWorkload(Workload):
    """A FIFO queue of sequential znodes, the recipe's way."""

    name = "queue"

    def __init__(self, attempts: int = 20, drain_limit: int = 100_000) -> None:
        super().__init__()
        self.attempts = attempts
        self.drain_limit = drain_limit
        self._values = iter(range(1, 1 << 62))
        self._lock = threading.Lock()
        self.seq_of: dict[int, int] = {}  # value -> sequence number, from dequeued names

    def model(self) -> Model:
        return QueueModel(sequenced=True, unique_values=True)

    def model_history(self, history: list[Operation]) -> list[Operation]:
        """An enqueue whose reply was lost, but whose element a dequeue returned, did
        happen, and the node's name tells its sequence number: it becomes a completed
        operation with an unknown return time. (Otherwise the search has to guess where in
        the queue the element went, which is slow behind a long queue.)"""
        out = []
        for op in history:
            if op.status == INFO and op.input[0] == "enqueue" and op.input[1] in self.seq_of:
                op = Operation(op.process, op.call, math.inf, op.input,
                               self.seq_of[op.input[1]], OK)
            out.append(op)
        return out

    def next_input(self, rng: random.Random) -> Any:
        if rng.random() < 0.5:
            with self._lock:
                return ("enqueue", next(self._values))
        return ("dequeue", None)

    def invoke(self, client: Client, input: Any) -> Any:
        f, value = input
        if f == "enqueue":
            return _seq(client.create(f"{self.root}/e{value}-", sequence=True))
        tried_delete = False
        for _ in range(self.attempts):
            try:
                client.sync(self.root)
                names = sorted(client.children(self.root), key=_seq)
            except INDEFINITE as e:
                if tried_delete:
                    raise  # an earlier delete may have happened
                raise Failed("lost before anything was deleted") from e
            if not names:
                return None
            for name in names:
                tried_delete = True
                try:
                    client.delete(f"{self.root}/{name}")
                except NoNodeError:
                    continue  # another consumer took it: the next one is the head now
                value = int(name[1:].split("-", 1)[0])
                self.seq_of[value] = _seq(name)
                return value
        raise Failed(f"every element was taken by others, {self.attempts} times")

    def final_inputs(self) -> list[Any]:
        return [("drain", None)]

    def extra_checks(self, history: list[Operation]) -> dict[str, Any]:
        """Every acknowledged enqueue's element was dequeued exactly once (by a completed
        dequeue, or by one of the dequeues whose replies were lost)."""
        acked = [op.input[1] for op in history if op.status == OK and op.input[0] == "enqueue"]
        got: dict[Any, int] = {}
        for op in history:
            if op.status == OK and op.input[0] == "dequeue" and op.output is not None:
                got[op.output] = got.get(op.output, 0) + 1
        unknown = sum(op.status == INFO and op.input[0] == "dequeue" for op in history)
        missing = [v for v in acked if v not in got]
        problems = [f"dequeued twice: {v}" for v, c in got.items() if c > 1]
        if len(missing) > unknown:
            problems.append(f"{len(missing)} acknowledged elements never dequeued (only "
                            f"{unknown} dequeues lost their replies): {missing[:20]}")
        return {"durable": Durability(not problems, len(acked), problems)}


def _finals(history: list[Operation]) -> list[Operation]:
    return [op for op in history if op.process >= FINAL_PROCESS and op.status == OK]


@dataclass
class Durability:
    """No acknowledged write lost, checked directly on the final reads."""

    valid: bool
    acknowledged: int
    problems: list[str]

    def describe(self) -> str:
        if self.valid:
            return f"ok: {self.acknowledged} acknowledged writes, none lost"
        return "NOT OK: " + "; ".join(self.problems[:10])


@dataclass
class SetCheck:
    """The final-read check of a set of acknowledged elements (ids): nothing acknowledged
    missing, nothing unexpected beyond what unknown operations might have added."""

    valid: bool
    acknowledged: int
    final: int
    lost: list[Any]
    unexpected: list[Any]
    unknown: int

    def describe(self) -> str:
        verdict = "ok" if self.valid else "NOT OK"
        return (f"{verdict}: {self.acknowledged} acknowledged, {self.final} in the final read, "
                f"lost {self.lost[:20]}, unexpected {self.unexpected[:20]} "
                f"(up to {self.unknown} may come from operations of unknown outcome)")


def check_final_set(history: list[Operation]) -> SetCheck:
    acked = [op.output for op in history if op.status == OK and op.input[0] == "generate"]
    unknown = sum(1 for op in history if op.status == INFO and op.input[0] == "generate")
    finals = [op for op in history if op.status == OK and op.input[0] == "read"]
    if not finals:
        return SetCheck(False, len(acked), 0, [], [], unknown)
    final = finals[-1].output
    lost = sorted(set(acked) - final)
    unexpected = sorted(final - set(acked))
    return SetCheck(not lost and len(unexpected) <= unknown, len(acked), len(final), lost,
                    unexpected, unknown)


# --- the runner ---------------------------------------------------------------------------------


class Recorder:
    """The history, shared by the workers (appends are atomic under the GIL; the lock keeps
    the process numbering consistent)."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def add(self, op: Operation) -> None:
        with self._lock:
            self.ops.append(op)


def perform(workload: Workload, client: Client, recorder: Recorder, process: int,
            input: Any) -> Operation:
    """Run one operation and record it."""
    call = time.monotonic()
    try:
        output = workload.invoke(client, input)
    except Failed:
        op = Operation(process, call, time.monotonic(), input, None, FAIL)
    except INDEFINITE:
        op = Operation(process, call, math.inf, input, UNKNOWN, INFO)
    else:
        op = Operation(process, call, time.monotonic(), input, output, OK)
    recorder.add(op)
    return op


class Worker(threading.Thread):
    """A client that performs random operations until told to stop. After an operation
    with an unknown outcome it continues as a new process (Jepsen's rule: a process has at
    most one operation in flight, and that one never returns)."""

    def __init__(self, index: int, workers: int, hosts: str, workload: Workload,
                 recorder: Recorder, stop: threading.Event, seed: int,
                 session_timeout: float, op_timeout: float) -> None:
        super().__init__(daemon=True, name=f"jepsen-worker-{index}")
        self.index = index
        self.workers = workers
        self.hosts = hosts
        self.workload = workload
        self.recorder = recorder
        self.stop_flag = stop
        self.rng = random.Random(seed)
        self.session_timeout = session_timeout
        self.op_timeout = op_timeout
        self.client: Client | None = None
        self.counts = {OK: 0, INFO: 0, FAIL: 0}

    def connect(self) -> None:
        self.client = Client(self.hosts, self.session_timeout, self.op_timeout)

    def _await_connection(self) -> None:
        """After a lost reply, wait (a while) for the session to be connected again rather
        than fire requests that fail at once: a burst of unknown outcomes teaches nothing
        and makes the history harder to check."""
        assert self.client is not None
        deadline = time.monotonic() + self.session_timeout
        while (not self.client.zk.connected and not self.stop_flag.is_set()
               and time.monotonic() < deadline):
            self.stop_flag.wait(0.05)

    def run(self) -> None:
        assert self.client is not None
        process = self.index
        try:
            while not self.stop_flag.is_set():
                status = perform(self.workload, self.client, self.recorder, process,
                                 self.workload.next_input(self.rng)).status
                self.counts[status] += 1
                if status == INFO:
                    process += self.workers
                    self._await_connection()
        except BaseException as e:  # noqa: BLE001 - a bug in a workload: reported by run()
            self.recorder.errors.append(e)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


class ProcessWorker:
    """A `Worker` in a process of its own, with the thread's interface (connect, start, join,
    is_alive, close). Its operations reach the shared recorder when it is joined; their times
    come from the same system-wide monotonic clock as this process's.

    Why: kazoo runs each client's I/O in Python threads, so six clients in one process
    share one GIL and, on a small machine, a single core's worth of time. A benchmark that
    compares servers by completed operations should not be decided by that."""

    def __init__(self, index: int, workers: int, hosts: str, workload: Workload,
                 recorder: Recorder, stop: Any, seed: int, session_timeout: float,
                 op_timeout: float) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self.index = index
        self.recorder = recorder
        self._conn, theirs = ctx.Pipe()
        self._proc = ctx.Process(
            target=_worker_main, daemon=True, name=f"jepsen-worker-{index}",
            args=(theirs, index, workers, hosts, workload, stop, seed, session_timeout,
                  op_timeout))
        self._theirs = theirs
        self._done = False

    def _receive(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise TimeoutError(f"worker process {self.index} did not answer in {timeout} s")
        kind, value = self._conn.recv()
        if kind == "error":
            raise RuntimeError(f"worker process {self.index}: {value}")
        return value

    def connect(self, timeout: float = 90.0) -> None:
        self._proc.start()
        self._theirs.close()
        self._receive(timeout)  # connected

    def start(self) -> None:
        self._conn.send("go")

    def join(self, timeout: float) -> None:
        """Wait for the worker's history (it stops when the shared stop event is set)."""
        if self._done:
            return
        with contextlib.suppress(TimeoutError):
            ops, errors = self._receive(timeout)
            self._done = True
            for op in ops:
                self.recorder.add(op)
            self.recorder.errors.extend(RuntimeError(e) for e in errors)

    def is_alive(self) -> bool:
        return not self._done

    def close(self) -> None:
        """Close the worker's session (after the nemesis healed the cluster) and reap it."""
        with contextlib.suppress(OSError, EOFError):
            self._conn.send("close")
            self._conn.poll(30.0)
        if self._proc.pid is not None:  # started
            self._proc.join(30.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        self._conn.close()


def _worker_main(conn: Connection, index: int, workers: int, hosts: str, workload: Workload,
                 stop: Any, seed: int, session_timeout: float, op_timeout: float) -> None:
    """A worker process: connect, run on "go" until `stop` is set, send the history back,
    close the session on "close"."""
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)  # a line per lost connection
    recorder = Recorder()
    worker = Worker(index, workers, hosts, workload, recorder, stop, seed, session_timeout,
                    op_timeout)
    try:
        worker.connect()
    except Exception as e:  # noqa: BLE001 - reported to the parent, who raises it
        conn.send(("error", repr(e)))
        return
    conn.send(("connected", None))
    try:
        conn.recv()  # go
        worker.run()
        conn.send(("history", (recorder.ops, [repr(e) for e in recorder.errors])))
        conn.recv()  # close
    except EOFError:
        pass  # the parent is gone
    finally:
        worker.close()
        with contextlib.suppress(OSError):
            conn.send(("closed", None))


@dataclass
class RunResult:
    workload: str
    history: list[Operation]
    checks: dict[str, Any]
    duration: float
    nemesis_events: list[Any] = field(default_factory=list)
    started: float = 0.0  # time.monotonic() when the (connected) workers began

    @property
    def valid(self) -> bool | None:
        verdicts = [c.valid for c in self.checks.values()]
        if any(v is False for v in verdicts):
            return False
        if any(v is None for v in verdicts):
            return None
        return True

    def save(self, path: str | os.PathLike) -> None:
        """The history as a pickle (load it with `load_history`), to re-check or study a
        failure offline."""
        with open(path, "wb") as f:
            pickle.dump({"workload": self.workload, "history": self.history}, f)

    def count(self, status: str) -> int:
        return sum(1 for op in self.history if op.status == status)

    def summary(self) -> str:
        lines = [f"{self.workload}: {len(self.history)} ops in {self.duration:.1f}s "
                 f"(ok {self.count(OK)}, info {self.count(INFO)}, fail {self.count(FAIL)}), "
                 f"{len(self.nemesis_events)} nemesis events"]
        for name, c in self.checks.items():
            lines.append(f"  {name}: " + c.describe().replace("\n", "\n  "))
        return "\n".join(lines)


def run(workload: Workload, node_hosts: Sequence[str], duration: float = 10.0,
        clients: int = 5, nemesis: Any = None, seed: int = 0, session_timeout: float = 10.0,
        op_timeout: float = 5.0, check_timeout: float = 120.0, processes: bool = False
        ) -> RunResult:
    """Run `workload` for `duration` seconds with `clients` workers against the servers at
    `node_hosts` (one "host:port" per server; worker i talks to server i mod n first and
    fails over to the others in order). `nemesis` (optional) has start() and stop(); stop()
    must leave the cluster healed and serving. Then final reads through every server, and
    the checks. `processes`: each worker in a process of its own (`ProcessWorker`), else
    in a thread of this one."""
    n = len(node_hosts)

    def hosts_from(i: int) -> str:
        return ",".join(node_hosts[(i + k) % n] for k in range(n))

    setup = Client(hosts_from(0), session_timeout, op_timeout=30.0)
    try:
        workload.setup(setup)
    finally:
        setup.close()
    recorder = Recorder()
    stop: Any = multiprocessing.get_context("spawn").Event() if processes else threading.Event()
    kind = ProcessWorker if processes else Worker
    workers = [kind(i, clients, hosts_from(i), workload, recorder, stop, seed * 1000 + i,
                    session_timeout, op_timeout) for i in range(clients)]
    try:
        for w in workers:
            w.connect()
    except BaseException:
        for w in workers:
            w.close()
        raise
    start = time.monotonic()
    try:
        for w in workers:
            w.start()
        if nemesis is not None:
            nemesis.start()
        stop.wait(duration)  # the run's length: a deliberate schedule, not a wait for a state
    finally:
        stop.set()
        for w in workers:
            w.join(op_timeout * 4 + 30)
        if nemesis is not None:
            nemesis.stop()
        for w in workers:
            w.close()
    if recorder.errors:
        raise RuntimeError(f"a worker failed: {recorder.errors[0]!r}") from recorder.errors[0]
    stuck = [w.index for w in workers if w.is_alive()]
    if stuck:
        raise RuntimeError(f"workers {stuck} did not stop")
    _finish(workload, node_hosts, recorder, clients, session_timeout)
    elapsed = time.monotonic() - start
    history = recorder.ops
    checks: dict[str, Any] = {"linearizable": check(
        workload.model(), workload.model_history(history), timeout=check_timeout)}
    checks.update(workload.extra_checks(history))
    return RunResult(workload.name, history, checks, elapsed,
                     list(getattr(nemesis, "events", [])), start)


def _finish(workload: Workload, node_hosts: Sequence[str], recorder: Recorder, clients: int,
            session_timeout: float) -> None:
    """The final operations, once per server (each through a client bound to that server
    alone), so that every server's copy is read after the faults."""
    process = FINAL_PROCESS
    for host in node_hosts:
        client = Client(host, session_timeout, op_timeout=30.0)
        try:
            for input in workload.final_inputs():
                if input[0] == "drain":
                    _drain(workload, client, recorder, process)
                    continue
                op = perform(workload, client, recorder, process, input)
                if op.status != OK:
                    raise RuntimeError(f"final operation {input!r} via {host}: {op.status}")
        finally:
            client.close()
        process += 1


def _drain(workload: Workload, client: Client, recorder: Recorder, process: int) -> None:
    limit = getattr(workload, "drain_limit", 100_000)
    for _ in range(limit):
        op = perform(workload, client, recorder, process, ("dequeue", None))
        if op.status != OK:
            raise RuntimeError(f"drain: dequeue {op.status}")
        if op.output is None:
            return
    raise RuntimeError("drain: the queue never emptied")


def load_history(path: str | os.PathLike) -> tuple[str, list[Operation]]:
    with open(path, "rb") as f:
        saved = pickle.load(f)
    return saved["workload"], saved["history"]


WORKLOADS = {
    "register": RegisterWorkload,
    "ids": UniqueIdWorkload,
    "counter": CounterWorkload,
    "queue": QueueWorkload,
}
