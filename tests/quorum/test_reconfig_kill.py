"""kill -9 in the middle of a reconfiguration, with real servers under a write load.

A reconfiguration is held in flight on purpose: the servers whose acknowledgements its new
configuration needs are stopped (SIGSTOP) once the leader has counted them synced, so the
proposal is logged by a quorum of the old configuration but cannot commit. Then a server is
killed -9:

* the leader: the others elect one (jointly, old and new configuration), which settles the
  reconfiguration one way or the other; the killed leader comes back;
* a joining server: the reconfiguration commits without it (a quorum of the new voters is
  there), the ensemble serves with it down, and it comes back into the new configuration.

Either way the ensemble ends in exactly one configuration: every live member shows the same
/zookeeper/config and serves (one leader), the servers it leaves out do not serve, writes go
on, and no write the load saw acknowledged is lost.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from support.process import ZkServerEnsemble, free_port_base
from support.realzk import four_letter, srvr_mode
from support.waiting import wait_for
from test_reconfig_ensemble import Load, _config, _joiner

SERVING = ("leader", "follower")


def _synced_followers(port: int) -> int:
    """The leader's count of followers synced with it (joiners not yet members included)."""
    text = four_letter("127.0.0.1", port, "mntr", timeout=2.0)
    found = [ln.split("\t")[1] for ln in text.splitlines()
             if ln.startswith("zk_synced_followers\t")]
    return int(found[0]) if found else -1


class Stalled:
    """A condition: the load's writes have stopped being acknowledged for `quiet` seconds.
    A reconfiguration in flight shows so: every write after it waits for its commit."""

    def __init__(self, load: Load, quiet: float = 0.6) -> None:
        self.load = load
        self.quiet = quiet
        self.count = len(load.acked)
        self.since = time.monotonic()

    def __call__(self) -> bool:
        count = len(self.load.acked)
        if count != self.count:
            self.count, self.since = count, time.monotonic()
            return False
        return time.monotonic() - self.since >= self.quiet


def _members(data: bytes) -> set[int]:
    return {int(m) for m in re.findall(rb"^server\.(\d+)=", data, re.M)}


def _settled(base: int, ids: list[int], up: set[int]) -> bytes | None:
    """The one configuration the live servers agree on, once they do: every live member
    serves (one leader) and shows it, and every other server is not serving."""
    modes = {i: srvr_mode(base + i) for i in ids}
    configs = {_config(base + i) for i in ids if i in up and modes[i] in SERVING}
    if len(configs) != 1:
        return None
    (data,) = configs
    members = _members(data)
    if [modes[i] for i in members & up].count("leader") != 1:
        return None
    if not all(modes[i] in SERVING for i in members & up):
        return None
    if any(modes[i] in (*SERVING, "observer") for i in set(ids) - members):
        return None
    return data



def _reply(result: object) -> bytes | None:
    """The reconfig's committed configuration, or None if the client was cut off first."""
    try:
        data, _ = result.get(timeout=60)  # type: ignore[attr-defined]
    except KazooException:
        return None
    return data


