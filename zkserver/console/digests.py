"""Whether the ensemble's members hold the same tree: their digests compared at one zxid.

A digest only means something next to the zxid it was taken at, and members are rarely at the
same zxid while writes flow. So the console keeps what each member reported (the `hash`
four-letter word: `<zxid in hex>: <digest>` lines, ZooKeeper's digest log, or zkserver's latest
digest) for a while, and compares at the newest zxid every reporting member has a digest for.
The member(s) whose digest differs from the most common one there are named; no common zxid
yet means "not compared", never "agree".
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Iterable

import attrs

KEEP = 256  # digests remembered per member
_LINE = re.compile(r"([0-9a-fA-F]+):\s*(-?[0-9]+)")


def parse_hash(text: str) -> list[tuple[int, int]]:
    """(zxid, digest) pairs of a `hash` reply; lines that are not such pairs are skipped."""
    out = []
    for line in text.splitlines():
        m = _LINE.fullmatch(line.strip())
        if m:
            out.append((int(m.group(1), 16), int(m.group(2)) & 0xFFFF_FFFF_FFFF_FFFF))
    return out


@attrs.frozen
class Verdict:
    state: str  # "agree", "differ", "pending" (nothing to compare yet)
    text: str
    zxid: int | None = None
    differing: tuple[int, ...] = ()


class DigestBook:
    """What each member reported, by zxid, for the members table's digest check."""

    def __init__(self) -> None:
        self._seen: dict[int, OrderedDict[int, int]] = {}

    def record(self, sid: int, pairs: Iterable[tuple[int, int]]) -> None:
        book = self._seen.setdefault(sid, OrderedDict())
        for zxid, digest in pairs:
            book[zxid] = digest
            book.move_to_end(zxid)
        while len(book) > KEEP:
            book.popitem(last=False)

    def verdict(self, sids: Iterable[int]) -> Verdict:
        """The check across `sids` (the members up now)."""
        sids = sorted(sids)
        books = {sid: self._seen.get(sid, {}) for sid in sids}
        silent = [sid for sid, book in books.items() if not book]
        if len(sids) < 2:
            return Verdict("pending", "Digest check: fewer than two members are up.")
        if silent:
            return Verdict("pending", "Digest check: no digest from member "
                           + ", ".join(map(str, silent)) + " yet (its `hash` four-letter word "
                           "must be in 4lw.commands.whitelist).")
        common = set.intersection(*(set(book) for book in books.values()))
        if not common:
            return Verdict("pending", "Digest check: not compared yet, the members report "
                           "digests at different zxids (writes in flight).")
        zxid = max(common)
        by_member = {sid: books[sid][zxid] for sid in sids}
        counts = Counter(by_member.values())
        if len(counts) == 1:
            return Verdict("agree", f"Digest check: all {len(sids)} members agree at zxid "
                           f"0x{zxid:x} (digest {next(iter(counts)):#x}).", zxid)
        (usual, most), (_, next_most) = counts.most_common(2)
        if most == next_most:  # no majority: every member is named
            odd = tuple(sids)
            lead = ""
        else:
            odd = tuple(sid for sid, d in by_member.items() if d != usual)
            lead = f"most have {usual:#x}; "
        detail = "; ".join(f"member {sid} has {by_member[sid]:#x}" for sid in odd)
        return Verdict("differ", f"Digest check: members differ at zxid 0x{zxid:x}: {lead}"
                       f"{detail}.", zxid, odd)
