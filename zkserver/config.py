"""zoo.cfg -> one immutable `Config` record.

People moving from Apache ZooKeeper must be able to start zkserver with the `zoo.cfg` they
already have. So the file is read the way Java reads a properties file, every key ZooKeeper
accepts is accepted here (unknown ones are kept, never rejected), and the defaults are
ZooKeeper's. What zkserver cannot do yet (Java plug-in classes, several addresses per server)
still loads: it ends up in `Config.warnings`, which the server prints once
at start-up, rather than stopping a server that would otherwise run fine.

Parsing and checking are separate from I/O: `parse_config` works on text only, and
`load_config` adds the file reads (the file itself, `dynamicConfigFile`, `dataDir/myid`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping

import attrs

from zkserver.auth.jaas import jvm_properties
from zkserver.auth.settings import (
    JVM_FLAG_VARIABLES,
    SASL_PROVIDER,
    SaslConfigError,
    SaslSettings,
    from_properties,
    load_sasl,
)
from zkserver.quorum.quorum import QuorumVerifier, verifier

# Every four-letter word the server knows; `4lw.commands.whitelist=*` means all of these.
FOUR_LETTER_WORDS = frozenset({
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "wchs", "wchc", "wchp",
    "dump", "envi", "isro", "dirs", "gtmk", "stmk", "hash",
})

PARTICIPANT = "participant"
OBSERVER = "observer"

# Keys QuorumPeerConfig consumes itself. Every other key of a zoo.cfg becomes the Java system
# property `zookeeper.<key>`; `Config.properties` mirrors that so later features find a setting
# under the name ZooKeeper's own code reads it by.
_JAVA_CORE_KEYS = frozenset({
    "dataDir", "dataLogDir", "clientPort", "localSessionsEnabled",
    "localSessionsUpgradingEnabled", "clientPortAddress", "secureClientPort",
    "secureClientPortAddress", "observerMasterPort", "clientPortListenBacklog", "tickTime",
    "maxClientCnxns", "maxCnxns", "minSessionTimeout", "maxSessionTimeout", "initLimit",
    "syncLimit", "connectToLearnerMasterLimit", "electionAlg", "quorumListenOnAllIPs",
    "peerType", "syncEnabled", "dynamicConfigFile", "autopurge.snapRetainCount",
    "autopurge.purgeInterval", "standaloneEnabled", "reconfigEnabled", "sslQuorum",
    "portUnification", "sslQuorumReloadCertFiles", "quorum.cnxn.threads.size",
    "quorum.auth.enableSasl", "quorum.auth.learnerRequireSasl", "quorum.auth.serverRequireSasl",
    "quorum.auth.learner.saslLoginContext", "quorum.auth.server.saslLoginContext",
    "quorum.auth.kerberos.servicePrincipal", "multiAddress.enabled",
    "multiAddress.reachabilityCheckTimeoutMs", "multiAddress.reachabilityCheckEnabled",
    "oraclePath",
})
_DYNAMIC_PREFIXES = ("server.", "group", "weight")

_INT = re.compile(r"[+-]?[0-9]+\Z")
_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d)?\Z")
_JAVA_CLASS = re.compile(r"(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*\Z")
_CLASS_KEY_SUFFIXES = ("Factory", "className", "Class", "Provider")
# Java's String.trim() drops every char <= U+0020, not just what Python calls whitespace.
_JAVA_TRIM = "".join(map(chr, range(33)))
_PROPERTY_BLANKS = " \t\f"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


class ConfigError(Exception):
    """The configuration can't be used; the message names the file and, if known, the line."""


@attrs.frozen
class ServerSpec:
    """One `server.N=` line: where a quorum member listens and what role it plays."""

    sid: int
    host: str
    quorum_port: int
    election_port: int
    peer_type: str = PARTICIPANT
    client_host: str | None = None  # None: all interfaces
    client_port: int | None = None


def _is_quorum(servers: dict[int, ServerSpec], standalone_enabled: bool) -> bool:
    participants = sum(1 for s in servers.values() if s.peer_type == PARTICIPANT)
    return participants > 1 or (bool(servers) and not standalone_enabled)


