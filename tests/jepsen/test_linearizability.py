"""The linearizability checker: hand-made histories with the classic anomalies, random histories
cut from real sequential executions (must pass) and their mutations (must fail), a differential
test against a brute-force search on small histories, and a performance bound."""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.jepsen.linearizability import (
    FAIL,
    INFO,
    OK,
    UNKNOWN,
    CASRegister,
    CounterModel,
    KeyedModel,
    Model,
    Operation,
    QueueModel,
    SetModel,
    UniqueIdModel,
    check,
    fail_op,
    info_op,
    ok_op,
)

# --- hand-made histories ------------------------------------------------------------------------


def test_empty_history_is_linearizable():
    assert check(CASRegister(), []).valid is True


def test_register_sequential_and_concurrent_reads():
    h = [
        ok_op(0, 0, 1, ("write", 1)),
        ok_op(1, 2, 3, ("read", None), 1),
        # a read concurrent with a write may see either value
        ok_op(0, 4, 8, ("write", 2)),
        ok_op(1, 5, 6, ("read", None), 1),
        ok_op(2, 5, 7, ("read", None), 2),
    ]
    assert check(CASRegister(), h).valid is True


def test_register_stale_read_after_completed_write_is_illegal():
    h = [
        ok_op(0, 0, 1, ("write", 1)),
        ok_op(1, 2, 3, ("read", None), None),  # the write completed before this read began
    ]
    r = check(CASRegister(), h)
    assert r.valid is False
    ce = r.partitions[0].counterexample
    assert ce is not None and ce.blocked.input == ("read", None)
    assert "cannot linearize" in r.describe() and "read -> None" in r.describe()


def test_register_read_going_back_in_time_is_illegal():
    # Two concurrent writes, then reads that see 2 and afterwards 1: no order explains it.
    h = [
        ok_op(0, 0, 5, ("write", 1)),
        ok_op(1, 0, 5, ("write", 2)),
        ok_op(2, 6, 7, ("read", None), 2),
        ok_op(2, 8, 9, ("read", None), 1),
    ]
    assert check(CASRegister(), h).valid is False


def test_register_two_cas_winners_is_illegal():
    h = [
        ok_op(0, 0, 1, ("write", 0)),
        ok_op(1, 2, 5, ("cas", (0, 1)), True),
        ok_op(2, 2, 5, ("cas", (0, 2)), True),
    ]
    assert check(CASRegister(), h).valid is False
    # one winner and one loser is fine, in either order
    h[2] = ok_op(2, 2, 5, ("cas", (0, 2)), False)
    assert check(CASRegister(), h).valid is True


def test_register_failed_cas_must_have_seen_another_value():
    h = [
        ok_op(0, 0, 1, ("write", 0)),
        ok_op(1, 2, 3, ("cas", (0, 1)), False),  # nothing else wrote: the cas had to succeed
    ]
    assert check(CASRegister(), h).valid is False


def test_register_unknown_write_may_or_may_not_happen():
    base = [ok_op(0, 0, 1, ("write", 1)), info_op(1, 2, ("write", 2))]
    seen_it = [*base, ok_op(2, 3, 4, ("read", None), 2), ok_op(2, 5, 6, ("read", None), 2)]
    never = [*base, ok_op(2, 3, 4, ("read", None), 1), ok_op(2, 5, 6, ("read", None), 1)]
    late = [*base, ok_op(2, 3, 4, ("read", None), 1), ok_op(2, 5, 6, ("read", None), 2)]
    flip = [*base, ok_op(2, 3, 4, ("read", None), 2), ok_op(2, 5, 6, ("read", None), 1)]
    assert check(CASRegister(), seen_it).valid is True
    assert check(CASRegister(), never).valid is True
    assert check(CASRegister(), late).valid is True  # took effect late: still allowed
    assert check(CASRegister(), flip).valid is False  # but it cannot be undone


def test_failed_operations_are_ignored():
    h = [
        ok_op(0, 0, 1, ("write", 1)),
        fail_op(1, 2, 3, ("write", 2)),
        ok_op(2, 4, 5, ("read", None), 1),
    ]
    r = check(CASRegister(), h)
    assert r.valid is True and r.dropped == 1


