"""A step of the wall clock (an NTP step, a VM resumed) must not decide anyone's session.

Sessions live and die on elapsed time, as ZooKeeper's do: a step forward must not expire live
sessions, and a step back must not keep a silent session (and its ephemerals) alive.

Every server process runs under libfaketime with only CLOCK_REALTIME faked: a timestamp file
(read afresh on every clock read) holds the offset, so writing `+600s` into it steps that
process's wall clock ten minutes ahead while its monotonic clock runs on untouched. The same
tests run against zkserver and Apache ZooKeeper, standalone and as a 3-server ensemble.
Each test also checks that the step really happened inside the servers: a znode created after
the step carries the stepped wall time as its ctime.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.protocol.states import WatchedEvent
from support import realzk
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerEnsemble, ZkServerProcess, free_port_base
from support.realzk import RealZooKeeper, free_port
from support.wire import CREATE, OPEN_ACL, RawConnection, buf, i32, ustr

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
STEP = 600  # seconds: ten minutes
TICK = 500  # ms: tickTime of every server here
LIVE_TIMEOUT = 3.0  # s: the kazoo sessions that keep talking
OBSERVER_TIMEOUT = 10.0  # s: the kazoo session that watches the silent ones go
SILENT_TIMEOUT = 2000  # ms: the raw session that goes quiet
LIVE_CLIENTS = 5
EPHEMERAL = 1  # CreateMode.EPHEMERAL


class WallClock:
    """The wall-clock offset of every process started with `env`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.set(0)

    @property
    def env(self) -> dict[str, str]:
        return {
            "LD_PRELOAD": LIBFAKETIME,
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",  # read the file on every clock read: a step is immediate
            # The monotonic clock must stay untouched (and the JVM hangs at start-up when it is
            # faked). libfaketime 0.9.10 reads either spelling.
            "DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            # On by default with this glibc, the "monotonic fix" makes the JVM's timed waits
            # return at once: its housekeeping threads spin (measured: 12 s of CPU in 5 s idle)
            # and a 3-JVM ensemble on two cores does not finish starting within a minute.
            "FAKETIME_FORCE_MONOTONIC_FIX": "0",
        }

    def set(self, offset_s: int) -> None:
        """Step the wall clock to `offset_s` from the real one (atomically: a reader never sees
        a half-written file)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{offset_s:+d}s\n")
        os.replace(tmp, self.path)


class Cluster:
    """zkserver or Apache ZooKeeper, one server or three, every one under `clock`."""

    def __init__(self, kind: str, n: int, base: Path, clock: WallClock) -> None:
        self.kind = kind
        self.n = n
        self.clock = clock
        env = clock.env
        tick = f"tickTime={TICK}"
        self.runner: ZkServerProcess | ZkServerEnsemble | RealZooKeeper
        if kind == "zkserver" and n == 1:
            self.runner = ZkServerProcess(base / "zks", free_port(), extra=[tick], env=env)
        elif kind == "zkserver":
            self.runner = ZkServerEnsemble(base / "zks", free_port_base(n), n=n,
                                           tick_time=TICK, env=env)
        elif n == 1:
            self.runner = RealZooKeeper(base / "zk", free_port(), extra=[tick], env=env)
        else:
            self.runner = RealZooKeeper(base / "zk", free_port_base(n), n=n, env=env,
                                        extra=[tick, "initLimit=20", "syncLimit=10"])
        self.pids: list[int] = []

    @property
    def ports(self) -> list[int]:
        return self.runner.client_ports

    def hosts(self, i: int | None = None) -> str:
        ports = self.ports if i is None else [self.ports[i % len(self.ports)]]
        return ",".join(f"127.0.0.1:{p}" for p in ports)

    def start(self) -> Cluster:
        if self.kind == "zookeeper" and not realzk.available():
            pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper)")
        self.runner.start()
        if isinstance(self.runner, ZkServerEnsemble):
            self.pids = [node.proc.pid for node in self.runner.nodes.values() if node.proc]
        else:
            self.pids = self.runner.pids()
        return self

    def stop(self) -> None:
        self.runner.stop()
        # libfaketime keeps a semaphore and a shared-memory block per process in /dev/shm and
        # removes them only on a clean exit; these servers were killed.
        for pid in self.pids:
            for name in (f"faketime_shm_{pid}", f"sem.faketime_sem_{pid}"):
                Path("/dev/shm", name).unlink(missing_ok=True)


@pytest.fixture(params=[("zkserver", 1), ("zkserver", 3), ("zookeeper", 1), ("zookeeper", 3)],
                ids=["zkserver-standalone", "zkserver-ensemble", "zookeeper-standalone",
                     "zookeeper-ensemble"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    if not os.path.exists(LIBFAKETIME):
        pytest.fail(f"{LIBFAKETIME} is missing (apt-get install faketime)")
    kind, n = request.param
    c = Cluster(kind, n, tmp_path, WallClock(tmp_path / "faketime"))
    try:
        yield c.start()
    finally:
        c.stop()


def holds(cond: Callable[[], bool], duration: float, what: str) -> None:
    """`cond` stays true for `duration` seconds (checked throughout, failing at once)."""
    end = time.monotonic() + duration
    while time.monotonic() < end:
        assert cond(), what
        time.sleep(0.05)


def assert_server_clock_stepped(k: KazooClient, path: str, offset_s: int) -> None:
    """A znode created now carries the servers' (stepped) wall time as its ctime."""
    k.create(path, b"")
    stat = k.exists(path)
    assert stat is not None
    skew = stat.ctime / 1000 - (time.time() + offset_s)
    assert abs(skew) < 60, f"server wall clock is {skew + offset_s:+.0f}s off, not {offset_s:+d}s"


