"""Scenario tests of the ZAB core, in etcd-raft's data-driven style.

Each file in testdata/ drives one sans-IO core — a `Peer`, or an `Election` alone — through its
inputs and states, block by block, the batch each input produces:

    # a comment
    receive 2 FollowerInfo(sid=2, accepted_epoch=1, last_zxid=0x100000003, observer=False)
    ----
    epochs accepted=2 current=1
    send 2 LeaderInfo(epoch=2)

A block is one input line, `----`, and the expected output (the `Ready`, one line per item;
`ok` when empty), up to a blank line. Messages are written as Python expressions over the
message classes, with `txn(zxid)` for a transaction and `txns(zxid, ...)` for a tuple of them.
The first block sets the core up (`peer ...` or `election ...`). Time is absolute: `tick 2000`
ticks at 2000 ms (`due 2010`: `thrifty_due` at 2010 ms), and later inputs happen at that time.

Run with UPDATE_SCENARIOS=1 to rewrite the expectations from what the core does now (then read
the diff: the files are the specification).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import attrs
import pytest

from zkserver.quorum import messages as M
from zkserver.quorum.election import Election
from zkserver.quorum.history import History
from zkserver.quorum.peer import Peer
from zkserver.quorum.quorum import Majority
from zkserver.quorum.ready import (
    Append,
    Disconnect,
    Install,
    Ready,
    Send,
    SendSnapshot,
    Truncate,
)
from zkserver.quorum.roles import Role
from zkserver.txn import SetDataTxn, Txn

TESTDATA = Path(__file__).parent / "testdata"
SEPARATOR = "----"


# -- transactions and messages as text --------------------------------------------------------


def txn(zxid: int) -> Txn:
    """A scenario's transaction: all that matters to ZAB is its zxid."""
    return Txn(zxid, 0, 0, zxid & 0xFFFFFFFF, SetDataTxn("/", b"", 0))


def txns(*zxids: int) -> tuple[Txn, ...]:
    return tuple(txn(z) for z in zxids)


NAMESPACE: dict[str, Any] = {name: getattr(M, name) for name in dir(M)
                             if attrs.has(getattr(M, name))}
NAMESPACE.update({r.name: r for r in Role}, txn=txn, txns=txns)


def parse_message(text: str) -> Any:
    return eval(text, {"__builtins__": {}}, NAMESPACE)  # test data written by us


