"""zkserver ensembles as real processes on loopback, driven by kazoo, through failures.

Each test starts fresh servers (tickTime 300 ms, so elections and timeouts are quick), runs
writers that record every acknowledged write, injects a fault (kill -9, SIGSTOP, a majority
down), and checks that the ensemble serves again and that nothing acknowledged was lost.
"""

from __future__ import annotations

import statistics
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, KazooException, SessionExpiredError
from support.process import ZkServerEnsemble, free_port_base
from support.waiting import wait_for


def client(hosts: str, **kw) -> KazooClient:
    k = KazooClient(hosts, timeout=kw.pop("timeout", 4), connection_retry={
        "max_tries": -1, "delay": 0.05, "max_delay": 0.2}, **kw)
    k.start(timeout=15)
    return k


@pytest.fixture
def ensemble(tmp_path):
    with ZkServerEnsemble(tmp_path, free_port_base(3), n=3) as ens:
        yield ens


@pytest.fixture(params=[3, 5], ids=["3-servers", "5-servers"])
def sized_ensemble(tmp_path, request):
    n = request.param
    with ZkServerEnsemble(tmp_path, free_port_base(n), n=n) as ens:
        yield ens


class Writers:
    """Threads that keep writing their own keys and record every acknowledged write."""

    def __init__(self, hosts: list[str], root: str) -> None:
        self.stop = threading.Event()
        self.acked: dict[str, bytes] = {}
        self.ack_times: list[float] = []
        self.spans: list[tuple[float, float]] = []  # (issued, acknowledged)
        self.root = root
        self.clients = [client(h) for h in hosts]
        self.clients[0].ensure_path(root)
        self.threads = [threading.Thread(target=self._run, args=(i, k), daemon=True)
                        for i, k in enumerate(self.clients)]
        for t in self.threads:
            t.start()

    def _run(self, i: int, k: KazooClient) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            path = f"{self.root}/w{i}-{n}"
            issued = time.monotonic()
            try:
                k.create(path, b"%d" % n)
                self.acked[path] = b"%d" % n
                self.ack_times.append(time.monotonic())
                self.spans.append((issued, self.ack_times[-1]))
            except (ConnectionLoss, SessionExpiredError, KazooException):
                time.sleep(0.02)  # the client reconnects in the background

    def writes_after(self, t: float) -> int:
        return sum(1 for x in list(self.ack_times) if x > t)

    def first_issued_after(self, t: float) -> float | None:
        """When the first write issued after `t` was acknowledged."""
        acks = [ack for issued, ack in list(self.spans) if issued > t]
        return min(acks) if acks else None

    def finish(self, hosts: str) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)
        for k in self.clients:
            k.stop()
            k.close()
        check = client(hosts)
        try:
            check.sync(self.root)
            have = set(check.get_children(self.root))
            lost = [p for p in self.acked if p.rsplit("/", 1)[1] not in have]
            assert not lost, f"acknowledged writes lost: {lost[:5]}"
            for path, value in list(self.acked.items())[:200]:
                assert check.get(path)[0] == value
        finally:
            check.stop()
            check.close()


def test_every_server_serves_and_agrees(ensemble):
    hosts = [f"127.0.0.1:{p}" for p in ensemble.client_ports]
    ks = [client(h) for h in hosts]
    try:
        for i, k in enumerate(ks):
            k.create(f"/via{i}", b"%d" % i)
        events = []
        got = threading.Event()
        ks[1].get("/via0", watch=lambda e: (events.append(e), got.set()))
        ks[2].set("/via0", b"changed")
        assert got.wait(10) and events[0].path == "/via0"
        for k in ks:
            k.sync("/")
            assert sorted(c for c in k.get_children("/") if c.startswith("via")) == [
                "via0", "via1", "via2"]
            assert k.get("/via0")[0] == b"changed"
        zxids = {k.exists("/via2").czxid for k in ks}
        assert len(zxids) == 1 and next(iter(zxids)) >> 32 >= 1  # an epoch above 0
        k2 = ks[2]
        k2.create("/eph", b"", ephemeral=True)
        k2.stop()
        ks[0].sync("/")
        assert ks[0].exists("/eph") is None
    finally:
        for k in ks:
            k.stop()
            k.close()


def test_sync_is_answered_at_once_on_every_server(tmp_path):
    """`sync` waits only for what the leader has in flight, wherever the client is. (A sync
    from a client of the leader itself used to wait for the leader's next half-tick: up to a
    second at tickTime 2000, for every sync.)"""
    with ZkServerEnsemble(tmp_path, free_port_base(3), n=3, tick_time=2000) as ens:
        for port in ens.client_ports:
            k = client(f"127.0.0.1:{port}", timeout=30)
            try:
                k.ensure_path("/synced")
                took = []
                for _ in range(20):
                    start = time.monotonic()
                    k.sync("/synced")
                    took.append(time.monotonic() - start)
            finally:
                k.stop()
                k.close()
            assert sorted(took)[15] < 0.1, (port, ens.modes(), took)