def test_versioned_register_catches_a_lost_write_of_the_same_value():
    h = [
        ok_op(0, 0, 1, ("write", 7), 1),
        ok_op(0, 2, 3, ("write", 7), 2),
        ok_op(1, 4, 5, ("read", None), (7, 1)),  # the second write was lost
    ]
    assert check(CASRegister(versioned=True), h).valid is False
    assert check(CASRegister(), [op if op.input[0] != "read" else
                                 ok_op(1, 4, 5, ("read", None), 7) for op in h]).valid is True
    h[2] = ok_op(1, 4, 5, ("read", None), (7, 2))
    assert check(CASRegister(versioned=True), h).valid is True


def test_keyed_register_partitions_and_names_the_key():
    h = [
        ok_op(0, 0, 1, ("a", ("write", 1))),
        ok_op(1, 0, 1, ("b", ("write", 5))),
        ok_op(0, 2, 3, ("a", ("read", None)), 1),
        ok_op(1, 2, 3, ("b", ("read", None)), 1),  # b never held 1
    ]
    r = check(KeyedModel(CASRegister()), h)
    assert r.valid is False
    assert len(r.partitions) >= 1 and "b: read -> 1" in r.describe()
    h[3] = ok_op(1, 2, 3, ("b", ("read", None)), 5)
    r = check(KeyedModel(CASRegister()), h)
    assert r.valid is True and len(r.partitions) == 2


def test_counter_lost_update_is_illegal():
    h = [
        ok_op(0, 0, 2, ("add", 1)),
        ok_op(1, 1, 3, ("add", 1)),
        ok_op(2, 4, 5, ("read", None), 1),  # both adds finished: one was lost
    ]
    assert check(CounterModel(), h).valid is False
    h[2] = ok_op(2, 4, 5, ("read", None), 2)
    assert check(CounterModel(), h).valid is True


def test_counter_reads_in_flight():
    h = [
        ok_op(0, 0, 10, ("add", 1)),
        ok_op(1, 0, 10, ("add", 1)),
        ok_op(2, 1, 2, ("read", None), 1),
        ok_op(2, 3, 4, ("read", None), 0),  # went back
    ]
    assert check(CounterModel(), h).valid is False
    h[3] = ok_op(2, 3, 4, ("read", None), 2)
    assert check(CounterModel(), h).valid is True


def test_queue_duplicate_dequeue_is_illegal():
    h = [
        ok_op(0, 0, 1, ("enqueue", "a")),
        ok_op(0, 2, 3, ("enqueue", "b")),
        ok_op(1, 4, 6, ("dequeue", None), "a"),
        ok_op(2, 4, 6, ("dequeue", None), "a"),
    ]
    assert check(QueueModel(), h).valid is False
    h[3] = ok_op(2, 4, 6, ("dequeue", None), "b")
    assert check(QueueModel(), h).valid is True


def test_queue_order_and_empty():
    fifo_broken = [
        ok_op(0, 0, 1, ("enqueue", 1)),
        ok_op(0, 2, 3, ("enqueue", 2)),
        ok_op(1, 4, 5, ("dequeue", None), 2),
    ]
    assert check(QueueModel(), fifo_broken).valid is False
    empty_too_early = [
        ok_op(0, 0, 1, ("enqueue", 1)),
        ok_op(1, 2, 3, ("dequeue", None), None),
    ]
    assert check(QueueModel(), empty_too_early).valid is False
    concurrent_empty = [
        ok_op(0, 0, 3, ("enqueue", 1)),
        ok_op(1, 1, 2, ("dequeue", None), None),
        ok_op(1, 4, 5, ("dequeue", None), 1),
    ]
    assert check(QueueModel(), concurrent_empty).valid is True


def test_queue_lost_enqueue_shows_in_the_drain():
    h = [
        ok_op(0, 0, 1, ("enqueue", 1)),
        ok_op(0, 2, 3, ("enqueue", 2)),
        ok_op(1, 4, 5, ("dequeue", None), 1),
        ok_op(1, 6, 7, ("dequeue", None), None),  # the drain found it empty: 2 was lost
    ]
    assert check(QueueModel(), h).valid is False


