"""How soon a 3-server ensemble serves: from a fresh start, after its leader is killed, and after
a member that was cut off is reachable again.

The servers run as processes at ZooKeeper's defaults (tickTime 2000, initLimit 10, syncLimit 5)
unless a test says otherwise. "Serving" is what a client sees: a new session is accepted and a
read answers on that member. Writers use the raw protocol and reconnect at once to the next
member when their connection breaks, so what is timed is the servers, not a client library's
back-off. The 20-starts-in-a-row run and the side-by-side comparison with Apache ZooKeeper
(bench/failover.py) are marked slow.
"""

from __future__ import annotations

import json
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.wire import (
    CLOSE_SESSION,
    CREATE,
    GET_CHILDREN,
    GET_DATA,
    OPEN_ACL,
    SYNC,
    Closed,
    RawConnection,
    boolean,
    buf,
    i32,
    ustr,
)

from tests.jepsen.nemesis import Ensemble, zkserver_ensemble

REPO = Path(__file__).resolve().parents[2]

START_BOUND = 10.0  # s from launch until every member serves (ZooKeeper here: ~3 s)
FAILOVER_BOUND = 3.0  # s from the leader's death to the first acknowledged write
REJOIN_BOUND = 5.0  # s from healing a partition until the cut-off member serves again


class Refused(Exception):
    """The member would not take a session or answer: it does not serve (yet)."""


class Session:
    """One raw-protocol session on one member, one request at a time."""

    def __init__(self, port: int, timeout: float = 2.0) -> None:
        self.timeout = timeout
        try:
            self.conn = RawConnection("127.0.0.1", port, timeout=1.0)
            negotiated, _, _, _ = self.conn.handshake()
        except (OSError, Closed, TimeoutError, struct.error) as e:
            raise Refused(str(e)) from e
        if negotiated <= 0:
            self.conn.close()
            raise Refused("session refused")
        self.xid = 0

    def call(self, op: int, body: bytes) -> tuple[int, bytes]:
        """(err, reply body); Refused if the connection broke or stayed silent."""
        self.xid += 1
        try:
            if not self.conn.send(struct.pack(">iii", len(body) + 8, self.xid, op) + body):
                raise Refused("connection closed")
            _, _, err, reply = self.conn.read_reply(self.timeout)
        except (OSError, Closed, TimeoutError, struct.error) as e:
            raise Refused(str(e)) from e
        return err, reply

    def close(self) -> None:
        try:
            self.call(CLOSE_SESSION, b"")
        except Refused:
            pass
        self.conn.close()


def serves(port: int) -> bool:
    try:
        s = Session(port)
    except Refused:
        return False
    try:
        return s.call(GET_DATA, ustr("/") + boolean(False))[0] == 0
    except Refused:
        return False
    finally:
        s.close()


