"""The AdminServer's /commands and the Prometheus /metrics endpoint, over real HTTP.

A zkserver and an Apache ZooKeeper (3.8, Debian's package: its AdminServer is Jetty) are given
the same state (a kazoo session with an ephemeral node and data watches) and every command is
asked of both with urllib: the JSON must have ZooKeeper's shape (the same keys, nested objects
included), and the values that describe the shared state must be equal. /metrics is scraped and
parsed as Prometheus reads its text format.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from support import realzk
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerProcess, side_by_side
from support.realzk import RealZooKeeper, free_port
from support.wire import four_letter

from zkserver.server.admin import PRIMARY_NAMES, jackson
from zkserver.server.metrics import java_double


class Side:
    def __init__(self, server: Any, admin_port: int) -> None:
        self.server = server
        self.admin = f"http://127.0.0.1:{admin_port}"
        self.zk = kazoo_client(server.hosts)
        self.sid = self.zk.client_id[0]
        self.zk.create("/adm", b"hello")
        self.zk.create("/adm/eph", b"e", ephemeral=True)
        self.zk.get("/adm", watch=lambda e: None)
        self.zk.exists("/adm/missing", watch=lambda e: None)

    def get(self, name: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.admin}/commands/{name}", timeout=10) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("application/json")
            return json.loads(r.read())

    def text(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.admin}{path}", timeout=10) as r:
            return r.read().decode()


@pytest.fixture(scope="module")
def sides(tmp_path_factory: Any) -> Iterator[tuple[Side, Side, int]]:
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed (apt-get install zookeeper)")
    base = tmp_path_factory.mktemp("admin")
    ours_admin, real_admin, metrics = free_port(), free_port(), free_port()
    admin = ["admin.enableServer=true", "admin.serverAddress=127.0.0.1"]
    ours = ZkServerProcess(base / "zks", free_port(), extra=[
        *admin, f"admin.serverPort={ours_admin}", f"metricsProvider.httpPort={metrics}",
        "metricsProvider.httpHost=127.0.0.1"])
    real = RealZooKeeper(base / "real", free_port(), extra=[*admin,
                                                             f"admin.serverPort={real_admin}"])
    with side_by_side(ours, real):
        a = b = None
        try:
            a, b = Side(ours, ours_admin), Side(real, real_admin)
            yield a, b, metrics
        finally:
            for side in (a, b):
                if side is not None:
                    stop_kazoo(side.zk)


def _links(html: str) -> list[str]:
    return re.findall(r'<a href="/commands/([a-z_]+)">\1</a>', html)


def test_command_list_is_zookeepers(sides: Any) -> None:
    ours, real, _ = sides
    assert _links(ours.text("/commands")) == sorted(PRIMARY_NAMES)
    # 3.9's snapshot and restore are there (tests/server/test_admin_snapshot.py); Debian's
    # 3.8 does not list them.
    theirs = set(_links(real.text("/commands")))
    if realzk.version().startswith("3.8"):
        theirs |= {"snapshot", "restore"}
    assert set(_links(ours.text("/commands"))) == theirs


def _shape(value: Any) -> Any:
    """Keys all the way down (lists: the shape of their first element)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__ if value is None or isinstance(value, bool) else "value"


# Commands whose whole JSON shape must equal ZooKeeper's. Maps keyed by session id or path
# (dump, wchc, wchp) are compared on their values below instead.
SAME_SHAPE = ["ruok", "srvr", "server_stats", "stat", "stats", "cons", "connections", "conf",
              "configuration", "config", "dirs", "isro", "is_read_only", "lead", "leader",
              "wchs", "watch_summary", "crst", "srst", "hash", "gtmk", "get_trace_mask",
              "lsnp", "icfg", "voting_view", "zabstate", "obsr", "orst", "envi", "env",
              "environment", "nope"]


@pytest.mark.parametrize("name", SAME_SHAPE)
def test_json_shaped_like_zookeeper(sides: Any, name: str) -> None:
    ours, real, _ = sides
    mine, theirs = ours.get(name), real.get(name)
    assert _shape(mine) == _shape(theirs)
    assert list(mine) == list(theirs)  # the same order of keys, "command"/"error" last
    assert mine["command"] == theirs["command"]
    assert mine["error"] == theirs["error"]


def test_monitor_keys_are_zookeepers(sides: Any) -> None:
    ours, real, _ = sides
    mine, theirs = ours.get("monitor"), real.get("mntr")
    assert mine["command"] == "monitor" and mine["error"] is None
    assert set(mine) <= set(theirs), set(mine) - set(theirs)
    for key in ("znode_count", "ephemerals_count", "watch_count", "global_sessions",
                "approximate_data_size", "outstanding_requests", "server_state"):
        assert mine[key] == theirs[key], key
    mntr = dict(line.split("\t", 1) for line in four_letter(ours.server.port, "mntr")
                .splitlines())
    assert str(mine["znode_count"]) == mntr["zk_znode_count"]


