"""Leader election that runs a task while leader: kazoo's `Election`, on the same nodes.

Candidates queue on a `Lock` at `path` (kazoo's Election is exactly that: `<uuid>__lock__<seq>`
nodes whose data is the candidate's identifier), so kazoo candidates and ours take turns in one
queue. The lowest node leads; each candidate watches only its predecessor.

    election = Election(zk, "/election/scheduler", "host-a")
    await election.run(lead)         # returns what `lead()` returns, once it returns

The leader's task runs inside the lock's `hold()`: it is cancelled the moment leadership is in
doubt (connection SUSPENDED, session EXPIRED, our node deleted), which kazoo does not do (a
kazoo leader keeps running unless it adds its own listener). `run` then raises
`LeadershipLostError`, or, with `requeue=True`, waits for the connection to come back and queues
again. When the task returns, leadership is given up (our node deleted) and `run` returns its
result. Cancelling `run` withdraws the candidate, leaving no node behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from zkserver.client import State
from zkserver.recipes._common import SessionLostError
from zkserver.recipes.lock import Held, Lock, LockLostError

if TYPE_CHECKING:
    from zkserver.client import Client

T = TypeVar("T")


class LeadershipLostError(SessionLostError):
    """The leader task was cancelled because leadership was in doubt."""


class Election:
    def __init__(self, zk: Client, path: str, identifier: str = "") -> None:
        self.zk = zk
        self.path = path
        self.identifier = identifier
        self.held: Held | None = None
        """While leading: the lock node and fencing token (`held.token`)."""

    @property
    def is_leader(self) -> bool:
        return self.held is not None

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any, requeue: bool = False,
                  suspended_is_lost: bool = True) -> T:
        """Wait to be elected, run `fn(*args)` as leader, give leadership up when it returns.

        Leadership in doubt cancels `fn`; then `LeadershipLostError` is raised, or with
        `requeue` the candidate queues again once reconnected (a session that is over raises
        its error instead)."""
        while True:
            lock = Lock(self.zk, self.path, self.identifier)
            try:
                async with lock.hold(suspended_is_lost=suspended_is_lost) as held:
                    self.held = held
                    try:
                        return await fn(*args)
                    finally:
                        self.held = None
            except LockLostError as e:
                if not requeue or self.zk.state.terminal:
                    raise LeadershipLostError(str(e)) from e
            await self.zk.wait_for_state(State.CONNECTED, State.READ_ONLY, State.EXPIRED,
                                         State.AUTH_FAILED, State.CLOSED)

    async def contenders(self) -> list[str]:
        """Candidates' identifiers, leader first."""
        return await Lock(self.zk, self.path).contenders()

    async def leader(self) -> str | None:
        """The current leader's identifier, if there is one."""
        contenders = await self.contenders()
        return contenders[0] if contenders else None
