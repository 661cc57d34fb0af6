"""Length-prefixed framing over a byte stream, and the reply/notification frames the server sends.

`FrameSplitter` takes whatever one receive returned and hands back every complete frame in it,
so a connection answers a whole pipelined burst with one send. A length below 0 or above
`max_buffer` is a protocol violation: ZooKeeper closes the connection without a reply, and so do
we (`FrameError`).
"""

from __future__ import annotations

import struct

from zkserver.proto.codes import DEFAULT_MAX_BUFFER, NOTIFICATION_XID

_LEN = struct.Struct(">i")
_REPLY = struct.Struct(">iiqi")  # length, xid, zxid, err
_len_unpack_from = _LEN.unpack_from
_reply_pack = _REPLY.pack


class FrameError(ValueError):
    pass


class FrameSplitter:
    __slots__ = ("buf", "max_buffer")

    def __init__(self, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self.buf = bytearray()
        self.max_buffer = max_buffer

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete frame bodies now available, in order."""
        buf = self.buf
        buf += data
        frames = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            n = _len_unpack_from(buf, pos)[0]
            if n < 0 or n > self.max_buffer:
                raise FrameError(f"frame length {n} out of range")
            if end - pos - 4 < n:
                break
            frames.append(bytes(buf[pos + 4:pos + 4 + n]))
            pos += 4 + n
        if pos:
            del buf[:pos]
        return frames

    def peek_length(self) -> int | None:
        """The first four buffered bytes as an int (the 4lw check), if there are four."""
        if len(self.buf) < 4:
            return None
        return _len_unpack_from(self.buf, 0)[0]


def frame(body: bytes) -> bytes:
    return _LEN.pack(len(body)) + body


def reply(xid: int, zxid: int, err: int, body: bytes = b"") -> bytes:
    return _reply_pack(16 + len(body), xid, zxid, err) + body


def notification(zxid: int, etype: int, path: str) -> bytes:
    p = path.encode()
    body = struct.pack(">iii", etype, 3, len(p)) + p
    return _reply_pack(16 + len(body), NOTIFICATION_XID, zxid, 0) + body
