"""The client's `get_config` and `reconfig` against a 3-server ensemble with reconfigEnabled and
a super user, zkserver's and Apache ZooKeeper 3.9.5's, with the same assertions: the reply's
data and Stat, the watch on the configuration, and each error ZooKeeper gives a bad reconfig.

Every test leaves the membership as it found it (the three servers), so the module's ensembles
serve all of them. The observers and participants added are never started: a reconfig only
needs a quorum of the new voters connected to the leader, and an observer is not a voter.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from support import realzk
from support.process import ZkServerEnsemble, ZkServerProcess, free_port_base
from support.realzk import RealZooKeeper, free_port

from zkserver import client
from zkserver.client import errors as E
from zkserver.proto.codes import EventType

pytestmark = pytest.mark.anyio

SUPER = ("digest", "super:test")
_DIGEST = base64.b64encode(hashlib.sha1(b"super:test").digest()).decode()
EXTRA = ["reconfigEnabled=true", f"DigestAuthenticationProvider.superDigest=super:{_DIGEST}"]


class Ensemble:
    """Either kind of ensemble, as these tests need it: hosts and the port layout."""

    def __init__(self, kind: str, base: int, hosts: str) -> None:
        self.kind = kind
        self.base = base
        self.hosts = hosts

    def spec(self, sid: int, role: str = "observer") -> str:
        """A `server.N=` line for a server on this ensemble's port layout (not started)."""
        b = self.base
        return (f"server.{sid}=127.0.0.1:{b + 100 + sid}:{b + 200 + sid}:{role};"
                f"127.0.0.1:{b + sid}")


@pytest.fixture(scope="module", params=["zkserver", "zookeeper"])
def ensemble(request: Any, tmp_path_factory: Any) -> Iterator[Ensemble]:
    # Room for the ids the tests add (up to 60) on the same layout.
    base = free_port_base(60)
    d = tmp_path_factory.mktemp(request.param)
    if request.param == "zkserver":
        with ZkServerEnsemble(d, base, n=3, extra=EXTRA) as ens:
            yield Ensemble("zkserver", base, ens.hosts)
    else:
        if not realzk.available():
            pytest.fail("ZooKeeper 3.9.5's jars are missing: bash tests/support/fetch_zookeeper.sh")
        with RealZooKeeper(d, base, n=3, extra=EXTRA, heap="256m") as zk:
            yield Ensemble("zookeeper", base, zk.hosts)


def version_of(data: bytes | None) -> int:
    assert data is not None
    last = data.decode().splitlines()[-1]
    assert last.startswith("version="), data
    return int(last.split("=", 1)[1], 16)


def same_config(a: bytes | None, b: bytes | None) -> bool:
    """The same configuration: ZooKeeper's members may list the servers in different orders
    (a follower's node, the leader's reply), never different lines; `version=` comes last."""
    assert a is not None and b is not None
    la, lb = a.splitlines(), b.splitlines()
    return sorted(la) == sorted(lb) and la[-1] == lb[-1]


async def three_servers(zk: client.Client) -> None:
    """Back to servers 1-3, whatever an earlier test that failed half-way left."""
    data = (await zk.get_config()).data or b""
    extra = [ln.split("=")[0].removeprefix("server.") for ln in data.decode().splitlines()
             if ln.startswith("server.") and ln.split("=")[0] not in
             ("server.1", "server.2", "server.3")]
    if extra:
        await zk.reconfig(leaving=",".join(extra))


@pytest.mark.compat(client="zkserver.client", feature="dynamic reconfiguration")
async def test_get_config_and_reconfig_reply(ensemble: Ensemble) -> None:
    async with client.connect(ensemble.hosts) as zk:
        await zk.add_auth(*SUPER)
        await three_servers(zk)
        data, stat = await zk.get_config()
        version = version_of(data)
        assert data is not None
        lines = data.decode().splitlines()
        assert sorted(ln.split("=")[0] for ln in lines[:-1]) == [
            "server.1", "server.2", "server.3"] and lines[-1].startswith("version=")
        assert stat.mzxid == version and stat.version == -1 and stat.dataLength == len(data)

        data2, stat2, watch = await zk.get_config(watch=True)
        assert (data2, stat2) == (data, stat)
        joining = ensemble.spec(40)
        new, new_stat = await zk.reconfig(joining=joining, from_config=version)
        assert new is not None and joining.encode() in new
        assert version_of(new) == new_stat.mzxid > version
        assert new_stat.version == -1 and new_stat.dataLength == len(new)
        with anyio.fail_after(30):
            event = await watch
        assert (event.type, event.path) == (EventType.NODE_DATA_CHANGED, "/zookeeper/config")
        # The same lines and Stat. (ZooKeeper's followers may list the servers in another
        # order in the node than the leader did in the reply: compared as a set.)
        now, now_stat = await zk.get_config()
        assert same_config(now, new) and now_stat == new_stat

        # A chrooted client reads the same node, outside its chroot, as ZooKeeper's getConfig.
        async with client.connect(ensemble.hosts + "/some/chroot") as chrooted:
            assert same_config((await chrooted.get_config()).data, new)

        back, back_stat = await zk.reconfig(leaving="40")
        assert back is not None and b"server.40=" not in back
        assert version_of(back) == back_stat.mzxid > new_stat.mzxid


