"""The raw-protocol differential fuzzer: random request sequences, the same bytes to Apache
ZooKeeper 3.9.5 and to zkserver, the normalised replies compared (tests/differential/rawfuzz.py
says what is normalised and why).

One ZooKeeper and one zkserver serve the whole module; every sequence works under its own
top-level path and closes its sessions, so both servers stay at the same zxid. Both sides run at
once (one thread each). On a difference the sequence is shrunk, and the failure prints the seed
that reproduces it and the replies that differ.

    ZKSERVER_FUZZ_SEED      base seed (default "0": CI runs the same sequences every time;
                            "random" draws one and prints it)
    ZKSERVER_FUZZ_SEQUENCES sequences in the default run (default 2000)
    ZKSERVER_FUZZ_SECONDS   stop starting new sequences after this long (default 90: on a
                            loaded machine the default run does fewer, and says how many)
    ZKSERVER_FUZZ_ONLY      run only these sequence numbers ("17,250"), to reproduce one
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import rawfuzz
from support import realzk
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port

# Both servers: no fsync (answers do not depend on it), TTL nodes allowed, and containers and
# TTL nodes never reaped during a run (a reaper deletes at a time of its own, a zxid on one side
# only). ZooKeeper reads the interval as a JVM system property, not from zoo.cfg.
COMMON = ["forceSync=no", "extendedTypesEnabled=true"]
NEVER_MS = 3_600_000
ZK_ENV = {"JAVA_TOOL_OPTIONS": f"-Dznode.container.checkIntervalMs={NEVER_MS}"}
OURS_EXTRA = [f"znode.container.checkIntervalMs={NEVER_MS}"]

SHRINK_BUDGET = 120
MAX_REPORTED = 3


class Pair:
    def __init__(self, base: Path) -> None:
        self.real = RealZooKeeper(base / "real", free_port(), extra=COMMON, env=ZK_ENV).start()
        try:
            self.ours = ZkServerProcess(base / "ours", free_port(),
                                        extra=COMMON + OURS_EXTRA).start()
        except BaseException:
            self.real.stop()
            raise
        self.pool = ThreadPoolExecutor(2)
        self.count = 0

    def stop(self) -> None:
        self.pool.shutdown()
        self.ours.kill()
        self.real.stop()

    def both(self, seq: rawfuzz.Sequence) -> tuple[list, list]:
        """The transcripts of `seq` on ZooKeeper and on zkserver, under a fresh prefix."""
        self.count += 1
        prefix = rawfuzz.PREFIX_FORMAT % self.count
        zk = self.pool.submit(rawfuzz.run, self.real.port, seq, prefix)
        ours = self.pool.submit(rawfuzz.run, self.ours.port, seq, prefix)
        try:
            return zk.result(), ours.result()
        except OSError:
            dead = [name for name, alive in (("ZooKeeper", self.real.procs[0].poll() is None),
                                             ("zkserver", self.ours.proc.poll() is None))
                    if not alive]
            steps = "\n".join("  " + s.describe() for s in seq.steps)
            raise AssertionError(f"{' and '.join(dead) or 'neither server'} died running "
                                 f"sequence {seq.seed}:\n{steps}") from None

    def differs(self, seq: rawfuzz.Sequence) -> bool:
        return not rawfuzz.same_steps(*self.both(seq))


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[Pair]:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not available (tests/support/fetch_zookeeper.sh)")
    p = Pair(tmp_path_factory.mktemp("rawfuzz"))
    try:
        yield p
    finally:
        p.stop()


def _base_seed(default: str) -> str:
    seed = os.environ.get("ZKSERVER_FUZZ_SEED", default)
    return str(random.randrange(2**32)) if seed == "random" else seed


def _difference(zk: list, ours: list) -> list[str]:
    i = rawfuzz.first_difference(zk, ours)
    if i is None:
        return ["  (no difference this time)"]
    return [f"  first differing transcript entry #{i}:",
            f"    zookeeper: {zk[i] if i < len(zk) else '<none>'}",
            f"    zkserver:  {ours[i] if i < len(ours) else '<none>'}"]


def _report(pair: Pair, seed: str, index: int, seq: rawfuzz.Sequence, zk: list,
            ours: list) -> str:
    small = rawfuzz.shrink(seq, pair.differs, SHRINK_BUDGET)
    lines = [f"sequence {index} differs: reproduce with ZKSERVER_FUZZ_SEED={seed} "
             f"ZKSERVER_FUZZ_ONLY={index}", *_difference(zk, ours),
             *(["  (the servers were at different zxids before it: an earlier sequence used "
                "a zxid on one side only, maybe in closing its sessions)"]
               if zk[:1] != ours[:1] else []),
             f"  shrunk from {len(seq.steps)} to {len(small.steps)} steps:"]
    lines += ["  " + s.describe() for s in small.steps]
    lines += _difference(*pair.both(small))
    return "\n".join(lines)


def fuzz(pair: Pair, sequences: int, seconds: float, seed: str = "0"
         ) -> tuple[int, int, float, list[str], str]:
    """Run `sequences` sequences (fewer if `seconds` run out first) from base seed `seed`
    (ZKSERVER_FUZZ_SEED overrides it): (sequences run, ops, seconds, reports of differences,
    a summary line)."""
    seed = _base_seed(seed)
    only = os.environ.get("ZKSERVER_FUZZ_ONLY")
    indices = [int(x) for x in only.split(",")] if only else range(sequences)
    ops = 0
    reports: list[str] = []
    start = time.monotonic()
    ran = 0
    for n, index in enumerate(indices):
        if time.monotonic() - start > seconds:
            break
        ran = n + 1
        seq = rawfuzz.generate(f"{seed}:{index}")
        ops += seq.ops()
        zk, ours = pair.both(seq)
        if zk != ours:
            reports.append(_report(pair, seed, index, seq, zk, ours))
            if len(reports) >= MAX_REPORTED:
                break
    elapsed = time.monotonic() - start
    summary = (f"raw fuzzer: seed {seed}, {ran} sequences, {ops} requests, {elapsed:.1f} s, "
               f"{len(reports)} differing")
    return ran, ops, elapsed, [summary, *reports] if reports else [], summary


def _say(capsys, line: str) -> None:
    """A line in pytest's output even when output is captured (the figures a CI log shows)."""
    with capsys.disabled():
        print("\n" + line)


def test_random_sequences_match_zookeeper(pair: Pair, capsys) -> None:
    n = int(os.environ.get("ZKSERVER_FUZZ_SEQUENCES", "2000"))
    ran, _, _, reports, summary = fuzz(
        pair, n, float(os.environ.get("ZKSERVER_FUZZ_SECONDS", "90")))
    _say(capsys, summary)
    assert not reports, "\n\n".join(reports)
    if not os.environ.get("ZKSERVER_FUZZ_ONLY"):
        assert ran >= min(n, 200), f"only {ran} sequences ran before the time budget"


@pytest.mark.slow
def test_many_random_sequences_match_zookeeper(pair: Pair, capsys) -> None:
    """A longer hunt (about ten minutes), with a fresh random seed unless one is given."""
    _, _, _, reports, summary = fuzz(pair, 30000, 600.0, seed="random")
    _say(capsys, summary)
    assert not reports, "\n\n".join(reports)
