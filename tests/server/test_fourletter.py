"""Four-letter words, compared with Apache ZooKeeper's answers for the same state.

One zkserver and one real ZooKeeper are started for the module and given the same state: one
kazoo session holding an ephemeral node, two data watches and a child watch. Every 4lw is then
asked of both and the answers compared by *shape*: numbers, hex ids, dates, addresses and the
version string are masked, everything else (keys, line prefixes, separators, line structure)
must match. Where the order of lines is unspecified in ZooKeeper (hash sets) the lines are
compared as sorted sets.
"""

from __future__ import annotations

import re
import socket
import struct
import time

import pytest
from kazoo.client import KazooClient
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port
from support.wire import four_letter

ALL_WORDS = ["ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "wchs", "wchc",
             "wchp", "dump", "envi", "isro", "dirs", "gtmk", "stmk"]

# The mntr keys the protocol reference lists as what monitoring tools expect.
MNTR_REQUIRED = [
    "version", "server_state", "avg_latency", "max_latency", "min_latency", "packets_received",
    "packets_sent", "num_alive_connections", "outstanding_requests", "uptime", "znode_count",
    "watch_count", "ephemerals_count", "approximate_data_size", "global_sessions",
    "local_sessions", "open_file_descriptor_count", "max_file_descriptor_count",
    "connection_drop_probability", "last_client_response_size", "min_client_response_size",
    "max_client_response_size", "outstanding_tls_handshake", "auth_failed_count",
]
# mntr values that describe the (identical) state of both servers, so must be equal.
MNTR_STATE_KEYS = ["server_state", "znode_count", "ephemerals_count", "watch_count",
                   "outstanding_requests", "global_sessions", "local_sessions",
                   "approximate_data_size"]


class Side:
    def __init__(self, server) -> None:
        self.server = server
        self.port = server.port
        self.zk = kazoo_client(server.hosts)
        self.session_hex = f"0x{self.zk.client_id[0]:x}"

    def ask(self, word: str | bytes) -> str:
        return four_letter(self.port, word)


def _same_state(zk: KazooClient) -> None:
    zk.create("/fl", b"hello")
    zk.create("/fl/eph", b"e", ephemeral=True)
    zk.create("/fl/plain", b"")
    zk.get("/fl", watch=lambda e: None)  # data watch
    zk.exists("/fl/missing", watch=lambda e: None)  # data watch on a missing node
    zk.get_children("/fl", watch=lambda e: None)  # child watch (not in wchs/wchc/wchp)


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    base = tmp_path_factory.mktemp("fourletter")
    ours_server = ZkServerProcess(base / "zks", free_port())
    real_server = RealZooKeeper(base / "real", free_port())
    ours_server.start()
    try:
        real_server.start()
    except Exception:
        ours_server.kill()
        raise
    try:
        ours, real = Side(ours_server), Side(real_server)
        for side in (ours, real):
            _same_state(side.zk)
        yield ours, real
    finally:
        for side in locals().get("ours"), locals().get("real"):
            if side is not None:
                stop_kazoo(side.zk)
        ours_server.kill()
        real_server.stop()