def test_kill_the_leader_mid_reconfig(tmp_path: Path) -> None:
    """Five shrink to three (the leader and two followers, a and b, stay): with a and b
    stopped, the proposal is logged by the leader and the two that leave, which commit
    nothing of the new configuration alone. The leader is killed, a and b go on: the four
    elect (whoever holds the most may lead, a leaving server too, which then commits the
    change and steps down), and the old leader comes back into the outcome."""
    base = free_port_base(5)
    with ZkServerEnsemble(tmp_path, base, n=5, extra=["reconfigEnabled=true",
                                                      "skipACL=yes"]) as ens:
        leader = ens.leader()
        assert leader is not None
        a, b, c, d = (i for i in ens.ids if i != leader)
        load = Load(",".join(f"127.0.0.1:{base + i}" for i in (a, b)))
        admin = KazooClient(f"127.0.0.1:{base + c}", timeout=15)
        admin.start(timeout=60)
        try:
            wait_for(lambda: _synced_followers(base + leader) == 4, 60, "four followers")
            count = len(load.acked)
            wait_for(lambda: len(load.acked) > count + 20, 30, "writes before the change")
            ens.pause(a)
            ens.pause(b)
            result = admin.reconfig_async(None, f"{c},{d}", None, -1)
            # (well before the leader's syncLimit, 3 s, would make it give up on a and b)
            wait_for(Stalled(load), 2.5, "the reconfiguration in flight")
            ens.kill(leader)
            ens.resume(a)
            ens.resume(b)
            reply = _reply(result)
            ens.restart(leader)
            up = set(ens.ids)
            wait_for(lambda: _settled(base, ens.ids, up) is not None, 60,
                     "one configuration on every live member")
            data = _settled(base, ens.ids, up)
            assert data is not None
            if reply is not None:  # acknowledged to the client: it must be the one in force
                assert data == reply
            assert _members(data) in ({1, 2, 3, 4, 5}, {leader, a, b})
            count = len(load.acked)
            wait_for(lambda: len(load.acked) > count + 20, 30, "writes after the change")
        finally:
            admin.stop()
            admin.close()
            load.stop()
        load.assert_none_lost(f"127.0.0.1:{base + a}")
    assert len(load.acked) > 40


def test_kill_a_joining_server_mid_reconfig(tmp_path: Path) -> None:
    base = free_port_base(4)
    with ZkServerEnsemble(tmp_path, base, n=3, extra=["reconfigEnabled=true",
                                                      "skipACL=yes"]) as ens:
        leader = ens.leader()
        assert leader is not None
        follower = next(i for i in ens.ids if i != leader)
        other = next(i for i in ens.ids if i not in (leader, follower))
        load = Load(ens.hosts)
        admin = KazooClient(f"127.0.0.1:{base + follower}", timeout=15)
        admin.start(timeout=60)
        joiner, line = _joiner(tmp_path, ens, base, 4, ens.ids)
        try:
            # (It learns nothing before the change: the members take no connection from a
            # server their configuration does not name.)
            wait_for(lambda: srvr_mode(base + 4) == "not serving", 60, "the joiner up")
            count = len(load.acked)
            wait_for(lambda: len(load.acked) > count + 20, 30, "writes before the change")
            # {1, 2, 3, 4} needs three of four: with `other` and the joiner stopped, only
            # the leader and `follower` acknowledge, and the proposal waits. (Stopped the
            # joiner is not needed for that, as it cannot connect yet; it is so that the
            # kill finds it in whatever it was doing.)
            ens.pause(other)
            joiner.proc.send_signal(19)  # SIGSTOP
            result = admin.reconfig_async(line, None, None, -1)
            wait_for(Stalled(load), 2.5, "the reconfiguration in flight")
            joiner.kill()  # kill -9 the joiner, which has the proposal unread in its socket
            ens.resume(other)
            reply = _reply(result)
            assert reply is not None and b"server.4=" in reply  # committed without it
            count = len(load.acked)
            wait_for(lambda: len(load.acked) > count + 20, 30, "writes with the joiner down")
            ids = [1, 2, 3, 4]
            wait_for(lambda: _settled(base, ids, {1, 2, 3}) == reply, 30,
                     "the three agreeing on the new configuration")
            joiner.start_process()  # back, into the configuration that names it
            wait_for(lambda: _settled(base, ids, set(ids)) == reply, 60,
                     "all four agreeing, the joiner following")
            assert srvr_mode(base + 4) == "follower"
            count = len(load.acked)
            wait_for(lambda: len(load.acked) > count + 20, 30, "writes after the change")
        finally:
            admin.stop()
            admin.close()
            load.stop()
            joiner.kill()  # (not the ensemble's: nothing else would stop it)
        load.assert_none_lost(f"127.0.0.1:{base + follower}")
