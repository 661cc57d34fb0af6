"""jute.maxbuffer: the largest request a server takes, and what happens past it, against Apache
ZooKeeper on raw sockets.

ZooKeeper reads `jute.maxbuffer` as a JVM system property (default 0xfffff = 1,048,575 bytes);
a frame whose length prefix is above it closes the connection without a reply, and the server
goes on serving everyone else. Replies are not limited by the server (a getChildren reply or a
getData of a node written at the limit is larger than the limit: the Java client refuses such a
packet, the server sends it). zkserver takes the same limit from zoo.cfg's `jute.maxbuffer`, so
the raised case starts ZooKeeper with `-Djute.maxbuffer` (through JDK_JAVA_OPTIONS, which the
`java` launcher reads) and zkserver with the zoo.cfg line.

Each case runs the same raw bytes against both servers and compares what came back: error
codes, reply sizes and data, and whether the connection was closed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import realzk
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port
from support.wire import (
    CREATE,
    DELETE,
    GET_CHILDREN,
    GET_DATA,
    OPEN_ACL,
    SET_DATA,
    Closed,
    RawConnection,
    boolean,
    buf,
    i32,
    request,
    ustr,
)

DEFAULT = 0xFFFFF
RAISED = 2 * 1024 * 1024

pytestmark = pytest.mark.skipif(realzk.DEBIAN, reason="the oracle here is ZooKeeper 3.9.5")


def _create_body(path: str, data: bytes) -> bytes:
    return ustr(path) + buf(data) + OPEN_ACL + i32(0)


def _create_frame_len(path: str, size: int) -> int:
    """The frame body length (xid + opcode + CreateRequest) of a create of `size` bytes."""
    return 8 + len(_create_body(path, b"")) + size


def _value_for_frame(path: str, frame_len: int) -> bytes:
    return b"v" * (frame_len - _create_frame_len(path, 0))


def _rx(c: RawConnection, timeout: float = 20.0) -> tuple[int, int, bytes] | str:
    """The next reply (xid, err, body) or "closed"."""
    try:
        xid, _, err, body = c.read_reply(timeout)
    except Closed:
        return "closed"
    return xid, err, body


def _children(body: bytes) -> list[str]:
    (n,) = struct.unpack_from(">i", body)
    pos, out = 4, []
    for _ in range(n):
        (k,) = struct.unpack_from(">i", body, pos)
        out.append(body[pos + 4:pos + 4 + k].decode())
        pos += 4 + k
    return out


def _limits(port: int, limit: int, prefix: str) -> list[object]:
    """Values at and past `limit`; returns what each step observed."""
    seen: list[object] = []
    with RawConnection("127.0.0.1", port, timeout=20) as c:
        c.handshake()
        c.send(request(1, CREATE, _create_body(prefix, b"")))
        seen.append(("root", _rx(c)[1]))
        at = f"{prefix}/at"
        value = _value_for_frame(at, limit)
        c.send(request(2, CREATE, _create_body(at, value)))
        seen.append(("create at limit", _rx(c)[1]))
        c.send(request(3, GET_DATA, ustr(at) + boolean(False)))
        r = _rx(c)
        assert r != "closed"
        xid, err, body = r
        data_len = struct.unpack_from(">i", body)[0]
        seen.append(("get at limit", err, data_len, body[4:4 + data_len] == value,
                     len(body) + 16))
        # setData at the limit: the same frame length with a SetDataRequest.
        set_body = ustr(at) + buf(b"")
        set_value = b"s" * (limit - 8 - len(set_body) - 4)
        c.send(request(4, SET_DATA, ustr(at) + buf(set_value) + i32(-1)))
        seen.append(("set at limit", _rx(c)[1]))
    # One byte past: the connection is closed without a reply; others keep being served.
    with RawConnection("127.0.0.1", port, timeout=20) as other:
        other.handshake()
        with RawConnection("127.0.0.1", port, timeout=20) as c:
            c.handshake()
            past = f"{prefix}/past"
            # Only the head of the frame: the server decides on the length prefix alone, and
            # one that closes without reading leaves the rest of a large send blocked.
            head = request(5, CREATE, _create_body(past, _value_for_frame(past, limit + 1)))
            c.send(head[:65536])
            seen.append(("create past limit", _rx(c)))
        # A bare length prefix past the limit, nothing after it.
        with RawConnection("127.0.0.1", port, timeout=20) as c:
            c.handshake()
            c.send(i32(limit + 1))
            seen.append(("length past limit", _rx(c)))
        other.send(request(6, GET_DATA, ustr(f"{prefix}/past") + boolean(False)))
        seen.append(("other after", _rx(other)[1]))
        other.send(request(7, GET_DATA, ustr(f"{prefix}/at") + boolean(False)))
        r = _rx(other)
        assert r != "closed"
        seen.append(("other reads", r[1], len(r[2])))
        other.send(request(8, DELETE, ustr(f"{prefix}/at") + i32(-1)))
        seen.append(("delete", _rx(other)[1]))
    return seen


def _big_child_list(port: int, limit: int, prefix: str) -> list[object]:
    """A node whose child list encodes to more than `limit` bytes: getChildren answers it."""
    seen: list[object] = []
    name_len = 200
    count = limit // (name_len + 4) + 50
    with RawConnection("127.0.0.1", port, timeout=60) as c:
        c.handshake()
        c.send(request(1, CREATE, _create_body(prefix, b"")))
        seen.append(("root", _rx(c)[1]))
        names = [f"{i:08d}" + "c" * (name_len - 8) for i in range(count)]
        # All in one write before reading a reply (1.1 MB, 2.2 MB raised), as a pipelining
        # client does. zkserver's connection parks and wakes while these replies back up; its
        # sender used to lose the unsent tail of its output when a park cancelled it, and the
        # client then read frame lengths out of the middle of a reply (most runs of this test).
        batch = b"".join(request(10 + i, CREATE, _create_body(f"{prefix}/{n}", b""))
                         for i, n in enumerate(names))
        c.send(batch)
        errs = {_rx(c, 60)[1] for _ in names}
        seen.append(("children created", errs))
        c.send(request(2, GET_CHILDREN, ustr(prefix) + boolean(False)))
        r = _rx(c, 60)
        assert r != "closed", "getChildren closed the connection"
        xid, err, body = r
        got = _children(body) if err == 0 else []
        seen.append(("getChildren", xid, err, len(body) + 16 > limit, sorted(got) == names))
        c.send(request(3, GET_DATA, ustr(prefix) + boolean(False)))
        seen.append(("still serving", _rx(c)[1]))
        batch = b"".join(request(10 + i, DELETE, ustr(f"{prefix}/{n}") + i32(-1))
                         for i, n in enumerate(names))
        c.send(batch)
        seen.append(("children deleted", {_rx(c, 60)[1] for _ in names}))
    return seen


@pytest.fixture(scope="module", params=[DEFAULT, RAISED], ids=["default", "raised"])
def pair(request, tmp_path_factory) -> Iterator[tuple[int, int, int]]:
    """(ZooKeeper's port, zkserver's port, the limit both run with)."""
    limit = request.param
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not available (tests/support/fetch_zookeeper.sh)")
    base = Path(tmp_path_factory.mktemp("maxbuf"))
    env = {} if limit == DEFAULT else {"JDK_JAVA_OPTIONS": f"-Djute.maxbuffer={limit}"}
    extra = ["forceSync=no"]
    real = RealZooKeeper(base / "real", free_port(), extra=extra, env=env).start()
    try:
        ours_extra = extra if limit == DEFAULT else [*extra, f"jute.maxbuffer={limit}"]
        ours = ZkServerProcess(base / "ours", free_port(), extra=ours_extra).start()
        try:
            yield real.port, ours.port, limit
        finally:
            ours.kill()
    finally:
        real.stop()


def test_values_at_and_past_the_limit(pair) -> None:
    zk, ours, limit = pair
    expected = _limits(zk, limit, "/mb-limits")
    # What the oracle does, stated so that a change of ZooKeeper's shows here first.
    assert expected[1] == ("create at limit", 0)
    assert expected[2][:4] == ("get at limit", 0, len(_value_for_frame("/mb-limits/at", limit)),
                               True)
    assert expected[4:6] == [("create past limit", "closed"), ("length past limit", "closed")]
    assert _limits(ours, limit, "/mb-limits") == expected


def test_child_list_past_the_limit(pair) -> None:
    zk, ours, limit = pair
    expected = _big_child_list(zk, limit, "/mb-children")
    assert expected[2] == ("getChildren", 2, 0, True, True)  # a reply past the limit, whole
    assert _big_child_list(ours, limit, "/mb-children") == expected
