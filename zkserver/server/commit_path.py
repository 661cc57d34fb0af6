"""What the `Server` needs from the part that makes writes durable and committed.

A standalone server commits to its local log (`LocalLog`); an ensemble member commits through
ZAB (`zkserver.quorum.node.Member`). The server holds one of them and never asks which: it
recovers what the path wants kept, starts its tasks, hands it the transactions the engine
prepares, and asks it whether to serve, whether to expire sessions, and what to add to `mntr`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar, Protocol

import trio

from zkserver.engine import Client, Engine, Entry
from zkserver.storage import snapshot as snapmod
from zkserver.storage.group_commit import GroupCommitter
from zkserver.storage.snapshot_policy import SnapshotPolicy
from zkserver.txn import Txn

if TYPE_CHECKING:
    from zkserver.server.server import Server
    from zkserver.storage.recovery import Recovered

log = logging.getLogger(__name__)

Prepared = tuple[Txn, Client | None, Entry | None]


class CommitPath(Protocol):
    keeps_history: ClassVar[bool]  # recovery keeps the replayed transactions (for DIFF syncs)
    engine_class: ClassVar[type[Engine]]

    @property
    def mode(self) -> str:
        """What `srvr` calls this server: standalone, leader, follower, looking..."""
        ...

    @property
    def serving(self) -> bool:
        """Whether clients may use this server now."""
        ...

    @property
    def expires_sessions(self) -> bool:
        """Whether this server runs the session and container timers now."""
        ...

    @property
    def outstanding_limit(self) -> int:
        """This server's share of globalOutstandingLimit."""
        ...

    async def start(self, nursery: trio.Nursery) -> None:
        """Start the path's tasks in the server's nursery."""
        ...

    def submit(self) -> None:
        """The engine has prepared transactions (or asked something of the path)."""
        ...

    def metrics(self) -> dict[str, object]:
        """Extra `mntr` lines."""
        ...


class LocalLog:
    """A standalone server's commit path: the group committer on the local log; a write is
    committed once it is durable, then applied and answered."""

    keeps_history: ClassVar[bool] = False
    engine_class: ClassVar[type[Engine]] = Engine

    def __init__(self, server: Server, recovered: Recovered) -> None:
        self.server = server
        self.engine = server.engine
        if recovered.replayed:  # so that the next start is quick
            snapmod.write(server.disk, server.snap_dir, recovered.tree, server.wall())
        self.snapshots = SnapshotPolicy(server.disk, server.snap_dir, server.config.snap_count,
                                        lambda: self.engine.tree, server.wall)
        self.committer: GroupCommitter[Prepared] = GroupCommitter(
            server.txnlog, self.snapshots, self._durable, lambda r: r[0])

    mode = "standalone"
    serving = True
    expires_sessions = True

    @property
    def outstanding_limit(self) -> int:
        return int(self.server.config.global_outstanding_limit)

    async def start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.committer.run)

    @property
    def quiet(self) -> bool:
        """No write anywhere between prep and the tree, and no snapshot being written: the
        moment an admin `restore` may swap the tree."""
        return not (self.snapshots.running or self.committer.queue or self.engine.writes_pending)

    def submit(self) -> None:
        if self.engine.to_commit:
            self.committer.append(self.engine.take_commits())

    def _durable(self, batch: list[Prepared]) -> None:
        with self.server.flusher:  # the round's replies leave as it ends
            self.engine.apply_committed(batch, self.server.now())

    def metrics(self) -> dict[str, object]:
        return {}
