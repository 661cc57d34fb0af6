"""Malformed and hostile byte streams on the client port.

Whatever arrives on one connection, the server must not stop, and no other session may notice:
every test runs a `Canary` (a kazoo session reading and writing in a loop) next to the abuse and
ends with `canary.check()`: the canary's session is intact, the process is alive, and `ruok`
answers `imok`. The expected reactions (close without a reply on a bad length, UNIMPLEMENTED
then close on an unknown opcode, a 36-byte ConnectResponse for a 44-byte ConnectRequest) are
ZooKeeper's, from the protocol reference.
"""

from __future__ import annotations

import random
import re
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import wire as W
from support.canary import Canary
from support.process import ZkServerProcess
from support.realzk import free_port
from support.wire import Closed, RawConnection

HOST = "127.0.0.1"
REPLY_TIMEOUT = 3.0


@pytest.fixture
def canary(zk_server):
    c = Canary(zk_server)
    yield c
    c.close()


def _connect(server) -> RawConnection:
    return RawConnection(HOST, server.port)


def _session(server, **kw) -> RawConnection:
    conn = _connect(server)
    negotiated, sid, _, _ = conn.handshake(**kw)
    assert negotiated > 0 and sid != 0
    return conn


def _server_died(server, what: str) -> None:
    """Fail with the server's log if the process has exited (or exits within 2 s)."""
    try:
        status = server.proc.wait(2.0)
    except Exception:
        return
    log = server.log_path.read_text()[-2500:] if server.log_path.exists() else ""
    pytest.fail(f"zkserver died (exit status {status}) {what}; its log ends:\n{log}")


def _outcome(conn: RawConnection, timeout: float = REPLY_TIMEOUT) -> tuple | str:
    """The next reply (xid, zxid, err, body), or "closed", or "hung"."""
    try:
        return conn.read_reply(timeout)
    except Closed:
        return "closed"
    except TimeoutError:
        return "hung"


def _connection_count(server) -> int:
    text = W.four_letter(server.port, "srvr")
    return int(re.search(r"^Connections: (\d+)$", text, re.M).group(1))


def _wait_connections(server, ok, timeout: float = 10.0) -> int:
    """Poll `srvr` until its connection count satisfies `ok` (or the deadline); the count."""
    deadline = time.monotonic() + timeout
    while True:
        count = _connection_count(server)
        if ok(count) or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


# -- framing --------------------------------------------------------------------------------------

def test_random_bytes_seeded(zk_server, canary):
    """Seeded junk, before and after a handshake, raw or framed: whatever the server makes of
    it, it closes its end once we half-close ours, and it survives."""
    rng = random.Random(0x5EED)
    problems = []
    for i in range(160):
        mode = i % 4
        junk = rng.randbytes(rng.randrange(8, 300))
        if mode == 0:  # raw junk as the first bytes of a connection
            conn, data = _connect(zk_server), junk
        elif mode == 1:  # a frame of junk where the ConnectRequest belongs
            conn, data = _connect(zk_server), W.frame(junk)
        elif mode == 2:  # raw junk after a good handshake
            conn, data = _session(zk_server), junk
        else:  # a frame of junk after a good handshake
            conn, data = _session(zk_server), W.frame(junk)
        conn.send(data)
        if not conn.finish(REPLY_TIMEOUT):
            problems.append(f"#{i} mode {mode}: still open after our FIN: {data[:32].hex()}")
    assert not problems, "\n".join(problems)
    canary.check()


@pytest.mark.parametrize("length", [0x7FFFFFFF, -1, -2, -0x80000000, 0xFFFFF + 1, 0x10000000])
def test_huge_or_negative_length_closes_without_reply(zk_server, canary, length):
    # Before the handshake: nothing comes back, the connection just closes.
    conn = _connect(zk_server)
    conn.send(W.i32(length) + b"\0" * 16)
    closed, data = conn.drain(REPLY_TIMEOUT)
    conn.close()
    assert closed and data == b"", f"length {length:#x} before the handshake: got {data!r}"
    # After the handshake: the same, and the session's connection is gone.
    conn = _session(zk_server)
    conn.send(W.i32(length) + W.i32(1) + W.i32(W.GET_DATA) + b"\0" * 8)
    closed, data = conn.drain(REPLY_TIMEOUT)
    conn.close()
    assert closed and data == b"", f"length {length:#x} after the handshake: got {data!r}"
    canary.check()