@attrs.frozen(kw_only=True)
class Config:
    """Everything the server reads from zoo.cfg, with Apache ZooKeeper's defaults.

    Time values are milliseconds unless the name says otherwise. `properties` holds every key of
    the file so features added later can read settings this record doesn't name.
    `jute_max_buffer` is honoured from zoo.cfg although ZooKeeper itself ignores it there (it is
    a JVM property); a user who wrote it surely meant it.
    """

    tick_time: int = 3000
    init_limit: int | None = None
    sync_limit: int | None = None
    data_dir: str
    data_log_dir: str = attrs.field()
    client_port: int | None = None
    client_port_address: str | None = None
    secure_client_port: int | None = None
    secure_client_port_address: str | None = None
    max_client_cnxns: int = 60
    max_cnxns: int = 0
    min_session_timeout: int = attrs.field()
    max_session_timeout: int = attrs.field()
    client_port_listen_backlog: int = -1
    autopurge_snap_retain_count: int = 3
    autopurge_purge_interval: int = 0
    servers: dict[int, ServerSpec] = attrs.field(factory=dict)
    groups: dict[int, frozenset[int]] = attrs.field(factory=dict)  # group.N: hierarchical quorums
    weights: dict[int, int] = attrs.field(factory=dict)  # weight.N (1 where not given)
    server_id: int = 1
    peer_type: str = PARTICIPANT
    standalone_enabled: bool = True
    reconfig_enabled: bool = False
    dynamic_config_file: str | None = None
    config_version: int = 0  # the membership's version: the dynamic file name's hex suffix
    four_letter_whitelist: frozenset[str] = frozenset({"srvr"})
    admin_enable_server: bool = True
    admin_server_address: str = "0.0.0.0"
    admin_server_port: int = 8080
    admin_command_url: str = "/commands"
    admin_console_enabled: bool = True
    admin_console_allow_remote: bool = False  # answer browsers on other hosts too
    metrics_http_port: int | None = None
    metrics_http_host: str = "0.0.0.0"
    global_outstanding_limit: int = 1000
    snap_count: int = 100000
    pre_alloc_size_kb: int = 65536
    force_sync: bool = True
    # thriftyBroadcastMs (zkserver's): how long a leader may hold proposals back from the
    # followers its quorum does not need (zkserver/quorum/thrifty.py); 0 sends all at once
    thrifty_broadcast_ms: int = 5
    election_alg: int = 3
    extended_types_enabled: bool = False
    skip_acl: bool = False
    super_digest: str | None = None
    readonly_mode_enabled: bool = False
    local_sessions_enabled: bool = False
    sync_enabled: bool = True
    quorum_listen_on_all_ips: bool = False
    jute_max_buffer: int = 0xFFFFF
    container_check_interval_ms: int = 60000
    container_max_per_minute: int = 10000
    container_max_never_used_interval_ms: int = 0
    enforce_quota: bool = False
    ssl: dict[str, str] = attrs.field(factory=dict)
    ssl_quorum: bool = False
    # sslQuorumReloadCertFiles: the ssl.quorum.* stores are re-read when their files change
    ssl_quorum_reload_cert_files: bool = False
    properties: dict[str, str] = attrs.field(factory=dict)
    # SASL: the JAAS file zoo.cfg names (`jaasConfigFile`, zkserver's key) and everything
    # SASL-related, gathered by zkserver/auth/settings.py.
    jaas_config_file: str | None = None
    sasl: SaslSettings = attrs.field(factory=SaslSettings)
    warnings: tuple[str, ...] = ()
    source: str | None = None

    @data_log_dir.default
    def _data_log_dir_default(self) -> str:
        return self.data_dir

    @min_session_timeout.default
    def _min_session_timeout_default(self) -> int:
        return 2 * self.tick_time

    @max_session_timeout.default
    def _max_session_timeout_default(self) -> int:
        return 20 * self.tick_time

    @property
    def is_quorum(self) -> bool:
        """Whether to run ZAB with peers rather than serve alone (ZooKeeper's rule)."""
        return _is_quorum(self.servers, self.standalone_enabled)

    @property
    def this_server(self) -> ServerSpec | None:
        return self.servers.get(self.server_id)

    def quorum_verifier(self) -> QuorumVerifier:
        """Who counts towards a quorum: hierarchical as soon as any group.N or weight.N is
        set (ZooKeeper's rule), else a majority of the participants."""
        return verifier_of(self.servers, self.groups, self.weights)


def verifier_of(servers: dict[int, ServerSpec], groups: dict[int, frozenset[int]],
              weights: dict[int, int]) -> QuorumVerifier:
    voters = [s.sid for s in servers.values() if s.peer_type == PARTICIPANT]
    observers = [s.sid for s in servers.values() if s.peer_type == OBSERVER]
    return verifier(voters, observers, groups, weights)


def default_config() -> Config:
    """What `zkserver` with no arguments runs: a local developer server, safe by default.

    Only loopback is served, the admin HTTP server stays off (it would grab port 8080), and all
    four-letter words are allowed because a developer box has nobody to hide them from.
    """
    return Config(
        tick_time=2000,
        data_dir=os.path.abspath("zkdata"),
        client_port=2181,
        client_port_address="127.0.0.1",
        four_letter_whitelist=FOUR_LETTER_WORDS,
        admin_enable_server=False,
    )


def parse_config(
    text: str, source: str = "<string>", cwd: str | None = None, *, server_id: int | None = None
) -> Config:
    """Build a Config from zoo.cfg text without touching the file system.

    `cwd` resolves relative directories (default: the process's, as Java does). `server_id`
    stands in for the `dataDir/myid` file, which only `load_config` reads. A
    `dynamicConfigFile` is recorded but not read here either.
    """
    entries = _parse_properties(text, source)
    config = _build(entries, source, cwd or os.getcwd(), server_id)
    try:
        return attrs.evolve(config, sasl=from_properties(config.properties))
    except SaslConfigError as e:
        raise ConfigError(f"{source}: {e}") from e