def test_queue_unknown_dequeue_may_have_taken_an_element():
    h = [
        ok_op(0, 0, 1, ("enqueue", 1)),
        ok_op(0, 2, 3, ("enqueue", 2)),
        info_op(1, 4, ("dequeue", None)),
        ok_op(2, 5, 6, ("dequeue", None), 2),
        ok_op(2, 7, 8, ("dequeue", None), None),
    ]
    assert check(QueueModel(), h).valid is True


def test_set_acknowledged_add_missing_from_final_read_is_illegal():
    h = [
        ok_op(0, 0, 1, ("add", 1)),
        ok_op(1, 0, 1, ("add", 2)),
        info_op(2, 0, ("add", 3)),
        ok_op(3, 2, 3, ("read", None), frozenset({1})),
    ]
    assert check(SetModel(), h).valid is False
    h[3] = ok_op(3, 2, 3, ("read", None), frozenset({1, 2}))
    assert check(SetModel(), h).valid is True
    h[3] = ok_op(3, 2, 3, ("read", None), frozenset({1, 2, 3}))  # the unknown add happened
    assert check(SetModel(), h).valid is True
    h[3] = ok_op(3, 2, 3, ("read", None), frozenset({1, 2, 4}))  # nobody added 4
    assert check(SetModel(), h).valid is False


def test_completed_operation_without_return_time_must_still_fit():
    model = QueueModel(sequenced=True)
    h = [
        ok_op(0, 0, 1, ("enqueue", "a"), 2),
        ok_op(1, 0.5, math.inf, ("enqueue", "b"), 3),  # reply lost; a dequeue showed seq 3
        ok_op(2, 5, 6, ("dequeue", None), "a"),
        ok_op(2, 7, 8, ("dequeue", None), "b"),
    ]
    assert check(model, h).valid is True
    h[1] = ok_op(1, 2, math.inf, ("enqueue", "b"), 1)  # called after seq 2 was given out
    r = check(model, h)
    assert r.valid is False and "enqueue 'b' -> 1" in r.describe()
    # unlike an unknown operation, it cannot simply not have happened
    assert check(model, [ok_op(0, 0, math.inf, ("enqueue", "a"), 1),
                         ok_op(1, 2, 3, ("dequeue", None), None),
                         ok_op(1, 4, 5, ("dequeue", None), None)]).valid is True
    assert check(CounterModel(), [ok_op(0, 0, math.inf, ("add", 1)),
                                  ok_op(1, 2, 3, ("read", None), 7)]).valid is False


def test_lost_dequeue_cannot_take_an_element_someone_else_dequeued():
    h = [
        ok_op(0, 0, 1, ("enqueue", 1)),
        ok_op(0, 2, 3, ("enqueue", 2)),
        info_op(1, 4, ("dequeue", None)),
        ok_op(2, 5, 6, ("dequeue", None), 1),
        ok_op(2, 7, 8, ("dequeue", None), None),  # so the lost dequeue took 2
    ]
    assert check(QueueModel(unique_values=True), h).valid is True
    h[4] = ok_op(2, 7, 8, ("dequeue", None), 2)
    h.append(ok_op(2, 9, 10, ("dequeue", None), None))  # then it took nothing
    assert check(QueueModel(unique_values=True), h).valid is True
    assert check(QueueModel(), h).valid is True


def test_keyed_models_simplify_per_key():
    model = KeyedModel(QueueModel(unique_values=True))
    h = [
        ok_op(0, 0, 1, ("q1", ("enqueue", 1))),
        ok_op(0, 2, 3, ("q1", ("enqueue", 2))),
        info_op(1, 4, ("q1", ("dequeue", None))),  # took 1: must be kept, not dropped
        ok_op(2, 5, 6, ("q1", ("dequeue", None)), 2),
        ok_op(2, 7, 8, ("q1", ("dequeue", None)), None),
        info_op(3, 0, ("q2", ("enqueue", 9))),  # never seen: may be dropped
        ok_op(4, 1, 2, ("q2", ("dequeue", None)), None),
    ]
    r = check(model, h)
    assert r.valid is True, r.describe()
    assert r.dropped == 1
    assert check(model, h[:2] + h[3:]).valid is False  # without the lost dequeue


