"""A shared counter updated by compare-and-set (kazoo's `Counter`, on the same node).

The value lives in the data of `<path>`: ASCII digits as kazoo writes them (`repr(value)`), or,
with `curator=True`, a 4-byte big-endian signed int as Curator's `SharedCount` writes it.
An update reads the value and its version and writes the new value only if the version is
unchanged (`setData` with that version); on `BadVersionError` it reads again and retries. No
lock, no lost update: two concurrent increments both land, in some order.

A write whose reply is lost is the one ambiguous case: the counter cannot know whether it was
applied. Rather than risk applying the change twice, `add` then raises
`ConnectionLossError`; callers that want exactly-once increments put a request id in their own
data (or use `compare_and_set`, whose retry after a loss can check the value).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import attrs

from zkserver.client import errors as E
from zkserver.recipes._common import ensure_path, retrying

if TYPE_CHECKING:
    from zkserver.client import Client


@attrs.frozen
class Update:
    pre_value: int
    post_value: int
    version: int
    """The node's version after the write."""


class Counter:
    def __init__(self, zk: Client, path: str, default: int = 0, *, curator: bool = False
                 ) -> None:
        self.zk = zk
        self.path = path
        self.default = default
        self.curator = curator

    def _decode(self, data: bytes | None) -> int:
        if not data:
            return self.default
        if self.curator:
            value: int = struct.unpack(">i", data)[0]
            return value
        return int(data.decode("ascii"))

    def _encode(self, value: int) -> bytes:
        return struct.pack(">i", value) if self.curator else repr(value).encode("ascii")

    async def _read(self) -> tuple[int, int]:
        while True:
            try:
                data, stat = await retrying(self.zk.get, self.path)
                return self._decode(data), stat.version
            except E.NoNodeError:
                await ensure_path(self.zk, self.path)

    async def get(self) -> int:
        """The value now."""
        return (await self._read())[0]

    async def add(self, delta: int) -> Update:
        """Add `delta` (may be negative) atomically; returns the values before and after."""
        while True:
            value, version = await self._read()
            try:
                stat = await self.zk.set(self.path, self._encode(value + delta), version)
                return Update(value, value + delta, stat.version)
            except E.BadVersionError:
                continue

    async def compare_and_set(self, expected: int, new: int) -> bool:
        """Set `new` if the value is `expected`; False otherwise."""
        while True:
            value, version = await self._read()
            if value != expected:
                return False
            try:
                await self.zk.set(self.path, self._encode(new), version)
                return True
            except E.BadVersionError:
                continue
            except (E.ConnectionLossError, E.OperationTimeoutError):
                # Did our write land? If the value is now `new` at the next version, yes.
                data, stat = await retrying(self.zk.get, self.path)
                if stat.version == version + 1 and self._decode(data) == new:
                    return True
                if stat.version == version:
                    continue
                return False
