"""Raw ZooKeeper wire protocol for tests that talk to a server byte by byte.

Written from the protocol reference, independently of zkserver's own codec, so a test that uses
it checks the server against the protocol and not against itself. Everything is blocking
sockets with deadlines: a test never sleeps a fixed time waiting for the server.
"""

from __future__ import annotations

import socket
import struct
import time

from support import realzk

# Opcodes (ZooDefs.OpCode).
CREATE, DELETE, EXISTS, GET_DATA, SET_DATA, GET_ACL, SET_ACL, GET_CHILDREN = 1, 2, 3, 4, 5, 6, 7, 8
SYNC, PING, GET_CHILDREN2, CHECK, MULTI, CREATE2, RECONFIG = 9, 11, 12, 13, 14, 15, 16
CHECK_WATCHES, REMOVE_WATCHES, CREATE_CONTAINER, DELETE_CONTAINER = 17, 18, 19, 20
CREATE_TTL, MULTI_READ = 21, 22
AUTH, SET_WATCHES, SASL, GET_EPHEMERALS, GET_ALL_CHILDREN_NUMBER = 100, 101, 102, 103, 104
SET_WATCHES2, ADD_WATCH, WHO_AM_I, CLOSE_SESSION = 105, 106, 107, -11

NOTIFICATION_XID, PING_XID, AUTH_XID = -1, -2, -4

UNIMPLEMENTED = -6
MARSHALLINGERROR = -5

# Every opcode a client may send, with a readable name (for test ids).
CLIENT_OPS = {
    CREATE: "create", DELETE: "delete", EXISTS: "exists", GET_DATA: "getData",
    SET_DATA: "setData", GET_ACL: "getACL", SET_ACL: "setACL", GET_CHILDREN: "getChildren",
    SYNC: "sync", PING: "ping", GET_CHILDREN2: "getChildren2", MULTI: "multi",
    CREATE2: "create2", RECONFIG: "reconfig", CHECK_WATCHES: "checkWatches",
    REMOVE_WATCHES: "removeWatches", CREATE_CONTAINER: "createContainer",
    CREATE_TTL: "createTTL", MULTI_READ: "multiRead", AUTH: "auth",
    SET_WATCHES: "setWatches", SASL: "sasl", GET_EPHEMERALS: "getEphemerals",
    GET_ALL_CHILDREN_NUMBER: "getAllChildrenNumber", SET_WATCHES2: "setWatches2",
    ADD_WATCH: "addWatch", WHO_AM_I: "whoAmI", CLOSE_SESSION: "closeSession",
}


# -- jute ----------------------------------------------------------------------------------------