def test_zero_length_and_short_frames_after_handshake(zk_server, canary):
    """A request frame too short to hold a RequestHeader (8 bytes) ends the connection."""
    for n in range(8):
        conn = _session(zk_server)
        conn.send(W.frame(b"\0" * n))
        assert conn.wait_closed(REPLY_TIMEOUT), f"a {n}-byte request frame left it open"
        conn.close()
    canary.check()


# -- the handshake --------------------------------------------------------------------------------

def test_truncated_connect_request_closes_without_reply(zk_server, canary):
    body = W.connect_request()
    problems = []
    for n in range(44):  # every prefix shorter than the 44-byte old-client form
        conn = _connect(zk_server)
        conn.send(W.frame(body[:n]))
        closed, data = conn.drain(REPLY_TIMEOUT)
        conn.close()
        if not closed or data:
            problems.append(f"{n}-byte ConnectRequest: closed={closed}, got {data[:40]!r}")
    assert not problems, "\n".join(problems)
    canary.check()


def test_connect_request_cut_mid_frame_then_eof(zk_server, canary):
    """The length prefix promises 45 bytes, fewer arrive, then the client half-closes."""
    for n in (0, 1, 20, 44):
        conn = _connect(zk_server)
        conn.send(W.i32(45) + W.connect_request()[:n])
        assert conn.finish(REPLY_TIMEOUT), f"still open after EOF with {n} of 45 bytes"
    canary.check()


def test_old_client_44_byte_connect_request(zk_server, canary):
    """A 3.3-era client sends no readOnly byte: the reply leaves it out too (36-byte body)."""
    conn = _connect(zk_server)
    negotiated, sid, passwd, size = conn.handshake(read_only=None)
    assert (size, len(passwd)) == (36, 16) and negotiated == 10000 and sid != 0
    xid, _, err, body = conn.call(1, W.GET_DATA, W.ustr("/") + W.boolean(False))
    assert (xid, err) == (1, 0)
    assert conn.finish()

    conn = _connect(zk_server)
    negotiated, sid, passwd, size = conn.handshake(read_only=False)
    assert (size, len(passwd)) == (37, 16)
    assert conn.finish()
    canary.check()


def test_handshake_that_never_completes_is_closed(tmp_path):
    """The server waits for a ConnectRequest at most maxSessionTimeout (20 ticks: 4 s here)."""
    with ZkServerProcess(tmp_path / "zks", free_port(), extra=["tickTime=200"]) as server:
        canary = Canary(server)
        try:
            started = time.monotonic()
            silent = _connect(server)
            partial = _connect(server)
            partial.send(W.i32(45) + W.connect_request()[:10])
            prefix_only = _connect(server)
            prefix_only.send(W.i32(45))
            results = {}
            for name, conn in (("silent", silent), ("partial", partial),
                               ("prefix only", prefix_only)):
                closed = conn.wait_closed(max(0.1, started + 12.0 - time.monotonic()))
                results[name] = (closed, round(time.monotonic() - started, 1))
                conn.close()
            assert all(closed for closed, _ in results.values()), (
                f"connections without a handshake not closed within 12 s: {results}")
            canary.check()
        finally:
            canary.close()


def test_requests_before_the_handshake(zk_server, canary):
    # A request frame where the ConnectRequest belongs: not a ConnectRequest, so close.
    for frame in (W.request(1, W.GET_DATA, W.ustr("/") + W.boolean(False)),
                  W.request(W.PING_XID, W.PING), W.request(1, W.CLOSE_SESSION)):
        conn = _connect(zk_server)
        conn.send(frame)
        closed, data = conn.drain(REPLY_TIMEOUT)
        conn.close()
        assert closed and data == b"", f"{frame.hex()} as the first frame: got {data!r}"

    # Requests pipelined behind the ConnectRequest, in one send: the ConnectResponse comes
    # first, then every reply in order.
    conn = _connect(zk_server)
    conn.send(W.frame(W.connect_request())
              + W.request(1, W.GET_DATA, W.ustr("/") + W.boolean(False))
              + W.request(2, W.CREATE, W.valid_body(W.CREATE, "/pipelined"))
              + W.request(3, W.EXISTS, W.ustr("/pipelined") + W.boolean(False))
              + W.request(W.PING_XID, W.PING))
    body = conn.read_frame()
    assert len(body) == 37 and struct.unpack_from(">i", body, 4)[0] == 10000
    replies = [conn.read_reply()[0:3:2] for _ in range(4)]
    assert replies == [(1, 0), (2, 0), (3, 0), (W.PING_XID, 0)]
    assert conn.finish()

    # A second ConnectRequest on an established connection is read as a request header
    # (xid 0, opcode 0): an error reply or a close, never a second session.
    conn = _session(zk_server)
    conn.send(W.frame(W.connect_request()))
    outcome = _outcome(conn)
    assert outcome == "closed" or (outcome[0] == 0 and outcome[2] != 0), outcome
    conn.close()
    canary.check()