JVM_ONLY_SETTINGS = ("readonlymode.enabled",)
"""Settings ZooKeeper reads only as `-D` system properties (from `SERVER_JVMFLAGS`/`JVMFLAGS`
through zkServer.sh), never from zoo.cfg. zkserver takes them from either, zoo.cfg first, so a
deployment's JVM flags carry over unchanged."""


def load_config(path: str, *, jaas_file: str | None = None) -> Config:
    """Read a zoo.cfg, the dynamic config file it names and `dataDir/myid`, then build a Config.

    The dynamic file is looked for relative to the working directory first (Java's rule) and
    then next to zoo.cfg, because that is where ZooKeeper's own reconfig writes it. SASL settings
    come last (`with_sasl`): the JAAS file `jaas_file` names, else the one zoo.cfg or the
    environment's JVM flags name.
    """
    source = os.path.abspath(path)
    cwd = os.getcwd()
    entries = _parse_properties(_read_text(source), source)
    version = 0
    if "dynamicConfigFile" in entries:
        value, where = entries["dynamicConfigFile"]
        for key, (_, key_where) in entries.items():
            if key.startswith(_DYNAMIC_PREFIXES):
                raise ConfigError(f"{key_where}: {key} must be in the dynamic config file "
                                  "(dynamicConfigFile is set), not in zoo.cfg")
        dynamic = _find_dynamic_file(value, cwd, os.path.dirname(source), where)
        entries.update(_dynamic_entries(dynamic))
        version = dynamic_file_version(dynamic)
    flags = jvm_properties(os.environ, *JVM_FLAG_VARIABLES)
    for key in JVM_ONLY_SETTINGS:
        if key in flags and key not in entries:
            entries[key] = (flags[key], f"-D{key} in ${'/$'.join(JVM_FLAG_VARIABLES)}")
    server_id = None
    if entries.get("dataDir", ("", ""))[0]:
        myid = os.path.join(_resolve(entries["dataDir"][0], cwd), "myid")
        if os.path.isfile(myid):
            server_id = _read_myid(myid)
    return with_sasl(_build(entries, source, cwd, server_id, version), os.environ,
                     jaas_file)


def dynamic_file_version(path: str) -> int:
    """The configuration version a dynamic file's name carries: `zoo.cfg.dynamic.100000000`
    is version 0x100000000; a name without a hex suffix means 0 (ZooKeeper's rule)."""
    suffix = path.rpartition(".")[2]
    try:
        return int(suffix, 16) if suffix and suffix.isalnum() else 0
    except ValueError:
        return 0


def _dynamic_entries(path: str) -> Entries:
    """A dynamic config file holds the membership only: server.N, group.N and weight.N. Its
    version is in its name, never inside (ZooKeeper refuses both, and so do we)."""
    entries = _parse_properties(_read_text(path), path)
    for key, (_, where) in entries.items():
        if key == "version":
            raise ConfigError(f"{where}: a dynamic config file must not hold a version (the "
                              "version is the file name's suffix)")
        if not key.startswith(_DYNAMIC_PREFIXES):
            raise ConfigError(f"{where}: {key} does not belong in a dynamic config file "
                              "(only server.N, group.N and weight.N do)")
    return entries


def parse_membership(text: str, source: str
                     ) -> tuple[dict[int, ServerSpec], dict[int, frozenset[int]], dict[int, int]]:
    """A membership as a reconfig's `newMembers` or `/zookeeper/config` give it: server.N,
    group.N and weight.N lines (a `version=` line is allowed and ignored, as ZooKeeper's
    parseDynamicConfig ignores it). Raises ConfigError for anything else or a bad line."""
    entries = _parse_properties(text, source)
    for key, (_, where) in entries.items():
        if key != "version" and not key.startswith(_DYNAMIC_PREFIXES):
            raise ConfigError(f"{where}: unrecognised parameter {key}")
    r = _Reader(entries, source)
    servers = _servers(r)
    groups, weights = _hierarchy(r)
    return servers, groups, weights


def parse_server(key: str, value: str, source: str) -> ServerSpec:
    """One `server.N=` entry (a reconfig's joining server); ConfigError if it is malformed."""
    return _parse_server(key, value, source)[0]


def with_sasl(config: Config, env: Mapping[str, str], jaas_file: str | None = None) -> Config:
    """`config` with its SASL settings read: the JAAS file `jaas_file` names (else zoo.cfg's
    `jaasConfigFile`, else `-Djava.security.auth.login.config=` in the JVM flags of `env`) and
    the `-D` properties those flags set."""
    try:
        sasl = load_sasl(config.properties, env, jaas_file or config.jaas_config_file)
    except SaslConfigError as e:
        raise ConfigError(f"{config.source or '<config>'}: {e}") from e
    return attrs.evolve(config, sasl=sasl)