def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def boolean(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


def buf(b: bytes | None) -> bytes:
    return i32(-1) if b is None else i32(len(b)) + b


def ustr(s: str | None) -> bytes:
    return buf(None if s is None else s.encode())


def strvec(items: list[str] | None) -> bytes:
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(ustr(s) for s in items)


OPEN_ACL = i32(1) + i32(31) + ustr("world") + ustr("anyone")


def frame(body: bytes) -> bytes:
    return i32(len(body)) + body


def connect_request(timeout: int = 10000, session_id: int = 0, passwd: bytes = b"\0" * 16,
                    last_zxid: int = 0, read_only: bool | None = False) -> bytes:
    """A ConnectRequest body: 45 bytes, or 44 (an old client) when read_only is None."""
    body = i32(0) + i64(last_zxid) + i32(timeout) + i64(session_id) + buf(passwd)
    return body if read_only is None else body + boolean(read_only)


def request(xid: int, op: int, body: bytes = b"") -> bytes:
    return frame(i32(xid) + i32(op) + body)


def multi_body(ops: list[tuple[int, bytes]]) -> bytes:
    out = b"".join(i32(op) + boolean(False) + i32(-1) + body for op, body in ops)
    return out + i32(-1) + boolean(True) + i32(-1)


def valid_body(op: int, path: str = "/hostile") -> bytes:
    """A well-formed request body for `op` (what a correct client would send)."""
    if op in (CREATE, CREATE2, CREATE_CONTAINER):
        return ustr(path) + buf(b"data") + OPEN_ACL + i32(4 if op == CREATE_CONTAINER else 0)
    if op == CREATE_TTL:
        return ustr(path) + buf(b"data") + OPEN_ACL + i32(5) + i64(10000)
    if op == DELETE:
        return ustr(path) + i32(-1)
    if op in (EXISTS, GET_DATA, GET_CHILDREN, GET_CHILDREN2):
        return ustr(path) + boolean(True)
    if op == SET_DATA:
        return ustr(path) + buf(b"new") + i32(-1)
    if op in (GET_ACL, SYNC, GET_EPHEMERALS, GET_ALL_CHILDREN_NUMBER):
        return ustr(path)
    if op == SET_ACL:
        return ustr(path) + OPEN_ACL + i32(-1)
    if op == MULTI:
        return multi_body([(CREATE, valid_body(CREATE, path)), (CHECK, ustr(path) + i32(0)),
                           (SET_DATA, valid_body(SET_DATA, path)),
                           (DELETE, valid_body(DELETE, path))])
    if op == MULTI_READ:
        return multi_body([(GET_DATA, ustr("/") + boolean(False)),
                           (GET_CHILDREN, ustr("/") + boolean(False))])
    if op == RECONFIG:
        return ustr("") + ustr("") + ustr(None) + i64(-1)
    if op in (CHECK_WATCHES, REMOVE_WATCHES):
        return ustr(path) + i32(1)
    if op == AUTH:
        return i32(0) + ustr("digest") + buf(b"user:password")
    if op == SET_WATCHES:
        return i64(0) + strvec([path]) + strvec([path]) + strvec([path])
    if op == SET_WATCHES2:
        return i64(0) + strvec([path]) * 5
    if op == SASL:
        return buf(b"token")
    if op == ADD_WATCH:
        return ustr(path) + i32(1)
    if op in (PING, WHO_AM_I, CLOSE_SESSION):
        return b""
    raise ValueError(f"no body for opcode {op}")


def xid_for(op: int, xid: int) -> int:
    """The xid a correct client uses for `op` (pings and auth have fixed ones)."""
    return {PING: PING_XID, AUTH: AUTH_XID}.get(op, xid)


# -- a blocking raw connection ---------------------------------------------------------------------

class Closed(Exception):
    """The server closed the connection."""


class RawConnection:
    """One TCP connection to the client port, with deadline-bound reads."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def abort(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), as a crashed client would."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """Send; False if the server already closed (EPIPE/ECONNRESET)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            raise TimeoutError("no data from the server before the deadline") from None
        if not data:
            self.eof = True
            raise Closed()
        self.buf += data

    def read_frame(self, timeout: float = 5.0) -> bytes:
        """The next frame body. Raises Closed at EOF, TimeoutError at the deadline."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < 4:
            self._fill(deadline)
        n = struct.unpack_from(">i", self.buf)[0]
        while len(self.buf) < 4 + n:
            self._fill(deadline)
        body = bytes(self.buf[4:4 + n])
        del self.buf[:4 + n]
        return body

    def read_reply(self, timeout: float = 5.0) -> tuple[int, int, int, bytes]:
        """The next reply that is not a watch notification: (xid, zxid, err, body)."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.read_frame(max(0.0, deadline - time.monotonic()))
            xid, zxid, err = struct.unpack_from(">iqi", body)
            if xid != NOTIFICATION_XID:
                return xid, zxid, err, body[16:]

    def drain(self, timeout: float) -> tuple[bool, bytes]:
        """Read everything until EOF: (closed within `timeout`, the bytes received)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except Closed:
            closed = True
        except TimeoutError:
            closed = False
        data = bytes(self.buf)
        self.buf.clear()
        return closed, data

    def wait_closed(self, timeout: float) -> bool:
        """True if the server closed the connection within `timeout` (data is dropped)."""
        return self.drain(timeout)[0]

    def finish(self, timeout: float = 5.0) -> bool:
        """Half-close (FIN), then wait for the server to close: a polite goodbye, no reset."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        closed = self.wait_closed(timeout)
        self.sock.close()
        return closed

    def handshake(self, timeout_ms: int = 10000, read_only: bool | None = False,
                  session_id: int = 0, passwd: bytes = b"\0" * 16
                  ) -> tuple[int, int, bytes, int]:
        """Send a ConnectRequest; returns (negotiated timeout, session id, password, body size)."""
        self.send(frame(connect_request(timeout_ms, session_id, passwd, read_only=read_only)))
        body = self.read_frame()
        _, negotiated, sid, plen = struct.unpack_from(">iiqi", body)
        return negotiated, sid, body[20:20 + plen], len(body)

    def call(self, xid: int, op: int, body: bytes = b"", timeout: float = 5.0
             ) -> tuple[int, int, int, bytes]:
        self.send(request(xid, op, body))
        return self.read_reply(timeout)


def four_letter(port: int, word: str | bytes, host: str = "127.0.0.1",
                timeout: float = 5.0) -> str:
    """Send a four-letter word (plus any extra bytes) and read the answer until EOF."""
    return realzk.four_letter(host, port, word, timeout)