_VERSION = re.compile(r"\d+\.\d+\.\d+-\S+, built on \d{4}-\d\d-\d\d \d\d:\d\d UTC")
_DATE = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [A-Z]{2,5} \d{4}")
_ADDR = re.compile(r"/\d{1,3}(\.\d{1,3}){3}:\d+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_NUM = re.compile(r"-?\d+(\.\d+)?([eE]-?\d+)?")


def shape(line: str) -> str:
    line = _VERSION.sub("<version>", line)
    line = _DATE.sub("<date>", line)
    line = _ADDR.sub("/<ip>:<port>", line)
    line = _HEX.sub("0x<hex>", line)
    return _NUM.sub("<n>", line)


def shapes(text: str, *, ordered: bool = True, drop: re.Pattern | None = None) -> list[str]:
    """The masked lines; unordered: the distinct masked lines, sorted (how many connections
    a list shows at a given moment is timing, the shape of each line is not)."""
    lines = [shape(line) for line in text.split("\n") if not (drop and drop.search(line))]
    return lines if ordered else sorted(set(lines))


def _assert_same_shape(word: str, ours: str, theirs: str, **kw) -> None:
    got, want = shapes(ours, **kw), shapes(theirs, **kw)
    assert got == want, (f"`{word}` differs from ZooKeeper's\n--- zkserver:\n{ours}\n"
                         f"--- ZooKeeper:\n{theirs}")


# -- the words ------------------------------------------------------------------------------------

def test_ruok_and_isro(sides):
    ours, real = sides
    for word in ("ruok", "isro"):
        assert ours.ask(word) == real.ask(word)
    assert ours.ask("ruok") == "imok"
    assert ours.ask("isro") == "rw"


@pytest.mark.parametrize("word", ["srvr", "wchs", "dirs", "crst", "srst"])
def test_simple_words_same_shape(sides, word):
    ours, real = sides
    _assert_same_shape(word, ours.ask(word), real.ask(word))


def test_srvr_values(sides):
    ours, real = sides
    text = ours.ask("srvr")
    assert text.startswith("Zookeeper version: ")
    assert "\nMode: standalone\n" in text
    nodes = {side: re.search(r"^Node count: (\d+)$", side.ask("srvr"), re.M).group(1)
             for side in (ours, real)}
    assert nodes[ours] == nodes[real]


def test_stat_same_shape(sides):
    """Connection lines come in hash order in ZooKeeper: compare sorted."""
    ours, real = sides
    _assert_same_shape("stat", ours.ask("stat"), real.ask("stat"), ordered=False)


def test_cons_same_shape(sides):
    ours, real = sides
    for side in (ours, real):
        side.zk.exists("/fl")  # a request since any earlier crst: lcxid is known
    _assert_same_shape("cons", ours.ask("cons"), real.ask("cons"), ordered=False)
    assert f"sid={ours.session_hex}," in ours.ask("cons")


def test_cons_after_crst_same_shape(sides):
    """Right after crst a connection has no last cxid; ZooKeeper then leaves lcxid out."""
    ours, real = sides
    for side in (ours, real):
        assert side.ask("crst") == "Connection stats reset.\n"
    _assert_same_shape("cons", ours.ask("cons"), real.ask("cons"), ordered=False)


def test_wchc_wchp(sides):
    ours, real = sides
    for word in ("wchc", "wchp"):
        _assert_same_shape(word, ours.ask(word), real.ask(word), ordered=False)
    assert ours.ask("wchc") == f"{ours.session_hex}\n\t/fl\n\t/fl/missing\n\n" or \
        ours.ask("wchc") == f"{ours.session_hex}\n\t/fl/missing\n\t/fl\n\n"
    wchp = ours.ask("wchp")
    assert f"/fl\n\t{ours.session_hex}\n" in wchp and f"/fl/missing\n\t{ours.session_hex}\n" in wchp
    assert ours.ask("wchs") == "1 connections watching 2 paths\nTotal watches:2\n"


def test_dump(sides):
    """Expiry buckets ("N expire at <date>:") depend on timing; the rest must match."""
    ours, real = sides
    buckets = re.compile(r"^\d+ expire at .*:$")
    _assert_same_shape("dump", ours.ask("dump"), real.ask("dump"), ordered=False, drop=buckets)
    text = ours.ask("dump")
    assert f"Sessions with Ephemerals (1):\n{ours.session_hex}:\n\t/fl/eph\n" in text


def test_conf_same_keys(sides):
    ours, real = sides
    mine, theirs = _key_values(ours.ask("conf"), "="), _key_values(real.ask("conf"), "=")
    assert list(mine) == list(theirs)
    assert mine["clientPort"] == str(ours.port)
    diffs = {key: (mine[key], theirs[key])
             for key in ("tickTime", "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout",
                         "clientPortListenBacklog", "secureClientPort", "serverId")
             if mine[key] != theirs[key]}
    assert not diffs, f"conf values differ for the same zoo.cfg (zkserver, ZooKeeper): {diffs}"


def test_envi_same_keys(sides):
    ours, real = sides
    text = ours.ask("envi")
    assert text.startswith("Environment:\n")
    mine = _key_values(text.split("\n", 1)[1], "=")
    theirs = _key_values(real.ask("envi").split("\n", 1)[1], "=")
    assert list(mine) == list(theirs)


def _mntr(side) -> dict[str, str]:
    return _key_values(side.ask("mntr"), "\t")


def test_mntr_format(sides):
    ours, _ = sides
    text = ours.ask("mntr")
    assert text.endswith("\n")
    for line in text.rstrip("\n").split("\n"):
        assert re.fullmatch(r"zk_[a-z0-9_]+\t\S.*", line), f"bad mntr line {line!r}"
    assert text.startswith("zk_version\t")


def test_mntr_has_the_keys_monitoring_tools_expect(sides):
    ours, _ = sides
    mine = _mntr(ours)
    missing = [k for k in MNTR_REQUIRED if f"zk_{k}" not in mine]
    assert not missing, f"mntr lacks keys monitoring tools expect: {missing}"


def test_mntr_keys_and_value_types_are_zookeepers(sides):
    ours, real = sides
    mine, theirs = _mntr(ours), _mntr(real)
    unknown = [k for k in mine if k not in theirs]
    assert not unknown, f"mntr keys ZooKeeper does not have: {unknown}"
    kinds = {k: (v, theirs[k]) for k, v in mine.items() if _kind(v) != _kind(theirs[k])}
    assert not kinds, f"value types differ (zkserver, ZooKeeper): {kinds}"


def test_mntr_values_for_the_same_state(sides):
    ours, real = sides
    mine, theirs = _mntr(ours), _mntr(real)
    diffs = {k: (mine.get(f"zk_{k}"), theirs.get(f"zk_{k}")) for k in MNTR_STATE_KEYS
             if mine.get(f"zk_{k}") != theirs.get(f"zk_{k}")}
    assert not diffs, f"mntr values differ for the same state (zkserver, ZooKeeper): {diffs}"


def test_gtmk_stmk(sides):
    ours, real = sides
    assert re.fullmatch(r"\d+", ours.ask("gtmk"))  # decimal, no newline
    for side in (ours, real):
        assert side.ask(b"stmk" + struct.pack(">q", 0x152)) == "338"
        assert side.ask("gtmk") == "338"


def test_stmk_in_pieces(sides):
    """stmk's 8-byte argument may arrive in several TCP segments."""
    ours, _ = sides
    with socket.create_connection(("127.0.0.1", ours.port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"stmk")
        s.sendall(struct.pack(">q", 306)[:3])
        time.sleep(0.05)  # a pause between the pieces, not a wait for output
        s.sendall(struct.pack(">q", 306)[3:])
        data = b""
        while chunk := s.recv(100):
            data += chunk
    assert data == b"306"


def test_every_word_is_answered(sides):
    ours, _ = sides
    for word in ALL_WORDS:
        arg = struct.pack(">q", 306) if word == "stmk" else b""
        assert ours.ask(word.encode() + arg) != "", word


# -- the whitelist --------------------------------------------------------------------------------

REFUSED = "{} is not executed because it is not in the whitelist.\n"


@pytest.mark.parametrize("kind", ["zkserver", "zookeeper"])
def test_whitelist_srvr_only(tmp_path, kind):
    extra = ["4lw.commands.whitelist=srvr"]
    server = (ZkServerProcess(tmp_path / "zks", free_port(), extra=extra) if kind == "zkserver"
              else RealZooKeeper(tmp_path / "real", free_port(), extra=extra))
    with server:
        assert four_letter(server.port, "ruok") == REFUSED.format("ruok")
        assert four_letter(server.port, "stat") == REFUSED.format("stat")
        assert four_letter(server.port, "mntr") == REFUSED.format("mntr")
        assert "Mode: standalone" in four_letter(server.port, "srvr")


def test_whitelist_without_srvr_still_allows_srvr(tmp_path):
    with ZkServerProcess(tmp_path / "zks", free_port(),
                         extra=["4lw.commands.whitelist=ruok, mntr"]) as server:
        assert four_letter(server.port, "ruok") == "imok"
        assert four_letter(server.port, "mntr").startswith("zk_version\t")
        assert "Mode: standalone" in four_letter(server.port, "srvr")
        assert four_letter(server.port, "conf") == REFUSED.format("conf")


def test_default_whitelist_is_srvr_only(tmp_path):
    """A zoo.cfg without 4lw.commands.whitelist: ZooKeeper's default allows only srvr."""
    server = ZkServerProcess(tmp_path / "zks", free_port())
    data = tmp_path / "zks" / "data"
    data.mkdir(parents=True)
    server.config_path.write_text(f"tickTime=2000\ndataDir={data}\nclientPort={server.port}\n"
                                  "clientPortAddress=127.0.0.1\n")
    with server:
        assert four_letter(server.port, "ruok") == REFUSED.format("ruok")
        assert four_letter(server.port, "envi") == REFUSED.format("envi")
        assert "Mode: standalone" in four_letter(server.port, "srvr")


# -- helpers --------------------------------------------------------------------------------------

def _key_values(text: str, sep: str) -> dict[str, str]:
    out = {}
    for line in text.split("\n"):
        if line:
            key, _, value = line.partition(sep)
            out[key] = value
    return out


def _kind(value: str) -> str:
    if re.fullmatch(r"-?\d+", value):
        return "int"
    if re.fullmatch(r"-?\d+\.\d+([eE]-?\d+)?", value):
        return "double"
    return "text"