# --- reading files ---------------------------------------------------------------------------


def _read_text(path: str) -> str:
    """UTF-8, falling back to Latin-1: Java reads properties files as Latin-1."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _find_dynamic_file(value: str, cwd: str, config_dir: str, where: str) -> str:
    candidates = [_resolve(value, cwd)]
    if not os.path.isabs(value):
        candidates.append(_resolve(value, config_dir))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise ConfigError(f"{where}: dynamicConfigFile {value!r} not found")


def _read_myid(path: str) -> int:
    text = _read_text(path).strip(_JAVA_TRIM)
    if not _INT.match(text) or int(text) < 0:
        raise ConfigError(f"{path}: the server id must be a non-negative number, got {text!r}")
    return int(text)


def _resolve(path: str, cwd: str) -> str:
    return os.path.normpath(os.path.join(cwd, path))


# --- the Java properties format --------------------------------------------------------------

Entries = dict[str, tuple[str, str]]  # key -> (value, "file:line")


def _parse_properties(text: str, source: str) -> Entries:
    """Read `text` as java.util.Properties does, then trim keys and values like ZooKeeper.

    Later duplicates win, as in Java.
    """
    entries: Entries = {}
    for lineno, line in _logical_lines(text):
        where = f"{source}:{lineno}"
        key, value = _split_key_value(line)
        key = _unescape(key, where).strip(_JAVA_TRIM)
        entries[key] = (_unescape(value, where).strip(_JAVA_TRIM), where)
    return entries


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash-continued lines and drop comments and blank lines."""
    lines = re.split(r"\r\n|\r|\n", text)
    result: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].lstrip(_PROPERTY_BLANKS)
        i += 1
        if not line or line[0] in "#!":
            continue
        while _continues(line):
            line = line[:-1]
            if i == len(lines):
                break
            line += lines[i].lstrip(_PROPERTY_BLANKS)
            i += 1
        result.append((lineno, line))
    return result


def _continues(line: str) -> bool:
    """An odd number of trailing backslashes escapes the line break."""
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _split_key_value(line: str) -> tuple[str, str]:
    """The key ends at the first unescaped `=`, `:` or blank; one `=`/`:` may follow blanks."""
    i, n = 0, len(line)
    while i < n and line[i] not in "=:" + _PROPERTY_BLANKS:
        i += 2 if line[i] == "\\" else 1
    key = line[:i]
    while i < n and line[i] in _PROPERTY_BLANKS:
        i += 1
    if i < n and line[i] in "=:":
        i += 1
    while i < n and line[i] in _PROPERTY_BLANKS:
        i += 1
    return key, line[i:]


def _unescape(s: str, where: str) -> str:
    if "\\" not in s:
        return s
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
        elif i + 1 == len(s):
            i += 1
        elif s[i + 1] == "u":
            digits = s[i + 2 : i + 6]
            if not re.fullmatch(r"[0-9A-Fa-f]{4}", digits):
                raise ConfigError(f"{where}: malformed \\uXXXX escape")
            out.append(chr(int(digits, 16)))
            i += 6
        else:
            out.append(_ESCAPES.get(s[i + 1], s[i + 1]))
            i += 2
    return "".join(out)


# --- typed look-ups ----------------------------------------------------------------------------


@attrs.define
class _Reader:
    """Typed access to the entries; errors name file, line, key and value."""

    entries: Entries
    source: str
    warnings: list[str] = attrs.field(factory=list)

    def find(self, *keys: str) -> tuple[str, str, str] | None:
        """The first of `keys` present (bare names before `zookeeper.` ones) as key/value/where."""
        for key in keys:
            if key in self.entries:
                value, where = self.entries[key]
                return key, value, where
        return None

    def where(self, key: str) -> str:
        return self.entries[key][1] if key in self.entries else self.source

    def text(self, *keys: str, default: str | None = None) -> str | None:
        """The value, or `default` when the key is missing or empty."""
        found = self.find(*keys)
        return found[1] if found and found[1] else default

    def opt_int(self, *keys: str, bits: int = 32) -> int | None:
        """A Java int (or long, `bits=64`); junk is an error, as in ZooKeeper."""
        found = self.find(*keys)
        if found is None:
            return None
        key, value, where = found
        if not _INT.match(value):
            raise ConfigError(f"{where}: {key}={value!r} is not a whole number")
        number = int(value)
        if not -(1 << (bits - 1)) <= number < 1 << (bits - 1):
            raise ConfigError(f"{where}: {key}={value} is out of range")
        return number

    def integer(self, *keys: str, default: int, bits: int = 32) -> int:
        number = self.opt_int(*keys, bits=bits)
        return default if number is None else number

    def port(self, *keys: str) -> int | None:
        number = self.opt_int(*keys)
        if number is not None and not 0 <= number <= 65535:
            key, value, where = self.find(*keys) or ("", "", "")
            raise ConfigError(f"{where}: {key}={value} is not a port number (0-65535)")
        return number

    def flag(self, *keys: str, default: bool, strict: bool = False) -> bool:
        """true/false, yes/no, on/off, 1/0 in any case.

        Java reads most flags leniently (whatever it doesn't recognise means "off"), so a
        garbled value warns and keeps the default, unless `strict` where ZooKeeper itself
        refuses to start.
        """
        found = self.find(*keys)
        if found is None or not found[1]:
            return default
        key, value, where = found
        lowered = value.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        if strict:
            raise ConfigError(f"{where}: {key}={value!r}: expected true or false")
        self.warnings.append(f"{where}: {key}={value!r} is not true/false; using {default}")
        return default

    def host(self, *keys: str) -> str | None:
        value = self.text(*keys)
        return _unbracket(value) if value else None