def render(value: Any, name: str = "") -> str:
    if isinstance(value, Txn):
        return f"txn({value.zxid:#x})"
    if isinstance(value, Role):
        return value.name
    if attrs.has(type(value)):
        # Fields at their default (added to a message later) only when they matter.
        fields = ", ".join(f"{f.name}={render(getattr(value, f.name), f.name)}"
                           for f in attrs.fields(type(value))
                           if f.default is attrs.NOTHING or getattr(value, f.name) != f.default)
        return f"{type(value).__name__}({fields})"
    if isinstance(value, tuple):
        if value and all(isinstance(v, Txn) for v in value):
            return "txns(" + ", ".join(f"{t.zxid:#x}" for t in value) + ")"
        inner = ", ".join(render(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, bytes):
        return repr(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return repr(value)
    hexadecimal = "zxid" in name or "digest" in name or name in ("session_id", "config_version")
    return f"{value:#x}" if hexadecimal else str(value)


def zxids(items: tuple[Txn, ...]) -> str:
    return " ".join(f"{t.zxid:#x}" for t in items)


def render_ready(r: Ready) -> list[str]:
    out = []
    if r.epochs is not None:
        out.append(f"epochs accepted={r.epochs.accepted} current={r.epochs.current}")
    for op in r.log:
        if type(op) is Append:
            out.append(f"log append {zxids(op.txns)}")
        elif type(op) is Truncate:
            out.append(f"log truncate {op.zxid:#x}" + (" rebuild" if op.rebuild else ""))
        elif type(op) is Install:
            flags = "".join(f" {name}" for name in ("first", "last") if getattr(op, name))
            out.append(f"log install {op.zxid:#x}{flags} {op.chunk!r}")
    if r.committed:
        out.append(f"apply {zxids(r.committed)}")
    for net in r.network:
        if type(net) is Send:
            out.append(f"send {net.to} {render(net.msg)}")
        elif type(net) is SendSnapshot:
            out.append(f"snapshot {net.to} at={net.zxid:#x}")
        elif type(net) is Disconnect:
            out.append(f"disconnect {net.sid}")
    for role in r.roles:
        config = f" config={role.config_version:#x}" if role.config_version else ""
        out.append(f"role {role.role.name} leader={role.leader} epoch={role.epoch}{config}")
    for d in r.deliveries:
        out.append(f"deliver {d.sid} {render(d.msg)}")
    return out or ["ok"]


# -- driving the cores --------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x, 0) for x in text.split(",") if x]


def _options(words: list[str]) -> dict[str, str]:
    return dict(w.split("=", 1) for w in words)


class PeerScenario:
    """Drives a `Peer`; each input's output is the peer's next Ready."""

    def __init__(self, args: list[str]) -> None:
        o = _options(args)
        self.peer = Peer(
            int(o["sid"]), Majority(_ints(o["voters"]), _ints(o.get("observers", ""))),
            history=History(txns(*_ints(o.get("history", ""))), int(o.get("base", "0"), 0),
                            limit=int(o.get("limit", "100000"))),
            tick_ms=int(o.get("tick", "2000")), init_limit=int(o.get("init", "10")),
            sync_limit=int(o.get("sync", "5")), accepted_epoch=int(o.get("accepted", "0")),
            current_epoch=int(o.get("current", "0")),
            applied_zxid=int(o["applied"], 0) if "applied" in o else None,
            config_version=int(o.get("config", "0"), 0), reconfig_enabled="reconfig" in o,
            thrifty_ms=int(o.get("thrifty", "0")))
        self.now = 0

    def run(self, cmd: str, args: list[str], rest: str) -> list[str]:
        p = self.peer
        if cmd == "start":
            self.now = int(args[0])
            p.start(self.now)
        elif cmd == "tick":
            self.now = int(args[0])
            p.tick(self.now)
        elif cmd == "receive":
            p.receive(int(args[0]), parse_message(rest.split(None, 1)[1]), self.now)
        elif cmd == "disconnected":
            p.disconnected(int(args[0]))
        elif cmd == "logged":
            p.logged(int(args[0], 0))
        elif cmd == "installed":
            p.installed(int(args[0], 0))
        elif cmd == "truncated":
            p.truncated(int(args[0], 0))
        elif cmd == "applied":
            p.applied(int(args[0], 0), int(_options(args[1:])["digest"], 0))
        elif cmd == "propose":
            taken = p.propose_batch(list(txns(*(int(a, 0) for a in args))))
            return [f"proposed {taken}", *render_ready(p.ready())]
        elif cmd == "due":  # time for what a leader held back for spares (`thrifty_due`)
            self.now = int(args[0])
            p.thrifty_due(self.now)
        elif cmd == "sync":
            p.local_sync(int(args[0]))
        elif cmd == "touch":
            p.touch({int(s, 0): int(t) for s, t in (a.split(":") for a in args)})
        elif cmd == "state":
            return [self.state()]
        else:
            raise ValueError(f"unknown input {cmd!r}")
        return render_ready(p.ready())

    def state(self) -> str:
        p = self.peer
        return (f"role={p.role.name} stage={p.stage.name} leader={p.leader} epoch={p.epoch} "
                f"accepted={p.accepted_epoch} current={p.current_epoch} "
                f"last={p.last_zxid:#x} logged={p.logged_zxid:#x} "
                f"commit={p.commit_zxid:#x} applied={p.applied_zxid:#x} resets={p.resets}")


class ElectionScenario:
    """Drives an `Election` alone: its notifications, and the vote once it decides."""

    def __init__(self, args: list[str]) -> None:
        o = _options(args)
        self.election = Election(int(o["sid"]), Majority(_ints(o["voters"]),
                                                         _ints(o.get("observers", ""))))
        self.now = 0

    def run(self, cmd: str, args: list[str], rest: str) -> list[str]:
        e = self.election
        decided = None
        if cmd == "start":
            self.now = int(args[0])
            e.start(parse_message(rest.split(None, 1)[1]), self.now)
        elif cmd == "tick":
            self.now = int(args[0])
            decided = e.tick(self.now)
        elif cmd == "receive":
            decided = e.receive(parse_message(rest), self.now)
        elif cmd == "use":  # count by another configuration (a reconfiguration heard of)
            o = _options(args)
            e.use(Majority(_ints(o["voters"]), _ints(o.get("observers", ""))))
        else:
            raise ValueError(f"unknown input {cmd!r}")
        out = [f"send {to} {render(n)}" for to, n in e.take_messages()]
        if decided is not None:
            out.append(f"decided {render(decided)}")
        return out or ["ok"]


# -- the files ------------------------------------------------------------------------------------


@attrs.define
class Block:
    comments: list[str]
    command: str
    expected: list[str]


def parse_file(text: str) -> list[Block]:
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        comments = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith("#")):
            if lines[i].startswith("#"):
                comments.append(lines[i])
            i += 1
        if i >= len(lines):
            break
        command = lines[i]
        i += 1
        assert i < len(lines) and lines[i] == SEPARATOR, f"line {i + 1}: expected {SEPARATOR}"
        i += 1
        expected = []
        while i < len(lines) and lines[i].strip():
            expected.append(lines[i])
            i += 1
        blocks.append(Block(comments, command, expected))
    return blocks


def format_file(blocks: list[Block]) -> str:
    parts = []
    for b in blocks:
        parts.append("\n".join([*b.comments, b.command, SEPARATOR, *b.expected]))
    return "\n\n".join(parts) + "\n"


def execute(blocks: list[Block]) -> list[list[str]]:
    first = blocks[0].command.split()
    scenario: PeerScenario | ElectionScenario
    if first[0] == "peer":
        scenario = PeerScenario(first[1:])
    elif first[0] == "election":
        scenario = ElectionScenario(first[1:])
    else:
        raise ValueError(f"a scenario starts with `peer` or `election`, not {first[0]!r}")
    outputs = [["ok"]]
    for b in blocks[1:]:
        cmd, _, rest = b.command.partition(" ")
        # A message may contain spaces: the arguments are the words before it.
        args = list(itertools.takewhile(lambda w: "(" not in w, rest.split()))
        try:
            outputs.append(scenario.run(cmd, args, rest))
        except Exception as e:  # an input the core refuses is part of the scenario
            outputs.append([f"error {type(e).__name__}: {e}"])
    return outputs


FILES = sorted(TESTDATA.glob("*.txt"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path) -> None:
    blocks = parse_file(path.read_text())
    outputs = execute(blocks)
    if os.environ.get("UPDATE_SCENARIOS"):
        for b, out in zip(blocks, outputs, strict=True):
            b.expected = out
        path.write_text(format_file(blocks))
        return
    for b, out in zip(blocks, outputs, strict=True):
        assert out == b.expected, f"{path.name}: after `{b.command}`"


def test_there_are_scenarios() -> None:
    assert len(FILES) >= 8
