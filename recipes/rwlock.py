"""A read/write lock, node for node kazoo's `ReadLock` and `WriteLock` on one path.

Readers create `<uuid>__rlock__<seq>`, writers `<uuid>__lock__<seq>` (the exclusive lock's
name, so a kazoo `Lock`, a kazoo `WriteLock` and our `WriteLock` all exclude each other).

* A writer holds the lock when no node of either kind has a lower sequence number; it watches
  its immediate predecessor of any kind.
* A reader holds it when no *writer* node has a lower sequence number; it watches the nearest
  earlier writer. Readers therefore share the lock, and a waiting writer blocks readers that
  queue after it (no writer starvation). A writer's release wakes every reader queued behind
  it at once, which is intended: all of them may proceed.

Everything else (protected creates, cancellation-safe cleanup, `hold()` with cancellation on
loss, fencing tokens, revocation) is the exclusive lock's; see `recipes.lock`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zkserver.recipes.lock import Lock

if TYPE_CHECKING:
    from zkserver.client import Client


class WriteLock(Lock):
    """The exclusive side: blocked by any earlier reader or writer."""

    NODE_NAME = "__lock__"
    EXCLUDE_NAMES = ("__lock__", "__rlock__")


class ReadLock(Lock):
    """The shared side: blocked only by earlier writers."""

    NODE_NAME = "__rlock__"
    EXCLUDE_NAMES = ("__lock__",)


class ReadWriteLock:
    """Both sides of one read/write lock: `rw.read_lock`, `rw.write_lock` (each a separate
    contender with its own node, so a task may hold one side at a time per object)."""

    def __init__(self, zk: Client, path: str, identifier: str = "") -> None:
        self.path = path
        self.read_lock = ReadLock(zk, path, identifier)
        self.write_lock = WriteLock(zk, path, identifier)