def _unbracket(host: str) -> str:
    """`[::1]` -> `::1`: brackets only separate IPv6 addresses from ports."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _zk(key: str) -> tuple[str, str]:
    """A setting ZooKeeper reads as system property `zookeeper.<key>`: accept both spellings."""
    return key, f"zookeeper.{key}"


# --- server.N ----------------------------------------------------------------------------------

_SERVER_FORM = "host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort]"


def _split_host_port(text: str, where: str, key: str) -> list[str]:
    """`host:a:b` or `[v6]:a:b` -> [host, a, b]."""
    if not text.startswith("["):
        return text.split(":")
    end = text.find("]")
    rest = text[end + 1 :]
    if end < 0 or (rest and not rest.startswith(":")):
        raise ConfigError(f"{where}: {key}: bad IPv6 address in {text!r}")
    return [text[1:end], *(rest[1:].split(":") if rest else [])]


def _spec_port(text: str, where: str, key: str) -> int:
    text = text.strip(_JAVA_TRIM)
    if not _INT.match(text) or not 0 <= int(text) <= 65535:
        raise ConfigError(f"{where}: {key}: {text!r} is not a port number")
    return int(text)


def _parse_server(key: str, value: str, where: str) -> tuple[ServerSpec, bool, bool]:
    """Parse one `server.N` entry; also report whether extra addresses / a secure port were
    dropped, so the caller can warn once for all servers."""
    sid_text = key[len("server.") :]
    if not _INT.match(sid_text) or int(sid_text) < 0:
        raise ConfigError(f"{where}: {key}: the server id must be a non-negative number")
    bad = ConfigError(f"{where}: {key}={value!r}: expected {_SERVER_FORM}")
    parts = value.split(";")
    if len(parts) > 3:
        raise bad
    addresses = [a.strip(_JAVA_TRIM) for a in parts[0].split("|")]
    fields = _split_host_port(addresses[0], where, key)
    if len(fields) not in (3, 4) or not fields[0]:
        raise bad
    peer_type = fields[3].strip(_JAVA_TRIM).lower() if len(fields) == 4 else PARTICIPANT
    if peer_type not in (PARTICIPANT, OBSERVER):
        raise ConfigError(f"{where}: {key}: peer type must be participant or observer")
    quorum_port = _spec_port(fields[1], where, key)
    election_port = _spec_port(fields[2], where, key)
    if quorum_port == election_port:
        raise ConfigError(f"{where}: {key}: quorum and election ports must differ")
    for extra in addresses[1:]:
        if len(_split_host_port(extra, where, key)) not in (3, 4):
            raise bad
    client_host = client_port = None
    client = parts[1].strip(_JAVA_TRIM) if len(parts) > 1 else ""
    if client:
        client_fields = _split_host_port(client, where, key)
        if len(client_fields) > 2:
            raise bad
        client_port = _spec_port(client_fields[-1], where, key)
        client_host = (client_fields[0] or None) if len(client_fields) == 2 else None
    spec = ServerSpec(
        int(sid_text), fields[0], quorum_port, election_port, peer_type, client_host, client_port
    )
    return spec, len(addresses) > 1, len(parts) == 3 and bool(parts[2].strip(_JAVA_TRIM))


def _servers(r: _Reader) -> dict[int, ServerSpec]:
    servers: dict[int, ServerSpec] = {}
    multi: list[str] = []
    secure: list[str] = []
    for key, (value, where) in r.entries.items():
        if not key.startswith("server."):
            continue
        spec, has_more_addresses, has_secure = _parse_server(key, value, where)
        if spec.sid in servers:
            raise ConfigError(f"{where}: {key}: server id {spec.sid} is listed twice")
        servers[spec.sid] = spec
        if has_more_addresses:
            multi.append(key)
        if has_secure:
            secure.append(key)
    if multi:
        r.warnings.append(
            f"{', '.join(multi)}: several addresses per server are not supported yet; "
            "using the first address of each"
        )
    if secure:
        r.warnings.append(f"{', '.join(secure)}: secure client ports in server lines are not "
                          "supported yet (use secureClientPort); they are ignored")
    return servers


def _hierarchy(r: _Reader) -> tuple[dict[int, frozenset[int]], dict[int, int]]:
    """`group.G=sid:sid:...` and `weight.sid=W`, read as QuorumHierarchical reads them: any
    key starting with "group" or "weight" counts, and its number follows the first dot."""
    groups: dict[int, frozenset[int]] = {}
    weights: dict[int, int] = {}
    for key, (value, where) in r.entries.items():
        if not key.startswith(("group", "weight")):
            continue
        number = key.partition(".")[2]
        if not _INT.match(number) or int(number) < 0:
            raise ConfigError(f"{where}: {key}: expected group.N or weight.N with a number N")
        if key.startswith("group"):
            members = value.split(":")
            if not all(_INT.match(m.strip(_JAVA_TRIM)) for m in members):
                raise ConfigError(f"{where}: {key}={value!r}: expected server ids joined by ':'")
            sids = [int(m) for m in members]
            if len(set(sids)) != len(sids):
                raise ConfigError(f"{where}: {key}={value!r}: a server is listed twice")
            groups[int(number)] = frozenset(sids)
        else:
            if not _INT.match(value) or int(value) < 0:
                raise ConfigError(f"{where}: {key}={value!r}: a weight is a number >= 0")
            weights[int(number)] = int(value)
    return groups, weights


# --- the rest of the keys ------------------------------------------------------------------------


def _whitelist(r: _Reader, readonly: bool) -> frozenset[str]:
    found = r.find(*_zk("4lw.commands.whitelist"))
    names = {"srvr"}
    if found:
        key, value, where = found
        wanted = {name.strip(_JAVA_TRIM) for name in value.split(",")} - {""}
        if "*" in wanted:
            names |= FOUR_LETTER_WORDS
        else:
            unknown = sorted(wanted - FOUR_LETTER_WORDS)
            if unknown:
                r.warnings.append(f"{where}: {key}: unknown commands ignored: {', '.join(unknown)}")
            names |= wanted & FOUR_LETTER_WORDS
    if readonly:
        names.add("isro")
    return frozenset(names)


def _ssl(r: _Reader) -> dict[str, str]:
    """Every TLS key, raw, under its `ssl.` name (bare keys beat `zookeeper.ssl.` ones)."""
    ssl = {k[len("zookeeper.") :]: v for k, (v, _) in r.entries.items()
           if k.startswith("zookeeper.ssl.")}
    ssl.update({k: v for k, (v, _) in r.entries.items() if k.startswith("ssl.")})
    return ssl


def _class_keys_warning(entries: Entries) -> str | None:
    """Keys that plug Java classes into ZooKeeper mean nothing to a Python server."""
    ignored = []
    for key, (value, _) in entries.items():
        bare = key.removeprefix("zookeeper.")
        if _JAVA_CLASS.match(value) and (
            bare.endswith(_CLASS_KEY_SUFFIXES) or bare.startswith("authProvider.")
        ) and value.strip() != SASL_PROVIDER:
            ignored.append(f"{key}={value}")
    if not ignored:
        return None
    note = "Java class settings are ignored (zkserver has its own implementations): "
    return note + ", ".join(ignored)


def _properties(entries: Entries) -> dict[str, str]:
    """Every key as given, plus `zookeeper.<key>` for keys ZooKeeper turns into properties."""
    props = {key: value for key, (value, _) in entries.items()}
    for key, value in list(props.items()):
        if (key in _JAVA_CORE_KEYS or key.startswith(_DYNAMIC_PREFIXES)
                or key.startswith(("zookeeper.", "metricsProvider."))):
            continue
        props.setdefault(f"zookeeper.{key}", value)
    return props


def _purge_interval_hours(r: _Reader) -> int:
    """Hours, 0 = off. ZooKeeper 3.10's ms/s/m/h/d suffixes are accepted, rounded up to hours."""
    found = r.find("autopurge.purgeInterval")
    match = _DURATION.match(found[1]) if found else None
    if match is None or match[2] is None:
        return max(r.integer("autopurge.purgeInterval", default=0), 0)
    unit_ms = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[match[2]]
    return math.ceil(int(match[1]) * unit_ms / 3_600_000)