def test_unique_ids():
    h = [
        ok_op(0, 0, 2, ("generate", None), 3),
        ok_op(1, 1, 3, ("generate", None), 1),  # concurrent: may come first
        ok_op(2, 4, 5, ("generate", None), 7),
        info_op(3, 4, ("generate", None)),
    ]
    assert check(UniqueIdModel(), h).valid is True
    dup = [*h, ok_op(4, 6, 7, ("generate", None), 3)]
    assert check(UniqueIdModel(), dup).valid is False
    assert check(UniqueIdModel(monotonic=False), dup).valid is False
    backwards = [*h, ok_op(4, 6, 7, ("generate", None), 5)]  # after 7 completed
    assert check(UniqueIdModel(), backwards).valid is False
    assert check(UniqueIdModel(monotonic=False), backwards).valid is True


def test_malformed_operation_is_rejected():
    with pytest.raises(ValueError):
        check(CASRegister(), [ok_op(0, 2, 1, ("read", None), None)])


def test_timeout_reports_unknown():
    # A pathological history: many concurrent unknown writes of distinct values and reads
    # that match none of them make the search explore every subset.
    h = [info_op(i, 0, ("write", i)) for i in range(40)]
    h += [ok_op(100 + i, 1 + i, 2 + i, ("read", None), -1) for i in range(3)]
    r = check(CASRegister(), h, timeout=0.2)
    assert r.valid is None and r.outcome == "unknown"
    assert "budget" in r.describe()


# --- random histories from real sequential executions -------------------------------------------

Executor = Callable[[Any, Any], tuple[Any, Any]]  # (state, input) -> (output, new state)


def exec_register(state: Any, inp: Any) -> tuple[Any, Any]:
    f, arg = inp
    if f == "read":
        return state, state
    if f == "write":
        return None, arg
    return (state == arg[0]), (arg[1] if state == arg[0] else state)


def exec_versioned(state: Any, inp: Any) -> tuple[Any, Any]:
    value, version = state
    f, arg = inp
    if f == "read":
        return state, state
    if f == "write":
        return version + 1, (arg, version + 1)
    if value == arg[0]:
        return True, (arg[1], version + 1)
    return False, state


def exec_counter(state: int, inp: Any) -> tuple[Any, int]:
    return (None, state + inp[1]) if inp[0] == "add" else (state, state)


def exec_vcounter(state: tuple[int, int], inp: Any) -> tuple[Any, tuple[int, int]]:
    value, version = state
    if inp[0] == "add":
        return version + 1, (value + inp[1], version + 1)
    return state, state


def exec_queue(state: tuple, inp: Any) -> tuple[Any, tuple]:
    if inp[0] == "enqueue":
        return None, (*state, inp[1])
    return (state[0], state[1:]) if state else (None, state)


def exec_seqqueue(state: tuple, inp: Any) -> tuple[Any, tuple]:
    items, seq = state
    if inp[0] == "enqueue":
        return seq, ((*items, inp[1]), seq + 1 + (inp[1] % 3 == 0))  # gaps, as deletes make
    return (items[0], (items[1:], seq)) if items else (None, state)


def exec_set(state: frozenset, inp: Any) -> tuple[Any, frozenset]:
    return (None, state | {inp[1]}) if inp[0] == "add" else (state, state)


def exec_ids(state: int, inp: Any) -> tuple[int, int]:
    return state, state + 1


