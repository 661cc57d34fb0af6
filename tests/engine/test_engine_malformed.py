"""Odd but framed requests answered as Apache ZooKeeper 3.9.5 answers them.

Each case is one the raw differential fuzzer (tests/differential/test_raw_fuzz.py) found where
zkserver answered differently; the expectations are ZooKeeper's replies on the same bytes. What
decides them is where ZooKeeper's code fails: a multi that does not decode is an error
transaction of its own (a zxid used); a NullPointerException in prep is MARSHALLINGERROR; one in
a read is MARSHALLINGERROR with the reply built so far; its node map holds the root under "".
"""

from __future__ import annotations

import struct

from support.wire import (
    CHECK,
    CREATE,
    CREATE2,
    CREATE_CONTAINER,
    CREATE_TTL,
    DELETE,
    EXISTS,
    GET_ACL,
    GET_ALL_CHILDREN_NUMBER,
    GET_CHILDREN,
    GET_CHILDREN2,
    GET_DATA,
    MULTI,
    MULTI_READ,
    OPEN_ACL,
    SET_DATA,
    SET_WATCHES,
    boolean,
    buf,
    connect_request,
    i32,
    i64,
    multi_body,
    request,
    ustr,
)

from zkserver.engine import Client, Engine
from zkserver.proto.codes import Err
from zkserver.proto.jute import Reader

NOW = 1_000
WALL = 1_700_000_000_000
MULTI_END = i32(-1) + boolean(True) + i32(-1)


def _connect(engine: Engine) -> Client:
    client = engine.connect(("127.0.0.1", 1), lambda: None, NOW, WALL)
    assert engine.handshake(client, connect_request(10_000), NOW, WALL)
    engine.apply_committed(engine.take_commits(), NOW)
    client.out.clear()
    return client


def _call(engine: Engine, client: Client, xid: int, op: int, body: bytes
          ) -> list[tuple[int, int, int, bytes]]:
    """Send one request, commit what it prepared; every frame queued: (xid, zxid, err, body)."""
    engine.handle(client, request(xid, op, body)[4:], NOW, WALL)
    engine.apply_committed(engine.take_commits(), NOW)
    out, data = [], bytes(client.out)
    client.out.clear()
    while data:
        (n,) = struct.unpack_from(">i", data)
        out.append((*struct.unpack_from(">iqi", data, 4), data[20:4 + n]))
        data = data[4 + n:]
    return out


def _create(path: str, flags: int = 0, acl: bytes = OPEN_ACL) -> bytes:
    return ustr(path) + buf(b"") + acl + i32(flags)


def _setup() -> tuple[Engine, Client, int]:
    engine = Engine(extended_types=True)
    client = _connect(engine)
    [(_, zxid, err, _)] = _call(engine, client, 1, CREATE, _create("/a"))
    assert err == 0
    return engine, client, zxid


def test_a_multi_that_does_not_decode_uses_a_zxid() -> None:
    """An op a multi cannot hold, or a sub-op cut short: MARSHALLINGERROR, no body, next zxid."""
    engine, client, zxid = _setup()
    bad_op = multi_body([(GET_DATA, ustr("/a") + boolean(False))])
    assert _call(engine, client, 2, MULTI, bad_op) == [(2, zxid + 1, Err.MARSHALLINGERROR, b"")]
    cut = multi_body([(DELETE, ustr("/a"))])[:-9]
    assert _call(engine, client, 3, MULTI, cut) == [(3, zxid + 2, Err.MARSHALLINGERROR, b"")]


def test_multi_create_flags_are_checked_while_decoding() -> None:
    """Flags that are no create mode, or a TTL mode on a create: the multi does not decode."""
    engine, client, zxid = _setup()
    for i, flags in enumerate((7, -1, 5)):
        body = multi_body([(CREATE, _create("/a/b", flags))])
        assert _call(engine, client, 2, MULTI, body) == [
            (2, zxid + 1 + i, Err.MARSHALLINGERROR, b"")]


def test_a_null_acl_in_a_multi_create_uses_no_zxid() -> None:
    engine, client, zxid = _setup()
    body = multi_body([(CREATE, ustr("/a/b") + buf(b"") + i32(-1) + i32(0))])
    assert _call(engine, client, 2, MULTI, body) == [(2, zxid, Err.MARSHALLINGERROR, b"")]


def test_a_create_ttl_without_a_ttl_mode_in_a_multi_is_a_create() -> None:
    """The ttl is dropped (on its own the request would be BADARGUMENTS), and the container mode
    makes a createContainer, answered with a path and a Stat as create2."""
    engine, client, zxid = _setup()
    ttl_plain = ustr("/a/b") + buf(b"") + OPEN_ACL + i32(0) + i64(10_000)
    [(_, z, err, body)] = _call(engine, client, 2, MULTI, multi_body([(CREATE_TTL, ttl_plain)]))
    assert (z, err) == (zxid + 1, 0)
    assert body == i32(CREATE) + boolean(False) + i32(0) + ustr("/a/b") + MULTI_END
    [(_, _, err, body)] = _call(engine, client, 3, MULTI,
                                multi_body([(CREATE2, _create("/a/c", 4))]))
    assert err == 0 and body.startswith(i32(CREATE2) + boolean(False) + i32(0) + ustr("/a/c"))


def test_a_null_path_fails_a_write_with_a_zxid() -> None:
    engine, client, zxid = _setup()
    null = i32(-1)
    assert _call(engine, client, 2, DELETE, null + i32(-1)) == [
        (2, zxid + 1, Err.MARSHALLINGERROR, b"")]
    assert _call(engine, client, 3, CREATE, null + buf(b"") + OPEN_ACL + i32(0)) == [
        (3, zxid + 2, Err.MARSHALLINGERROR, b"")]
    # In a multi any op's null path fails it whole, before an earlier op fails on its own.
    body = multi_body([(DELETE, ustr("/nosuch") + i32(-1)), (CHECK, null + i32(0)),
                       (SET_DATA, null + buf(b"") + i32(-1))])
    assert _call(engine, client, 4, MULTI, body) == [(4, zxid + 3, Err.MARSHALLINGERROR, b"")]