def test_sync_after_a_failover_needs_no_write(ensemble):
    """A new leader answers a sync at once when it has nothing in flight. (It used to wait
    for the first commit of its epoch: after a failover, clients that only read hung until
    some other client happened to write.)"""
    leader = ensemble.leader()
    assert leader is not None
    others = [i for i in ensemble.ids if i != leader]
    k = client(",".join(f"127.0.0.1:{ensemble.port + i}" for i in others), timeout=30)
    try:
        k.ensure_path("/synced")
        k.sync("/synced")
        ensemble.kill(leader)
        wait_for(lambda: ensemble.leader() not in (None, leader), 30, "a new leader")
        wait_for(lambda: k.connected, 30, "the session back")
        start = time.monotonic()
        k.sync_async("/synced").get(timeout=10)
        assert time.monotonic() - start < 2.0
    finally:
        k.stop()
        k.close()


def test_leader_killed_under_load_fails_over_and_loses_nothing(sized_ensemble):
    ensemble = sized_ensemble
    hosts = [f"127.0.0.1:{p}" for p in ensemble.client_ports]
    w = Writers(hosts, "/load")
    failovers = []
    try:
        for _ in range(5):
            wait_for(lambda: w.writes_after(time.monotonic() - 0.5) > 20, 30, "steady writes")
            leader = wait_for(ensemble.leader, 30, "a leader")
            killed_at = time.monotonic()
            ensemble.kill(leader)
            first = wait_for(lambda t=killed_at: w.first_issued_after(t), 30,
                             "a write after failover")
            failovers.append(first - killed_at)
            ensemble.restart(leader)
            ensemble.wait_serving(30)
    finally:
        w.finish(ensemble.hosts)
    median = statistics.median(failovers)
    print(f"leader kill -> first acknowledged write: median {median * 1000:.0f} ms "
          f"({', '.join(f'{f * 1000:.0f}' for f in failovers)} ms)")
    assert median < 5.0


def test_follower_killed_catches_up_on_restart(ensemble):
    leader = wait_for(ensemble.leader, 30, "a leader")
    follower = next(i for i in ensemble.ids if i != leader)
    k = client(f"127.0.0.1:{ensemble.port + leader}")
    try:
        ensemble.kill(follower)
        for i in range(50):
            k.create(f"/while-down-{i}", b"x")
        ensemble.restart(follower)
        ensemble.wait_serving(30)
        f = client(f"127.0.0.1:{ensemble.port + follower}")
        f.sync("/")
        assert len([c for c in f.get_children("/") if c.startswith("while-down")]) == 50
        f.stop()
        f.close()
    finally:
        k.stop()
        k.close()


