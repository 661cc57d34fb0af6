"""What every recipe needs and the client does not give in this shape.

* Sequence numbers: ZooKeeper's suffix is a signed 32-bit counter printed with 10 digits; after
  2**31 creates it wraps to a negative number. Recipes order contenders by the parsed integer,
  never by comparing strings (kazoo #606, #730).
* `create_unique`: a sequential or ephemeral create whose name carries a GUID chosen by the
  recipe (kazoo's `<uuid>__lock__` layout, Curator's `_c_<uuid>-` prefix), retried after a
  connection loss by first looking for a child with that GUID. `client.protected_create` does
  this too, but only with Curator's prefix; kazoo-compatible recipes need the GUID elsewhere in
  the name. A node found that way must belong to this session (its ephemeralOwner), or a dead
  session's node could be taken for ours (CURATOR-498, -604).
* `guaranteed_delete`: cleanup that survives cancellation and connection loss. It runs shielded
  and keeps trying while the session may still be alive; it stops once the session is over
  (the server deleted our ephemerals) or once no server has been reachable for longer than the
  session timeout (the session cannot have survived that either). A contender node left behind
  by a cancelled acquire would otherwise block everyone once the session resumed (kazoo #732).
* `background()`: a task group for a recipe's helper tasks that gives back the body's own
  exception instead of an ExceptionGroup of one.
* `wait_watch`: await a one-time watch, and take it back from the server if we stop waiting.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import anyio
import anyio.abc

from zkserver import client
from zkserver.client import CreateMode, State
from zkserver.client import errors as E

if TYPE_CHECKING:
    from zkserver.client import Client, Stat, Watch, WatchedEvent

P = ParamSpec("P")
T = TypeVar("T")

RETRYABLE = (E.ConnectionLossError, E.OperationTimeoutError)
"""Errors after which the outcome of a request is unknown but the session may be fine."""

SEQUENCE_RE = re.compile(r"(-\d{9}|\d{10})$")
"""The suffix is Java's `%010d`: ten digits, or a minus sign and nine digits once it wraps."""

CLEANUP_LIMIT = 60.0
"""Longest a shielded cleanup may hold up a finished task, in seconds."""

CANCELLED_CLEANUP_LIMIT = 1.0
"""The same for a task that is being cancelled. When the scope that is cancelled also encloses
the client (`async with client.connect(...)`), the client's own reader and writer are cancelled
with it, and no request can be answered any more however long we wait; when the client lives
on, a cleanup takes a round trip."""


def _being_cancelled() -> bool:
    """True if the calling task is inside a cancelled scope (or one whose deadline passed):
    its next unshielded await will raise the backend's cancellation exception."""
    deadline = anyio.current_effective_deadline()
    return deadline == -math.inf or deadline <= anyio.current_time()


async def _cleanup_budget(zk: Client) -> float:
    if _being_cancelled():
        return CANCELLED_CLEANUP_LIMIT
    return max(CLEANUP_LIMIT, 3 * session_timeout(zk))


class RecipeError(Exception):
    """Base of the errors the recipes raise themselves."""


class SessionLostError(RecipeError):
    """What a recipe held (a lock, leadership, a lease) may be gone: the session was suspended
    or has expired, or the recipe's node disappeared. Work done under it must stop."""


def sequence(name: str) -> int:
    """The signed sequence number at the end of a sequential node's name."""
    m = SEQUENCE_RE.search(name)
    if m is None:
        raise ValueError(f"{name!r} has no sequence suffix")
    return int(m.group(1))


def join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def session_over(zk: Client) -> bool:
    return zk.state.terminal


async def _backoff(attempt: int) -> None:
    await anyio.sleep(min(0.05 * 2 ** min(attempt, 6), 1.0))


async def wait_connected(zk: Client, timeout: float) -> bool:
    """Wait until the client is connected; False if it did not happen within `timeout` seconds
    or the session ended."""
    with anyio.move_on_after(timeout):
        state = await zk.wait_for_state(State.CONNECTED, State.READ_ONLY, State.EXPIRED,
                                        State.AUTH_FAILED, State.CLOSED)
        return state.connected
    return False