def wait_serving(ports: list[int], timeout: float) -> float:
    """Seconds until every port serves; fails the test with the laggards at the deadline."""
    t0 = time.monotonic()
    pending = set(ports)
    while pending:
        pending = {p for p in pending if not serves(p)}
        if pending and time.monotonic() - t0 > timeout:
            pytest.fail(f"client ports {sorted(pending)} not serving after {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - t0


def children(port: int, path: str) -> set[str]:
    """getChildren after a sync, on one member (retried while it settles)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            s = Session(port, timeout=10.0)
            try:
                if s.call(SYNC, ustr(path))[0] == 0:
                    err, body = s.call(GET_CHILDREN, ustr(path) + boolean(False))
                    if err == 0:
                        (n,) = struct.unpack_from(">i", body)
                        out, off = set(), 4
                        for _ in range(n):
                            (k,) = struct.unpack_from(">i", body, off)
                            out.add(body[off + 4:off + 4 + k].decode())
                            off += 4 + k
                        return out
            finally:
                s.close()
        except Refused:
            pass
        assert time.monotonic() < deadline, f"no sync + getChildren answer on port {port}"
        time.sleep(0.1)


class Writer(threading.Thread):
    """Creates <root>/w<j>-<n> one at a time, recording (name, issued, acknowledged) of each
    acknowledged create; on a broken or silent connection it moves to the next member at
    once."""

    def __init__(self, j: int, ports: list[int], root: str) -> None:
        super().__init__(daemon=True)
        self.j, self.ports, self.root = j, ports, root
        self.halt = threading.Event()
        self.acks: list[tuple[str, float, float]] = []

    def run(self) -> None:
        k, n, s = self.j, 0, None
        while not self.halt.is_set():
            if s is None:
                try:
                    s = Session(self.ports[k % len(self.ports)])
                except Refused:
                    k += 1
                    time.sleep(0.005)
                    continue
            n += 1
            name = f"w{self.j}-{n}"
            issued = time.monotonic()
            body = ustr(f"{self.root}/{name}") + buf(b"x") + OPEN_ACL + i32(0)
            try:
                err, _ = s.call(CREATE, body)
            except Refused:
                s.conn.close()
                s, k = None, k + 1
                continue
            if err == 0:
                self.acks.append((name, issued, time.monotonic()))
        if s is not None:
            s.close()


def ensemble(tmp_path: Path, **kw: object) -> Ensemble:
    kw.setdefault("proxied", False)
    return zkserver_ensemble(tmp_path, 3, tick_ms=kw.pop("tick_ms", 2000),
                             init_limit=10, sync_limit=5, **kw)


# -- start-up ---------------------------------------------------------------------------------


def start_all(tmp_path: Path, rounds: int, bound: float) -> list[float]:
    """Start a fresh ensemble `rounds` times; each must have every member serving in `bound`."""
    times = []
    for r in range(rounds):
        ens = ensemble(tmp_path / f"start{r}")
        t0 = time.monotonic()
        try:
            ens.start(timeout=bound)
            times.append(time.monotonic() - t0 + wait_serving(ens.client_ports, bound))
        finally:
            ens.stop()
        assert times[-1] <= bound, f"start {r + 1}: all members serving after {times[-1]:.1f} s"
    return times


def test_fresh_ensembles_have_every_member_serving_quickly(tmp_path):
    times = start_all(tmp_path, 3, START_BOUND)
    print("start -> all serving:", ", ".join(f"{t:.2f} s" for t in times))


@pytest.mark.slow
def test_twenty_fresh_starts_in_a_row_never_leave_a_member_out(tmp_path):
    times = start_all(tmp_path, 20, 20.0)
    print(f"start -> all serving: median {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s")


# -- failover -----------------------------------------------------------------------------------


def test_leader_killed_writes_resume_quickly_and_nothing_acknowledged_is_lost(tmp_path):
    with ensemble(tmp_path) as ens:
        ports = ens.client_ports
        setup = Session(ports[0])
        assert setup.call(CREATE, ustr("/fo") + buf(b"") + OPEN_ACL + i32(0))[0] == 0
        setup.close()
        writers = [Writer(j, ports, "/fo") for j in range(3)]
        for w in writers:
            w.start()
        gaps = []
        try:
            for _ in range(3):
                seen = sum(len(w.acks) for w in writers)
                deadline = time.monotonic() + 30
                while sum(len(w.acks) for w in writers) < seen + 30:
                    assert time.monotonic() < deadline, "writes did not resume"
                    time.sleep(0.01)
                leader = ens.wait_leader()
                ens.kill(leader)
                killed = time.monotonic()
                deadline = killed + 30
                while True:
                    after = [a for w in writers for (_, issued, a) in list(w.acks)
                             if issued > killed]
                    if after:
                        gaps.append(min(after) - killed)
                        break
                    assert time.monotonic() < deadline, "no write acknowledged after the kill"
                    time.sleep(0.005)
                ens.restart(leader)
                ens.wait_healthy(30)
        finally:
            for w in writers:
                w.halt.set()
            for w in writers:
                w.join(10)
        acked = {name for w in writers for (name, _, _) in w.acks}
        for port in ports:
            missing = acked - children(port, "/fo")
            assert not missing, f"port {port} lacks acknowledged creates {sorted(missing)[:5]}"
    print("leader kill -> first acknowledged write:",
          ", ".join(f"{g * 1000:.0f} ms" for g in gaps))
    assert max(gaps) <= FAILOVER_BOUND, gaps


# -- partitions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("refuse", [False, True], ids=["silent-cut", "refused"])
@pytest.mark.parametrize("who", ["follower", "leader"])
def test_cut_off_member_serves_again_soon_after_links_heal(tmp_path, who, refuse):
    """A member cut off from the others (silently, as a firewall's DROP; or refused, as a
    REJECT) stops serving, and serves again within REJOIN_BOUND once the links heal. A short
    tick keeps the silent case (noticed after syncLimit ticks, as in ZooKeeper) quick."""
    with ensemble(tmp_path, proxied=True, tick_ms=500) as ens:
        leader = ens.wait_leader()
        node = leader if who == "leader" else (leader + 1) % 3
        port = ens.client_ports[node]
        ens.isolate([node], refuse=refuse)
        deadline = time.monotonic() + 30
        while serves(port):
            assert time.monotonic() < deadline, f"the cut-off {who} kept serving"
            time.sleep(0.05)
        others = [p for i, p in enumerate(ens.client_ports) if i != node]
        wait_serving(others, 30)  # the majority serves (a new leader if the old was cut off)
        s = Session(others[0])
        assert s.call(CREATE, ustr("/during-cut") + buf(b"") + OPEN_ACL + i32(0))[0] == 0
        s.close()
        ens.heal()
        took = wait_serving([port], REJOIN_BOUND)
        assert "during-cut" in children(port, "/")
    print(f"cut-off {who} ({'refused' if refuse else 'silent'}) serving again "
          f"{took * 1000:.0f} ms after the heal")


# -- against Apache ZooKeeper -------------------------------------------------------------------


@pytest.mark.slow
def test_start_and_failover_at_least_as_fast_as_zookeeper():
    """bench/failover.py, 5 rounds of each, alternating: medians no worse than ZooKeeper's and
    nothing acknowledged lost."""
    out = subprocess.run([sys.executable, str(REPO / "bench" / "failover.py"), "--rounds", "5",
                          "--json", "--out", ""], capture_output=True, text=True, timeout=1200,
                         cwd=REPO)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("start", "first"):
        assert res["zkserver"][key] <= res["zookeeper"][key], (key, res)
