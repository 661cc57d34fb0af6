"""The ensemble's membership in ZooKeeper's own text: `/zookeeper/config` and dynamic files.

ZooKeeper 3.5+ shows its configuration to clients as the data of `/zookeeper/config` and keeps
it on disk in `zoo.cfg.dynamic.<version>`, which `zoo.cfg` then names in `dynamicConfigFile`.
Tools parse both (kazoo's and Curator's reconfig helpers, zkCli's `config`, operators' diff
scripts), so they are rendered here exactly as ZooKeeper renders them:

* `/zookeeper/config`: one `server.N=host:quorumPort:electionPort:role[;clientHost:clientPort]`
  line per member, then for hierarchical quorums `group.G=` and `weight.N=` lines, then
  `version=<hex>` with no newline after it. Members come in the order of Java's HashMap of
  server ids (ascending below the table size), as does every list after them. The client part
  appears only where the member's own `server.N` line gave a client port.
* the dynamic file: the same lines without the version, sorted as strings, no final newline.
* `zoo.cfg` after the switch: every other key as `key=value`, and a `dynamicConfigFile=` line.

Everything here is text in, text out; `write_dynamic_files` is the one function that writes,
atomically (temporary file, fsync, rename), so the driver can run it off the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import attrs

from zkserver.config import OBSERVER, Config, ServerSpec, parse_membership, verifier_of
from zkserver.quorum.quorum import QuorumVerifier
from zkserver.tree.datatree import DataTree

CONFIG_NODE = "/zookeeper/config"


def java_hash_order(keys: Iterable[int]) -> list[int]:
    """The iteration order of a java.util.HashMap<Long, ...> holding `keys`: by bucket of the
    table a map of that size ends up with, ties by value."""
    keys = list(keys)
    capacity = 16
    while len(keys) > capacity * 3 // 4:
        capacity *= 2

    def bucket(k: int) -> int:
        h = (k ^ (k >> 32)) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(keys, key=lambda k: (bucket(k), k))


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def server_line(spec: ServerSpec) -> str:
    """`host:quorumPort:electionPort:role[;clientHost:clientPort]` (QuorumServer.toString)."""
    role = "observer" if spec.peer_type == OBSERVER else "participant"
    text = f"{_host(spec.host)}:{spec.quorum_port}:{spec.election_port}:{role}"
    if spec.client_port is not None:
        text += f";{_host(spec.client_host or '0.0.0.0')}:{spec.client_port}"
    return text


@attrs.frozen
class Membership:
    """One configuration of the ensemble: its members, hierarchy and version (the zxid of the
    reconfig that made it, or the version it was started with)."""

    servers: Mapping[int, ServerSpec]
    groups: Mapping[int, frozenset[int]] = attrs.field(factory=dict)
    weights: Mapping[int, int] = attrs.field(factory=dict)
    version: int = 0

    @classmethod
    def of(cls, config: Config, version: int) -> Membership:
        return cls(dict(config.servers), dict(config.groups), dict(config.weights), version)

    @classmethod
    def parse(cls, data: bytes, version: int | None = None) -> Membership:
        """A membership from `/zookeeper/config` text (a config transaction's data); its
        version from the text's `version=` line unless given."""
        text = data.decode()
        servers, groups, weights = parse_membership(text, "/zookeeper/config")
        if version is None:
            last = text.rpartition("\n")[2]
            version = int(last[len("version="):], 16) if last.startswith("version=") else 0
        return cls(servers, groups, weights, version)

    def verifier(self) -> QuorumVerifier:
        return verifier_of(dict(self.servers), dict(self.groups), dict(self.weights))

    @property
    def hierarchical(self) -> bool:
        return bool(self.groups or self.weights)

    def data(self) -> bytes:
        """This membership as `/zookeeper/config` shows it."""
        return membership_data(self.servers, self.groups, self.weights, self.version)


def member_lines(config: Config) -> list[str]:
    """Every line of the configuration but the version, in ZooKeeper's order."""
    return membership_lines(config.servers, config.groups, config.weights)


def membership_lines(servers: Mapping[int, ServerSpec], groups: Mapping[int, frozenset[int]],
                     weights: Mapping[int, int]) -> list[str]:
    lines = [f"server.{sid}={server_line(servers[sid])}" for sid in java_hash_order(servers)]
    if groups or weights:
        group_of = {sid: gid for gid, members in groups.items() for sid in members}
        listed: dict[int, list[int]] = {}
        for sid in java_hash_order(group_of):
            listed.setdefault(group_of[sid], []).append(sid)
        lines += [f"group.{gid}={':'.join(map(str, listed[gid]))}"
                  for gid in java_hash_order(listed)]
        every = {sid: 1 for sid, s in servers.items() if s.peer_type != OBSERVER}
        every.update(weights)
        lines += [f"weight.{sid}={every[sid]}" for sid in java_hash_order(every)]
    return lines


def config_data(config: Config, version: int) -> bytes:
    """The data of `/zookeeper/config` for this membership at `version`."""
    return membership_data(config.servers, config.groups, config.weights, version)


def membership_data(servers: Mapping[int, ServerSpec], groups: Mapping[int, frozenset[int]],
                    weights: Mapping[int, int], version: int) -> bytes:
    return "".join(f"{line}\n" for line in membership_lines(servers, groups, weights)).encode() \
        + f"version={version:x}".encode()


def show(tree: DataTree, data: bytes, version: int, wall_ms: int) -> None:
    """Put the configuration into `/zookeeper/config` as ZooKeeper's initConfigInZKDatabase
    does when a server starts to serve: its mzxid is the configuration's version and its
    version stays -1. Every server does this itself (no transaction), so the node is left out
    of the replicas' digest."""
    node = tree.nodes[CONFIG_NODE]
    node.data = data
    node.mzxid = version
    node.mtime = wall_ms
    node.version = -1


def dynamic_file_text(config: Config) -> str:
    """What ZooKeeper writes to `zoo.cfg.dynamic.<version>`."""
    return "\n".join(sorted(member_lines(config)))


def dynamic_file_name(static_path: str, version: int) -> str:
    return f"{static_path}.dynamic.{version:x}"


def static_file_text(config: Config, dynamic_path: str) -> str:
    """`zoo.cfg` once the membership lives in `dynamic_path`: the membership keys go (and the
    client port keys too when this server's `server.N` line carries its client port), and a
    `dynamicConfigFile` line names the dynamic file."""
    me = config.this_server
    erase_client = me is not None and me.client_port is not None
    dropped = ("server.", "group", "weight", "dynamicConfigFile", "peerType")
    if erase_client:
        dropped += ("clientPort", "clientPortAddress")
    lines = [f"{key}={value}" for key, value in _own_keys(config)
             if not key.startswith(dropped)]
    lines.append(f"dynamicConfigFile={os.path.realpath(dynamic_path)}")
    return "".join(f"{line}\n" for line in lines)


def _own_keys(config: Config) -> list[tuple[str, str]]:
    """The keys the file itself holds (`properties` also has `zookeeper.`-prefixed copies of
    keys ZooKeeper turns into system properties; those were not in the file)."""
    props = config.properties
    return [(k, v) for k, v in props.items()
            if not (k.startswith("zookeeper.") and k[len("zookeeper."):] in props)]


def write_dynamic_files(config: Config, version: int) -> str:
    """ZooKeeper's switch to (or move between) dynamic files: write
    `zoo.cfg.dynamic.<version>` beside zoo.cfg, then point zoo.cfg at it. Returns its path."""
    assert config.source is not None
    dynamic = dynamic_file_name(config.source, version)
    _write_atomically(dynamic, dynamic_file_text(config).encode())
    _write_atomically(config.source, static_file_text(config, dynamic).encode())
    return dynamic


def keep(config: Config, version: int) -> str:
    """Keep a new membership version on disk: the first time (zoo.cfg still holds the
    servers), save zoo.cfg as zoo.cfg.bak; then write the dynamic file and point zoo.cfg at
    it. Returns the dynamic file's path."""
    if config.dynamic_config_file is None:
        backup_static_file(config)
    return write_dynamic_files(config, version)


def backup_static_file(config: Config) -> None:
    """`zoo.cfg.bak`: ZooKeeper keeps the original before reconfiguration first rewrites it."""
    assert config.source is not None
    with open(config.source, "rb") as f:
        data = f.read()
    _write_atomically(config.source + ".bak", data)


def _write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