def session_timeout(zk: Client) -> float:
    return (zk.negotiated_timeout / 1000) or zk.session_timeout


async def find_child(zk: Client, parent: str, prefix: str, *, ephemeral: bool) -> str | None:
    """The child of `parent` whose name starts with `prefix` (our GUID), if it exists; for
    ephemerals only one this session owns counts."""
    try:
        children = (await zk.get_children(parent)).children
    except E.NoNodeError:
        return None
    for child in children:
        if child.startswith(prefix):
            path = join(parent, child)
            if ephemeral:
                stat = await zk.exists(path)
                if stat is None or stat.ephemeralOwner != zk.session_id:
                    continue
            return path
    return None


async def create_unique(zk: Client, parent: str, prefix: str, data: bytes = b"", *,
                        mode: CreateMode = CreateMode.EPHEMERAL_SEQUENTIAL,
                        container_parents: bool = False) -> tuple[str, Stat]:
    """Create `<parent>/<prefix>` (plus the sequence suffix for sequential modes), where
    `prefix` holds a GUID unique to this attempt, exactly once despite connection losses.

    Missing parents are created (as containers with `container_parents`), also when they
    vanish between attempts. Returns the created path and its Stat. Keeps trying while the
    session lives; a caller that wants a bound cancels."""
    mode = CreateMode(mode)
    attempt = 0
    lost = False
    while True:
        try:
            if lost:
                found = await find_child(zk, parent, prefix, ephemeral=mode.ephemeral)
                if found is not None:
                    stat = await zk.exists(found)
                    if stat is not None:
                        return found, stat
            created = await zk.create_with_stat(join(parent, prefix), data, mode=mode)
            assert created.stat is not None
            return created.path, created.stat
        except E.NoNodeError:
            await ensure_path(zk, parent, container=container_parents)
        except RETRYABLE:
            lost = True
            attempt += 1
            await _backoff(attempt)


async def ensure_path(zk: Client, path: str, *, container: bool = False) -> None:
    """`zk.ensure_path`, retried after connection loss (it is idempotent)."""
    await client.retry(zk.ensure_path, path, container=container,
                       policy=client.RetryPolicy(max_tries=None, deadline=None))


