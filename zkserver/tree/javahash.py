"""The iteration order of Java hash sets, where ZooKeeper lets it reach clients.

ZooKeeper deletes a closing session's ephemerals in the order it iterates a *clone* of the
session's `HashSet` (the closeSession transaction lists them in that order), and each deletion
fires its watches. So a client watching several of them sees the NodeDeleted events in Java hash
order. Java's `HashMap` iterates its buckets in index order, `(h ^ (h >>> 16)) & (capacity - 1)`
with `h = String.hashCode()`, and each bucket in insertion order (a resize splits buckets but
keeps the relative order), which is what `iteration_order` computes from the insertion order.

Not modelled: a bucket of 8 or more colliding strings (Java then resizes early, or turns the
bucket into a tree).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

DEFAULT_CAPACITY = 16  # a new HashMap's table at its first insertion


def string_hash(s: str) -> int:
    """Java's String.hashCode() over UTF-16 code units, as an unsigned 32-bit value."""
    h = 0
    units = s.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h


def id_hash(scheme: str, ident: str) -> int:
    """The hashCode() of ZooKeeper's Id record (jute-generated), as an unsigned 32-bit value."""
    h = (37 * 17 + string_hash(scheme)) & 0xFFFFFFFF
    return (37 * h + string_hash(ident)) & 0xFFFFFFFF


def _order(items: Iterable[Any], hash_of: Callable[[Any], int], capacity: int) -> list[Any]:
    ranked = list(items)
    mask = capacity - 1
    keys = {}
    for i, item in enumerate(ranked):
        h = hash_of(item)
        keys[item] = ((h ^ (h >> 16)) & mask, i)
    return sorted(ranked, key=keys.__getitem__)


def iteration_order(items: Iterable[str], capacity: int) -> list[str]:
    """`items` (given in insertion order) as a HashMap with that table size iterates them."""
    return _order(items, string_hash, capacity)


def identity_order(ids: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A connection's identities (given in the order they were added) in the order ZooKeeper
    iterates them: its ServerCnxn keeps them in a ConcurrentHashMap-backed set, which is how
    an `auth` ACL entry expands (and so the order getACL shows). Exact up to 11 identities (a
    ConcurrentHashMap resize reorders its buckets in a way not modelled here)."""
    ids = list(ids)
    return _order(ids, lambda i: id_hash(*i), grown_capacity(len(ids), DEFAULT_CAPACITY))


def table_size_for(n: int) -> int:
    """HashMap.tableSizeFor: the smallest power of two >= n (at least 1)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def grown_capacity(size: int, capacity: int) -> int:
    """The table size after growing to `size` entries (resize when size > 0.75 * capacity)."""
    while size > capacity * 3 // 4:
        capacity *= 2
    return capacity


def clone_capacity(size: int) -> int:
    """The table size of `HashSet.clone()` of a set holding `size` entries (JDK 8-17)."""
    if size == 0:
        return DEFAULT_CAPACITY
    return table_size_for(int(size / 0.75 + 1.0))
