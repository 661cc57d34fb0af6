"""zoo.cfg parsing: real files load unchanged, defaults match ZooKeeper, mistakes are named."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest

from zkserver.auth.settings import SaslSettings
from zkserver.config import (
    FOUR_LETTER_WORDS,
    Config,
    ConfigError,
    ServerSpec,
    default_config,
    load_config,
    parse_config,
)

# The sample zoo.cfg Debian ships in /etc/zookeeper/conf_example (an inline copy, so the test
# runs anywhere).
DEBIAN_SAMPLE = """\
# The number of milliseconds of each tick
tickTime=2000
# The number of ticks that the initial
# synchronization phase can take
initLimit=10
# The number of ticks that can pass between
# sending a request and getting an acknowledgement
syncLimit=5
# the directory where the snapshot is stored.
dataDir=/tmp/zookeeper
# the port at which the clients will connect
clientPort=2181
# the maximum number of client connections.
#maxClientCnxns=60
#
# The number of snapshots to retain in dataDir
#autopurge.snapRetainCount=3
# Purge task interval in hours
#autopurge.purgeInterval=1

## Metrics Providers
#metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
#metricsProvider.httpHost=0.0.0.0
#metricsProvider.httpPort=7000
#metricsProvider.exportJvmInfo=true
"""

MINIMAL = "dataDir=/var/lib/zk\nclientPort=2181\n"

THREE_SERVERS = """\
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/var/lib/zk
server.1=zk1.example.com:2888:3888;2181
server.2=zk2.example.com:2888:3888:participant;0.0.0.0:2181
server.3=zk3.example.com:2888:3888:observer;2181
server.4=zk4.example.com:2888:3888
"""


def parse(text: str, **kwargs) -> Config:
    return parse_config(text, source="zoo.cfg", cwd="/cwd", **kwargs)


def test_debian_sample_parses() -> None:
    config = parse(DEBIAN_SAMPLE)
    assert config.tick_time == 2000
    assert (config.init_limit, config.sync_limit) == (10, 5)
    assert config.data_dir == config.data_log_dir == "/tmp/zookeeper"
    assert config.client_port == 2181
    assert config.client_port_address is None
    assert not config.is_quorum and config.servers == {} and config.this_server is None
    assert config.server_id == 1
    assert config.warnings == ()
    assert config.source == "zoo.cfg"


def test_every_default() -> None:
    config = parse(MINIMAL)
    expected = {
        "tick_time": 3000, "init_limit": None, "sync_limit": None,
        "data_dir": "/var/lib/zk", "data_log_dir": "/var/lib/zk",
        "client_port": 2181, "client_port_address": None,
        "secure_client_port": None, "secure_client_port_address": None,
        "max_client_cnxns": 60, "max_cnxns": 0,
        "min_session_timeout": 6000, "max_session_timeout": 60000,
        "client_port_listen_backlog": -1,
        "autopurge_snap_retain_count": 3, "autopurge_purge_interval": 0,
        "servers": {}, "groups": {}, "weights": {}, "server_id": 1, "peer_type": "participant",
        "standalone_enabled": True, "reconfig_enabled": False, "dynamic_config_file": None,
        "config_version": 0,
        "four_letter_whitelist": frozenset({"srvr"}),
        "admin_enable_server": True, "admin_server_address": "0.0.0.0",
        "admin_server_port": 8080, "admin_command_url": "/commands",
        "admin_console_enabled": True, "admin_console_allow_remote": False,
        "metrics_http_port": None, "metrics_http_host": "0.0.0.0",
        "global_outstanding_limit": 1000, "snap_count": 100000, "pre_alloc_size_kb": 65536,
        "force_sync": True, "thrifty_broadcast_ms": 5, "election_alg": 3,
        "extended_types_enabled": False, "skip_acl": False, "super_digest": None,
        "readonly_mode_enabled": False, "local_sessions_enabled": False,
        "sync_enabled": True, "quorum_listen_on_all_ips": False,
        "jute_max_buffer": 0xFFFFF,
        "container_check_interval_ms": 60000, "container_max_per_minute": 10000,
        "container_max_never_used_interval_ms": 0,
        "enforce_quota": False, "ssl": {}, "ssl_quorum": False,
        "ssl_quorum_reload_cert_files": False,
        "properties": {"dataDir": "/var/lib/zk", "clientPort": "2181"},
        "warnings": (), "source": "zoo.cfg", "jaas_config_file": None, "sasl": SaslSettings(),
    }
    assert attrs.asdict(config, recurse=False) == expected


@pytest.mark.parametrize(("line", "ms"), [("thriftyBroadcastMs=20", 20),
                                           ("thriftyBroadcastMs=0", 0),
                                           ("thriftyBroadcastMs=-3", 0)])
def test_thrifty_broadcast_ms(line: str, ms: int) -> None:
    """zkserver's own key: how long a leader may hold proposals back from spare followers
    (0, or below, never)."""
    assert parse(MINIMAL + line + "\n").thrifty_broadcast_ms == ms


def test_record_defaults_follow_tick_time_and_data_dir() -> None:
    config = Config(data_dir="/d", tick_time=1000)
    assert (config.min_session_timeout, config.max_session_timeout) == (2000, 20000)
    assert config.data_log_dir == "/d"
    assert config.servers == {} and config.properties == {} and config.ssl == {}
    assert Config(data_dir="/d").servers is not config.servers


def test_session_timeouts_derive_from_tick_time() -> None:
    config = parse(MINIMAL + "tickTime=500\n")
    assert (config.min_session_timeout, config.max_session_timeout) == (1000, 10000)
    config = parse(MINIMAL + "minSessionTimeout=-1\nmaxSessionTimeout=9000\n")
    assert (config.min_session_timeout, config.max_session_timeout) == (6000, 9000)


def test_min_session_timeout_above_max_is_an_error() -> None:
    with pytest.raises(ConfigError, match="minSessionTimeout"):
        parse(MINIMAL + "minSessionTimeout=5000\nmaxSessionTimeout=4000\n")
    with pytest.raises(ConfigError, match="minSessionTimeout"):
        parse(MINIMAL + "tickTime=100\nminSessionTimeout=5000\n")  # above 20 ticks


def test_three_servers_with_observer_and_client_port_forms() -> None:
    config = parse(THREE_SERVERS, server_id=2)
    assert config.is_quorum
    assert config.servers[1] == ServerSpec(1, "zk1.example.com", 2888, 3888, "participant",
                                           None, 2181)
    assert config.servers[2].client_host == "0.0.0.0"
    assert config.servers[3].peer_type == "observer"
    assert config.servers[4] == ServerSpec(4, "zk4.example.com", 2888, 3888)
    assert config.this_server is config.servers[2]
    assert (config.client_port, config.client_port_address) == (2181, "0.0.0.0")
    # three participants: no warning about the quorum size
    assert config.warnings == ()


def test_observer_takes_its_role_from_the_server_list() -> None:
    assert parse(THREE_SERVERS, server_id=3).peer_type == "observer"
    config = parse(THREE_SERVERS + "peerType=participant\n", server_id=3)
    assert config.peer_type == "observer"
    assert any("peerType" in w for w in config.warnings)


def test_quorum_needs_myid_that_is_listed_and_limits() -> None:
    with pytest.raises(ConfigError, match="myid"):
        parse(THREE_SERVERS)
    with pytest.raises(ConfigError, match="server.7"):
        parse(THREE_SERVERS, server_id=7)
    no_limits = THREE_SERVERS.replace("initLimit=10\n", "")
    with pytest.raises(ConfigError, match="initLimit"):
        parse(no_limits, server_id=1)


def test_client_port_from_file_and_server_line_must_agree() -> None:
    assert parse(THREE_SERVERS + "clientPort=2181\n", server_id=1).client_port == 2181
    with pytest.raises(ConfigError, match="contradicts clientPort"):
        parse(THREE_SERVERS + "clientPort=2182\n", server_id=1)


def test_one_server_line_is_standalone_unless_disabled() -> None:
    text = "dataDir=/d\nserver.1=localhost:2888:3888;2181\n"
    config = parse(text)
    assert not config.is_quorum
    assert config.client_port == 2181 and config.this_server is not None
    config = parse(text + "standaloneEnabled=false\ninitLimit=5\nsyncLimit=2\n", server_id=1)
    assert config.is_quorum
    assert config.standalone_enabled is False
    with pytest.raises(ConfigError, match="standaloneEnabled"):
        parse(text + "standaloneEnabled=maybe\n")


def test_quorum_size_warnings() -> None:
    two = "dataDir=/d\ninitLimit=5\nsyncLimit=2\n" \
        "server.1=a:2888:3888;2181\nserver.2=b:2888:3888;2181\n"
    assert any("2 participants" in w for w in parse(two, server_id=1).warnings)


def test_ipv6_addresses() -> None:
    config = parse(
        "dataDir=/d\nstandaloneEnabled=false\ninitLimit=5\nsyncLimit=2\n"
        "server.1=[::1]:2888:3888:participant;[::1]:2181\n",
        server_id=1,
    )
    assert config.servers[1] == ServerSpec(1, "::1", 2888, 3888, "participant", "::1", 2181)
    assert config.client_port_address == "::1"
    config = parse("dataDir=/d\nclientPort=2181\nclientPortAddress=[fe80::1]\n")
    assert config.client_port_address == "fe80::1"


def test_multiple_addresses_use_the_first_and_warn() -> None:
    config = parse(
        "dataDir=/d\nclientPort=2181\nserver.1=a1:2888:3888|a2:2889:3889\n"
        "server.2=b:2888:3888\nserver.3=c:2888:3888\ninitLimit=5\nsyncLimit=2\n",
        server_id=1,
    )
    assert (config.servers[1].host, config.servers[1].quorum_port) == ("a1", 2888)
    assert [w for w in config.warnings if "several addresses" in w] != []


@pytest.mark.parametrize("line", [
    "server.x=a:2888:3888",
    "server.1=a:2888",
    "server.1=a:2888:3888:leader",
    "server.1=a:2888:2888",
    "server.1=a:2888:99999",
    "server.1=[::1:2888:3888",
    "server.1=a:2888:3888;h:1:2",
])
def test_bad_server_lines(line: str) -> None:
    with pytest.raises(ConfigError, match=r"zoo\.cfg:3: server\."):
        parse(f"dataDir=/d\nclientPort=2181\n{line}\n")


def test_load_config_reads_dynamic_file_and_myid(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "myid").write_text("2\n")
    dynamic = tmp_path / "zoo.cfg.dynamic"
    dynamic.write_text(
        "server.1=127.0.0.1:2888:3888;2181\n"
        "server.2=127.0.0.1:2889:3889;2182\n"
        "server.3=127.0.0.1:2890:3890;2183\n"
    )
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={data}\n"
                   f"dynamicConfigFile={dynamic}\nreconfigEnabled=true\n")
    config = load_config(str(cfg))
    assert config.server_id == 2 and config.is_quorum
    assert config.client_port == 2182
    assert config.dynamic_config_file == str(dynamic)
    assert config.reconfig_enabled is True
    assert config.source == str(cfg)
    assert "server.3" in config.properties


def test_load_config_finds_relative_dynamic_file_next_to_zoo_cfg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "zoo.cfg.dynamic").write_text("server.1=localhost:2888:3888;2181\n")
    cfg = tmp_path / "conf" / "zoo.cfg"
    cfg.write_text("dataDir=data\ndynamicConfigFile=zoo.cfg.dynamic\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(str(cfg))
    assert config.data_dir == str(tmp_path / "data")  # relative to the cwd, like Java
    assert config.client_port == 2181
    (tmp_path / "conf" / "zoo.cfg.dynamic").unlink()
    with pytest.raises(ConfigError, match="dynamicConfigFile"):
        load_config(str(cfg))


def test_load_config_myid(tmp_path: Path) -> None:
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"dataDir={tmp_path}\nclientPort=2181\n")
    assert load_config(str(cfg)).server_id == 1  # standalone without myid
    (tmp_path / "myid").write_text("5")
    assert load_config(str(cfg)).server_id == 5
    (tmp_path / "myid").write_text("replace this text with the server id")
    with pytest.raises(ConfigError, match="myid"):
        load_config(str(cfg))


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.cfg"):
        load_config(str(tmp_path / "nope.cfg"))


def test_relative_data_dirs_resolve_against_cwd() -> None:
    config = parse_config("dataDir=zk/data\ndataLogDir=../logs\nclientPort=1\n", cwd="/srv/app")
    assert config.data_dir == "/srv/app/zk/data"
    assert config.data_log_dir == "/srv/logs"
    assert parse_config("dataDir=d\nclientPort=1\n").data_dir == os.path.join(os.getcwd(), "d")


def test_unknown_keys_are_kept_and_mirrored_as_system_properties() -> None:
    config = parse(MINIMAL + "fancy.feature=on\nadmin.idleTimeout=5\n"
                   "zookeeper.other=x\nother=y\n")
    props = config.properties
    assert props["fancy.feature"] == props["zookeeper.fancy.feature"] == "on"
    assert props["zookeeper.admin.idleTimeout"] == "5"
    assert props["zookeeper.other"] == "x"  # what the file says wins over the mirror
    assert "zookeeper.clientPort" not in props  # ZooKeeper consumes that one itself
    assert "zookeeper.zookeeper.other" not in props
    assert config.warnings == ()


def test_java_class_keys_are_ignored_with_one_warning() -> None:
    config = parse(
        MINIMAL
        + "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
        + "metricsProvider.className=org.apache.zookeeper.metrics.prometheus."
        + "PrometheusMetricsProvider\n"
        + "authProvider.1=com.example.TokenAuthenticationProvider\n"
        + "authProvider.2=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
        + "sessionTrackerClass=com.example.Tracker\n"
    )
    class_warnings = [w for w in config.warnings if "Java class" in w]
    assert len(class_warnings) == 1
    for key in ("serverCnxnFactory", "metricsProvider.className", "authProvider.1",
                "sessionTrackerClass"):
        assert key in class_warnings[0]
    assert "SASLAuthenticationProvider" not in class_warnings[0]  # zkserver has SASL
    assert config.metrics_http_port == 7000  # the Prometheus provider's default port


def test_tls_keys_load_without_warnings() -> None:
    config = parse(
        MINIMAL
        + "secureClientPort=2281\n"
        + "ssl.keyStore.location=/etc/zk/keystore.jks\n"
        + "ssl.trustStore.type=JKS\nssl.quorum.keyStore.location=/etc/zk/q.pem\n"
        + "sslQuorum=true\n"
    )
    assert config.secure_client_port == 2281
    assert config.ssl == {
        "ssl.keyStore.location": "/etc/zk/keystore.jks",
        "ssl.trustStore.type": "JKS",
        "ssl.quorum.keyStore.location": "/etc/zk/q.pem",
    }
    assert config.ssl_quorum is True
    text = "\n".join(config.warnings)
    assert "TLS" not in text and "JKS" not in text and "sslQuorum" not in text


@pytest.mark.parametrize("line, key", [
    ("tickTime=2s", "tickTime"),
    ("maxClientCnxns=lots", "maxClientCnxns"),
    ("initLimit=1.5", "initLimit"),
    ("snapCount=99999999999", "snapCount"),
    ("clientPort=70000", "clientPort"),
    ("jute.maxbuffer=0x100000", "jute.maxbuffer"),
])
def test_bad_numbers_name_key_file_and_line(line: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^zoo\.cfg:3: {key}="):
        parse(MINIMAL + line + "\n")


@pytest.mark.parametrize("text, message", [
    (MINIMAL + "electionAlg=0\n", "electionAlg"),
    (MINIMAL + "tickTime=0\n", "tickTime"),
    (MINIMAL + "tickTime=-5\n", "tickTime"),
    ("clientPort=2181\n", "dataDir"),
    ("dataDir=/d\n", "client port"),
    ("dataDir=/d\nclientPortAddress=127.0.0.1\n", "clientPortAddress"),
    (MINIMAL + "secureClientPortAddress=0.0.0.0\n", "secureClientPortAddress"),
    (MINIMAL + "peerType=leader\n", "peerType"),
    (MINIMAL + "key=\\u12\n", "uXXXX"),
])
def test_invalid_configs(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(text)


def test_four_letter_whitelist() -> None:
    assert parse(MINIMAL).four_letter_whitelist == {"srvr"}
    assert parse(MINIMAL + "4lw.commands.whitelist=*\n").four_letter_whitelist \
        == FOUR_LETTER_WORDS
    config = parse(MINIMAL + "4lw.commands.whitelist= ruok , stat,,mntr, bogus\n")
    assert config.four_letter_whitelist == {"ruok", "stat", "mntr", "srvr"}
    assert any("bogus" in w for w in config.warnings)
    config = parse(MINIMAL + "zookeeper.4lw.commands.whitelist=ruok\nreadonlymode.enabled=true\n")
    assert config.four_letter_whitelist == {"ruok", "srvr", "isro"}
    assert config.readonly_mode_enabled
    assert len(FOUR_LETTER_WORDS) == 18


def test_properties_syntax_comments_separators_and_continuations() -> None:
    text = (
        "# comment\n"
        "   ! another comment \\\n"
        "dataDir = /var/lib/zk\n"
        "clientPort: 2181\n"
        "tickTime 2500\n"
        "4lw.commands.whitelist=ruok, \\\n"
        "    stat, \\\n"
        "    mntr\n"
        "\n"
        "   \t\n"
        "admin.commandURL=/cmd\\\\\n"
        "key\\ with\\ spaces=a\\tb#not-a-comment\n"
        "skipACL=yes\r\n"
        "forceSync=no\r"
        "maxCnxns=1\\\n"
    )
    config = parse(text)
    assert config.data_dir == "/var/lib/zk"
    assert config.client_port == 2181
    assert config.tick_time == 2500
    assert config.four_letter_whitelist == {"ruok", "stat", "mntr", "srvr"}
    assert config.admin_command_url == "/cmd\\"  # an escaped backslash doesn't continue
    assert config.properties["key with spaces"] == "a\tb#not-a-comment"
    assert config.skip_acl is True and config.force_sync is False
    assert config.max_cnxns == 1  # a continuation at the end of the file is dropped


def test_prefixed_and_bare_system_property_keys() -> None:
    config = parse(
        MINIMAL
        + "zookeeper.extendedTypesEnabled=true\n"
        + "znode.container.checkIntervalMs=1000\n"
        + "zookeeper.znode.container.maxPerMinute=5\n"
        + "znode.container.maxNeverUsedIntervalMs=300000\n"
        + "zookeeper.DigestAuthenticationProvider.superDigest=super:abc=\n"
        + "enforceQuota=true\nzookeeper.enforceQuota=false\n"
        + "jute.maxbuffer=4194304\n"
    )
    assert config.extended_types_enabled is True
    assert config.container_check_interval_ms == 1000
    assert config.container_max_per_minute == 5
    assert config.container_max_never_used_interval_ms == 300000
    assert config.super_digest == "super:abc="
    assert config.enforce_quota is True  # the bare key wins, as in ZooKeeper
    assert config.jute_max_buffer == 4194304
    bare = parse(MINIMAL + "DigestAuthenticationProvider.superDigest=super:xyz\n")
    assert bare.super_digest == "super:xyz"


def test_extended_types_limit_server_ids() -> None:
    text = "dataDir=/d\nclientPort=2181\nextendedTypesEnabled=true\n"
    with pytest.raises(ConfigError, match="254"):
        parse(text, server_id=255)


def test_other_settings_are_read() -> None:
    config = parse(
        MINIMAL
        + "autopurge.snapRetainCount=1\nautopurge.purgeInterval=24\nsnapCount=1\n"
        + "maxClientCnxns=0\nclientPortListenBacklog=128\nglobalOutstandingLimit=5\n"
        + "preAllocSize=1024\nlocalSessionsEnabled=true\nsyncEnabled=false\n"
        + "quorumListenOnAllIPs=true\nadmin.enableServer=false\nadmin.serverPort=9090\n"
        + "admin.serverAddress=127.0.0.1\nmetricsProvider.httpPort=7001\n"
        + "metricsProvider.httpHost=127.0.0.1\nskipACL=true\nforceSync=maybe\n"
    )
    assert config.autopurge_snap_retain_count == 3
    assert any("snapRetainCount" in w for w in config.warnings)
    assert any("forceSync" in w for w in config.warnings)
    assert config.force_sync is True
    assert config.autopurge_purge_interval == 24
    assert config.snap_count == 2
    assert config.max_client_cnxns == 0 and config.client_port_listen_backlog == 128
    assert config.global_outstanding_limit == 5 and config.pre_alloc_size_kb == 1024
    assert config.local_sessions_enabled and not config.sync_enabled
    assert config.quorum_listen_on_all_ips and config.skip_acl
    assert not config.admin_enable_server
    assert (config.admin_server_address, config.admin_server_port) == ("127.0.0.1", 9090)
    assert (config.metrics_http_host, config.metrics_http_port) == ("127.0.0.1", 7001)
    assert parse(MINIMAL + "autopurge.purgeInterval=90m\n").autopurge_purge_interval == 2


def test_hierarchical_quorum_keys() -> None:
    """group.N/weight.N as QuorumHierarchical reads them; server 3 is an observer here."""
    config = parse(THREE_SERVERS + "group.1=1:2\ngroup.2=4\nweight.1=2\nweight.4=0\n",
                   server_id=1)
    assert config.warnings == ()
    assert config.groups == {1: frozenset({1, 2}), 2: frozenset({4})}
    assert config.weights == {1: 2, 4: 0}
    assert config.properties["group.1"] == "1:2"
    q = config.quorum_verifier()
    assert type(q).__name__ == "Hierarchical"
    assert q.voters == {1, 2, 4} and q.observers == {3}
    assert (q.weight(1), q.weight(2), q.weight(4)) == (2, 1, 0)
    # Group 2 weighs 0, so group 1 is all that counts, and server 1 carries it alone.
    assert q.has_quorum({1}) and not q.has_quorum({2, 4})
    assert parse(THREE_SERVERS, server_id=1).quorum_verifier().has_quorum({1, 2})


@pytest.mark.parametrize("extra,message", [
    ("group.1=1:2\ngroup.2=2:4\n", "server 2 is in groups 1 and 2"),
    ("group.1=1:2\n", r"participant\(s\) \[4\] are in no group"),
    ("weight.1=3\n", "in no group"),
    ("group.1=1:2:4:9\n", "not a participant"),
    ("group.1=1:2:3:4\n", "not a participant"),  # 3 is an observer
    ("group.1=1:2:4\nweight.1=-1\n", r"zoo\.cfg:\d+: weight\.1='-1'"),
    ("group.1=1:2:4\nweight.1=x\n", r"weight\.1='x'"),
    ("group.1=1:2:x\n", r"group\.1='1:2:x'"),
    ("group.1=1:1:2:4\n", "listed twice"),
    ("group=1:2:4\n", "expected group.N"),
    ("groupies.x=1:2:4\n", "expected group.N"),
    ("group.1=1:2:4\nweight.1=0\nweight.2=0\nweight.4=0\n", "weighs 0"),
])
def test_bad_hierarchies_are_refused(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(THREE_SERVERS + extra, server_id=1)


def test_default_config() -> None:
    config = default_config()
    assert config.client_port == 2181
    assert config.client_port_address == "127.0.0.1"
    assert config.data_dir == os.path.abspath("zkdata") == config.data_log_dir
    assert config.tick_time == 2000
    assert (config.min_session_timeout, config.max_session_timeout) == (4000, 40000)
    assert config.four_letter_whitelist == FOUR_LETTER_WORDS
    assert config.admin_enable_server is False
    assert config.source is None and not config.is_quorum and config.warnings == ()


def test_config_is_immutable() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        default_config().tick_time = 1  # type: ignore[misc]


def test_read_only_mode_from_the_jvm_flags_as_zookeeper_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ZooKeeper reads `readonlymode.enabled` only as a system property, which deployments set
    in SERVER_JVMFLAGS or JVMFLAGS; zoo.cfg still wins where both say something."""
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"dataDir={tmp_path}\nclientPort=2181\n")
    monkeypatch.delenv("JVMFLAGS", raising=False)
    monkeypatch.setenv("SERVER_JVMFLAGS", "-Xmx1g -Dreadonlymode.enabled=true")
    config = load_config(str(cfg))
    assert config.readonly_mode_enabled and "isro" in config.four_letter_whitelist
    cfg.write_text(f"dataDir={tmp_path}\nclientPort=2181\nreadonlymode.enabled=false\n")
    assert not load_config(str(cfg)).readonly_mode_enabled
    monkeypatch.delenv("SERVER_JVMFLAGS")
    monkeypatch.setenv("JVMFLAGS", "-Dreadonlymode.enabled=yes")
    cfg.write_text(f"dataDir={tmp_path}\nclientPort=2181\n")
    assert load_config(str(cfg)).readonly_mode_enabled