async def retrying(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call an idempotent client method until it gets an answer (or the session ends)."""
    keywords: dict[str, Any] = kwargs  # fn's own, so none of them is retry()'s
    return await client.retry(fn, *args, policy=client.RetryPolicy(max_tries=None,
                                                                  deadline=None), **keywords)


async def guaranteed_delete(zk: Client, path: str, version: int = -1) -> bool:
    """Delete `path`, shielded from cancellation, retrying across connection losses while the
    session may still be alive. True if the node is gone (deleted now, or already missing);
    False if we gave up because the session is over, which removes our ephemerals anyway."""
    budget = await _cleanup_budget(zk)
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(budget):
            attempt = 0
            while not session_over(zk):
                # No server for longer than the session timeout: the session is dead too.
                if not zk.connected and not await wait_connected(zk, session_timeout(zk) * 1.5):
                    return False
                try:
                    await zk.delete(path, version)
                    return True
                except E.NoNodeError:
                    return True
                except E.SessionExpiredError:
                    return False
                except RETRYABLE:
                    attempt += 1
                    await _backoff(attempt)
    return False


async def delete_by_prefix(zk: Client, parent: str, prefix: str) -> None:
    """Shielded cleanup of a create whose outcome we never learnt: delete every child of
    `parent` this session owns whose name starts with `prefix`."""
    budget = await _cleanup_budget(zk)
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(budget):
            attempt = 0
            while not session_over(zk):
                if not zk.connected and not await wait_connected(zk, session_timeout(zk) * 1.5):
                    return
                try:
                    found = await find_child(zk, parent, prefix, ephemeral=False)
                    if found is None:
                        return
                    await guaranteed_delete(zk, found)
                except E.SessionExpiredError:
                    return
                except RETRYABLE:
                    attempt += 1
                    await _backoff(attempt)


async def drop_watch(watch: Watch) -> None:
    """Take back a one-time watch we no longer wait for (shielded, briefly). While
    disconnected only the client's entry goes: the next connection re-arms only what the
    client still holds, so the server forgets it too."""
    if watch.fired:
        return
    connected = watch._client.connected
    with anyio.CancelScope(shield=True), anyio.move_on_after(2.0 if connected else 0):
        try:
            await watch.remove()
        except E.ZooKeeperError:
            pass


async def wait_watch(watch: Watch) -> WatchedEvent:
    """Await a one-time watch; if we stop waiting (cancelled), remove it so neither the client
    nor the server keeps it."""
    try:
        return await watch
    finally:
        await drop_watch(watch)


async def wait_any_watch(watches: Sequence[Watch]) -> None:
    """Return once any of `watches` has fired (raising what it raises); remove the others."""
    done = anyio.Event()
    errors: list[BaseException] = []

    async def one(w: Watch) -> None:
        try:
            await w
        except E.ZooKeeperError as e:
            errors.append(e)
        done.set()

    try:
        async with anyio.create_task_group() as tasks:
            for w in watches:
                tasks.start_soon(one, w)
            await done.wait()
            tasks.cancel_scope.cancel()
    finally:
        for w in watches:
            await drop_watch(w)
    if errors:
        raise errors[0]


@asynccontextmanager
async def background() -> AsyncIterator[anyio.abc.TaskGroup]:
    """A tasks for helper tasks that live as long as the `async with` body. The tasks are
    cancelled when the body ends; an exception from the body (or from one task) comes out as
    itself, not wrapped in an ExceptionGroup of one."""
    try:
        async with anyio.create_task_group() as tasks:
            try:
                yield tasks
            finally:
                tasks.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def watch_session(zk: Client, on_doubt: anyio.CancelScope, suspended_is_lost: bool,
                        lost: list[str], *,
                        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
                        ) -> None:
    """Cancel `on_doubt` (recording why in `lost`) once the session is over, or, with
    `suspended_is_lost`, as soon as the connection drops: while suspended nobody can tell
    whether the session (and what it holds) survives."""
    async with zk.states() as states:
        task_status.started()
        async for state in states:
            if state.terminal or (suspended_is_lost and state == State.SUSPENDED):
                lost.append(f"session {state.value}")
                on_doubt.cancel()
                return


REVOKE = b"__REVOKE__"
"""What a revoker writes into a holder's node to ask for it back (Curator's value)."""


async def watch_node(zk: Client, path: str, on_loss: anyio.CancelScope, lost: list[str],
                     revocable: bool, *,
                     task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
                     ) -> None:
    """Cancel `on_loss` when the node at `path` (ours) is deleted, or, with `revocable`, when
    someone writes REVOKE into it."""
    started = False
    try:
        while True:
            try:
                data, _stat, watch = await retrying(zk.get, path, watch=True)
            except E.NoNodeError:
                lost.append(f"{path} was deleted")
                on_loss.cancel()
                return
            except E.SessionExpiredError:
                return  # watch_session reports it
            if not started:
                started = True
                task_status.started()
            if revocable and data == REVOKE:
                lost.append(f"{path} was revoked")
                on_loss.cancel()
                return
            try:
                await wait_watch(watch)
            except E.SessionExpiredError:
                return
    finally:
        if not started:
            task_status.started()


@asynccontextmanager
async def guarded(zk: Client, node: str | None, *, suspended_is_lost: bool = True,
                  revocable: bool = False,
                  error: type[SessionLostError] = SessionLostError) -> AsyncIterator[list[str]]:
    """Run the body for as long as what `node` stands for is certainly ours.

    The body is cancelled when the session is over, when (with `suspended_is_lost`) the
    connection drops, when `node` is deleted, or when (with `revocable`) it is revoked; the
    `async with` then raises `error` saying why. Yields the list the reason is put in."""
    lost: list[str] = []
    body = anyio.CancelScope()
    async with background() as tasks:
        await tasks.start(watch_session, zk, body, suspended_is_lost, lost)
        if node is not None:
            await tasks.start(watch_node, zk, node, body, lost, revocable)
        if lost:
            raise error(lost[0])
        with body:
            yield lost
    if body.cancelled_caught and lost:
        raise error(lost[0])
