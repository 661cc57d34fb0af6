"""The window of logged transactions a server keeps in memory.

A leader brings a learner up to date from it: a DIFF of what follows the learner's last zxid,
a TRUNC back to the last zxid both hold, or — when the learner's position lies before the
window — a SNAP of the whole state. A learner keeps the same window to append to, check for
gaps and roll back to. Transactions are in strictly increasing zxid order; `base_zxid` is the
state's zxid just before the first of them (a snapshot's, or 0 for an empty tree).

The window keeps about `limit` transactions, but never drops one its owner has not applied
yet (`trim` is told how far that is): those are still to be handed to the state machine.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from operator import attrgetter

from zkserver.txn import Txn

_zxid = attrgetter("zxid")


class History:
    def __init__(self, txns: Iterable[Txn] = (), base_zxid: int = 0,
                 limit: int = 100_000) -> None:
        self._txns: list[Txn] = list(txns)
        self._base = base_zxid
        self.limit = limit
        self.trim(self.last_zxid)

    def __len__(self) -> int:
        return len(self._txns)

    def __iter__(self) -> Iterator[Txn]:
        return iter(self._txns)

    @property
    def base_zxid(self) -> int:
        return self._base

    @property
    def last_zxid(self) -> int:
        return self._txns[-1].zxid if self._txns else self._base

    @property
    def first_zxid(self) -> int | None:
        """The oldest transaction held, if any."""
        return self._txns[0].zxid if self._txns else None

    def append(self, txns: Iterable[Txn]) -> None:
        self._txns.extend(txns)

    def trim(self, applied: int) -> None:
        """Forget the oldest transactions beyond the limit, of those up to `applied`."""
        # Trim in steps of an eighth of the window, not one batch at a time: deleting from the
        # front of a long list moves all of it.
        h = self._txns
        excess = min(len(h) - self.limit, bisect.bisect_right(h, applied, key=_zxid))
        if excess > 0 and (excess >= self.limit // 8 or excess == len(h)):
            self._base = h[excess - 1].zxid
            del h[:excess]

    def after(self, zxid: int) -> list[Txn]:
        """Transactions with a zxid above `zxid`, in order."""
        return self._txns[bisect.bisect_right(self._txns, zxid, key=_zxid):]

    def between(self, lo: int, hi: int) -> list[Txn]:
        """Transactions with lo < zxid <= hi, in order."""
        h = self._txns
        return h[bisect.bisect_right(h, lo, key=_zxid):bisect.bisect_right(h, hi, key=_zxid)]

    def has(self, zxid: int) -> bool:
        """Whether `zxid` is a position this history can continue from."""
        if zxid == self._base:
            return True
        h = self._txns
        i = bisect.bisect_left(h, zxid, key=_zxid)
        return i < len(h) and h[i].zxid == zxid

    def last_common(self, zxid: int) -> int | None:
        """The highest position at or below `zxid` held here, if the window reaches back."""
        h = self._txns
        i = bisect.bisect_right(h, zxid, key=_zxid)
        if i:
            return h[i - 1].zxid
        if self._base == 0:
            return 0  # the window reaches back to the empty tree
        return None

    def truncate(self, zxid: int) -> None:
        """Forget every transaction after `zxid` (they were never committed)."""
        del self._txns[bisect.bisect_right(self._txns, zxid, key=_zxid):]

    def reset(self, zxid: int) -> None:
        """A snapshot at `zxid` replaced everything: the window starts again after it."""
        self._txns = []
        self._base = zxid