def test_majority_down_stops_service_and_recovery_keeps_everything(sized_ensemble):
    ensemble = sized_ensemble
    leader = wait_for(ensemble.leader, 30, "a leader")
    k = client(ensemble.hosts)
    for i in range(20):
        k.create(f"/before-{i}", b"x")
    k.stop()
    k.close()
    others = [i for i in ensemble.ids if i != leader]
    down = others[:len(ensemble.ids) // 2 + 1]  # a majority, leaving the leader in the minority
    for i in down:
        ensemble.kill(i)
    wait_for(lambda: ensemble.modes()[leader] == "not serving", 15, "the minority to stop")
    for i in down:
        ensemble.restart(i)
    ensemble.wait_serving(30)
    k = client(ensemble.hosts)
    try:
        k.sync("/")
        assert len([c for c in k.get_children("/") if c.startswith("before-")]) == 20
        k.create("/after", b"y")
    finally:
        k.stop()
        k.close()


def test_paused_leader_is_replaced_and_rejoins(ensemble):
    leader = wait_for(ensemble.leader, 30, "a leader")
    others = [i for i in ensemble.ids if i != leader]
    k = client(",".join(f"127.0.0.1:{ensemble.port + i}" for i in others))
    try:
        ensemble.pause(leader)
        wait_for(lambda: ensemble.modes()[others[0]] in ("leader", "follower")
                 and ensemble.leader() in others, 20, "a new leader")
        k.create("/during-pause", b"x")
        ensemble.resume(leader)
        ensemble.wait_serving(30)
        assert ensemble.modes()[leader] == "follower"
        old = client(f"127.0.0.1:{ensemble.port + leader}")
        old.sync("/")
        assert old.exists("/during-pause") is not None
        old.stop()
        old.close()
    finally:
        k.stop()
        k.close()


def test_session_moves_to_another_server(ensemble):
    leader = wait_for(ensemble.leader, 30, "a leader")
    follower = next(i for i in ensemble.ids if i != leader)
    other = next(i for i in ensemble.ids if i not in (leader, follower))
    k = client(f"127.0.0.1:{ensemble.port + follower},127.0.0.1:{ensemble.port + other}",
               randomize_hosts=False, timeout=10)
    try:
        sid = k.client_id[0]
        k.create("/mine", b"", ephemeral=True)
        ensemble.kill(follower)

        def mine_visible() -> bool:
            try:
                return k.connected and k.exists("/mine") is not None
            except ConnectionLoss:
                return False  # still moving: the next server may be re-electing

        wait_for(mine_visible, 20, "reconnection")
        assert k.client_id[0] == sid
    finally:
        k.stop()
        k.close()


def test_five_servers_and_an_observer(tmp_path):
    with ZkServerEnsemble(tmp_path, free_port_base(6), n=6, observers=1) as ens:
        modes = ens.modes()
        assert modes[6] == "observer"
        assert sorted(modes.values()).count("follower") == 4
        obs = client(f"127.0.0.1:{ens.port + 6}")
        try:
            obs.create("/via-observer", b"o")
            for i in ens.ids:
                k = client(f"127.0.0.1:{ens.port + i}")
                k.sync("/")
                assert k.get("/via-observer")[0] == b"o"
                k.stop()
                k.close()
        finally:
            obs.stop()
            obs.close()


def test_read_only_mode_when_quorum_is_lost(tmp_path):
    from kazoo.exceptions import NotReadOnlyCallError

    with ZkServerEnsemble(tmp_path, free_port_base(3), n=3,
                          extra=["readonlymode.enabled=true"]) as ens:
        k = client(ens.hosts)
        k.create("/ro", b"before")
        k.stop()
        k.close()
        survivor = ens.ids[0]
        for i in ens.ids[1:]:
            ens.kill(i)
        wait_for(lambda: ens.modes()[survivor] == "read-only", 15, "read-only mode")
        ro = KazooClient(f"127.0.0.1:{ens.port + survivor}", read_only=True, timeout=4)
        ro.start(timeout=15)
        try:
            assert ro.get("/ro")[0] == b"before"
            with pytest.raises(NotReadOnlyCallError):
                ro.create("/nope", b"")
        finally:
            ro.stop()
            ro.close()


def test_mntr_and_srvr_show_the_roles(ensemble):
    from support.realzk import four_letter

    leader = wait_for(ensemble.leader, 30, "a leader")
    text = four_letter("127.0.0.1", ensemble.port + leader, "mntr")
    lines = dict(ln.split("\t", 1) for ln in text.splitlines())
    assert lines["zk_server_state"] == "leader"
    assert lines["zk_peer_state"] == "leading - broadcast"
    assert lines["zk_synced_followers"] == "2"
    assert lines["zk_pending_syncs"] == "0"
    follower = next(i for i in ensemble.ids if i != leader)
    srvr = four_letter("127.0.0.1", ensemble.port + follower, "srvr")
    assert "Mode: follower" in srvr


@pytest.fixture
def proxied(tmp_path):
    with ZkServerEnsemble(tmp_path, free_port_base(3, proxied=True), n=3, proxied=True) as ens:
        yield ens


def test_partitioned_leader_is_replaced_and_nothing_is_lost(proxied):
    ens = proxied
    old = wait_for(ens.leader, 30, "a leader")
    others = [i for i in ens.ids if i != old]
    w = Writers([f"127.0.0.1:{ens.port + i}" for i in ens.ids], "/split")
    try:
        wait_for(lambda: w.writes_after(time.monotonic() - 0.5) > 20, 30, "steady writes")
        cut_at = time.monotonic()
        ens.partition({old})
        wait_for(lambda: ens.modes()[old] != "leader" and ens.leader() in others, 20,
                 "the majority to elect a new leader")
        wait_for(lambda: w.first_issued_after(cut_at + 0.5), 30, "writes on the majority side")
        ens.heal()
        ens.wait_serving(30)
    finally:
        w.finish(ens.hosts)
    k = client(f"127.0.0.1:{ens.port + old}")
    try:
        k.sync("/")
        assert len(k.get_children("/split")) >= len(w.acked)
    finally:
        k.stop()
        k.close()


def test_partitioned_follower_stops_serving_and_catches_up(proxied):
    ens = proxied
    leader = wait_for(ens.leader, 30, "a leader")
    follower = next(i for i in ens.ids if i != leader)
    ens.partition({follower})
    wait_for(lambda: ens.modes()[follower] == "not serving", 20, "the cut-off follower to stop")
    k = client(f"127.0.0.1:{ens.port + leader}")
    try:
        for i in range(30):
            k.create(f"/while-cut-{i}", b"x")
        ens.heal()
        ens.wait_serving(30)
        f = client(f"127.0.0.1:{ens.port + follower}")
        f.sync("/")
        assert len([c for c in f.get_children("/") if c.startswith("while-cut")]) == 30
        f.stop()
        f.close()
    finally:
        k.stop()
        k.close()
