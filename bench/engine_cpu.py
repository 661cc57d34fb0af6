"""CPU per write on zkserver's engine path, in process: no sockets, no disk, no event loop.

The end-to-end workloads of run.py move by about a tenth from run to run on a shared 2-core
machine, which hides a change worth a few per cent. This drives the engine as a standalone
server does, in batches of 64 requests: `Engine.handle` (decode, prep), the log encoding of the
batch (`encode_batch`), and `apply_committed` (apply, reply). It prints the microseconds of CPU
per operation, median and best of the rounds. Unlike the other scripts here it imports zkserver:
it measures the server's own code, not a server over the wire.

    PYTHONPATH=$PWD python bench/engine_cpu.py             # create and setData, 9 rounds
    PYTHONPATH=$PWD python bench/engine_cpu.py --ops get --rounds 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import time
from collections.abc import Callable

from zkserver.engine import Client, Engine
from zkserver.storage.txnlog import encode_batch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zkbench  # noqa: E402  (bench/ is not a package: the request encoders)

WALL = 1_700_000_000_000
NOW = 1_000
BATCH = 64
VALUE = b"x" * 100
KEYS = 1_000  # the setData and getData keys
OPS = {"create": lambda i: zkbench.create_req("/bench-", VALUE, zkbench.PERSISTENT_SEQUENTIAL),
       "set": lambda i: zkbench.set_req(f"/k{i % KEYS}", VALUE),
       "get": lambda i: zkbench.get_req(f"/k{i % KEYS}")}


def _request(xid: int, tail: bytes) -> bytes:
    """A request frame as `Engine.handle` takes it: xid, opcode and body, no length prefix."""
    return struct.pack(">i", xid) + tail


def _connect_request(timeout: int) -> bytes:
    return struct.pack(">iqiq", 0, 0, timeout, 0) + zkbench.jbuf(b"\0" * 16) + b"\0"


def _engine() -> tuple[Engine, Client]:
    engine = Engine(tick_time=2000, wall=WALL)
    client = engine.connect(("127.0.0.1", 5000), lambda: None, NOW, WALL)
    if not engine.handshake(client, _connect_request(30_000), NOW, WALL):
        raise SystemExit("the engine refused the session")
    _commit(engine)
    for i in range(KEYS):
        engine.handle(client, _request(10**6 + i, zkbench.create_req(f"/k{i}", VALUE)), NOW,
                      WALL)
    _commit(engine)
    return engine, client


def _commit(engine: Engine) -> None:
    """What the group committer does with a round: encode it for the log, then apply it."""
    batch = engine.take_commits()
    encode_batch([txn for txn, _, _ in batch])
    engine.apply_committed(batch, NOW)


def _round(engine: Engine, client: Client, frames: list[bytes], drain: Callable[[], None]
           ) -> float:
    handle = engine.handle
    start = time.process_time()
    for k in range(0, len(frames), BATCH):
        for f in frames[k:k + BATCH]:
            handle(client, f, NOW, WALL)
        _commit(engine)
        drain()
    return (time.process_time() - start) / len(frames) * 1e6


def measure(op: str, n: int, rounds: int) -> list[float]:
    """Microseconds of CPU per operation `op` (create, set or get), one figure per round (a
    fresh batch of `n`)."""
    engine, client = _engine()
    frames = [_request(i + 1, OPS[op](i)) for i in range(n)]
    return [_round(engine, client, frames, client.out.clear) for _ in range(rounds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="create,set", help="create,set,get (create,set)")
    parser.add_argument("--count", type=int, default=20_000, help="operations per round")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    for name in args.ops.split(","):
        per_op = measure(name, args.count, args.rounds)
        print(f"{name:7} {statistics.median(per_op):6.2f} µs/op CPU median, "
              f"{min(per_op):6.2f} best, {args.rounds} rounds of {args.count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
