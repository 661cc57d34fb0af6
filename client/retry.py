"""Retrying after a connection loss, only where it is safe, and protected creates.

A `ConnectionLossError` (or `OperationTimeoutError`) says the request's fate is unknown. For a
read that is harmless: ask again. For a write it is not: a create may have succeeded, so a
blind retry fails with NodeExistsError, or (sequential) makes a second node. So `retry()` knows
which client methods are idempotent and refuses the others unless told otherwise, with two
exceptions it handles itself: `delete` (a NoNodeError after a lost attempt means the node is
gone, which is what was asked) and `ensure_path`. Non-idempotent creates go through
`protected_create`, which names the node with a GUID (Curator's `_c_<uuid>-` prefix) and,
after a loss, looks for a child carrying that GUID before trying again.
`SessionExpiredError` is never retried: the session's ephemerals and watches are gone.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs

from zkserver.proto import records as R
from zkserver.proto.codes import CreateMode

from . import errors as E

if TYPE_CHECKING:
    from .client import Client

T = TypeVar("T")

RETRYABLE: tuple[type[E.ZooKeeperError], ...] = (E.ConnectionLossError, E.OperationTimeoutError)

IDEMPOTENT = frozenset({
    "get", "exists", "get_children", "get_acl", "get_ephemerals", "get_all_children_number",
    "sync", "whoami", "multi_read", "ensure_path", "check", "add_auth",
})
"""Client methods that give the same result when repeated."""

NOT_IDEMPOTENT = frozenset({"create", "create_with_stat", "set", "set_acl", "commit",
                            "reconfig"})
"""Client methods whose repetition after an unknown outcome can fail or do something twice."""

DELETE = "delete"
PROTECTED_PREFIX = "_c_"


@attrs.define
class RetryPolicy:
    """How often and how patiently to retry: exponential backoff with jitter, bounded by a
    number of tries and/or a deadline (seconds from the first try)."""

    max_tries: int | None = 10
    delay: float = 0.05
    backoff: float = 2.0
    max_delay: float = 2.0
    jitter: float = 0.2
    deadline: float | None = 30.0

    def sleeps(self) -> Any:
        d = self.delay
        while True:
            yield d * random.uniform(1 - self.jitter, 1 + self.jitter)
            d = min(d * self.backoff, self.max_delay)


DEFAULT_POLICY = RetryPolicy()


def _name(fn: Any) -> str | None:
    return getattr(fn, "__name__", None) if hasattr(fn, "__self__") else None


async def retry(fn: Callable[..., Awaitable[T]], *args: Any, policy: RetryPolicy | None = None,
                idempotent: bool | None = None, **kwargs: Any) -> T:
    """Call `fn` and retry it on connection loss or timeout, with backoff.

    A bound method of the client is checked against what is known about it; pass
    `idempotent=True` to retry one that is not (you accept a write may happen twice). Any
    other callable is taken to be idempotent unless `idempotent=False`."""
    name = _name(fn)
    if idempotent is None:
        idempotent = name not in NOT_IDEMPOTENT
    if not idempotent:
        raise TypeError(
            f"{name or fn!r} is not idempotent: retrying it after a connection loss could apply "
            "it twice; use protected_create() for creates, or pass idempotent=True")
    policy = policy or DEFAULT_POLICY
    start = anyio.current_time()
    sleeps = policy.sleeps()
    tries = 0
    lost = False
    while True:
        tries += 1
        try:
            return await fn(*args, **kwargs)
        except E.NoNodeError:
            if name == DELETE and lost:
                return None  # type: ignore[return-value]  # our earlier attempt deleted it
            raise
        except RETRYABLE:
            lost = True
            if policy.max_tries is not None and tries >= policy.max_tries:
                raise
            pause = next(sleeps)
            if (policy.deadline is not None
                    and anyio.current_time() + pause - start > policy.deadline):
                raise
            await anyio.sleep(pause)


async def protected_create(zk: Client, path: str, data: bytes | None = b"", *,
                           mode: CreateMode = CreateMode.EPHEMERAL_SEQUENTIAL,
                           acl: Sequence[R.ACL] | None = None,
                           policy: RetryPolicy | None = None) -> str:
    """Create `path` with a `_c_<uuid>-` prefix on its last segment, surviving connection loss.

    If the create's outcome is lost, the parent's children are searched for our GUID before
    trying again, so the node is made exactly once. An ephemeral found that way must belong to
    this session (its ephemeralOwner is checked). Returns the created path."""
    parent, _, name = path.rpartition("/")
    guid = uuid.uuid4().hex
    prefix = f"{PROTECTED_PREFIX}{guid}-"
    full = f"{parent}/{prefix}{name}"
    mode = CreateMode(mode)
    policy = policy or DEFAULT_POLICY
    start = anyio.current_time()
    sleeps = policy.sleeps()
    tries = 0
    lost = False
    while True:
        tries += 1
        try:
            if lost:
                found = await _find_protected(zk, parent or "/", prefix, mode)
                if found is not None:
                    return found
            return await zk.create(full, data, acl=acl, mode=mode)
        except RETRYABLE:
            lost = True
            if policy.max_tries is not None and tries >= policy.max_tries:
                raise
            pause = next(sleeps)
            if (policy.deadline is not None
                    and anyio.current_time() + pause - start > policy.deadline):
                raise
            await anyio.sleep(pause)


async def _find_protected(zk: Client, parent: str, prefix: str, mode: CreateMode) -> str | None:
    children = (await zk.get_children(parent)).children
    for child in children:
        if child.startswith(prefix):
            path = f"{parent.rstrip('/')}/{child}"
            if mode.ephemeral:
                stat = await zk.exists(path)
                if stat is None or stat.ephemeralOwner != zk.session_id:
                    continue
            return path
    return None
