"""A leader latch: an is-leader flag you can read and await (Curator's LeaderLatch layout).

Layout: participants create protected EPHEMERAL_SEQUENTIAL nodes
`<path>/_c_<uuid>-latch-<seq>` holding their participant id, under container parents, as
Curator's LeaderLatch does; a Java LeaderLatch on the same path takes part in the same election.
The lowest node leads; every other participant watches only its predecessor.

    async with LeaderLatch(zk, "/latch/jobs", "worker-1") as latch:
        async with latch.leading():      # waits to lead; cancelled when leadership is lost
            await leader_only_work()

Why:
* `is_leader` turns False the moment the connection drops (SUSPENDED): until the session is
  confirmed, someone else may already lead. On reconnection the latch lists the children again
  and is leader only if its node still exists, is first, and belongs to this session (the
  CURATOR-696 check), so a node left by an earlier session never passes for ours.
* If our node is deleted by someone, the latch queues again with a new node.
* The latch runs one background task, owned by the `async with`; leaving the block deletes our
  node (shielded), handing leadership on at once instead of after a session timeout.
* When the session ends, the latch stops: `is_leader` is False and `wait_leader()` raises the
  session's error. (A new session needs a new latch: see `recipes.session`.)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import attrs

from zkserver.client import CreateMode, State
from zkserver.client import errors as E
from zkserver.recipes._common import (
    SessionLostError,
    background,
    create_unique,
    delete_by_prefix,
    drop_watch,
    ensure_path,
    guaranteed_delete,
    join,
    retrying,
    sequence,
)
from zkserver.recipes._lifetime import Lifetime

if TYPE_CHECKING:
    from zkserver.client import Client, Watch

LATCH_NAME = "latch-"
_LATCH_RE = re.compile(r"latch-(?:-\d{9}|\d{10})$")


class LatchLostError(SessionLostError):
    """Leadership may have passed to someone else while the `leading()` body ran."""


@attrs.frozen
class Participant:
    id: str
    is_leader: bool


class LeaderLatch(Lifetime):
    def __init__(self, zk: Client, path: str, participant_id: str = "") -> None:
        self.zk = zk
        self.path = path.rstrip("/")
        self.id = participant_id
        self.node: str | None = None
        self._leader = False
        self._changed = anyio.Event()
        self._kick = anyio.Event()
        self.error: BaseException | None = None

    # -- the flag -------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._leader

    def _set_leader(self, value: bool) -> None:
        if value != self._leader:
            self._leader = value
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_leader(self) -> None:
        """Return once this participant leads; raise the session's error if it ended."""
        while not self._leader:
            if self.error is not None:
                raise self.error
            await self._changed.wait()

    async def wait_not_leader(self) -> None:
        """Return once this participant does not lead (at once if it does not)."""
        while self._leader:
            await self._changed.wait()

    @asynccontextmanager
    async def leading(self) -> AsyncIterator[LeaderLatch]:
        """Wait to lead, then run the body only while this participant leads: the body is
        cancelled the moment `is_leader` turns False (connection lost, session over, node
        deleted, latch closing), and `LatchLostError` is raised. The safe way to do leader-only
        work; reading `is_leader` between awaits is only a hint."""
        await self.wait_leader()
        body = anyio.CancelScope()
        lost = False

        async def watch() -> None:
            nonlocal lost
            await self.wait_not_leader()
            lost = True
            body.cancel()

        async with background() as tasks:
            tasks.start_soon(watch)
            with body:
                yield self
        if lost and body.cancelled_caught:
            raise LatchLostError(f"leadership of {self.path} was lost")

    # -- life cycle -----------------------------------------------------------------------------

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[LeaderLatch]:
        try:
            async with background() as tasks:
                tasks.start_soon(self._watch_states)
                tasks.start_soon(self._run)
                yield self
        finally:
            self._set_leader(False)
            node, self.node = self.node, None
            if node is not None:
                await guaranteed_delete(self.zk, node)

    async def _watch_states(self) -> None:
        async with self.zk.states() as states:
            async for state in states:
                if state != State.CONNECTED:
                    self._set_leader(False)
                self._kick.set()

    async def _run(self) -> None:
        try:
            await ensure_path(self.zk, self.path, container=True)
            while True:
                if self.node is None:
                    prefix = f"_c_{uuid.uuid4().hex}-{LATCH_NAME}"
                    try:
                        self.node, _ = await create_unique(
                            self.zk, self.path, prefix, self.id.encode(),
                            mode=CreateMode.EPHEMERAL_SEQUENTIAL, container_parents=True)
                    except BaseException:
                        await delete_by_prefix(self.zk, self.path, prefix)
                        raise
                await self._check()
        except E.SessionExpiredError as e:
            self.error = e
            self._set_leader(False)
            self._changed.set()

    async def _check(self) -> None:
        """Follow the election until our node must be made again."""
        assert self.node is not None
        name = self.node.rsplit("/", 1)[1]
        while True:
            self._kick = anyio.Event()
            if not self.zk.state.connected:
                self._set_leader(False)
                if self.zk.state.terminal:
                    raise E.SessionExpiredError(f"session {self.zk.state.value}")
                await self._kick.wait()
                continue
            try:
                children = (await retrying(self.zk.get_children, self.path)).children
            except E.NoNodeError:
                children = []
            nodes = sorted((c for c in children if _LATCH_RE.search(c)), key=sequence)
            if name not in nodes:
                self._set_leader(False)
                self.node = None
                return
            index = nodes.index(name)
            if index == 0:
                stat = await retrying(self.zk.exists, self.node)
                if stat is None or stat.ephemeralOwner != self.zk.session_id:
                    self._set_leader(False)
                    self.node = None
                    return
                watched = self.node
            else:
                self._set_leader(False)
                watched = join(self.path, nodes[index - 1])
            try:
                _data, _stat, watch = await retrying(self.zk.get, watched, watch=True)
            except E.NoNodeError:
                continue
            if index == 0 and self.zk.state == State.CONNECTED:
                self._set_leader(True)
            await self._wait(watch)

    async def _wait(self, watch: Watch) -> None:
        """Until the watch fires or the connection state changes."""
        errors: list[E.ZooKeeperError] = []
        async with anyio.create_task_group() as tasks:
            async def on_watch() -> None:
                try:
                    await watch
                except E.ZooKeeperError as e:
                    errors.append(e)
                tasks.cancel_scope.cancel()

            tasks.start_soon(on_watch)
            await self._kick.wait()
            tasks.cancel_scope.cancel()
        if errors:
            raise errors[0]
        await drop_watch(watch)

    # -- looking on -----------------------------------------------------------------------------

    async def participants(self) -> list[Participant]:
        """Every participant, leader first."""
        try:
            children = (await retrying(self.zk.get_children, self.path)).children
        except E.NoNodeError:
            return []
        out: list[Participant] = []
        for child in sorted((c for c in children if _LATCH_RE.search(c)), key=sequence):
            try:
                data, _ = await retrying(self.zk.get, join(self.path, child))
            except E.NoNodeError:
                continue
            out.append(Participant((data or b"").decode(errors="replace"), not out))
        return out

    async def leader(self) -> Participant | None:
        participants = await self.participants()
        return participants[0] if participants else None
