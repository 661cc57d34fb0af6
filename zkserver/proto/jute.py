"""Jute, ZooKeeper's binary encoding: big-endian ints and longs, length-prefixed buffers,
strings and vectors where a length of -1 means null.

`Reader` walks one record body; every read checks the bytes are there and that a length is
neither below -1 nor above `max_buffer`, so a hostile frame ends as a `JuteError` and never as
an IndexError deep inside a handler. The `pack_*` functions encode one value each, and are the
only place each layout is written down: `Writer` appends them to one bytearray, and the
records' `pack` (the server's reply path) joins them without one. Null (None) and empty values
stay distinct in both directions, because clients can tell them apart.
"""

from __future__ import annotations

import struct
from collections.abc import Collection

from zkserver.proto.codes import DEFAULT_MAX_BUFFER

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_INT_unpack_from = _INT.unpack_from
_LONG_unpack_from = _LONG.unpack_from
NULL = b"\xff\xff\xff\xff"  # the length -1: a null buffer, string or vector

pack_int = _INT.pack
pack_long = _LONG.pack


def pack_bool(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


def pack_buffer(v: bytes | None) -> bytes:
    return NULL if v is None else pack_int(len(v)) + v


def pack_ustring(v: str | None) -> bytes:
    if v is None:
        return NULL
    b = v.encode()
    return pack_int(len(b)) + b


def pack_ustrings(v: Collection[str] | None) -> bytes:
    """A vector of strings; any sized collection (a node's children set included)."""
    if v is None:
        return NULL
    parts = [pack_int(len(v))]
    for s in v:
        b = s.encode()
        parts.append(pack_int(len(b)))
        parts.append(b)
    return b"".join(parts)


class JuteError(ValueError):
    """A record that cannot be decoded: truncated, or a length below -1 or above the limit.

    Bad UTF-8 is not an error: Java decodes it with replacement characters, and so do we."""


class Reader:
    __slots__ = ("buf", "pos", "end", "max_buffer")

    def __init__(self, buf: bytes | memoryview, pos: int = 0, end: int | None = None,
                 max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.max_buffer = max_buffer

    def remaining(self) -> int:
        return self.end - self.pos

    def _need(self, n: int) -> int:
        p = self.pos
        if p + n > self.end:
            raise JuteError(f"record truncated: need {n} bytes at offset {p}, have {self.end - p}")
        self.pos = p + n
        return p

    def int(self) -> int:
        return _INT_unpack_from(self.buf, self._need(4))[0]

    def long(self) -> int:
        return _LONG_unpack_from(self.buf, self._need(8))[0]

    def bool(self) -> bool:
        return self.buf[self._need(1)] != 0

    def _length(self) -> int:
        n = self.int()
        if n < -1 or n > self.max_buffer:
            raise JuteError(f"unreasonable length {n}")
        return n

    def buffer(self) -> bytes | None:
        n = self._length()
        if n == -1:
            return None
        p = self._need(n)
        return bytes(self.buf[p:p + n])

    def ustring(self) -> str | None:
        n = self._length()
        if n == -1:
            return None
        p = self._need(n)
        return bytes(self.buf[p:p + n]).decode("utf-8", "replace")

    def vector_length(self) -> int:
        """The element count of a vector: -1 for null. Any other negative count is an empty
        vector, as ZooKeeper reads it (its loop runs while the count is above 0)."""
        n = self.int()
        if n < -1:
            return 0
        if n > self.max_buffer:
            raise JuteError(f"unreasonable length {n}")
        return n

    def ustring_vector(self) -> list[str] | None:
        n = self.vector_length()
        if n == -1:
            return None
        return [self.ustring() or "" for _ in range(n)]


class Writer:
    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out = bytearray()

    def int(self, v: int) -> Writer:
        self.out += pack_int(v)
        return self

    def long(self, v: int) -> Writer:
        self.out += pack_long(v)
        return self

    def bool(self, v: bool) -> Writer:
        self.out += pack_bool(v)
        return self

    def buffer(self, v: bytes | None) -> Writer:
        self.out += pack_buffer(v)
        return self

    def ustring(self, v: str | None) -> Writer:
        self.out += pack_ustring(v)
        return self

    def ustring_vector(self, v: list[str] | None) -> Writer:
        self.out += pack_ustrings(v)
        return self

    def raw(self, b: bytes) -> Writer:
        self.out += b
        return self

    def getvalue(self) -> bytes:
        return bytes(self.out)
