"""Configuration publish/subscribe: a value whose subscribers see every version, in order.

A watch alone cannot promise that: a node changed twice between two reads shows only the last
value (watches coalesce), so subscribers of a plain node skip versions. Here:

* `<path>` holds the number of the latest version (ASCII digits);
* each version is a child `<path>/v-<number:010d>-<guid>` holding the value.

A publication is one multi: bump the number in `<path>` (a compare-and-set on its version) and
create the child. Version numbers are therefore contiguous (1, 2, 3, ...), and two publishers
never get the same number; the GUID lets a publisher whose reply was lost find out whether its
multi landed, so a publication is made exactly once.

A subscriber lists the children after each children-watch event and yields every version
newer than the last it saw, in order. The publisher keeps the newest `keep` versions; a
subscriber that falls further behind is told how many versions it missed (`Version.missed`),
never skips them silently.

    value = ConfigValue(zk, "/config/feature-flags")
    await value.publish(b'{"beta": true}')
    async for version in value.versions():         # the current one first, then every new one
        apply(version.data)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import attrs

from zkserver.client import errors as E
from zkserver.recipes._common import RETRYABLE, ensure_path, join, retrying, wait_watch

if TYPE_CHECKING:
    from zkserver.client import Client, Watch

_VERSION_RE = re.compile(r"^v-(\d{10})-[0-9a-f]{32}$")


@attrs.frozen
class Version:
    number: int
    """1 for the first publication, then one more for each."""
    data: bytes
    missed: int = 0
    """Versions just before this one that the subscriber could not read (already trimmed)."""


def _number(name: str) -> int:
    m = _VERSION_RE.match(name)
    assert m is not None
    return int(m.group(1))


class ConfigValue:
    def __init__(self, zk: Client, path: str, *, keep: int = 64) -> None:
        if keep < 1:
            raise ValueError("keep at least one version")
        self.zk = zk
        self.path = path.rstrip("/")
        self.keep = keep

    async def _children(self, watch: bool = False) -> tuple[list[str], Watch | None]:
        if watch:
            children, _stat, w = await retrying(self.zk.get_children, self.path, watch=True)
        else:
            children, w = (await retrying(self.zk.get_children, self.path)).children, None
        return sorted((c for c in children if _VERSION_RE.match(c)), key=_number), w

    async def publish(self, data: bytes) -> int:
        """Publish a new version; returns its number."""
        await ensure_path(self.zk, self.path)
        guid = uuid.uuid4().hex
        while True:
            raw, stat = await retrying(self.zk.get, self.path)
            number = int(raw or b"0") + 1
            name = f"v-{number:010d}-{guid}"
            try:
                await (self.zk.transaction()
                       .set_data(self.path, str(number).encode(), version=stat.version)
                       .create(join(self.path, name), data)
                       .commit())
                break
            except E.BadVersionError:
                continue
            except RETRYABLE:
                if await retrying(self.zk.exists, join(self.path, name)) is not None:
                    break
        names, _ = await self._children()
        for old in names:
            if _number(old) <= number - self.keep:
                try:
                    await retrying(self.zk.delete, join(self.path, old))
                except E.NoNodeError:
                    pass
        return number

    async def current(self) -> Version | None:
        """The newest version, or None if nothing was published."""
        await ensure_path(self.zk, self.path)
        while True:
            names, _ = await self._children()
            if not names:
                return None
            try:
                data, _ = await retrying(self.zk.get, join(self.path, names[-1]))
                return Version(_number(names[-1]), data or b"")
            except E.NoNodeError:
                continue

    async def versions(self, since: int | None = None) -> AsyncIterator[Version]:
        """Every version after number `since`, in order, waiting for new ones forever.
        Without `since`: the current version first (if any), then every later one."""
        await ensure_path(self.zk, self.path)
        last = since
        while True:
            names, watch = await self._children(watch=True)
            assert watch is not None
            if last is None:
                last = _number(names[-1]) - 1 if names else 0
            for name in names:
                number = _number(name)
                if number <= last:
                    continue
                try:
                    data, _ = await retrying(self.zk.get, join(self.path, name))
                except E.NoNodeError:
                    continue  # trimmed meanwhile: counted as missed by the next one
                missed, last = number - last - 1, number
                yield Version(number, data or b"", missed)
            await wait_watch(watch)