@pytest.mark.compat(client="zkserver.client", feature="dynamic reconfiguration")
async def test_errors_as_zookeeper_gives_them(ensemble: Ensemble) -> None:
    async with client.connect(ensemble.hosts) as plain, \
            client.connect(ensemble.hosts) as zk:
        await zk.add_auth(*SUPER)
        await three_servers(zk)
        with pytest.raises(E.NoAuthError):
            await plain.reconfig(joining=ensemble.spec(41))
        with pytest.raises(E.BadArgumentsError):
            await zk.reconfig(joining="some thing")
        with pytest.raises(E.BadArgumentsError):  # removing every voter
            await zk.reconfig(leaving="1,2,3")
        current = version_of((await zk.get_config()).data)
        with pytest.raises(E.BadVersionError):
            await zk.reconfig(joining=ensemble.spec(42), from_config=current - 1)
        # Three voters that are not running join three that are: three of six is no quorum.
        with pytest.raises(E.NewConfigNoQuorumError):
            await zk.reconfig(joining=",".join(ensemble.spec(i, "participant")
                                               for i in (43, 44, 45)))
        # The same as a whole new membership.
        members = [ensemble.spec(1, "participant"), ensemble.spec(46, "participant"),
                   ensemble.spec(47, "participant")]
        with pytest.raises(E.NewConfigNoQuorumError):
            await zk.reconfig(new_members=",".join(members))
        assert version_of((await zk.get_config()).data) == current


@pytest.mark.compat(client="zkserver.client", feature="dynamic reconfiguration")
async def test_one_reconfig_at_a_time(ensemble: Ensemble) -> None:
    """Three changes sent together: each is either refused with ReconfigInProgress (it was
    prepared while another was in flight) or applied after the one before committed; none is
    lost or half done. Which happens is timing: on an idle machine both servers refuse some,
    on a loaded one ZooKeeper has applied all three one after the other."""
    async with client.connect(ensemble.hosts) as zk:
        await zk.add_auth(*SUPER)
        await three_servers(zk)
        outcomes: dict[int, object] = {}

        async def change(sid: int) -> None:
            try:
                outcomes[sid] = await zk.reconfig(joining=ensemble.spec(sid))
            except E.ZooKeeperError as e:
                outcomes[sid] = e

        async with anyio.create_task_group() as tg:
            for sid in (50, 51, 52):
                tg.start_soon(change, sid)
        kinds = {sid: type(o).__name__ for sid, o in outcomes.items()}
        assert set(kinds.values()) <= {"NodeData", "ReconfigInProgressError"}, kinds
        added = sorted(sid for sid, k in kinds.items() if k == "NodeData")
        assert added
        data = (await zk.get_config()).data or b""
        present = sorted(sid for sid in (50, 51, 52) if f"server.{sid}=".encode() in data)
        assert present == added
        await zk.reconfig(leaving=",".join(map(str, added)))
        assert b"server.5" not in ((await zk.get_config()).data or b"")


@pytest.mark.compat(client="zkserver.client", feature="dynamic reconfiguration")
async def test_reconfig_disabled(tmp_path: Any) -> None:
    """A server without reconfigEnabled refuses, zkserver's as ZooKeeper's."""
    if not realzk.available():
        pytest.fail("ZooKeeper 3.9.5's jars are missing: bash tests/support/fetch_zookeeper.sh")
    with ZkServerProcess(tmp_path / "ours", free_port()) as ours, \
            RealZooKeeper(tmp_path / "zk", free_port(), heap="256m") as theirs:
        for hosts in (ours.hosts, theirs.hosts):
            async with client.connect(hosts) as zk:
                with pytest.raises(E.ReconfigDisabledError):
                    await zk.reconfig(leaving="1")
                data, stat = await zk.get_config()
                assert stat.mzxid == 0
