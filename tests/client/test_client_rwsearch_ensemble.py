"""zkserver.client finds a read-write server by itself while the read-only server it is on stays
read-only: on a zkserver ensemble and on Apache ZooKeeper 3.9.5's, with the same assertions
(client/rwsearch.py; tests/client/test_client_rwsearch.py covers the schedule and the probe).

Member 1 is cut off from the others by a partition of the quorum and election links (proxies the
test controls; the client ports stay reachable), and members 2 and 3 are killed. Member 1 serves
read-only and the client, which can reach only it, is READ_ONLY (for a few seconds, its probes
refused). Members 2 and 3 come back: they form a quorum of their own, and member 1, still
partitioned, stays read-only and keeps the client's connection. So nothing but the client's own
`isro` probes can move it: it must get CONNECTED on member 2 or 3, with a new session (the one
member 1 gave it is not valid elsewhere), while member 1 still answers `ro`, and within the
probe schedule's bound: the wait before the next probe is at most the time since the client
started (waits double from 0.1 s), so the move comes at most that long after members 2 and 3
serve, plus a probe and a handshake.

Only on Trio (the client's code is the same on asyncio; each run starts an ensemble).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import realzk
from support.process import free_port_base
from support.proxy import Proxy
from support.readonly_ensembles import JVM_FLAGS, KAZOO_CONFIG, OursRO, TheirsRO
from support.realzk import RealZooKeeper, four_letter

from zkserver import client
from zkserver.client import State
from zkserver.client import errors as E

pytestmark = pytest.mark.anyio

ISOLATED, STOPPED = 1, (2, 3)
HOLD_S = 3.0
PROBE_AND_HANDSHAKE_S = 5.0  # a probe may take 2 s (connect, then read); then a handshake


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def proxy_port(base: int, i: int, j: int, kind: str) -> int:
    """Where member i reaches member j's quorum ("q") or election ("e") port: the layout
    `free_port_base(n, proxied=True)` keeps free (as ZkServerEnsemble's)."""
    return base + (300 if kind == "q" else 400) + i * 10 + j


def OursIsolated(base: Path) -> OursRO:  # noqa: N802 (used as the class it stands for)
    """A zkserver ensemble of three whose members talk through proxies."""
    return OursRO(base, proxied=True)


class ProxiedZooKeeper(RealZooKeeper):
    """Apache ZooKeeper's three, each member's `server.N` lines for the others pointing at
    proxies (its own line stays as it is: it binds those ports)."""

    def config_lines(self, i: int, data: Path, client_port: int) -> list[str]:
        lines = [ln for ln in super().config_lines(i, data, client_port)
                 if not ln.startswith("server.")]
        for j in range(1, self.n + 1):
            q, e = self.port + 100 + j, self.port + 200 + j
            if j != i:
                q, e = proxy_port(self.port, i, j, "q"), proxy_port(self.port, i, j, "e")
            lines.append(f"server.{j}=127.0.0.1:{q}:{e}")
        return lines


class TheirsIsolated(TheirsRO):
    """TheirsRO (kill and restart by id, kazoo's read-only configuration) over a proxied
    ZooKeeper ensemble."""

    def __init__(self, base: Path) -> None:
        port = free_port_base(3, proxied=True)
        self.zk = ProxiedZooKeeper(base, port, n=3, extra=KAZOO_CONFIG, heap="256m",
                                   env=JVM_FLAGS)
        self.proxies = {
            (i, j): [Proxy(proxy_port(port, i, j, "q"), port + 100 + j),
                     Proxy(proxy_port(port, i, j, "e"), port + 200 + j)]
            for i in (1, 2, 3) for j in (1, 2, 3) if i != j}

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        for pair in self.proxies.values():
            for p in pair:
                p.close()

    def isolate(self, i: int) -> None:
        for (a, b), pair in self.proxies.items():
            if i in (a, b):
                for p in pair:
                    p.cut()


async def isro(side: Any, i: int) -> str:
    try:
        return await anyio.to_thread.run_sync(four_letter, "127.0.0.1", side.port(i), "isro")
    except OSError:
        return "(no answer)"


async def until_isro(side: Any, ids: tuple[int, ...], answer: str, timeout: float) -> float:
    """Wait until every member of `ids` answers `isro` with `answer`; when (monotonic clock).
    Every one: from then on, whichever the client probes answers so."""
    with anyio.fail_after(timeout):
        while [await isro(side, i) for i in ids] != [answer] * len(ids):
            await anyio.sleep(0.05)
    return time.monotonic()


@pytest.mark.parametrize("kind", [
    "zkserver",
    # Three JVM restarts and the client's grown backoff: 20 s on a quiet machine, up to 100 s
    # under load, so it runs with the long suites.
    pytest.param("zookeeper", marks=pytest.mark.slow),
])
async def test_read_only_client_finds_the_read_write_members(tmp_path: Path, kind: str) -> None:
    if kind == "zookeeper" and not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed; tests/run.sh fetches it")
    with (OursIsolated if kind == "zkserver" else TheirsIsolated)(tmp_path) as side:
        async with client.connect(f"127.0.0.1:{side.port(ISOLATED)}") as rw:
            await rw.create("/before", b"x")  # on member 1: its reply means member 1 has it
        side.isolate(ISOLATED)
        for i in STOPPED:
            side.kill(i)
        await until_isro(side, (ISOLATED,), "ro", 30)

        started = time.monotonic()
        async with client.connect(side.hosts(), can_be_read_only=True, session_timeout=10,
                                  connect_timeout=30) as zk:
            assert zk.state == State.READ_ONLY
            assert zk.server_address is not None
            assert zk.server_address.port == side.port(ISOLATED)
            ro_session = zk.session_id
            assert (await zk.get("/before")).data == b"x"
            with pytest.raises(E.NotReadOnlyError):
                await zk.create("/refused", b"")
            # Probes meanwhile find nobody (members 2 and 3 are down) and back off; the point
            # is elapsed time, so that the search has backed off a few steps when they return.
            await anyio.sleep(HOLD_S)
            assert zk.state == State.READ_ONLY and zk.session_id == ro_session

            async with zk.states() as states:
                for i in STOPPED:
                    side.restart(i)
                serving = await until_isro(side, STOPPED, "rw", 90)
                with anyio.fail_after(90):
                    seen = []
                    async for s in states:
                        seen.append(s)
                        if s in (State.CONNECTED, State.EXPIRED):
                            break
                connected = time.monotonic()
            # Member 1 never left read-only mode, so it did not drop the client: the client left.
            assert await isro(side, ISOLATED) == "ro"
            assert seen == [State.READ_ONLY, State.SUSPENDED, State.CONNECTED]
            assert zk.server_address.port in [side.port(i) for i in STOPPED]
            assert zk.session_id not in (0, ro_session)
            await zk.create("/after", b"y")
            assert (await zk.get("/after")).data == b"y"

    lag, bound = connected - serving, min(serving - started, 60.0) + PROBE_AND_HANDSHAKE_S
    print(f"\n{kind}: read-only for {connected - started:.1f}s; members 2 and 3 served "
          f"{serving - started:.1f}s after the client started; the client moved {lag:.2f}s "
          f"after that (bound {bound:.1f}s)")
    assert lag <= bound
