"""What zkcli prints and how it reads a command line, kept to zkCli.sh's (ZooKeeper 3.8) letter.

People paste zkCli.sh sessions into runbooks and scripts grep its output, so every string here
is the Java shell's own: the tokenizer is `ZooKeeperMain`'s regular expression, stats print as
`StatPrinter` does (Java's `Date.toString()` for times, `Long.toHexString` for zxids), ACL ids as
jute's CSV `toString()` (hence `'world,'anyone` and the id on its own line), and errors as
`CliWrapperException` words them. Pure functions only: no I/O, so tests can check them alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence

from zkserver.client import errors as E
from zkserver.proto.codes import Err, EventType, KeeperState, Perm
from zkserver.proto.records import ACL, Id, Stat

# `ZooKeeperMain.MyCommandOptions.ARGS_PATTERN` and `QUOTED_PATTERN`: a token is a run of
# non-blanks not starting with a quote, or a whole single- or double-quoted string.
_ARGS = re.compile(r"""\s*([^"'\s]\S*|"[^"]*"|'[^']*')\s*""")
_QUOTED = re.compile(r"""^(['"])(.*)\1$""", re.DOTALL)

MAX_TTL_MS = (1 << 40) - 1
_MASK64 = (1 << 64) - 1


def tokenize(line: str) -> list[str]:
    """Split a command line as zkCli does: blanks separate, quotes group and are stripped."""
    out = []
    for m in _ARGS.finditer(line):
        value = m.group(1)
        q = _QUOTED.match(value)
        out.append(q.group(2) if q else value)
    return out


# -- command usage --------------------------------------------------------------------------------

# name -> the option string zkCli's usage lists (`CliCommand.getOptionStr()`).
USAGE: dict[str, str] = {
    "addWatch": "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - "
                "default is PERSISTENT_RECURSIVE",
    "addauth": "scheme auth",
    "close": "",
    "config": "[-c] [-w] [-s]",
    "connect": "host:port",
    "create": "[-s] [-e] [-c] [-t ttl] path [data] [acl]",
    "delete": "[-v version] path",
    "deleteall": "path [-b batch size]",
    "get": "[-s] [-w] path",
    "getAcl": "[-s] path",
    "getAllChildrenNumber": "path",
    "getEphemerals": "path",
    "help": "",
    "history": "",
    "ls": "[-s] [-w] [-R] path",
    "printwatches": "on|off",
    "quit": "",
    "reconfig": "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3"
                "[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove "
                "serverId[,...]*]",
    "redo": "cmdno",
    "removewatches": "path [-c|-d|-a] [-l]",
    "rmr": "path [-b batch size]",
    "set": "[-s] [-v version] path data",
    "setAcl": "[-s] [-v version] [-R] path acl",
    "stat": "[-w] path",
    "sync": "path",
    "version": "",
    "whoami": "",
}
# zkCli keeps `rmr` working but leaves it out of the list it prints.
_UNLISTED = {"rmr"}


def usage_lines() -> list[str]:
    """The command summary zkCli prints for an unknown command (and we for `help`)."""
    lines = ["ZooKeeper -server host:port cmd args"]
    for name in sorted(n for n in USAGE if n not in _UNLISTED):
        lines.append(f"\t{name} {USAGE[name]}")
    return lines


def command_usage(name: str) -> str:
    """`CliCommand.getUsageStr()`: what a malformed invocation of `name` prints."""
    return f"{name} {USAGE[name]}"


# -- option parsing -------------------------------------------------------------------------------


class UsageError(Exception):
    """A command line the command cannot run: the message is what zkCli prints for it."""


def parse_options(args: Sequence[str], flags: str = "", valued: str = "",
                  ) -> tuple[list[str], dict[str, str | bool]]:
    """Split `args` (command name first) into positionals and options, the way commons-cli's
    parsers do for zkCli: options may come anywhere, `-se` is `-s -e`, a valued option takes
    the rest of its token or the next one (even `-5`), and `--` ends the options.

    Returns (positionals with the command name first, {option letter: value or True})."""
    positional: list[str] = [args[0]]
    opts: dict[str, str | bool] = {}
    i = 1
    while i < len(args):
        tok = args[i]
        i += 1
        if tok == "--":
            positional.extend(args[i:])
            break
        if len(tok) < 2 or tok[0] != "-" or _is_number(tok):
            positional.append(tok)
            continue
        letters = tok[1:]
        for j, ch in enumerate(letters):
            if ch in flags:
                opts[ch] = True
            elif ch in valued:
                rest = letters[j + 1:]
                if rest:
                    opts[ch] = rest
                elif i < len(args):
                    opts[ch] = args[i]
                    i += 1
                else:
                    raise UsageError(f"Missing argument for option: {ch}")
                break
            else:
                raise UsageError(f"Unrecognized option: {tok}")
    return positional, opts


class ReconfigArgs:
    """What `reconfig`'s command line asks for (`ReconfigCommand.parse`)."""

    def __init__(self, joining: str | None, leaving: str | None, members: str | None,
                 version: int, file: str | None, stats: bool) -> None:
        self.joining = joining
        self.leaving = leaving
        self.members = members
        self.version = version
        self.file = file
        self.stats = stats


# reconfig's options are words after one dash (`-add`), as commons-cli allows.
_RECONFIG_VALUED = ("v", "file", "members", "add", "remove")


def parse_reconfig(args: Sequence[str]) -> ReconfigArgs:
    """`reconfig`'s options, checked as zkCli checks them. A repeated option keeps its first
    value (commons-cli's `getOptionValue`); server specs and ids are lower-cased, as zkCli does
    before sending. `-v` is the configuration version in hex, as `config` prints it. `-file`
    is returned unread (the command reads it)."""
    if len(args) < 2:
        raise UsageError(command_usage("reconfig"))
    values: dict[str, str] = {}
    stats = False
    i = 1
    while i < len(args):
        tok = args[i]
        i += 1
        if tok == "-s":
            stats = True
        elif tok.startswith("-") and tok[1:] in _RECONFIG_VALUED:
            if i >= len(args):
                raise UsageError(f"Missing argument for option: {tok[1:]}")
            values.setdefault(tok[1:], args[i])
            i += 1
        elif tok.startswith("-") and len(tok) > 1:
            raise UsageError(f"Unrecognized option: {tok}")
    if not any(k in values for k in ("file", "members", "add", "remove")):
        raise UsageError(command_usage("reconfig"))
    version = -1
    if "v" in values:
        try:
            version = int(values["v"], 16)
        except ValueError:
            raise UsageError("-v must be followed by a long (configuration version)") from None
    incremental = "add" in values or "remove" in values
    if ("file" in values or "members" in values) and incremental:
        raise UsageError("Can't use -file or -members together with -add or -remove (mixing "
                         "incremental and non-incremental modes is not allowed)")
    if "file" in values and "members" in values:
        raise UsageError("Can't use -file and -members together (conflicting non-incremental "
                         "modes)")
    lower = {k: v.lower() for k, v in values.items() if k in ("add", "remove", "members")}
    return ReconfigArgs(lower.get("add"), lower.get("remove"), lower.get("members"), version,
                        values.get("file"), stats)


def members_from_file(text: str) -> str:
    """`reconfig -file`: the membership lines of a dynamic config file (`server.N=`, `group.N=`,
    `weight.N=`), one per line, as the new member list. The leader checks them again."""
    keep = []
    for key, value in java_properties(text):
        if key.startswith(("server.", "group.", "weight.")):
            keep.append(f"{key}={value}")
    if not any(k.startswith("server.") for k in keep):
        raise ValueError("no server.N entries")
    return "\n".join(keep)


def java_properties(text: str) -> list[tuple[str, str]]:
    """`java.util.Properties.load`'s key=value pairs, in file order (last one wins for a
    repeated key): comments, blank lines, `=`/`:`/blank separators and line continuations."""
    entries: dict[str, str] = {}
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip(" \t\f")
        if not pending and (not line or line[0] in "#!"):
            continue
        if line.endswith("\\") and (len(line) - len(line.rstrip("\\"))) % 2 == 1:
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    for line in logical:
        m = re.match(r"((?:[^=:\s\\]|\\.)*)\s*[=:]?\s*(.*)$", line)
        if m is None:
            continue
        entries[m.group(1).replace("\\", "")] = m.group(2)
    return list(entries.items())


def _java_hash(s: str) -> int:
    """`String.hashCode` (over UTF-16 units), as an unsigned 32-bit value."""
    units = s.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h


def java_properties_order(keys: Sequence[str]) -> list[str]:
    """The order a Java 17 `Properties` (a ConcurrentHashMap, 16 bins to start, doubled when
    three quarters full) iterates `keys` loaded in that order: by bin, then insertion."""
    size = 16
    while len(keys) >= size - (size >> 2):
        size *= 2

    def bin_of(key: str) -> int:
        h = _java_hash(key)
        return ((h ^ (h >> 16)) & 0x7FFFFFFF) & (size - 1)

    return sorted(keys, key=lambda k: (bin_of(k), keys.index(k)))


def client_config(data: str) -> str:
    """`config -c` (`ConfigUtils.getClientConfigStr`): the version, a blank, and the servers'
    client addresses separated by commas, in the order Java's Properties lists the servers."""
    entries = dict(java_properties(data))
    version = entries.get("version", "").strip()
    addresses = []
    for key in java_properties_order(list(entries)):
        if not key.strip().startswith("server."):
            continue
        value = entries[key].strip()
        if ";" not in value:
            addresses.append("")
            continue
        client = value.split(";", 1)[1].strip()
        host, _, port = client.rpartition(":")
        addresses.append(f"{host or '0.0.0.0'}:{port}")
    return f"{version} {','.join(addresses)}"


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def int_option(value: str | bool, option: str, kind: str = "an int") -> int:
    """An option's integer value (Java's `Integer.decode` spellings are not needed here)."""
    try:
        return int(str(value))
    except ValueError:
        raise UsageError(f"-{option} argument must be {kind} value") from None


# -- paths ----------------------------------------------------------------------------------------


def path_error(path: str, sequential: bool = False) -> str | None:
    """`PathUtils.validatePath`'s message for a path the Java client refuses, or None.

    Positions count UTF-16 units, as Java's do; a character beyond the BMP is a surrogate there,
    and surrogates are refused."""
    if sequential:
        path += "1"
    if not path:
        return "Path length must be > 0"
    if path[0] != "/":
        return "Path must start with / character"
    if len(path) == 1:
        return None
    if path[-1] == "/":
        return "Path must not end with / character"
    units: list[str] = []
    for ch in path:
        if ord(ch) > 0xFFFF:
            units.extend(("\ud800", "\udc00"))
        else:
            units.append(ch)
    reason = None
    last = "/"
    for i in range(1, len(units)):
        c = units[i]
        nxt_is_end = i + 1 == len(units) or units[i + 1] == "/"
        if c == "\0":
            reason = f"null character not allowed @{i}"
        elif c == "/" and last == "/":
            reason = f"empty node name specified @{i}"
        elif c == "." and last == ".":
            if units[i - 2] == "/" and nxt_is_end:
                reason = f"relative paths not allowed @{i}"
        elif c == ".":
            if units[i - 1] == "/" and nxt_is_end:
                reason = f"relative paths not allowed @{i}"
        elif ("\x00" < c <= "\x1f" or "\x7f" <= c <= "\x9f" or "\ud800" <= c <= "\uf8ff"
              or "\ufff0" <= c <= "\uffff"):
            reason = f"invalid character @{i}"
        if reason:
            return f'Invalid path string "{path}" caused by {reason}'
        last = c
    return None


def child_path(parent: str, child: str) -> str:
    return ("" if parent == "/" else parent) + "/" + child


# -- stats, ACLs, events --------------------------------------------------------------------------


def java_date(ms: int) -> str:
    """`new java.util.Date(ms).toString()`: `Thu Jan 01 00:00:00 UTC 1970`, in local time."""
    try:
        return time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(ms / 1000))
    except (OverflowError, OSError, ValueError):
        return str(ms)


def java_hex(value: int) -> str:
    """`Long.toHexString`: negative values as their 64-bit two's complement."""
    return f"{value & _MASK64:x}"


def stat_lines(stat: Stat) -> list[str]:
    """`StatPrinter.print`."""
    return [
        f"cZxid = 0x{java_hex(stat.czxid)}",
        f"ctime = {java_date(stat.ctime)}",
        f"mZxid = 0x{java_hex(stat.mzxid)}",
        f"mtime = {java_date(stat.mtime)}",
        f"pZxid = 0x{java_hex(stat.pzxid)}",
        f"cversion = {stat.cversion}",
        f"dataVersion = {stat.version}",
        f"aclVersion = {stat.aversion}",
        f"ephemeralOwner = 0x{java_hex(stat.ephemeralOwner)}",
        f"dataLength = {stat.dataLength}",
        f"numChildren = {stat.numChildren}",
    ]


_PERM_LETTERS = (("c", Perm.CREATE), ("d", Perm.DELETE), ("r", Perm.READ), ("w", Perm.WRITE),
                 ("a", Perm.ADMIN))


def perm_string(perms: int) -> str:
    return "".join(letter for letter, bit in _PERM_LETTERS if perms & bit)


def _csv(text: str | None) -> str:
    """jute's `Utils.toCSVString`: a quote, then the text with a few characters %-escaped."""
    if text is None:
        return ""
    escaped = (text.replace("%", "%25").replace("\0", "%00").replace("\n", "%0A")
               .replace("\r", "%0D").replace(",", "%2C").replace("}", "%7D"))
    return "'" + escaped


def acl_lines(acl: Iterable[ACL]) -> list[str]:
    """getAcl's output: jute prints an Id as `'scheme,'id` and a newline, then `: perms`."""
    out = []
    for a in acl:
        out.append(f"{_csv(a.id.scheme)},{_csv(a.id.id)}")
        out.append(f": {perm_string(a.perms)}")
    return out


def parse_acl(text: str) -> tuple[list[ACL], list[str]]:
    """`AclParser.parse`: comma-separated `scheme:id:perms`. Returns the ACL and the warnings
    zkCli prints on stderr for malformed entries (which it skips) and unknown letters (which it
    ignores)."""
    acl: list[ACL] = []
    warnings: list[str] = []
    for item in text.split(","):
        first, last = item.find(":"), item.rfind(":")
        if first == -1 or first == last:
            warnings.append(f"{item} does not have the form scheme:id:perm")
            continue
        perms = 0
        for ch in item[last + 1:]:
            bit = dict(_PERM_LETTERS).get(ch)
            if bit is None:
                warnings.append(f"Unknown perm type: {ch}")
            else:
                perms |= bit
        acl.append(ACL(perms, Id(item[:first], item[first + 1:last])))
    return acl, warnings


_EVENT_NAMES = {
    EventType.NONE: "None",
    EventType.NODE_CREATED: "NodeCreated",
    EventType.NODE_DELETED: "NodeDeleted",
    EventType.NODE_DATA_CHANGED: "NodeDataChanged",
    EventType.NODE_CHILDREN_CHANGED: "NodeChildrenChanged",
    EventType.DATA_WATCH_REMOVED: "DataWatchRemoved",
    EventType.CHILD_WATCH_REMOVED: "ChildWatchRemoved",
    EventType.PERSISTENT_WATCH_REMOVED: "PersistentWatchRemoved",
}
_STATE_NAMES = {
    KeeperState.DISCONNECTED: "Disconnected",
    KeeperState.SYNC_CONNECTED: "SyncConnected",
    KeeperState.AUTH_FAILED: "AuthFailed",
    KeeperState.CONNECTED_READ_ONLY: "ConnectedReadOnly",
    KeeperState.CLOSED: "Closed",
    KeeperState.EXPIRED: "Expired",
}


def event_lines(etype: int, state: int, path: str | None) -> list[str]:
    """What zkCli's default watcher prints: `printMessage` puts a blank line before each line."""
    try:
        ename = _EVENT_NAMES[EventType(etype)]
    except (ValueError, KeyError):
        ename = "Unknown"
    try:
        sname = _STATE_NAMES[KeeperState(state)]
    except (ValueError, KeyError):
        sname = "Unknown"
    return ["", "WATCHER::", "",
            f"WatchedEvent state:{sname} type:{ename} path:{path if path is not None else 'null'}"]


# -- errors ---------------------------------------------------------------------------------------

# `KeeperException.getCodeMessage`.
_CODE_MESSAGES = {
    Err.OK: "ok",
    Err.SYSTEMERROR: "SystemError",
    Err.RUNTIMEINCONSISTENCY: "RuntimeInconsistency",
    Err.DATAINCONSISTENCY: "DataInconsistency",
    Err.CONNECTIONLOSS: "ConnectionLoss",
    Err.MARSHALLINGERROR: "MarshallingError",
    Err.NEWCONFIGNOQUORUM: "NewConfigNoQuorum",
    Err.RECONFIGINPROGRESS: "ReconfigInProgress",
    Err.UNIMPLEMENTED: "Unimplemented",
    Err.OPERATIONTIMEOUT: "OperationTimeout",
    Err.BADARGUMENTS: "BadArguments",
    Err.APIERROR: "APIError",
    Err.NONODE: "NoNode",
    Err.NOAUTH: "NoAuth",
    Err.BADVERSION: "BadVersion",
    Err.NOCHILDRENFOREPHEMERALS: "NoChildrenForEphemerals",
    Err.NODEEXISTS: "NodeExists",
    Err.INVALIDACL: "InvalidACL",
    Err.AUTHFAILED: "AuthFailed",
    Err.NOTEMPTY: "Directory not empty",
    Err.SESSIONEXPIRED: "Session expired",
    Err.INVALIDCALLBACK: "Invalid callback",
    Err.SESSIONMOVED: "Session moved",
    Err.NOTREADONLY: "Not a read-only call",
    Err.EPHEMERALONLOCALSESSION: "Ephemeral node on local session",
    Err.NOWATCHER: "No such watcher",
    Err.RECONFIGDISABLED: "Reconfig is disabled",
    Err.SESSIONCLOSEDREQUIRESASLAUTH: "Session closed because client failed to authenticate",
    Err.QUOTAEXCEEDED: "Quota has exceeded",
    Err.THROTTLEDOP: "Op throttled due to high load",
}


def error_code(error: E.ZooKeeperError) -> int:
    return int(getattr(error, "code", Err.SYSTEMERROR))


def keeper_message(error: E.ZooKeeperError, path: str | None = None) -> str:
    """`KeeperException.getMessage()`: `KeeperErrorCode = NoAuth for /x`."""
    path = path if path is not None else error.path
    text = _CODE_MESSAGES.get(error_code(error), "Unknown error")
    return f"KeeperErrorCode = {text}" + (f" for {path}" if path else "")


# `CliWrapperException.getMessage`: the conditions zkCli words itself.
_CLI_MESSAGES: dict[type[E.ZooKeeperError], str] = {
    E.NoNodeError: "Node does not exist: {}",
    E.NoChildrenForEphemeralsError: "Ephemerals cannot have children: {}",
    E.NodeExistsError: "Node already exists: {}",
    E.NotEmptyError: "Node not empty: {}",
    E.NotReadOnlyError: "Not a read-only call: {}",
    E.InvalidACLError: "Acl is not valid : {}",
    E.NoAuthError: "Insufficient permission : {}",
    E.BadArgumentsError: "Arguments are not valid : {}",
    E.BadVersionError: "version No is not valid : {}",
    E.QuotaExceededError: "Quota has exceeded : {}",
}


def cli_message(error: E.ZooKeeperError, path: str | None = None) -> str:
    """The line zkCli prints when a command fails with `error`."""
    path = path if path is not None else error.path
    for cls, template in _CLI_MESSAGES.items():
        if isinstance(error, cls):
            return template.format(path if path is not None else "null")
    return keeper_message(error, path)
