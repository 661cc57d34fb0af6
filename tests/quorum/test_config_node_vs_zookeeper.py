"""/zookeeper/config and the dynamic config files of a 3-server ensemble, zkserver against
Apache ZooKeeper started the same way (the same zoo.cfg keys, the same port layout). The test
runs Debian's 3.8.0; 3.9.5 writes the same node and files (checked by hand with this zoo.cfg).

With reconfigEnabled=false both show the membership at version 0 and leave zoo.cfg alone.
With reconfigEnabled=true the first leader versions the membership with its epoch's first zxid
(version=100000000), every member shows that, writes zoo.cfg.dynamic.100000000, keeps the
original as zoo.cfg.bak and points zoo.cfg at the dynamic file; a restarted member reads it
back. Ports differ between the two ensembles, so they are compared as Q<n>/E<n>/C<n>.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from support import realzk
from support.process import ZkServerEnsemble, ZkServerProcess, free_port_base
from support.realzk import RealZooKeeper
from support.waiting import wait_for


def symbolic(text: str, base: int) -> str:
    """Ports as the roles they play: C1 (client), Q1 (quorum), E1 (election) for server 1."""
    def name(m: re.Match) -> str:
        port = int(m[1])
        for off, tag in ((0, "C"), (100, "Q"), (200, "E")):
            if 1 <= port - base - off <= 9:
                return f":{tag}{port - base - off}"
        return m[0]
    return re.sub(r":(\d{4,5})", name, text)


def config_nodes(ports: list[int], base: int) -> list[tuple[str, tuple]]:
    """(data, stat without mtime) of /zookeeper/config on every member."""
    out = []
    for port in ports:
        k = KazooClient(f"127.0.0.1:{port}", timeout=10)
        k.start(timeout=60)
        try:
            data, stat = k.get("/zookeeper/config")
        finally:
            k.stop()
            k.close()
        out.append((symbolic(data.decode(), base),
                    (stat.czxid, stat.mzxid, stat.ctime, stat.version, stat.cversion,
                     stat.aversion, stat.ephemeralOwner, stat.dataLength, stat.numChildren,
                     stat.pzxid)))
    return out


def config_files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith("zoo.cfg"))


@pytest.mark.parametrize("reconfig", ["false", "true"])
def test_config_node_and_files_as_zookeeper(tmp_path: Path, reconfig: str) -> None:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper); "
                    "run the README's test command, which installs it")
    extra = [f"reconfigEnabled={reconfig}"]
    versioned = reconfig == "true"
    want_files = ["zoo.cfg", "zoo.cfg.bak", "zoo.cfg.dynamic.100000000"] if versioned \
        else ["zoo.cfg"]
    ours_base = free_port_base(3)
    with ZkServerEnsemble(tmp_path / "ours", ours_base, n=3, extra=extra) as ours:
        zk_base = free_port_base(3)
        with RealZooKeeper(tmp_path / "zk", zk_base, n=3, extra=extra) as zk:
            zk_dirs = [tmp_path / "zk" / f"zk{i}" for i in (1, 2, 3)]
            # ZooKeeper's followers take the version when they start to serve, as ours do.
            wait_for(lambda: all(config_files(d) == want_files for d in zk_dirs), 60,
                     "ZooKeeper's config files")
            expected = config_nodes(zk.client_ports, zk_base)
            zk_dynamic = [symbolic((d / want_files[-1]).read_text(), zk_base)
                          for d in zk_dirs] if versioned else []
        our_dirs = [ours.nodes[i].base for i in ours.ids]
        wait_for(lambda: all(config_files(d) == want_files for d in our_dirs), 60,
                 "our config files")
        assert config_nodes(ours.client_ports, ours_base) == expected
        text = "server.1=127.0.0.1:Q1:E1:participant\nserver.2=127.0.0.1:Q2:E2:participant\n" \
               "server.3=127.0.0.1:Q3:E3:participant\n"
        version = "100000000" if versioned else "0"
        assert expected[0][0] == f"{text}version={version}"
        assert expected[0][1][1] == int(version, 16)  # mzxid: the version
        if not versioned:
            return
        for d in our_dirs:
            dynamic = d / "zoo.cfg.dynamic.100000000"
            assert symbolic(dynamic.read_text(), ours_base) == zk_dynamic[0] == text.rstrip("\n")
            static = (d / "zoo.cfg").read_text()
            assert "server." not in static
            assert static.endswith(f"dynamicConfigFile={dynamic}\n")
            assert "server.1=" in (d / "zoo.cfg.bak").read_text()
        # A restarted member reads its membership (and its version) from the dynamic file.
        ours.kill(2)
        ours.restart(2)
        ours.wait_serving(60)
        assert config_nodes([ours.port + 2], ours_base) == expected[1:2]


def test_one_server_with_standalone_disabled_serves_as_an_ensemble(tmp_path: Path) -> None:
    """standaloneEnabled=false: one server is an ensemble of one (it elects itself, leads and
    versions its membership), as in ZooKeeper, rather than a standalone server."""
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper); "
                    "run the README's test command, which installs it")
    results = []
    for kind in ("zk", "ours"):
        base = free_port_base(1)
        extra = ["standaloneEnabled=false", "reconfigEnabled=true", "initLimit=5",
                 "syncLimit=2", f"server.1=127.0.0.1:{base + 101}:{base + 201}"]
        if kind == "zk":
            server = RealZooKeeper(tmp_path / kind, base + 1, n=1, extra=extra)
            d = tmp_path / kind / "zk1"
        else:
            server = ZkServerProcess(tmp_path / kind, base + 1, extra=extra)
            (tmp_path / kind / "data").mkdir(parents=True)
            (tmp_path / kind / "data" / "myid").write_text("1\n")
            d = tmp_path / kind
        with server:
            wait_for(lambda d=d: "zoo.cfg.dynamic.100000000" in config_files(d), 60,
                     f"{kind}'s dynamic file")
            k = KazooClient(f"127.0.0.1:{base + 1}", timeout=10)
            k.start(timeout=60)
            try:
                k.create("/written", b"x")
                assert k.get("/written")[0] == b"x"
            finally:
                k.stop()
                k.close()
            results.append(config_nodes([base + 1], base))
            assert "Mode: leader" in realzk.four_letter("127.0.0.1", base + 1, "srvr")
    assert results[0] == results[1]
    assert results[0][0][0] == "server.1=127.0.0.1:Q1:E1:participant\nversion=100000000"
