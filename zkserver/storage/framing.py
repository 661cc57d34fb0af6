"""Checked records, the unit of every file zkserver writes: `[u32 length][u32 crc32][payload]`.

A reader must tell a *torn tail* (the process died in the middle of a write: the bytes after
the damage are the rest of that write or zeros from preallocation) from *corruption* (a damaged
record with good records after it). A torn tail is cut off with a warning; corruption stops
start-up with an error that names the file and the offset, because skipping it would silently
lose acknowledged writes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

HEADER = struct.Struct(">II")
_header_pack = HEADER.pack
_crc = zlib.crc32


class CorruptFile(Exception):
    def __init__(self, path: str, offset: int, why: str) -> None:
        super().__init__(f"{path}: corrupt record at offset {offset}: {why}")
        self.path = path
        self.offset = offset


def frame(payload: bytes) -> bytes:
    return _header_pack(len(payload), _crc(payload)) + payload


def _zeros(data: bytes, start: int) -> bool:
    return data.count(0, start) == len(data) - start


def _valid_record_at(data: bytes, off: int) -> bool:
    if len(data) - off < HEADER.size:
        return False
    n, crc = HEADER.unpack_from(data, off)
    end = off + HEADER.size + n
    return n > 0 and end <= len(data) and _crc(data[off + HEADER.size:end]) == crc


def _later_record(data: bytes, start: int) -> int | None:
    """The offset of any intact record at or after `start` (a sign of corruption, not a tear).

    Records are shorter than 16 MiB, so a record can start only where a zero byte (the top of
    its length) stands; trailing zeros (preallocation) are not searched.
    """
    last = len(data.rstrip(b"\0"))
    off = data.find(0, start, last)
    while off != -1:
        if _valid_record_at(data, off):
            return off
        off = data.find(0, off + 1, last)
    return None


class Scan:
    """The records of one file, and where its intact part ends."""

    def __init__(self, path: str, data: bytes, start: int) -> None:
        self.path = path
        self.data = data
        self.start = start
        self.end = start  # offset just past the last intact record
        self.torn = False  # damage at the tail was found (and should be cut off)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        data = self.data
        off = self.start
        size = len(data)
        while off < size:
            if size - off < HEADER.size:
                self._tail(off)
                return
            n, crc = HEADER.unpack_from(data, off)
            if n == 0 and crc == 0:
                self._tail(off)  # preallocated zeros: the end, if nothing follows
                return
            end = off + HEADER.size + n
            if end > size or _crc(data[off + HEADER.size:end]) != crc:
                self._tail(off)
                return
            yield off, data[off + HEADER.size:end]
            off = end
            self.end = off

    def _tail(self, off: int) -> None:
        data = self.data
        if _zeros(data, off):
            return
        later = None
        if len(data) - off >= HEADER.size:
            n = HEADER.unpack_from(data, off)[0]
            after = off + HEADER.size + n
            if after < len(data) and _valid_record_at(data, after):
                later = after
        if later is None:
            later = _later_record(data, off + 1)
        if later is not None:
            raise CorruptFile(self.path, off, f"damaged record followed by intact data at {later}")
        self.torn = True
