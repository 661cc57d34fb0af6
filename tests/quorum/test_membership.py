"""/zookeeper/config and the dynamic files, rendered as Apache ZooKeeper renders them.

The expected texts are what ZooKeeper 3.8 wrote for the same zoo.cfg (a 3-server ensemble with
reconfigEnabled=true; captured from /zookeeper/config and the files beside zoo.cfg), with the
ports of that run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from zkserver.config import ConfigError, load_config, parse_config
from zkserver.quorum import membership
from zkserver.tree.datatree import DataTree

STATIC = """\
tickTime=2000
initLimit=10
syncLimit=5
dataDir={data}
admin.enableServer=false
4lw.commands.whitelist=*
reconfigEnabled=true
group.1=1:2
group.2=3
weight.2=0
weight.7=3
server.1=127.0.0.1:35642:35742;35542
server.2=127.0.0.1:35643:35743;127.0.0.1:35543
server.3=127.0.0.1:35644:35744;35544
"""

ZK_CONFIG_NODE = (
    b"server.1=127.0.0.1:35642:35742:participant;0.0.0.0:35542\n"
    b"server.2=127.0.0.1:35643:35743:participant;127.0.0.1:35543\n"
    b"server.3=127.0.0.1:35644:35744:participant;0.0.0.0:35544\n"
    b"group.1=1:2\ngroup.2=3\nweight.1=1\nweight.2=0\nweight.3=1\nweight.7=3\n"
    b"version=100000000")

ZK_DYNAMIC_FILE = (
    "group.1=1:2\ngroup.2=3\n"
    "server.1=127.0.0.1:35642:35742:participant;0.0.0.0:35542\n"
    "server.2=127.0.0.1:35643:35743:participant;127.0.0.1:35543\n"
    "server.3=127.0.0.1:35644:35744:participant;0.0.0.0:35544\n"
    "weight.1=1\nweight.2=0\nweight.3=1\nweight.7=3")


def test_config_node_and_dynamic_file_as_zookeeper_writes_them() -> None:
    config = parse_config(STATIC.format(data="/d"), server_id=1)
    assert membership.config_data(config, 0x100000000) == ZK_CONFIG_NODE
    assert membership.dynamic_file_text(config) == ZK_DYNAMIC_FILE


def test_a_plain_majority_and_observers() -> None:
    """What ZooKeeper 3.8 shows with reconfigEnabled=false: version 0, no client part where
    the server line has none."""
    text = ("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\nclientPort=2181\n"
            "server.1=127.0.0.1:57022:57122\nserver.2=127.0.0.1:57023:57123\n"
            "server.3=127.0.0.1:57024:57124\nserver.4=[::1]:1:2:observer;[::1]:3\n")
    config = parse_config(text, server_id=1)
    assert membership.config_data(config, 0) == (
        b"server.1=127.0.0.1:57022:57122:participant\n"
        b"server.2=127.0.0.1:57023:57123:participant\n"
        b"server.3=127.0.0.1:57024:57124:participant\n"
        b"server.4=[::1]:1:2:observer;[::1]:3\n"
        b"version=0")


def test_java_hash_order() -> None:
    """Below the table size a HashMap of longs iterates in ascending order; past it, by
    bucket (a 13-entry map has 32 buckets, so 33 comes right after 1)."""
    assert membership.java_hash_order([3, 1, 2]) == [1, 2, 3]
    assert membership.java_hash_order([17, 1, 2]) == [1, 17, 2]
    keys = [*range(1, 13), 33]
    assert membership.java_hash_order(keys) == [1, 33, *range(2, 13)]


def test_show_sets_the_node_as_zookeeper_does() -> None:
    tree = DataTree()
    before = tree.track_digest()
    membership.show(tree, b"server.1=x\nversion=0", 0x100000000, 1234)
    node = tree.nodes["/zookeeper/config"]
    assert (node.data, node.mzxid, node.mtime, node.version) == (
        b"server.1=x\nversion=0", 0x100000000, 1234, -1)
    assert node.czxid == 0 and node.aversion == -1
    assert tree.track_digest() == before  # each server's own: not part of the digest
    # ... and counted as in a new tree, as members whose code never set the node count it
    # (a new tree's digest as zkserver computed it before; a rolling upgrade mixes the two).
    assert before == 5321600623936451232


def test_write_dynamic_files_switches_zoo_cfg_over(tmp_path: Path) -> None:
    cfg = tmp_path / "zoo.cfg"
    data = tmp_path / "data"
    data.mkdir()
    (data / "myid").write_text("1\n")
    cfg.write_text(STATIC.format(data=data))
    config = load_config(str(cfg))
    membership.backup_static_file(config)
    dynamic = membership.write_dynamic_files(config, 0x100000000)
    assert dynamic == f"{cfg}.dynamic.100000000"
    assert Path(dynamic).read_text() == ZK_DYNAMIC_FILE
    assert (tmp_path / "zoo.cfg.bak").read_text() == STATIC.format(data=data)
    static = cfg.read_text()
    assert static == (f"tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={data}\n"
                      "admin.enableServer=false\n4lw.commands.whitelist=*\n"
                      f"reconfigEnabled=true\ndynamicConfigFile={dynamic}\n")
    # And it reads back as the same ensemble, now at version 0x100000000.
    again = load_config(str(cfg))
    assert again.servers.keys() == config.servers.keys()
    assert again.groups == config.groups
    assert again.weights == {1: 1, 2: 0, 3: 1, 7: 3}  # the defaults are written out
    assert again.config_version == 0x100000000
    assert membership.config_data(again, again.config_version) == ZK_CONFIG_NODE


@pytest.mark.parametrize("name,version", [
    ("zoo.cfg.dynamic.100000000", 0x100000000), ("zoo.cfg.dynamic.0", 0),
    ("zoo.cfg.dynamic", 0), ("zoo.cfg.dynamic.1a2b", 0x1A2B),
])
def test_the_version_is_the_dynamic_file_name(tmp_path: Path, name: str, version: int) -> None:
    (tmp_path / name).write_text("server.1=127.0.0.1:2888:3888;2181\n")
    (tmp_path / "zoo.cfg").write_text(f"dataDir={tmp_path}\ndynamicConfigFile={name}\n")
    config = load_config(str(tmp_path / "zoo.cfg"))
    assert config.config_version == version
    assert config.client_port == 2181


@pytest.mark.parametrize("static,dynamic,message", [
    ("server.1=127.0.0.1:2888:3888;2181\n", "", "must be in the dynamic config file"),
    ("group.1=1\n", "server.1=127.0.0.1:2888:3888;2181\n", "must be in the dynamic config"),
    ("", "server.1=127.0.0.1:2888:3888;2181\nversion=100000000\n", "must not hold a version"),
    ("", "server.1=127.0.0.1:2888:3888;2181\ntickTime=2000\n", "does not belong"),
])
def test_what_zookeeper_refuses_in_dynamic_configurations(
        tmp_path: Path, static: str, dynamic: str, message: str) -> None:
    (tmp_path / "zoo.cfg.dynamic").write_text(dynamic)
    (tmp_path / "zoo.cfg").write_text(
        f"dataDir={tmp_path}\ndynamicConfigFile=zoo.cfg.dynamic\n{static}")
    with pytest.raises(ConfigError, match=message):
        load_config(str(tmp_path / "zoo.cfg"))