def test_libfaketime_steps_only_the_wall_clock_of_its_process(tmp_path: Path) -> None:
    """The tool itself: the child's wall clock moves by the offset, its monotonic one does not."""
    clock = WallClock(tmp_path / "faketime")
    clock.set(STEP)
    probe = "import time; print(time.time(), time.monotonic())"
    wall_before, mono_before = time.time(), time.monotonic()
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **clock.env},
                         capture_output=True, text=True, check=True, timeout=30).stdout
    wall, mono = (float(x) for x in out.split())
    assert abs(wall - wall_before - STEP) < 10
    assert abs(mono - mono_before) < 10


def test_wall_clock_step_forward_keeps_live_sessions(cluster: Cluster) -> None:
    """+10 min: every live session and its ephemeral stays; nobody sees the session lost."""
    clients: list[KazooClient] = []
    lost: list[int] = []
    try:
        for i in range(LIVE_CLIENTS):
            k = kazoo_client(cluster.hosts(i), timeout=LIVE_TIMEOUT)
            k.add_listener(lambda state, i=i: lost.append(i) if state == KazooState.LOST
                           else None)
            k.create(f"/live-{i}", b"", ephemeral=True)
            clients.append(k)
        sids = [k.client_id[0] for k in clients]
        observer = clients[0]

        cluster.clock.set(+STEP)
        started = time.monotonic()
        assert_server_clock_stepped(observer, "/probe-forward", +STEP)

        def kept() -> list[int]:
            owners = [observer.exists(f"/live-{i}") for i in range(LIVE_CLIENTS)]
            return [i for i, st in enumerate(owners)
                    if st is not None and st.ephemeralOwner == sids[i]]

        # If wall time drove expiry, every deadline would now lie ten minutes in the past and
        # the next tick would end every session. One session timeout past the step proves it.
        holds(lambda: len(kept()) == LIVE_CLIENTS and not lost, LIVE_TIMEOUT + 2 * TICK / 1000,
              "a live session or its ephemeral was lost after the wall clock stepped forward")
        for i, k in enumerate(clients):
            assert k.client_id[0] == sids[i]
            assert k.exists(f"/live-{i}") is not None  # each session still works itself
        print(f"\n{cluster.kind} n={cluster.n}: +{STEP}s step, {len(kept())}/{LIVE_CLIENTS} "
              f"live sessions and ephemerals kept for {time.monotonic() - started:.1f}s")
    finally:
        for k in clients:
            stop_kazoo(k)


def test_wall_clock_step_back_still_expires_silent_sessions(cluster: Cluster) -> None:
    """-10 min: a session that went quiet (socket open, no pings) still ends on time, and its
    ephemeral goes within its timeout plus two ticks. In an ensemble there is one such session
    on every member (the leader tracks its own clients' sessions and hears of the followers'
    from their pings)."""
    # The observer only watches; a longer session lets it ride out a stall of a server on a
    # busy machine (a CI run once lost its 3 s session to one: kazoo then fires every watch
    # with a path-less event).
    observer = kazoo_client(cluster.hosts(), timeout=OBSERVER_TIMEOUT)
    try:
        observer_sid = observer.client_id[0]
        with ExitStack() as stack:
            heard: dict[str, float] = {}
            owners: dict[str, int] = {}
            for i, port in enumerate(cluster.ports):
                raw = stack.enter_context(RawConnection("127.0.0.1", port))
                negotiated, sid, _, _ = raw.handshake(SILENT_TIMEOUT)
                assert negotiated == SILENT_TIMEOUT and sid != 0
                path = f"/silent-{i}"
                heard[path] = time.monotonic()  # the server hears the create no earlier
                _, _, err, _ = raw.call(1, CREATE, ustr(path) + buf(b"") + OPEN_ACL
                                        + i32(EPHEMERAL))
                assert err == 0
                owners[path] = sid
                # not a word from this session from here on, and its socket stays open

            cluster.clock.set(-STEP)
            gone_at: dict[str, float] = {}
            all_gone = threading.Event()

            observer_lost: list[str] = []

            def deleted(event: WatchedEvent) -> None:
                if event.path is None:  # kazoo's, not the server's: the observer's session ended
                    observer_lost.append(event.state)
                    all_gone.set()
                    return
                gone_at[event.path] = time.monotonic()
                if len(gone_at) == len(heard):
                    all_gone.set()

            for path, sid in owners.items():
                stat = observer.exists(path, watch=deleted)
                assert stat is not None and stat.ephemeralOwner == sid
            assert_server_clock_stepped(observer, "/probe-back", -STEP)

            bound = (SILENT_TIMEOUT + 2 * TICK) / 1000
            # Past the bound, wait (a while) only to report how late they are, then fail.
            all_gone.wait(max(heard.values()) + bound + 10 - time.monotonic())
            took = {path: gone_at.get(path, time.monotonic()) - at for path, at in heard.items()}
            print(f"\n{cluster.kind} n={cluster.n}: -{STEP}s step, silent sessions (timeout "
                  f"{SILENT_TIMEOUT} ms, tick {TICK} ms) gone after "
                  + ", ".join(f"{t:.2f}s" + ("" if p in gone_at else " (still there)")
                              for p, t in sorted(took.items())))
            assert not observer_lost, f"the observer's session ended ({observer_lost[0]})"
            for path, t in took.items():
                assert path in gone_at, f"{path} outlived a wall-clock step back"
                assert t <= bound, f"{path} went after {t:.2f}s (> {bound}s)"
                assert t >= (SILENT_TIMEOUT - TICK) / 1000, f"{path} went early: {t:.2f}s"
        # the observer talked throughout: its session went through the step untouched
        assert observer.client_id[0] == observer_sid
        assert observer.exists("/probe-back") is not None
    finally:
        stop_kazoo(observer)