# -- requests -------------------------------------------------------------------------------------

# Not client opcodes. -10 (createSession) and a stand-alone 13 (check) are answered this way
# from ZooKeeper 3.9.5 on (3.8 still runs a stand-alone check as a transaction); the protocol
# reference recommends the 3.9.5 behaviour.
UNKNOWN_OPS = [0, -1, -10, 10, 13, 23, 99, 108, 1000, 0x7FFFFFFF, -0x80000000]


def test_unknown_opcode_gets_unimplemented_then_close(zk_server, canary):
    problems = []
    for op in UNKNOWN_OPS:
        conn = _session(zk_server)
        conn.send(W.request(7, op, b"\0" * 12))
        outcome = _outcome(conn)
        closed = outcome == "closed" or conn.wait_closed(REPLY_TIMEOUT)
        conn.close()
        if outcome in ("closed", "hung") or outcome[0:3:2] != (7, W.UNIMPLEMENTED) or not closed:
            problems.append(f"op {op}: reply {outcome!r}, closed afterwards: {closed}")
    assert not problems, "\n".join(problems)
    canary.check()


def test_truncated_request_for_every_opcode(zk_server, canary):
    """Every client opcode, its body cut short at several points: an answer to that request
    (usually MARSHALLINGERROR) or a close, never silence; and after an answer the connection
    still works."""
    problems = []
    for op, name in sorted(W.CLIENT_OPS.items()):
        body = W.valid_body(op, f"/trunc-{name}")
        cuts = sorted({0, 1, 3, 4, 5, len(body) // 2, len(body) - 1} & set(range(len(body))))
        conn = None
        for cut in cuts:
            if conn is None:
                conn = _session(zk_server)
            xid = 100 + cut
            conn.send(W.request(W.xid_for(op, xid), op, body[:cut]))
            outcome = _outcome(conn)
            if outcome == "hung":
                problems.append(f"{name} cut at {cut}/{len(body)}: no answer, not closed")
            elif outcome != "closed" and outcome[0] != W.xid_for(op, xid):
                problems.append(f"{name} cut at {cut}: reply xid {outcome[0]}, expected {xid}")
            if outcome in ("closed", "hung"):
                conn.close()
                conn = None
                continue
            conn.send(W.request(W.PING_XID, W.PING))
            pong = _outcome(conn)
            if pong == "closed":
                conn.close()
                conn = None
            elif pong == "hung" or pong[0] != W.PING_XID:
                problems.append(f"{name} cut at {cut}: ping afterwards got {pong!r}")
        if conn is not None:
            conn.finish()
    assert not problems, "\n".join(problems)
    canary.check()


# -- many connections -----------------------------------------------------------------------------

def _half_frames(server, count: int) -> list[RawConnection]:
    """`count` connections, each stopped in the middle of a frame, in four different places."""
    conns = []
    for i in range(count):
        phase = i % 4
        if phase == 0:
            conn = _connect(server)
            conn.send(W.i32(45)[:2])
        elif phase == 1:
            conn = _connect(server)
            conn.send(W.i32(45) + W.connect_request()[:20])
        elif phase == 2:
            conn = _session(server)
            body = W.valid_body(W.CREATE, f"/half-{i}")
            conn.send(W.request(1, W.CREATE, body)[:10 + len(body) // 2])
        else:
            conn = _session(server)
            conn.send(W.i32(30))
        conns.append(conn)
    return conns


def test_many_connections_dropped_mid_frame(zk_server, canary):
    baseline = _connection_count(zk_server)
    conns = _half_frames(zk_server, 200)
    assert _wait_connections(zk_server, lambda n: n >= baseline + 200) >= baseline + 200
    for conn in conns:
        conn.close()  # FIN: nothing of the server's is left unread
    left = _wait_connections(zk_server, lambda n: n <= baseline)
    assert left <= baseline, f"{left - baseline} dropped connections still open on the server"
    for i in (2, 6, 10):
        assert canary.zk.exists(f"/half-{i}") is None  # no half request was executed
    canary.check()


def test_many_connections_reset_mid_frame(zk_server, canary):
    """As above, but the clients vanish with a TCP reset (a crash, a pulled cable, a NAT)."""
    baseline = _connection_count(zk_server)
    conns = _half_frames(zk_server, 200)
    for conn in conns:
        conn.abort()
    try:
        left = _wait_connections(zk_server, lambda n: n <= baseline)
    except OSError:
        _server_died(zk_server, "after 200 clients reset their connections mid-frame")
        raise
    assert left <= baseline, f"{left - baseline} reset connections still open on the server"
    canary.check()


def test_reset_with_replies_in_flight(zk_server, canary):
    """A client sends requests and resets before reading the replies (a minimal repro)."""
    for attempt in range(5):
        try:
            conn = _session(zk_server)
        except (Closed, OSError):
            _server_died(zk_server, f"after {attempt} clients reset with replies in flight")
            raise
        conn.send(b"".join(W.request(i, W.GET_DATA, W.ustr("/") + W.boolean(False))
                           for i in range(1, 200)))
        conn.abort()
    canary.stop()
    _server_died(zk_server, "after clients reset with replies in flight")
    canary.check()


# -- property-based ------------------------------------------------------------------------------

FUZZ_OPS = sorted(W.CLIENT_OPS) + [0, -1, 13, 23, 108]


@st.composite
def hostile_requests(draw):
    op = draw(st.sampled_from(FUZZ_OPS))
    valid = W.valid_body(op, draw(st.sampled_from(["/fz", "/", "/zookeeper", "/fz/a/b"])))\
        if op in W.CLIENT_OPS else b""
    how = draw(st.sampled_from(["random", "truncate", "flip", "extend", "length", "valid"]))
    if how == "random":
        body = draw(st.binary(max_size=80))
    elif how == "truncate" and valid:
        body = valid[:draw(st.integers(0, len(valid) - 1))]
    elif how == "flip" and valid:
        b = bytearray(valid)
        for _ in range(draw(st.integers(1, 4))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        body = bytes(b)
    elif how == "extend":
        body = valid + draw(st.binary(min_size=1, max_size=40))
    elif how == "length" and len(valid) >= 4:
        pos = draw(st.integers(0, len(valid) - 4))
        n = draw(st.sampled_from([-2, -1, 0, 1, 0x7FFFFFFF, -0x80000000, 0xFFFFF, 0x100000]))
        body = valid[:pos] + W.i32(n) + valid[pos + 4:]
    else:
        body = valid
    xid = W.xid_for(op, draw(st.integers(1, 10_000)))
    return op, xid, body


def _fuzz(zk_server, canary, examples: int, derandomize: bool) -> None:
    @settings(max_examples=examples, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(req=hostile_requests())
    def fuzz(req):
        op, xid, body = req
        conn = _session(zk_server)
        try:
            conn.send(W.request(xid, op, body))
            outcome = _outcome(conn)
            assert outcome != "hung", f"op {op} body {body.hex()}: neither answered nor closed"
            if outcome != "closed":
                assert outcome[0] == xid, f"op {op}: reply xid {outcome[0]} for xid {xid}"
            assert conn.finish(REPLY_TIMEOUT), f"op {op}: connection kept open after our EOF"
        finally:
            conn.close()
        assert zk_server.proc.poll() is None, f"op {op} body {body.hex()} killed the server"

    fuzz()
    canary.check()


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_fuzzed_request_frames(zk_server, canary):
    """Random and mutated frames for every opcode, each on a fresh session: the server answers
    the request (with its xid) or closes, closes when we hang up, and never dies."""
    _fuzz(zk_server, canary, 250, derandomize=True)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_fuzzed_request_frames_soak(zk_server, canary):
    """The same for minutes, with fresh random draws each run (`pytest -m slow`)."""
    _fuzz(zk_server, canary, 20_000, derandomize=False)