def test_a_malformed_write_behind_a_pending_one_carries_its_zxid() -> None:
    """Answered in turn with the last zxid handed out, not the last one applied on arrival."""
    engine, client, zxid = _setup()
    engine.handle(client, request(2, CREATE, _create("/a/x"))[4:], NOW, WALL)
    engine.handle(client, request(3, DELETE, ustr("/a"))[4:], NOW, WALL)  # no version
    engine.apply_committed(engine.take_commits(), NOW)
    data = bytes(client.out)
    first = struct.unpack_from(">iqi", data, 4)
    second = struct.unpack_from(">iqi", data, 4 + 4 + struct.unpack_from(">i", data)[0])
    assert first == (2, zxid + 1, 0)
    assert second == (3, zxid + 1, Err.MARSHALLINGERROR)


def test_a_null_path_in_a_read_is_a_marshalling_error() -> None:
    engine, client, zxid = _setup()
    null = i32(-1)
    for op, body in ((EXISTS, null + boolean(False)), (GET_DATA, null + boolean(True)),
                     (GET_CHILDREN, null + boolean(False)), (GET_CHILDREN2, null + boolean(False)),
                     (GET_ACL, null), (GET_ALL_CHILDREN_NUMBER, null)):
        assert _call(engine, client, 5, op, body) == [(5, zxid, Err.MARSHALLINGERROR, b"")], op


def test_a_multi_read_keeps_its_results_so_far_and_sets_no_watch() -> None:
    engine, client, zxid = _setup()
    body = multi_body([(GET_CHILDREN, ustr("/a") + boolean(True)),
                       (GET_DATA, i32(-1) + boolean(False))])
    expected = i32(GET_CHILDREN) + boolean(False) + i32(0) + i32(0) + MULTI_END
    assert _call(engine, client, 2, MULTI_READ, body) == [
        (2, zxid, Err.MARSHALLINGERROR, expected)]
    # Write ops decode in a multiRead (not mixed with reads), then fail it.
    writes = multi_body([(DELETE, ustr("/a") + i32(-1))])
    assert _call(engine, client, 3, MULTI_READ, writes) == [
        (3, zxid, Err.MARSHALLINGERROR, MULTI_END)]
    # The getChildren above set no watch: a child created now notifies nobody.
    [(xid, _, err, _)] = _call(engine, client, 4, CREATE, _create("/a/b"))
    assert (xid, err) == (4, 0)


def test_the_empty_path_reads_the_root() -> None:
    engine, client, zxid = _setup()
    [(_, _, err, body)] = _call(engine, client, 2, EXISTS, ustr("") + boolean(False))
    [(_, _, _, root)] = _call(engine, client, 3, EXISTS, ustr("/") + boolean(False))
    assert err == 0 and body == root
    [(_, _, err, body)] = _call(engine, client, 4, GET_ALL_CHILDREN_NUMBER, ustr(""))
    [(_, _, _, slash)] = _call(engine, client, 5, GET_ALL_CHILDREN_NUMBER, ustr("/"))
    assert err == 0 and struct.unpack(">i", body)[0] == struct.unpack(">i", slash)[0] + 1


def test_set_watches_ignores_trailing_bytes() -> None:
    engine, client, zxid = _setup()
    body = i64(0) + i32(0) + i32(0) + i32(0) + b"\x00"
    assert _call(engine, client, 2, SET_WATCHES, body) == [(2, zxid, 0, b"")]


def test_a_negative_vector_count_is_an_empty_vector() -> None:
    """Only -1 is null; ZooKeeper's jute reads any other negative count as no elements (a
    string's or a buffer's negative length is still an error)."""
    assert Reader(i32(-2)).vector_length() == 0
    assert Reader(i32(-2**31)).ustring_vector() == []
    engine, client, zxid = _setup()
    body = ustr("/a/b") + buf(b"") + i32(-5) + i32(0)  # an empty ACL: INVALIDACL
    assert _call(engine, client, 2, CREATE, body) == [(2, zxid + 1, Err.INVALIDACL, b"")]


def test_an_ephemeral_create_container_takes_no_children_while_pending() -> None:
    """In a multi a createContainer keeps the flags it came with (ephemeral here): prep sees the
    new node as the session's ephemeral, so a create under it fails; applied, it would be a
    container."""
    engine, client, zxid = _setup()
    body = multi_body([(CREATE_CONTAINER, _create("/a/c", 1)), (CREATE, _create("/a/c/d"))])
    [(_, z, err, reply_body)] = _call(engine, client, 2, MULTI, body)
    assert (z, err) == (zxid + 1, 0)
    assert reply_body == (i32(-1) + boolean(False) + i32(0) + i32(0)
                          + i32(-1) + boolean(False) + i32(Err.NOCHILDRENFOREPHEMERALS)
                          + i32(Err.NOCHILDRENFOREPHEMERALS) + MULTI_END)


def test_an_ephemeral_create_container_is_a_container_after_its_multi() -> None:
    """Prepared behind the multi, before it is applied, a create under the node succeeds."""
    engine, client, zxid = _setup()
    body = multi_body([(CREATE_CONTAINER, _create("/a/c", 1))])
    engine.handle(client, request(2, MULTI, body)[4:], NOW, WALL)
    [(_, _, err, _)] = _call(engine, client, 3, CREATE, _create("/a/c/d"))[1:]
    assert err == 0