class Gen:
    """Random inputs; values that must be unique come from a counter."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.counter = itertools.count(1)

    def register(self) -> Any:
        r = self.rng.random()
        if r < 0.4:
            return ("read", None)
        if r < 0.7:
            return ("write", self.rng.randrange(5))
        return ("cas", (self.rng.randrange(5), self.rng.randrange(5)))

    def counter_op(self) -> Any:
        return ("add", self.rng.choice([1, 1, 2])) if self.rng.random() < 0.6 else ("read", None)

    def queue(self) -> Any:
        return ("enqueue", next(self.counter)) if self.rng.random() < 0.5 else ("dequeue", None)

    def set_op(self) -> Any:
        return ("add", next(self.counter)) if self.rng.random() < 0.8 else ("read", None)

    def ids(self) -> Any:
        return ("generate", None)


def sequential_history(rng: random.Random, execute: Executor, choose: Callable[[], Any],
                       init: Any, n: int, processes: int = 8, spread: float = 3.0,
                       info_rate: float = 0.03, keys: int | None = None,
                       finals: list[Any] | None = None,
                       revealed: dict[int, Any] | None = None) -> list[Operation]:
    """Run `n` operations one after another on a real sequential object (the linearization
    points are increasing instants), then give each an interval around its point: the call
    up to `spread` earlier, the return up to `spread` later, never overlapping the same
    process's previous operation. Some operations lose their outcome (INFO), and half of
    those never took effect. `finals` run after everything (a final read or drain).
    `revealed` gets the outputs of the lost operations that took effect, by index."""
    states: dict[Any, Any] = {}
    busy: dict[int, float] = {p: -math.inf for p in range(processes)}
    next_process = processes
    ops: list[Operation] = []
    t = 0.0

    def one(inp: Any, key: Any, info_ok: bool) -> None:
        nonlocal next_process, t
        idle = [p for p, until in busy.items() if until < t]
        if not idle:
            t = min(busy.values()) + 1e-3
            idle = [p for p, until in busy.items() if until < t]
        p = rng.choice(idle)
        state = states.get(key, init)
        call = rng.uniform(max(busy[p], t - spread), t)
        full = inp if keys is None else (key, inp)
        if info_ok and rng.random() < info_rate:
            if rng.random() < 0.5:
                out, states[key] = execute(state, inp)
                if revealed is not None:
                    revealed[len(ops)] = out
            ops.append(info_op(p, call, full))
            del busy[p]
            busy[next_process] = -math.inf
            next_process += 1
            return
        out, states[key] = execute(state, inp)
        ret = t + rng.uniform(0, spread)
        busy[p] = ret
        ops.append(ok_op(p, call, ret, full, out))

    for _ in range(n):
        t += rng.expovariate(3.0)
        one(choose(), None if keys is None else rng.randrange(keys), True)
    t = max([*busy.values(), t]) + 1.0
    for key in ([None] if keys is None else range(keys)):
        for inp in finals or []:
            t += 10 * spread
            one(inp, key, False)
    return ops


CASES: dict[str, tuple[Model, Executor, str, Any, list[Any]]] = {
    "register": (CASRegister(), exec_register, "register", None, [("read", None)]),
    "versioned": (CASRegister(versioned=True), exec_versioned, "register", (None, 0),
                  [("read", None)]),
    "counter": (CounterModel(), exec_counter, "counter_op", 0, [("read", None)]),
    "vcounter": (CounterModel(versioned=True), exec_vcounter, "counter_op", (0, 0),
                 [("read", None)]),
    "queue": (QueueModel(), exec_queue, "queue", (), [("dequeue", None)] * 60),
    "seqqueue": (QueueModel(sequenced=True), exec_seqqueue, "queue", ((), 0),
                 [("dequeue", None)] * 60),
    # as the ZooKeeper workload checks it: values unique, lost enqueues revealed by dequeues
    "zkqueue": (QueueModel(sequenced=True, unique_values=True), exec_seqqueue, "queue",
                ((), 0), [("dequeue", None)] * 60),
    "set": (SetModel(), exec_set, "set_op", frozenset(), [("read", None)]),
    "ids": (UniqueIdModel(), exec_ids, "ids", 0, []),
}


# The plain queue model has to guess the order of overlapping enqueues still in the queue (n!
# orders): its random histories keep concurrency moderate and the queue short. The sequenced
# queue (ZooKeeper's) pins the order and takes the full concurrency.
MODERATE = {"queue": {"processes": 3, "spread": 0.5}}


def make(case: str, seed: int, n: int = 150, keys: int | None = None,
         **kw: Any) -> tuple[Model, list[Operation]]:
    model, execute, kind, init, finals = CASES[case]
    kw = {**MODERATE.get(case, {}), **kw}
    rng = random.Random(seed)
    gen = Gen(rng)
    if case == "zkqueue" and kw.pop("long", False):
        gen.queue = lambda: (("enqueue", next(gen.counter)) if rng.random() < 0.6  # type: ignore
                             else ("dequeue", None))
        finals = finals * 20
    revealed: dict[int, Any] = {}
    h = sequential_history(rng, execute, getattr(gen, kind), init, n, keys=keys,
                           finals=finals, revealed=revealed, **kw)
    if case == "zkqueue":
        h = reveal_lost_enqueues(h, revealed)
    return (model if keys is None else KeyedModel(model)), h


def reveal_lost_enqueues(h: list[Operation], revealed: dict[int, Any]) -> list[Operation]:
    """What the queue workload does: an enqueue whose reply was lost but whose element was
    dequeued happened, with the sequence number the dequeued name shows."""
    returned = {op.output for op in h if op.status == OK and op.input[0] == "dequeue"}
    h = list(h)
    for i, seq in revealed.items():
        if h[i].input[0] == "enqueue" and h[i].input[1] in returned:
            h[i] = Operation(h[i].process, h[i].call, math.inf, h[i].input, seq, OK)
    return h


@pytest.mark.parametrize("case", sorted(CASES))
def test_random_sequential_histories_are_linearizable(case):
    for seed in range(15):
        model, h = make(case, seed)
        r = check(model, h, timeout=20)
        assert r.valid is True, f"seed {seed}:\n{r.describe()}"


def test_random_keyed_register_histories_are_linearizable():
    for seed in range(10):
        model, h = make("versioned", seed, n=300, keys=4)
        r = check(model, h, timeout=20)
        assert r.valid is True, f"seed {seed}:\n{r.describe()}"
        assert len(r.partitions) == 4


def _replace(h: list[Operation], i: int, output: Any) -> list[Operation]:
    h = list(h)
    op = h[i]
    h[i] = Operation(op.process, op.call, op.ret, op.input, output, op.status)
    return h


def _pick(rng: random.Random, h: list[Operation], pred: Callable[[Operation], bool]) -> int:
    candidates = [i for i, op in enumerate(h) if op.status == OK and pred(op)]
    return rng.choice(candidates)


def mutate(case: str, rng: random.Random, h: list[Operation]) -> list[Operation]:
    """A change that no linearization can explain, whatever the intervals."""
    def f(op: Operation) -> str:
        return op.input[1][0] if isinstance(op.input[0], int) else op.input[0]

    if case == "register":  # a read of a value nobody wrote
        return _replace(h, _pick(rng, h, lambda op: f(op) == "read"), 99)
    if case == "versioned":  # a read of a version that never existed with that value
        i = _pick(rng, h, lambda op: f(op) == "read")
        value, version = h[i].output
        return _replace(h, i, (value, version + 1000))
    if case == "counter":  # a read above what every add, even the unknown ones, could make
        i = _pick(rng, h, lambda op: op.input[0] == "read")
        return _replace(h, i, sum(op.input[1] for op in h if op.input[0] == "add") + 1)
    if case == "vcounter":  # the final read lost the last acknowledged add
        i = max(range(len(h)), key=lambda k: h[k].call)
        value, version = h[i].output
        return _replace(h, i, (value - 1, version))
    if case in ("queue", "seqqueue", "zkqueue"):  # a value dequeued twice
        deq = [i for i, op in enumerate(h) if op.status == OK and op.input[0] == "dequeue"
               and op.output is not None]
        a, b = rng.sample(deq, 2)
        return _replace(h, b, h[a].output)
    if case == "set":  # an acknowledged add missing from the final read
        final = max(range(len(h)), key=lambda k: h[k].call)
        added = [op.input[1] for op in h if op.status == OK and op.input[0] == "add"]
        return _replace(h, final, h[final].output - {rng.choice(added)})
    if case == "ids":  # a duplicate id
        gens = [i for i, op in enumerate(h) if op.status == OK]
        a, b = rng.sample(gens, 2)
        return _replace(h, b, h[a].output)
    raise AssertionError(case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_mutated_histories_are_not_linearizable(case):
    for seed in range(15):
        model, h = make(case, seed)
        bad = mutate(case, random.Random(seed), h)
        r = check(model, bad, timeout=20)
        assert r.valid is False, f"seed {seed}: mutation accepted"
        assert "cannot linearize" in r.describe()


# --- differential: WGL against a brute-force search ---------------------------------------------


def brute_force(model: Model, history: list[Operation]) -> bool:
    """Linearizable by definition: some order of the completed operations plus any subset of
    the unknown ones respects real time (a before b when a returned before b was called) and
    the model. Exponential; for a handful of operations only."""
    ops = [op for op in history if op.status != FAIL]
    must = {i for i, op in enumerate(ops) if op.status == OK}
    ret = [math.inf if op.status == INFO else op.ret for op in ops]

    def search(done: frozenset[int], state: Any) -> bool:
        if must <= done:
            return True
        for i, op in enumerate(ops):
            if i in done or any(j not in done and ret[j] < op.call for j in range(len(ops))):
                continue
            out = UNKNOWN if op.status == INFO else op.output
            accepted, nxt = model.step(state, op.input, out)
            if accepted and search(done | {i}, nxt):
                return True
        return False

    return search(frozenset(), model.init())


def small_random_history(rng: random.Random, case: str) -> list[Operation]:
    """A few operations with random intervals and random (often wrong) outputs."""
    ops = []
    counter = itertools.count(1)
    for p in range(rng.randrange(2, 7)):
        call = rng.uniform(0, 4)
        ret = call + rng.uniform(0, 3)
        status = rng.choice([OK, OK, OK, OK, INFO, FAIL, "late"])
        if case == "register":
            inp = rng.choice([("read", None), ("write", rng.randrange(3)),
                              ("cas", (rng.randrange(3), rng.randrange(3)))])
            out = {"read": rng.choice([None, 0, 1, 2]), "write": None,
                   "cas": rng.choice([True, False])}[inp[0]]
        elif case == "counter":
            inp = rng.choice([("add", 1), ("read", None)])
            out = rng.randrange(4) if inp[0] == "read" else None
        else:
            inp = rng.choice([("enqueue", next(counter)), ("dequeue", None)])
            if inp[0] == "dequeue":
                out = rng.choice([None, 1, 2, 3])
            else:  # the sequenced queue's position; the plain queue wants None
                out = rng.randrange(5) if case == "seqqueue" else None
        if status == INFO:
            ops.append(info_op(p, call, inp))
        elif status == "late":  # completed, output known, return time lost
            ops.append(ok_op(p, call, math.inf, inp, out))
        elif status == FAIL:
            ops.append(fail_op(p, call, ret, inp))
        else:
            ops.append(ok_op(p, call, ret, inp, out))
    return ops


@pytest.mark.parametrize("case,model", [
    ("register", CASRegister()),
    ("counter", CounterModel()),
    ("queue", QueueModel()),
    ("seqqueue", QueueModel(sequenced=True, unique_values=True)),
])
def test_agrees_with_brute_force_on_small_histories(case, model):
    rng = random.Random(sum(map(ord, case)))
    verdicts = set()
    for _ in range(600):
        h = small_random_history(rng, case)
        expected = brute_force(model, h)
        got = check(model, h).valid
        assert got is expected, f"{case}: WGL says {got}, brute force {expected}: {h}"
        verdicts.add(expected)
    assert verdicts == {True, False}  # both kinds were exercised


# --- performance --------------------------------------------------------------------------------


def test_two_thousand_op_register_history_over_ten_keys_is_fast():
    model, h = make("versioned", 7, n=2000, keys=10, processes=10, info_rate=0.02)
    assert len(h) >= 2000
    start = time.monotonic()
    r = check(model, h, timeout=30)
    elapsed = time.monotonic() - start
    assert r.valid is True, r.describe()
    assert elapsed < 2.0, f"{elapsed:.2f}s"
    bad = mutate("versioned", random.Random(7), h)
    assert check(model, bad, timeout=30).valid is False


@pytest.mark.parametrize("case,processes,kw", [
    ("counter", 5, {}), ("vcounter", 8, {}), ("zkqueue", 5, {}), ("ids", 10, {}),
    ("zkqueue", 5, {"long": True}),  # a queue hundreds long, lost dequeues behind it
])
def test_long_single_key_histories_with_lost_replies_are_fast(case, processes, kw):
    model, h = make(case, 3, n=3000, processes=processes, info_rate=0.01, **kw)
    assert sum(op.status == INFO for op in h) > 10
    start = time.monotonic()
    r = check(model, h, timeout=60)
    assert r.valid is True, r.describe()
    # Typically well under a second; the bound only says the search did not blow up.
    assert time.monotonic() - start < 10.0


def test_memo_limit_reports_unknown():
    h = [info_op(i, 0, ("write", i)) for i in range(40)]
    h += [ok_op(100 + i, 1 + i, 2 + i, ("read", None), -1) for i in range(3)]
    r = check(CASRegister(), h, timeout=None, memo_limit=20_000)
    assert r.valid is None