def test_state_values_match(sides: Any) -> None:
    ours, real, _ = sides
    for side in (ours, real):
        wchs = side.get("wchs")
        assert (wchs["num_connections"], wchs["num_paths"], wchs["num_total_watches"]) \
            == (1, 2, 2)
        wchc = side.get("wchc")["session_id_to_watched_paths"]
        assert {k: sorted(v) for k, v in wchc.items()} == {
            str(side.sid): ["/adm", "/adm/missing"]}  # ZooKeeper's order is a HashSet's
        assert side.get("wchp")["path_to_session_ids"] == {
            "/adm": [side.sid], "/adm/missing": [side.sid]}
        dump = side.get("dump")
        assert dump["session_id_to_ephemeral_paths"] == {str(side.sid): ["/adm/eph"]}
        assert [side.sid] in dump["expiry_time_to_session_ids"].values()
        assert side.get("isro")["read_only"] is False
        assert side.get("lead")["error"] == "server is not initialized"
        cons = side.get("cons")
        assert [c["session_id"] for c in cons["connections"]] == [side.sid]
        assert cons["secure_connections"] == []
        assert side.get("srvr")["server_stats"]["server_state"] == "standalone"
        assert side.get("nope")["error"] == "Unknown command: nope"


def test_trace_mask_and_resets(sides: Any) -> None:
    ours, _, _ = sides
    assert ours.get("gtmk")["tracemask"] == 306
    assert ours.get("stmk")["error"] == "setTraceMask requires long traceMask argument"
    assert ours.get("stmk?traceMask=5")["tracemask"] == 5
    assert ours.get("get_trace_mask")["tracemask"] == 5
    ours.zk.get("/adm")
    assert ours.get("srvr")["server_stats"]["packets_received"] > 0
    assert ours.get("srst")["error"] is None
    assert ours.get("srvr")["server_stats"]["packets_received"] == 0
    ours.get("crst")
    assert ours.get("cons")["connections"][0]["packets_received"] == 0


def test_jackson_layout(sides: Any) -> None:
    ours, real, _ = sides
    raw = urllib.request.urlopen(f"{ours.admin}/commands/ruok", timeout=5).read().decode()
    theirs = urllib.request.urlopen(f"{real.admin}/commands/ruok", timeout=5).read().decode()
    assert raw.strip() == theirs.strip() == '{\n  "command" : "ruok",\n  "error" : null\n}'
    assert jackson({"a": [], "b": {}, "c": [1, 2], "d": {"e": 1.5}, "f": [{"g": None}]}) == (
        '{\n  "a" : [ ],\n  "b" : { },\n  "c" : [ 1, 2 ],\n  "d" : {\n    "e" : 1.5\n  },\n'
        '  "f" : [ {\n    "g" : null\n  } ]\n}')


def test_http_keep_alive_head_and_errors(sides: Any) -> None:
    ours, _, _ = sides
    host, port = ours.admin.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    for name in ("ruok", "isro"):  # two requests on one connection
        conn.request("GET", f"/commands/{name}")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["command"] in ("ruok", "is_read_only")
    conn.request("HEAD", "/commands/ruok")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"" and int(r.headers["Content-Length"]) > 0
    conn.request("GET", "/elsewhere")
    r = conn.getresponse()
    assert r.status == 404
    r.read()
    conn.close()
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"this is not http\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def _scrape(port: int) -> tuple[dict[str, str], dict[str, float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = r.read().decode()
    types: dict[str, str] = {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line.startswith("# HELP "):
            continue
        else:
            m = _SAMPLE.match(line)
            assert m, line
            name, labels, value = m.groups()
            family = re.sub(r"_(count|sum)$", "", name)
            assert name in types or family in types, f"{name} has no # TYPE line"
            samples[name + (labels or "")] = float(value)
    return types, samples


def test_prometheus_metrics(sides: Any) -> None:
    ours, _, port = sides
    for i in range(5):
        ours.zk.create(f"/adm/m{i}", b"x")
    types, samples = _scrape(port)
    mntr = dict(line.split("\t", 1) for line in four_letter(ours.server.port, "mntr")
                .splitlines())
    for key in ("znode_count", "ephemerals_count", "watch_count", "global_sessions",
                "approximate_data_size"):
        assert types[key] == "gauge"
        assert samples[key] == float(mntr[f"zk_{key}"]), key
    for key in ("num_alive_connections", "packets_received", "packets_sent", "avg_latency",
                "max_latency",
                "open_file_descriptor_count", "uptime", "outstanding_requests"):
        assert types[key] == "gauge" and key in samples
    assert "version" not in types and "server_state" not in types
    assert types["bytes_received_count"] == "counter" and samples["bytes_received_count"] > 0
    assert types["fsynctime"] == "summary"
    assert samples["fsynctime_count"] >= 5 and samples["fsynctime_sum"] >= 0
    assert 'fsynctime{quantile="0.5",}' in samples
    assert samples["process_open_fds"] > 0 and samples["process_resident_memory_bytes"] > 0
    assert ours.get("monitor")["cnt_fsynctime"] == samples["fsynctime_count"]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    assert err.value.code == 404


def test_busy_admin_port_does_not_stop_the_server(tmp_path: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        server = ZkServerProcess(tmp_path / "zks", free_port(), extra=[
            "admin.enableServer=true", "admin.serverAddress=127.0.0.1",
            f"admin.serverPort={busy}"])
        with server:
            assert "Mode: standalone" in four_letter(server.port, "srvr")
        assert "Problem starting AdminServer" in server.log_path.read_text()


@pytest.mark.parametrize("value,text", [
    (0, "0.0"), (5, "5.0"), (19.0, "19.0"), (0.5, "0.5"), (0.001, "0.001"),
    (0.0001234, "1.234E-4"), (1e7, "1.0E7"), (12345678, "1.2345678E7"), (6.6667, "6.6667"),
    (-3.5, "-3.5"), (float("nan"), "NaN"), (float("inf"), "Infinity"),
])
def test_numbers_as_java_prints_them(value: float, text: str) -> None:
    assert java_double(value) == text