def _session_timeouts(r: _Reader, tick_time: int) -> tuple[int, int]:
    """ZooKeeper's 2 and 20 ticks unless set; -1 also means "the default"."""
    low = r.integer("minSessionTimeout", default=-1)
    high = r.integer("maxSessionTimeout", default=-1)
    low = 2 * tick_time if low < 0 else low
    high = 20 * tick_time if high < 0 else high
    if low > high:
        raise ConfigError(f"{r.source}: minSessionTimeout ({low}) is larger than "
                          f"maxSessionTimeout ({high})")
    return low, high


def _unsupported_warnings(r: _Reader) -> None:
    """Settings that load fine but that zkserver can't honour yet."""
    class_warning = _class_keys_warning(r.entries)
    if class_warning:
        r.warnings.append(class_warning)


# --- putting it together -----------------------------------------------------------------------


def _build(entries: Entries, source: str, cwd: str, server_id: int | None,
           config_version: int = 0) -> Config:
    r = _Reader(entries, source)

    tick_time = r.integer("tickTime", default=3000)
    if tick_time <= 0:
        raise ConfigError(f"{r.where('tickTime')}: tickTime must be a positive number of ms")
    data_dir_value = r.text("dataDir")
    if not data_dir_value:
        raise ConfigError(f"{source}: dataDir is not set")
    min_timeout, max_timeout = _session_timeouts(r, tick_time)
    election_alg = r.integer("electionAlg", default=3)
    if election_alg != 3:
        raise ConfigError(f"{r.where('electionAlg')}: electionAlg={election_alg}: only 3 "
                          "(fast leader election) exists")
    retain = r.integer("autopurge.snapRetainCount", default=3)
    if retain < 3:
        r.warnings.append(f"{r.where('autopurge.snapRetainCount')}: autopurge.snapRetainCount="
                          f"{retain} is below the minimum; using 3")
        retain = 3

    standalone_enabled = r.flag("standaloneEnabled", default=True, strict=True)
    extended_types = r.flag(*_zk("extendedTypesEnabled"), default=False)
    servers = _servers(r)
    groups, weights = _hierarchy(r)
    try:
        verifier_of(servers, groups, weights)
    except ValueError as e:
        raise ConfigError(f"{source}: group.N/weight.N: {e}") from None
    quorum = _is_quorum(servers, standalone_enabled)
    if server_id is None:
        if quorum:
            raise ConfigError(f"{source}: quorum mode needs this server's id in "
                              f"{os.path.join(_resolve(data_dir_value, cwd), 'myid')}")
        server_id = 1
    if extended_types and server_id > 254:
        raise ConfigError(f"{source}: server id {server_id} is above 254, which "
                          "extendedTypesEnabled=true does not allow")
    this = servers.get(server_id)

    peer_type = (r.text("peerType") or PARTICIPANT).lower()
    if peer_type not in (PARTICIPANT, OBSERVER):
        raise ConfigError(f"{r.where('peerType')}: peerType must be participant or observer")
    if this is not None and this.peer_type != peer_type:
        if "peerType" in entries:
            r.warnings.append(f"{r.where('peerType')}: peerType={peer_type} contradicts "
                              f"server.{server_id}; using {this.peer_type} from the server list")
        peer_type = this.peer_type

    client_port, client_address = _client_port(r, this)
    secure_port = r.port("secureClientPort")
    secure_address = r.host("secureClientPortAddress")
    if secure_address is not None and secure_port is None:
        raise ConfigError(f"{r.where('secureClientPortAddress')}: secureClientPortAddress is "
                          "set but secureClientPort is not")
    if not quorum and client_port is None and secure_port is None:
        raise ConfigError(f"{source}: no client port: set clientPort (or a ;port in this "
                          "server's server.N line)")

    init_limit = r.opt_int("initLimit")
    sync_limit = r.opt_int("syncLimit")
    if quorum:
        _check_quorum(r, servers, server_id, init_limit, sync_limit)

    ssl_quorum = r.flag("sslQuorum", default=False)
    _unsupported_warnings(r)
    ssl = _ssl(r)
    readonly = r.flag(*_zk("readonlymode.enabled"), default=False)
    metrics_port = r.port("metricsProvider.httpPort")
    if metrics_port is None and "Prometheus" in (r.text("metricsProvider.className") or ""):
        metrics_port = 7000  # the Prometheus provider's own default
    admin_port = r.port(*_zk("admin.serverPort"))
    dynamic = r.text("dynamicConfigFile")

    return Config(
        tick_time=tick_time,
        init_limit=init_limit,
        sync_limit=sync_limit,
        data_dir=_resolve(data_dir_value, cwd),
        data_log_dir=_resolve(r.text("dataLogDir") or data_dir_value, cwd),
        client_port=client_port,
        client_port_address=client_address,
        secure_client_port=secure_port,
        secure_client_port_address=secure_address,
        max_client_cnxns=r.integer("maxClientCnxns", default=60),
        max_cnxns=r.integer(*_zk("maxCnxns"), default=0),
        min_session_timeout=min_timeout,
        max_session_timeout=max_timeout,
        client_port_listen_backlog=r.integer("clientPortListenBacklog", default=-1),
        autopurge_snap_retain_count=retain,
        autopurge_purge_interval=_purge_interval_hours(r),
        servers=servers,
        groups=groups,
        weights=weights,
        server_id=server_id,
        peer_type=peer_type,
        standalone_enabled=standalone_enabled,
        reconfig_enabled=r.flag("reconfigEnabled", default=False, strict=True),
        dynamic_config_file=_resolve(dynamic, cwd) if dynamic else None,
        config_version=config_version,
        four_letter_whitelist=_whitelist(r, readonly),
        admin_enable_server=r.flag(*_zk("admin.enableServer"), default=True),
        admin_server_address=r.host(*_zk("admin.serverAddress")) or "0.0.0.0",
        admin_server_port=8080 if admin_port is None else admin_port,
        admin_command_url=r.text(*_zk("admin.commandURL"), default="/commands"),
        admin_console_enabled=r.flag(*_zk("admin.console.enabled"), default=True),
        admin_console_allow_remote=r.flag(*_zk("admin.console.allowRemote"), default=False),
        metrics_http_port=metrics_port,
        metrics_http_host=r.host("metricsProvider.httpHost") or "0.0.0.0",
        global_outstanding_limit=r.integer(*_zk("globalOutstandingLimit"), default=1000),
        snap_count=max(r.integer(*_zk("snapCount"), default=100000), 2),
        pre_alloc_size_kb=r.integer(*_zk("preAllocSize"), default=65536, bits=64),
        force_sync=r.flag(*_zk("forceSync"), default=True),
        thrifty_broadcast_ms=max(r.integer("thriftyBroadcastMs", default=5), 0),
        election_alg=election_alg,
        extended_types_enabled=extended_types,
        skip_acl=r.flag(*_zk("skipACL"), default=False),
        super_digest=r.text(*_zk("DigestAuthenticationProvider.superDigest")),
        readonly_mode_enabled=readonly,
        local_sessions_enabled=r.flag("localSessionsEnabled", default=False),
        sync_enabled=r.flag("syncEnabled", default=True),
        quorum_listen_on_all_ips=r.flag("quorumListenOnAllIPs", default=False),
        jute_max_buffer=r.integer(*_zk("jute.maxbuffer"), default=0xFFFFF),
        container_check_interval_ms=r.integer(
            *_zk("znode.container.checkIntervalMs"), default=60000
        ),
        container_max_per_minute=r.integer(*_zk("znode.container.maxPerMinute"), default=10000),
        container_max_never_used_interval_ms=r.integer(
            *_zk("znode.container.maxNeverUsedIntervalMs"), default=0, bits=64
        ),
        enforce_quota=r.flag(*_zk("enforceQuota"), default=False),
        ssl=ssl,
        ssl_quorum=ssl_quorum,
        ssl_quorum_reload_cert_files=r.flag("sslQuorumReloadCertFiles", default=False),
        properties=_properties(entries),
        jaas_config_file=_jaas_config_file(r, cwd),
        source=source,
        warnings=tuple(r.warnings),  # last: the look-ups above may still add warnings
    )


