"""The session tracker: ZooKeeper's passwords, tick-bucketed expiry, ids."""

from __future__ import annotations

from kazoo.client import KazooClient

from zkserver.sessions import SessionTracker


def test_password_is_zookeepers_own(real_zk):
    """The same 16 bytes Apache ZooKeeper hands out, so sessions move between servers."""
    k = KazooClient(real_zk.hosts)
    k.start()
    try:
        sid, passwd = k.client_id
        assert SessionTracker(2000, 1, 0).password(sid) == passwd
    finally:
        k.stop()
        k.close()


def test_expiry_is_bucketed_to_ticks():
    t = SessionTracker(2000, 1, wall=10_000)
    sid = t.new_id()
    t.add(sid, 4000, now=10_500)
    assert t.next_deadline() == 16_000  # first tick boundary after 14_500
    assert t.expired(15_999) == []
    assert t.expired(16_000) == [sid]
    assert not t.alive(sid)


def test_touch_moves_the_deadline_and_closing_sessions_stay_closed():
    t = SessionTracker(1000, 1, wall=0)
    sid = t.new_id()
    t.add(sid, 3000, now=0)
    t.touch(sid, 2500)
    assert t.expired(4000) == []
    assert t.expired(6000) == [sid]
    assert not t.touch(sid, 6000)


def test_ids_carry_the_server_id_and_are_unique():
    t = SessionTracker(2000, 3, wall=1_700_000_000_000)
    ids = {t.new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i >> 56 == 3 for i in ids)
    assert 1 << 63 not in ids and 0 not in ids


def test_ids_come_from_the_wall_clock_and_deadlines_from_the_callers_monotonic_one():
    """Ids are seeded from the wall clock at start (unique across reboots); expiry runs on the
    monotonic `now` alone, which starts near zero at boot, nowhere near the wall clock."""
    wall = 1_700_000_000_000
    t = SessionTracker(1000, 5, wall=wall)
    sid = t.new_id()
    assert sid == (5 << 56) | (((wall << 24) & ((1 << 64) - 1)) >> 8)
    t.add(sid, 3000, now=2_200)
    assert t.next_deadline() == 6_000  # the first tick boundary after 2_200 + 3_000
    assert t.expired(5_999) == []
    assert t.expired(6_000) == [sid]

