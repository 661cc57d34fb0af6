"""A linearizability checker in the Wing & Gong / Lowe style (as in porcupine), with models.

Why our own: the ensemble's fault tests record histories of real clients against real server
processes, and "linearizable" must be decided by a program, not by eye. The algorithm is the
one porcupine uses (Lowe's refinement of Wing & Gong's search):

* Every operation becomes a call entry and a return entry in one list ordered by time (a call
  sorts before a return at the same instant, so touching intervals count as concurrent).
* The search walks the list. At a call entry it tries to linearize that operation next: if the
  model accepts it from the current state, and the pair (set of linearized operations, new
  state) was never reached before, the operation is "lifted" out of the list and the search
  restarts at the head. At a return entry the operation returned before any linearization
  point was found for it, so the search backtracks to the last choice.
* The memo of (linearized set as a bitset, state) pairs is what keeps the search polynomial on
  the histories real systems produce: two orders that reach the same state with the same
  operations done are the same.

Operations whose outcome is unknown ("info": a write whose reply was lost with the connection,
an operation that timed out) may or may not have taken effect. They return at +infinity: the
search may place them anywhere after their call, including after everything else, which is the
same as "never happened" for everyone who could observe it. Failed operations ("fail": the
server definitely did not apply them, e.g. a conditional set that got BadVersion) are dropped.

Models partition histories (P-compositionality: a history of independent keys is linearizable
iff each key's sub-history is), so a register history over many keys is many small searches.

    result = check(KeyedModel(CASRegister()), history, timeout=10)
    assert result.valid, result.describe()

`result.valid` is True (linearizable), False (not: `result.describe()` names the operations that
could not be linearized, the longest linearizable prefix and its state) or None (the search ran
out of its time budget before deciding).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Generator, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar

S = TypeVar("S", bound=Hashable)

OK: Literal["ok"] = "ok"
INFO: Literal["info"] = "info"
FAIL: Literal["fail"] = "fail"
Status = Literal["ok", "info", "fail"]


class _Unknown:
    """The output of an operation whose outcome was lost. A singleton, distinct from None
    (None is a real output: an empty dequeue, a read of an absent value)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "?"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation: who, when (monotonic seconds), what, and what came back.

    `status` is OK (output is the reply), INFO (outcome unknown: `ret` is +inf and `output`
    UNKNOWN) or FAIL (definitely not applied; the checker ignores it). An OK operation may
    have `ret` +inf: it happened and had this output, but its reply was lost (the output was
    learned later, e.g. from the sequence number in a node name a dequeue returned).
    """

    process: int
    call: float
    ret: float
    input: Any
    output: Any = None
    status: Status = OK

    @property
    def unknown(self) -> bool:
        return self.status == INFO


def ok_op(process: int, call: float, ret: float, input: Any, output: Any = None) -> Operation:
    return Operation(process, call, ret, input, output, OK)


def info_op(process: int, call: float, input: Any) -> Operation:
    return Operation(process, call, math.inf, input, UNKNOWN, INFO)


def fail_op(process: int, call: float, ret: float, input: Any) -> Operation:
    return Operation(process, call, ret, input, None, FAIL)


class Model(Generic[S]):
    """A sequential specification. Subclasses define `init` and `step`; states must be hashable
    (they are memoized), and `step` must be a pure function.

    `step(state, input, output)` returns (True, next_state) when `input` applied to `state` can
    produce `output`, else (False, anything). `output` is UNKNOWN for an operation whose result
    was lost: the step should then apply the operation's effect, whatever it returned.
    """

    def init(self) -> S:
        raise NotImplementedError

    def step(self, state: S, input: Any, output: Any) -> tuple[bool, S]:
        raise NotImplementedError

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        """Independent sub-histories, each checked on its own from `init()`."""
        return [list(history)]

    def inert(self, input: Any) -> bool:
        """True when an operation with this input constrains nothing if its outcome is unknown
        (a read: it changes no state). The checker drops such unknown operations before
        searching."""
        return False

    def simplify(self, history: list[Operation]) -> list[Operation]:
        """Drop operations that cannot matter, before the search (which is exponential in
        the number of unknown operations that do). Called with failed operations and inert
        unknown ones already removed. The default keeps everything."""
        return history

    def describe(self, input: Any, output: Any) -> str:
        return f"{input!r} -> {output!r}"

    def describe_state(self, state: S) -> str:
        return repr(state)


# --- models -------------------------------------------------------------------------------------


class VersionedModel(Model[Any]):
    """A single value, optionally paired with a version as a znode's data with stat.version
    (`versioned=True`: the state is (value, version))."""

    def __init__(self, initial: Any = None, versioned: bool = False, version: int = 0) -> None:
        self.initial = initial
        self.versioned = versioned
        self.version = version

    def init(self) -> Any:
        return (self.initial, self.version) if self.versioned else self.initial


class KeyedModel(Model[S]):
    """Many independent objects of one kind: inputs are (key, inner_input) and each key's
    operations are checked separately against `inner`."""

    def __init__(self, inner: Model[S]) -> None:
        self.inner = inner

    def init(self) -> S:
        return self.inner.init()

    def step(self, state: S, input: Any, output: Any) -> tuple[bool, S]:
        return self.inner.step(state, input[1], output)

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        groups: dict[Any, list[Operation]] = {}
        for op in history:
            groups.setdefault(op.input[0], []).append(op)
        return list(groups.values())

    def inert(self, input: Any) -> bool:
        return self.inner.inert(input[1])

    def simplify(self, history: list[Operation]) -> list[Operation]:
        """The inner model's simplification, key by key (it may drop operations and rewrite
        inputs; the key goes back on whatever it returns)."""
        out: list[Operation] = []
        for part in self.partition(history):
            key = part[0].input[0]
            inner = self.inner.simplify([replace(op, input=op.input[1]) for op in part])
            out.extend(replace(op, input=(key, op.input)) for op in inner)
        return out

    def describe(self, input: Any, output: Any) -> str:
        return f"{input[0]}: {self.inner.describe(input[1], output)}"

    def describe_state(self, state: S) -> str:
        return self.inner.describe_state(state)


class CASRegister(VersionedModel):
    """A register with read, write and compare-and-set.

    Inputs: ("read", None) -> value; ("write", v) -> None; ("cas", (expected, new)) -> bool.
    With `versioned=True` the state is (value, version) as a znode's data and stat.version:
    reads return (value, version), every applied write or successful cas adds one to the
    version, and a write's output may be the new version (None: not checked). That catches a
    lost write even when a later write stored the same value.
    """


    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        f, arg = input
        value, version = state if self.versioned else (state, 0)
        if f == "read":
            return (output is UNKNOWN or output == state), state
        if f == "write":
            if self.versioned:
                ok = output is UNKNOWN or output is None or output == version + 1
                return ok, (arg, version + 1)
            return True, arg
        if f == "cas":
            expected, new = arg
            matches = value == expected
            if output is UNKNOWN:
                ok = True
            else:
                ok = bool(output) == matches
            if matches:
                return ok, ((new, version + 1) if self.versioned else new)
            return ok, state
        raise ValueError(f"unknown register operation {f!r}")

    def inert(self, input: Any) -> bool:
        return input[0] == "read"

    def describe(self, input: Any, output: Any) -> str:
        f, arg = input
        if f == "read":
            return f"read -> {output!r}"
        if f == "write":
            return f"write {arg!r}" + ("" if output is None else f" -> {output!r}")
        return f"cas {arg[0]!r}->{arg[1]!r} -> {output!r}"


class CounterModel(VersionedModel):
    """A counter: ("add", delta) -> None and ("read", None) -> value.

    With `versioned=True` the state is (value, version) like a znode holding the count: an add
    outputs the version it produced (None: unchecked) and a read outputs (value, version).
    Versions pin the order of the adds, so the search need not guess it; the plain model has
    to consider every subset of the adds in flight at a read, which grows quickly with many
    concurrent clients and lost replies.
    """

    def __init__(self, initial: int = 0, versioned: bool = False, version: int = 0) -> None:
        super().__init__(initial, versioned, version)

    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        f, arg = input
        if f == "add":
            if not self.versioned:
                return True, state + arg
            value, version = state
            ok = output is UNKNOWN or output is None or output == version + 1
            return ok, (value + arg, version + 1)
        if f == "read":
            return (output is UNKNOWN or output == state), state
        raise ValueError(f"unknown counter operation {f!r}")

    def inert(self, input: Any) -> bool:
        return input[0] == "read"

    def describe(self, input: Any, output: Any) -> str:
        if input[0] == "add":
            return f"add {input[1]}" + ("" if output is None else f" -> {output!r}")
        return f"read -> {output!r}"


class QueueModel(Model[tuple]):
    """A FIFO queue: ("enqueue", v) -> None and ("dequeue", None) -> v, or None when empty.

    Values should be unique, as the workloads make them: a value dequeued twice, a value
    nobody enqueued, or an acknowledged enqueue never dequeued by a final drain are then all
    non-linearizable.

    With `sequenced=True` an enqueue's output is the position the queue gave the element
    (ZooKeeper's sequence number, taken in commit order), and positions must increase in
    linearization order. Besides checking that, it pins the order of concurrent enqueues,
    which otherwise the search has to guess: n overlapping enqueues have n! orders, and the
    plain model gets slow once many enqueues overlap.

    With `unique_values=True` (every value is enqueued at most once, as the workloads make
    sure) an unknown-outcome dequeue may only have taken an element that no completed
    dequeue returned: otherwise that element would have been dequeued twice. This prunes the
    search hard where it is weakest, a lost dequeue behind a long queue.
    """

    def __init__(self, sequenced: bool = False, unique_values: bool = False) -> None:
        self.sequenced = sequenced
        self.unique_values = unique_values

    def init(self) -> tuple:
        return ((), -math.inf) if self.sequenced else ()

    def step(self, state: tuple, input: Any, output: Any) -> tuple[bool, tuple]:
        items, last = state if self.sequenced else (state, None)
        f, arg = input
        if f == "enqueue":
            items = (*items, arg)
            if not self.sequenced:
                return True, items
            if output is UNKNOWN:
                return True, (items, last)
            return output > last, (items, output)
        if f == "dequeue":
            if output is UNKNOWN:
                ok, rest = True, items[1:]
                if arg is not None and items and items[0] in arg:
                    ok = False  # taken by a completed dequeue: it cannot be taken twice
            elif output is None:
                ok, rest = not items, items
            else:
                ok, rest = (bool(items) and items[0] == output), items[1:]
            return ok, ((rest, last) if self.sequenced else rest)
        raise ValueError(f"unknown queue operation {f!r}")

    def describe(self, input: Any, output: Any) -> str:
        if input[0] == "enqueue":
            return f"enqueue {input[1]!r}" + ("" if output is None else f" -> {output!r}")
        return f"dequeue -> {output!r}"  # (a lost dequeue's input carries _Taken)

    def simplify(self, history: list[Operation]) -> list[Operation]:
        """An unknown enqueue of a value no completed dequeue returned can be dropped: if some
        linearization has it take effect, the same order without it (and with the unknown
        dequeue that may have taken it moved to the end) is one too. Without this, a phantom
        element placed early makes the search retry every later placement."""
        returned = {op.output for op in history if op.status == OK and op.input[0] == "dequeue"}
        kept = _drop_unseen(history, "enqueue", returned)
        if not self.unique_values:
            return kept
        taken = _Taken(returned)  # one object for all: lost dequeues stay interchangeable
        return [replace(op, input=("dequeue", taken))
                if op.status == INFO and op.input[0] == "dequeue" else op for op in kept]


class SetModel(Model[frozenset]):
    """A grow-only set: ("add", x) -> None and ("read", None) -> frozenset of members.

    A read after acknowledged adds must contain them (no acknowledged add lost) and nothing
    that was never added."""

    def init(self) -> frozenset:
        return frozenset()

    def step(self, state: frozenset, input: Any, output: Any) -> tuple[bool, frozenset]:
        f, arg = input
        if f == "add":
            return True, state | {arg}
        if f == "read":
            return (output is UNKNOWN or frozenset(output) == state), state
        raise ValueError(f"unknown set operation {f!r}")

    def inert(self, input: Any) -> bool:
        return input[0] == "read"

    def simplify(self, history: list[Operation]) -> list[Operation]:
        """An unknown add of an element no read returned may as well not have happened."""
        seen = set()
        for op in history:
            if op.status == OK and op.input[0] == "read":
                seen.update(op.output)
        return _drop_unseen(history, "add", seen)

    def describe(self, input: Any, output: Any) -> str:
        if input[0] == "add":
            return f"add {input[1]!r}"
        return f"read -> {sorted(output) if isinstance(output, frozenset) else output!r}"


class UniqueIdModel(Model[Any]):
    """An id generator: ("generate", None) -> id.

    Every id must be new. With `monotonic=True` (ZooKeeper's sequential nodes: the sequence
    number is the parent's counter, taken in commit order) ids must also increase in
    linearization order, and the state is just the last id, which keeps long histories cheap.
    An unknown-outcome generate consumed an id nobody saw: it changes nothing we can check.
    """

    def __init__(self, monotonic: bool = True) -> None:
        self.monotonic = monotonic

    def init(self) -> Any:
        return -math.inf if self.monotonic else frozenset()

    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        if input[0] != "generate":
            raise ValueError(f"unknown id operation {input[0]!r}")
        if output is UNKNOWN:
            return True, state
        if self.monotonic:
            return output > state, output
        return output not in state, state | {output}

    def inert(self, input: Any) -> bool:
        return True  # an id nobody saw changes nothing we check

    def describe(self, input: Any, output: Any) -> str:
        return f"generate -> {output!r}"


class _Taken(frozenset):
    """The values completed dequeues returned, carried by lost dequeues' inputs. Hashed and
    compared by identity: it is one object per partition, and hashing it by content would
    cost a walk over every value at each step."""

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        return f"<{len(self)} values taken by completed dequeues>"


def _drop_unseen(history: list[Operation], f: str, seen: set) -> list[Operation]:
    return [op for op in history
            if not (op.status == INFO and op.input[0] == f and op.input[1] not in seen)]


# --- results ------------------------------------------------------------------------------------

Outcome = Literal["ok", "illegal", "unknown"]


@dataclass
class Counterexample:
    """Where the search got furthest before every order failed.

    `prefix` is the longest linearizable sequence found (in linearization order) and `state`
    the model state after it; `blocked` is an operation that returned before it could be
    linearized from any such state, and `candidates` are the operations that could have gone
    next there, none of which the model accepted (or whose result state was already explored).
    """

    prefix: list[Operation]
    state: Any
    blocked: Operation
    candidates: list[Operation]


@dataclass
class PartitionResult:
    outcome: Outcome
    ops: list[Operation]
    counterexample: Counterexample | None = None
    explored: int = 0

    @property
    def valid(self) -> bool | None:
        return {"ok": True, "illegal": False, "unknown": None}[self.outcome]


@dataclass
class CheckResult:
    """The verdict on a whole history: linearizable iff every partition is."""

    outcome: Outcome
    model: Model = field(repr=False)
    partitions: list[PartitionResult]
    ops: int
    dropped: int
    elapsed: float

    @property
    def valid(self) -> bool | None:
        return {"ok": True, "illegal": False, "unknown": None}[self.outcome]

    def __bool__(self) -> bool:
        return self.outcome == "ok"

    def describe(self, context: int = 8) -> str:
        """A human-readable verdict; for a failure, the last `context` operations of the
        longest linearizable prefix, the operation that could not be placed and the
        candidates that were tried."""
        head = (f"{self.outcome}: {self.ops} operations ({self.dropped} dropped before the "
                f"search: failed, or unknown and irrelevant) in {len(self.partitions)} "
                f"partition(s), checked in {self.elapsed:.3f}s")
        lines = [head]
        t0 = min((op.call for p in self.partitions for op in p.ops), default=0.0)
        for p in self.partitions:
            if p.outcome == "unknown":
                lines.append(f"  partition of {len(p.ops)} ops: search budget (time or memo) "
                             f"exhausted after {p.explored} steps")
            if p.outcome != "illegal" or p.counterexample is None:
                continue
            ce = p.counterexample
            lines.append(f"  partition of {len(p.ops)} ops is not linearizable; the longest "
                         f"linearizable prefix has {len(ce.prefix)} ops:")
            if len(ce.prefix) > context:
                lines.append(f"    ... {len(ce.prefix) - context} earlier ops")
            for op in ce.prefix[-context:]:
                lines.append(f"    {self._op(op, t0)}")
            lines.append(f"  state then: {self.model.describe_state(ce.state)}")
            lines.append(f"  cannot linearize: {self._op(ce.blocked, t0)}")
            others = [c for c in ce.candidates if c is not ce.blocked]
            if others:
                lines.append("  other operations that could have gone next (none fits):")
                for op in others[:context]:
                    lines.append(f"    {self._op(op, t0)}")
        return "\n".join(lines)

    def _op(self, op: Operation, t0: float) -> str:
        ret = "inf" if math.isinf(op.ret) else f"{op.ret - t0:.4f}"
        status = "" if op.status == OK else f" ({op.status})"
        return (f"p{op.process} [{op.call - t0:.4f}, {ret}] "
                f"{self.model.describe(op.input, op.output)}{status}")

    def __str__(self) -> str:
        return self.describe()


# --- the search ---------------------------------------------------------------------------------


def _prepare(model: Model, history: Iterable[Operation]) -> tuple[list[Operation], int]:
    kept: list[Operation] = []
    dropped = 0
    for op in history:
        if op.status == FAIL:
            dropped += 1
            continue
        if op.status == INFO:
            if model.inert(op.input):
                dropped += 1
                continue
            if op.ret != math.inf or op.output is not UNKNOWN:
                op = replace(op, ret=math.inf, output=UNKNOWN)
        elif op.ret < op.call:
            raise ValueError(f"operation returns before it is called: {op}")
        kept.append(op)
    simplified = model.simplify(kept)
    return simplified, dropped + len(kept) - len(simplified)


def _wgl(model: Model, ops: list[Operation], order: str, progress: list[int],
         memo_limit: float = math.inf) -> Generator[None, None, PartitionResult]:
    """WGL search over one sub-history.

    The entries form a doubly linked list over arrays: node 0 is the head sentinel, node 2n+1
    the tail, node k in between the k-th event in time order. A generator: it yields now and
    then so that the caller can stop it or run another search in between; it returns the
    result. Two refinements over porcupine, both for operations of unknown outcome (which
    never return, so stay candidates forever):

    * They are optional. Once every completed operation is placed the history is
      linearizable: the unknown ones left never happened (or happened last). A completed
      operation may also return at +infinity (known to have happened, with its output, but
      not when: a lost enqueue whose element a dequeue later returned): it must be placed,
      with no deadline. `order` says when unknown operations are tried in a configuration:
      "first" (before completed ones: one that did happen is placed early, and a wrong
      placement fails soon, at the next operation that observes it), "last" (only when
      stuck: cheap when they did not matter) or "inline" (in call order, as porcupine does).
    * Unknown operations with equal inputs are interchangeable once both have been called, so
      the memo key counts how many of each kind are linearized instead of naming them. Forty
      lost `add 1`s are then 41 configurations, not 2**40.
    """
    n = len(ops)
    events = sorted([(op.call, 0, i) for i, op in enumerate(ops)]
                    + [(op.ret, 1, i) for i, op in enumerate(ops)])
    size = 2 * n + 2
    head, tail = 0, size - 1
    nxt = list(range(1, size)) + [-1]
    prv = [-1, *range(0, size - 1)]
    op_of = [-1] * size
    is_call = [False] * size
    match = [-1] * size  # call node -> its return node
    call_node = [0] * n
    for k, (_, kind, i) in enumerate(events, start=1):
        op_of[k] = i
        if kind == 0:
            is_call[k] = True
            call_node[i] = k
        else:
            match[call_node[i]] = k

    # What linearizing op i adds to the memo key: a bit of `done` for a completed operation,
    # a mixed-radix digit of `unknown_code` for an unknown one (one digit per kind of input).
    unknown = [op.status == INFO for op in ops]
    bit = [0] * n
    weight = [0] * n
    classes: dict[Any, list[int]] = {}
    position = 0
    for i, op in enumerate(ops):
        if unknown[i]:
            try:
                classes.setdefault(("input", op.input), []).append(i)
            except TypeError:  # unhashable input: its own kind
                classes[("op", i)] = [i]
        else:
            bit[i] = 1 << position
            position += 1
    radix = 1
    for members in classes.values():
        for i in members:
            weight[i] = radix
        radix *= len(members) + 1

    step = model.step
    state = model.init()
    done = 0
    unknown_code = 0
    seen: set[tuple[int, int, Any]] = set()
    # (call node lifted, state before it, phases of that configuration)
    stack: list[tuple[int, Any, tuple]] = []
    best = -1
    counterexample: Counterexample | None = None
    explored = 0
    pending = sum(1 for u in unknown if not u)  # completed operations not yet linearized
    if pending == 0:
        return PartitionResult("ok", ops, None, 0)
    entry = nxt[head]
    # Phases: which operations a scan of the list may linearize, in order (True: unknown ones,
    # False: completed ones, None: any). "inline": any, in call order (porcupine). "last":
    # completed ones, and unknown ones only when stuck. "first": an unknown one first, but
    # not two in a row unless stuck (placing every lost operation at once, then undoing
    # them one by one, is what makes greed expensive).
    after_completed, after_unknown = {
        "inline": ((None,), (None,)),
        "last": ((False, True), (False, True)),
        "first": ((True, False), (False, True)),
    }[order]
    phases = after_completed
    phase = 0
    while True:
        explored += 1
        if explored & 0x3FF == 0:
            progress[0] += 0x400
            if len(seen) > memo_limit:
                return PartitionResult("unknown", ops, None, explored)
            yield  # let the caller check its deadline, or run another search for a while
        if entry != tail:
            i = op_of[entry]
            if is_call[entry]:
                if phases[phase] is None or unknown[i] is phases[phase]:
                    op = ops[i]
                    accepted, new_state = step(state, op.input, op.output)
                    if accepted:
                        key = (done | bit[i], unknown_code + weight[i], new_state)
                        if key not in seen:
                            seen.add(key)
                            stack.append((entry, state, phases))
                            state = new_state
                            done |= bit[i]
                            unknown_code += weight[i]
                            if not unknown[i]:
                                pending -= 1
                                if pending == 0:  # the rest are unknown: they never happened
                                    return PartitionResult("ok", ops, None, explored)
                            # lift the call and its return out of the list
                            ret_node = match[entry]
                            nxt[prv[entry]] = nxt[entry]
                            prv[nxt[entry]] = prv[entry]
                            nxt[prv[ret_node]] = nxt[ret_node]
                            prv[nxt[ret_node]] = prv[ret_node]
                            entry = nxt[head]
                            phases = after_unknown if unknown[i] else after_completed
                            phase = 0
                            continue
                entry = nxt[entry]
                continue
            if ops[i].ret == math.inf:
                entry = nxt[entry]  # no deadline: a return at +infinity blocks nothing
                continue
        if phase + 1 < len(phases):
            # Stuck on a completed operation's return: now try the other kind before it.
            phase += 1
            entry = nxt[head]
            continue
        # Stuck for good in this configuration: this operation returned before any order of
        # what came before could make room for it (or, at the tail, some completed operation
        # without a return time could not be placed at all).
        if entry == tail:
            node = nxt[head]
            while not (is_call[node] and not unknown[op_of[node]]):
                node = nxt[node]
            i = op_of[node]
        if len(stack) > best:
            best = len(stack)
            candidates = []
            node = nxt[head]
            while node != entry:
                if is_call[node]:
                    candidates.append(ops[op_of[node]])
                node = nxt[node]
            counterexample = Counterexample(
                prefix=[ops[op_of[c]] for c, _, _ in stack], state=state, blocked=ops[i],
                candidates=candidates)
        if not stack:
            return PartitionResult("illegal", ops, counterexample, explored)
        entry, state, phases = stack.pop()
        j = op_of[entry]
        done &= ~bit[j]
        unknown_code -= weight[j]
        if not unknown[j]:
            pending += 1
        # unlift: the return first, then the call (the reverse of lifting)
        ret_node = match[entry]
        nxt[prv[ret_node]] = ret_node
        prv[nxt[ret_node]] = ret_node
        nxt[prv[entry]] = entry
        prv[nxt[entry]] = entry
        phase = 0 if phases[0] is None else phases.index(unknown[j])  # continue where we were
        entry = nxt[entry]


# "auto" runs the "last" and "first" searches side by side, in turns of a few milliseconds,
# and takes the first verdict (both are complete searches, so they cannot disagree). Which
# one is fast depends on the history: "last" when most unknown operations did not matter (lost
# counter increments among many concurrent clients), "first" when they did (a lost dequeue
# that took an element nobody else saw). Side by side costs at most twice the faster one.
_TURN = 0.005


def _search(model: Model, ops: list[Operation], deadline: float, unknown_order: str,
            memo_limit: float) -> PartitionResult:
    if not ops:
        return PartitionResult("ok", ops)
    if unknown_order != "auto":
        orders = [unknown_order]
    elif any(op.status == INFO for op in ops):
        orders = ["last", "first"]
    else:
        orders = ["inline"]  # without unknown operations they are all the same search
    progress = [0]
    searches = [_wgl(model, ops, order, progress, memo_limit / len(orders))
                for order in orders]
    while True:
        for search in searches:
            turn_end = min(time.monotonic() + _TURN, deadline)
            try:
                while True:
                    next(search)
                    if time.monotonic() > turn_end:
                        break
            except StopIteration as stop:
                result: PartitionResult = stop.value
                result.explored = progress[0]
                return result  # a verdict, or out of memo (then the other search stops too)
            if time.monotonic() > deadline:
                return PartitionResult("unknown", ops, None, progress[0])


def check(model: Model, history: Iterable[Operation], timeout: float | None = 60.0,
          all_partitions: bool = False, unknown_order: str = "auto",
          memo_limit: int | None = 5_000_000) -> CheckResult:
    """Decide whether `history` is linearizable with respect to `model`.

    Partitions are searched smallest first; the first illegal one ends the check unless
    `all_partitions`. `timeout` (seconds, None for no limit) bounds the whole check: when it
    runs out the outcome is "unknown" unless some partition was already found illegal.
    `unknown_order` ("auto", "first", "last", "inline") is a search heuristic for operations
    of unknown outcome; it changes how long the search takes, never the verdict.
    `memo_limit` bounds the configurations remembered per partition (about 200 bytes each):
    past it the outcome is "unknown" too, rather than the machine running out of memory.
    """
    if unknown_order not in ("auto", "first", "last", "inline"):
        raise ValueError(f"unknown_order must be auto, first, last or inline, "
                         f"not {unknown_order!r}")
    start = time.monotonic()
    deadline = math.inf if timeout is None else start + timeout
    ops, dropped = _prepare(model, history)
    parts = sorted((p for p in model.partition(ops) if p), key=len)
    results: list[PartitionResult] = []
    outcome: Outcome = "ok"
    for part in parts:
        if time.monotonic() > deadline:
            results.append(PartitionResult("unknown", part))
            outcome = "unknown" if outcome == "ok" else outcome
            continue
        # The memo holds millions of tuples on hard histories; the cyclic collector would walk
        # all of them again and again for nothing (they cannot form cycles).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            r = _search(model, part, deadline, unknown_order,
                        math.inf if memo_limit is None else memo_limit)
        finally:
            if gc_was_enabled:
                gc.enable()
        results.append(r)
        if r.outcome == "illegal":
            outcome = "illegal"
            if not all_partitions:
                break
        elif r.outcome == "unknown" and outcome == "ok":
            outcome = "unknown"
    return CheckResult(outcome, model, results, len(ops) + dropped, dropped,
                       time.monotonic() - start)
