"""The handshake (`engine/handshake.py`): new sessions wait for their commit, resumed ones are
answered at once, and ZooKeeper's refusals are kept."""

from __future__ import annotations

from support.wire import CREATE, GET_DATA, OPEN_ACL, buf, connect_request, i32, request, ustr

from zkserver.engine import Client, Engine, handshake
from zkserver.proto import records as R

NOW = 1_000
WALL = 1_700_000_000_000


def _client(engine: Engine, port: int = 1) -> Client:
    return engine.connect(("127.0.0.1", port), lambda: None, NOW, WALL)


def _response(client: Client) -> R.ConnectResponse:
    data = bytes(client.out)
    client.out.clear()
    return R.ConnectResponse.decode(data[4:])


def _new_session(engine: Engine) -> tuple[Client, R.ConnectResponse]:
    client = _client(engine)
    assert engine.handshake(client, connect_request(6000), NOW, WALL)
    return client, _response_after_commit(engine, client)


def _response_after_commit(engine: Engine, client: Client) -> R.ConnectResponse:
    engine.apply_committed(engine.take_commits(), NOW)
    return _response(client)


def test_a_new_session_is_answered_once_committed_and_nothing_overtakes_it() -> None:
    engine = Engine(tick_time=500)
    client = _client(engine)
    assert engine.handshake(client, connect_request(60_000), NOW, WALL)
    engine.handle(client, request(1, GET_DATA, ustr("/") + b"\0")[4:], NOW, WALL)
    assert client.out == b""  # the ConnectResponse waits for createSession, the read behind it
    engine.apply_committed(engine.take_commits(), NOW)
    data = bytes(client.out)
    length = int.from_bytes(data[:4], "big")
    resp = R.ConnectResponse.decode(data[4:4 + length])
    assert resp.timeout == 10_000  # clamped to maxSessionTimeout (20 ticks)
    assert resp.session_id == client.session_id != 0
    xid = int.from_bytes(data[8 + length:12 + length], "big")
    assert xid == 1  # the getData reply right after it


def test_resuming_takes_the_session_over_from_the_old_connection() -> None:
    engine = Engine()
    old, resp = _new_session(engine)
    new = _client(engine, 2)
    assert engine.handshake(new, connect_request(6000, resp.session_id, resp.passwd), NOW, WALL)
    again = _response(new)
    assert (again.session_id, again.passwd) == (resp.session_id, resp.passwd)
    assert old.closed and old.close_after_flush
    assert engine.client_of(resp.session_id) is new


def test_a_wrong_password_gets_zeros_then_the_connection_closes() -> None:
    engine = Engine()
    _, resp = _new_session(engine)
    other = _client(engine, 2)
    assert engine.handshake(other, connect_request(6000, resp.session_id, b"\1" * 16), NOW, WALL)
    refused = _response(other)
    assert (refused.timeout, refused.session_id, refused.passwd) == (0, 0, b"\0" * 16)
    assert other.close_after_flush


def test_a_client_from_the_future_is_dropped_unanswered() -> None:
    engine = Engine()
    client = _client(engine)
    assert not engine.handshake(client, connect_request(6000, last_zxid=5), NOW, WALL)
    assert client.out == b"" and engine.take_commits() == []


def test_a_read_only_server_takes_only_clients_that_accept_one() -> None:
    engine = Engine()
    engine.serve_read_only()
    assert not engine.handshake(_client(engine), connect_request(6000), NOW, WALL)
    client = _client(engine, 2)
    assert engine.handshake(client, connect_request(6000, read_only=True), NOW, WALL)
    assert _response(client).read_only is True  # a local session: answered at once
    assert engine.take_commits() == []


def test_a_read_only_member_renews_no_session_of_the_ensemble() -> None:
    """ZooKeeper's read-only server: a session it did not create is unknown to it (a local one
    of another server: expired) or refused (a global one, such as one holding ephemerals)."""
    engine = Engine()
    plain, plain_resp = _new_session(engine)
    holder, holder_resp = _new_session(engine)
    body = ustr("/e") + buf(b"") + OPEN_ACL + i32(1)  # ephemeral
    engine.handle(holder, request(1, CREATE, body)[4:], NOW, WALL)
    engine.apply_committed(engine.take_commits(), NOW)
    engine.serve_read_only()

    again = _client(engine, 3)
    assert engine.handshake(again, connect_request(6000, plain_resp.session_id,
                                                   plain_resp.passwd, read_only=True), NOW, WALL)
    expired = _response(again)
    assert (expired.timeout, expired.session_id, expired.read_only) == (0, 0, True)
    assert again.close_after_flush
    held = _client(engine, 4)
    assert not engine.handshake(held, connect_request(6000, holder_resp.session_id,
                                                      holder_resp.passwd, read_only=True),
                                NOW, WALL)
    assert held.out == b""


def test_read_only_sessions_are_local_and_end_with_the_mode() -> None:
    engine = Engine()
    engine.serve_read_only()
    first = _client(engine)
    assert engine.handshake(first, connect_request(6000, read_only=True), NOW, WALL)
    resp = _response(first)
    assert handshake.local_sessions(engine) == [resp.session_id]
    resumed = _client(engine, 2)
    assert engine.handshake(resumed, connect_request(6000, resp.session_id, resp.passwd,
                                                     read_only=True), NOW, WALL)
    assert _response(resumed).session_id == resp.session_id  # resumed while read-only

    handshake.end_local_sessions(engine)
    assert handshake.local_sessions(engine) == []
    late = _client(engine, 3)
    assert engine.handshake(late, connect_request(6000, resp.session_id, resp.passwd,
                                                  read_only=True), NOW, WALL)
    assert _response(late).timeout == 0  # unknown now: the client starts a new session