def _jaas_config_file(r: _Reader, cwd: str) -> str | None:
    path = r.text("jaasConfigFile")
    return _resolve(path, cwd) if path else None


def _client_port(r: _Reader, this: ServerSpec | None) -> tuple[int | None, str | None]:
    """clientPort/clientPortAddress merged with this server's `;[host:]port`, which wins.

    Like ZooKeeper, the two may repeat each other but not disagree.
    """
    port = r.port("clientPort")
    address = r.host("clientPortAddress")
    if this is not None and this.client_port is not None:
        where = r.where(f"server.{this.sid}")
        if port is not None and port != this.client_port:
            raise ConfigError(f"{where}: client port {this.client_port} of server.{this.sid} "
                              f"contradicts clientPort={port}")
        if address and this.client_host and address != this.client_host:
            raise ConfigError(f"{where}: client address {this.client_host} of server."
                              f"{this.sid} contradicts clientPortAddress={address}")
        port, address = this.client_port, this.client_host or address
    if address is not None and port is None:
        raise ConfigError(f"{r.where('clientPortAddress')}: clientPortAddress is set but no "
                          "client port is")
    return port, address


def _check_quorum(
    r: _Reader,
    servers: dict[int, ServerSpec],
    server_id: int,
    init_limit: int | None,
    sync_limit: int | None,
) -> None:
    """What ZooKeeper insists on before it will join an ensemble."""
    for key, value in (("initLimit", init_limit), ("syncLimit", sync_limit)):
        if value is None or value <= 0:
            raise ConfigError(f"{r.where(key)}: {key} must be set to a positive number of "
                              "ticks in quorum mode")
    if server_id not in servers:
        raise ConfigError(f"{r.source}: this server's id {server_id} (from myid) has no "
                          f"server.{server_id} line")
    participants = sum(1 for s in servers.values() if s.peer_type == PARTICIPANT)
    if participants == 0:
        raise ConfigError(f"{r.source}: the quorum has no participants, only observers")
    if participants == 2:
        r.warnings.append("2 participants: no server failure can be tolerated; "
                          "use at least 3")
    elif participants % 2 == 0:
        r.warnings.append(f"{participants} participants: an even number tolerates no more "
                          "failures than one fewer would")
