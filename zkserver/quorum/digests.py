"""Catching a replica whose state has silently diverged from its leader's.

Every server keeps a digest of its tree. The leader's COMMITs (INFORMs for observers, and its
PINGs) carry its digest at the last zxid it has applied; a learner compares that with its own
digest at the same zxid, whichever of the two it learns first. Digests are only known after
the driver has applied a batch (the ZAB core decides commits; the driver applies them and
reports `applied(zxid, digest)`), so a check always concerns an earlier batch than the
message that carries it — at most one batch late, and never skipped while commits flow.
"""

from __future__ import annotations

from collections import OrderedDict

KEEP = 64  # our own recent digests, for leader digests that arrive after we applied


class DigestMismatch(Exception):
    """This replica's state differs from the leader's after the same transaction."""


class DigestCheck:
    def __init__(self, sid: int) -> None:
        self.sid = sid
        self._ours: OrderedDict[int, int] = OrderedDict()
        self._theirs: dict[int, int] = {}
        self._applied = 0

    def reset(self, zxid: int) -> None:
        """The state was replaced (snapshot, rollback) and is now at `zxid`, or the leader
        changed: nothing known so far can be compared any more."""
        self._ours.clear()
        self._theirs.clear()
        self._applied = zxid

    def ours(self, zxid: int, digest: int) -> None:
        """This server's digest after applying up to `zxid`."""
        self._applied = zxid
        self._ours[zxid] = digest
        if len(self._ours) > KEEP:
            self._ours.popitem(last=False)
        if self._theirs:
            expected = self._theirs.pop(zxid, None)
            if expected is not None:
                self._compare(zxid, digest, expected)
            for z in [z for z in self._theirs if z < zxid]:
                del self._theirs[z]  # we applied past it inside a batch: not comparable

    def theirs(self, zxid: int, digest: int) -> None:
        """The leader's digest after applying up to `zxid` (0: none known yet)."""
        if not zxid:
            return
        mine = self._ours.get(zxid)
        if mine is not None:
            self._compare(zxid, mine, digest)
        elif zxid > self._applied:
            self._theirs[zxid] = digest

    def _compare(self, zxid: int, mine: int, theirs: int) -> None:
        if mine != theirs:
            raise DigestMismatch(
                f"server {self.sid}: state digest {mine:#x} after zxid {zxid:#x} differs "
                f"from the leader's {theirs:#x}; stopping rather than diverge")
