"""Two-phase commit, as in ZooKeeper's recipes document, with its suggested improvements.

Layout of one transaction under `<path>`:

* `<path>/<txid>`: PERSISTENT, data = the proposal (payload). Created by the coordinator in
  one multi together with
* `<path>/<txid>/votes/<site>`: one per participant, empty until that site votes (it writes
  `commit` or `abort` into its own node, once: setData with version 0);
* `<path>/<txid>/decision`: created exactly once, with data `commit` or `abort`;
* `<path>/<txid>/done/<site>`: a participant's acknowledgement that it applied the decision.

Phase 1: each participant sees the transaction (a children watch on `<path>`), prepares, and
votes. Phase 2: the decision is whichever `decision` node is created first, and a create can
only succeed once, so every site reads the same outcome. The coordinator watches the votes and
decides `commit` when all are `commit`, `abort` at the first `abort` or when the timeout
passes. A participant may also decide: `abort` when it votes abort, and `commit` when its own
vote completes a unanimous `commit` (the document's "every site decides" variant, which
keeps a transaction from blocking on a coordinator that died after the last vote). Only the
coordinator watches every vote, so the message count stays linear (the document's fix for the
O(n^2) version).

Failure: a site that never votes makes the coordinator time out and abort. A participant that
restarts finds the transactions that name it and have no `done/<site>` yet, and resumes them:
it votes if it had not, and applies the decision if there is one. Once every site is done the
coordinator deletes the transaction's nodes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import anyio
import attrs

from zkserver import client
from zkserver.client import errors as E
from zkserver.recipes._common import (
    RETRYABLE,
    drop_watch,
    ensure_path,
    join,
    retrying,
    wait_any_watch,
    wait_watch,
)

if TYPE_CHECKING:
    from zkserver.client import Client

COMMIT = b"commit"
ABORT = b"abort"


@attrs.frozen
class Outcome:
    txid: str
    committed: bool
    votes: dict[str, str | None]
    """Each site's vote as the coordinator last saw it (None: had not voted)."""


async def _decide(zk: Client, tx_path: str, decision: bytes) -> bool:
    """Create the decision node (if nobody did yet); return the decision that stands."""
    path = join(tx_path, "decision")
    while True:
        try:
            await zk.create(path, decision)
            return decision == COMMIT
        except E.NodeExistsError:
            pass
        except RETRYABLE:
            pass  # it may have landed; read it
        try:
            return (await retrying(zk.get, path)).data == COMMIT
        except E.NoNodeError:
            continue


class Coordinator:
    def __init__(self, zk: Client, path: str) -> None:
        self.zk = zk
        self.path = path.rstrip("/")

    async def run(self, payload: bytes, sites: Sequence[str], *, timeout: float = 10.0,
                  txid: str | None = None, cleanup_timeout: float | None = 10.0) -> Outcome:
        """Propose `payload` to `sites`; return once decided (and, unless `cleanup_timeout`
        is None, after waiting that long at most for every site's acknowledgement, then
        deleting the transaction's nodes)."""
        txid = txid or f"tx-{uuid.uuid4().hex}"
        tx = join(self.path, txid)
        await ensure_path(self.zk, self.path)
        txn = self.zk.transaction().create(tx, payload)
        txn.create(join(tx, "votes"))
        txn.create(join(tx, "done"))
        for site in sites:
            txn.create(join(tx, f"votes/{site}"), b"")
        try:
            await txn.commit()
        except RETRYABLE:
            if await retrying(self.zk.exists, tx) is None:
                raise
        votes: dict[str, str | None] = {site: None for site in sites}
        committed = False
        with anyio.move_on_after(timeout) as scope:
            while True:
                watches = []
                decided = await retrying(self.zk.exists, join(tx, "decision"))
                if decided is not None:
                    break
                for site in sites:
                    data, _stat, w = await retrying(self.zk.get, join(tx, f"votes/{site}"),
                                                    watch=True)
                    votes[site] = data.decode() if data else None
                    watches.append(w)
                if any(v == "abort" for v in votes.values()) or \
                        all(v == "commit" for v in votes.values()):
                    for w in watches:
                        await drop_watch(w)
                    break
                await wait_any_watch(watches)
        if scope.cancelled_caught:
            committed = await _decide(self.zk, tx, ABORT)
        else:
            unanimous = all(v == "commit" for v in votes.values())
            committed = await _decide(self.zk, tx, COMMIT if unanimous else ABORT)
        if cleanup_timeout is not None:
            with anyio.move_on_after(cleanup_timeout):
                while True:
                    done, _stat, w = await retrying(self.zk.get_children, join(tx, "done"),
                                                    watch=True)
                    if set(sites) <= set(done):
                        await drop_watch(w)
                        await self.zk.delete(tx, recursive=True)
                        break
                    await wait_watch(w)
        return Outcome(txid, committed, votes)


@attrs.define
class Transaction:
    """A transaction as one participant sees it."""

    participant: Participant
    txid: str
    payload: bytes
    vote: str | None
    """This site's vote so far (None: not voted)."""

    @property
    def tx_path(self) -> str:
        return join(self.participant.path, self.txid)

    async def cast(self, commit: bool) -> None:
        """Vote (once). An abort vote decides the transaction at once."""
        zk = self.participant.zk
        vote = COMMIT if commit else ABORT
        path = join(self.tx_path, f"votes/{self.participant.site}")
        try:
            await zk.set(path, vote, version=0)
        except E.BadVersionError:
            data, _ = await retrying(zk.get, path)
            self.vote = (data or b"").decode()
            return
        except RETRYABLE:
            data, stat = await retrying(zk.get, path)
            if stat.version == 0:
                return await self.cast(commit)
        self.vote = vote.decode()
        if not commit:
            await _decide(zk, self.tx_path, ABORT)
            return
        votes = (await retrying(zk.get_children, join(self.tx_path, "votes"))).children
        for site in votes:
            data, _ = await retrying(zk.get, join(self.tx_path, f"votes/{site}"))
            if data != COMMIT:
                return
        await _decide(zk, self.tx_path, COMMIT)

    async def outcome(self) -> bool:
        """Wait for the decision; True for commit."""
        zk = self.participant.zk
        path = join(self.tx_path, "decision")
        while True:
            stat, w = await retrying(zk.exists, path, watch=True)
            if stat is not None:
                await drop_watch(w)
                return (await retrying(zk.get, path)).data == COMMIT
            await wait_watch(w)

    async def done(self) -> None:
        """Acknowledge that this site applied the decision."""
        try:
            await client.retry(self.participant.zk.create,
                               join(self.tx_path, f"done/{self.participant.site}"),
                               idempotent=True,
                               policy=client.RetryPolicy(max_tries=None, deadline=None))
        except (E.NodeExistsError, E.NoNodeError):
            pass


class Participant:
    def __init__(self, zk: Client, path: str, site: str) -> None:
        self.zk = zk
        self.path = path.rstrip("/")
        self.site = site

    async def _pending(self, txid: str) -> Transaction | None:
        tx = join(self.path, txid)
        try:
            await retrying(self.zk.get, join(tx, f"votes/{self.site}"))
            if await retrying(self.zk.exists, join(tx, f"done/{self.site}")) is not None:
                return None
            payload, _ = await retrying(self.zk.get, tx)
            vote, _ = await retrying(self.zk.get, join(tx, f"votes/{self.site}"))
        except E.NoNodeError:
            return None
        return Transaction(self, txid, payload or b"", vote.decode() if vote else None)

    async def transactions(self) -> AsyncIterator[Transaction]:
        """Each transaction naming this site that it has not finished, oldest first; waits
        for new ones forever."""
        await ensure_path(self.zk, self.path)
        seen: set[str] = set()
        while True:
            children, stat, w = await retrying(self.zk.get_children, self.path, watch=True)
            fresh = [c for c in children if c not in seen]
            found = []
            for txid in fresh:
                tx_stat = await retrying(self.zk.exists, join(self.path, txid))
                if tx_stat is not None:
                    found.append((tx_stat.czxid, txid))
            for _czxid, txid in sorted(found):
                seen.add(txid)
                tx = await self._pending(txid)
                if tx is not None:
                    yield tx
            seen &= set(children)
            await wait_watch(w)

    async def serve(self, prepare: Callable[[Transaction], Awaitable[bool]],
                    commit: Callable[[Transaction], Awaitable[None]],
                    abort: Callable[[Transaction], Awaitable[None]]) -> None:
        """Handle every transaction: vote what `prepare` says, then run `commit` or `abort`
        and acknowledge. Runs until cancelled."""
        async for tx in self.transactions():
            if tx.vote is None:
                try:
                    ok = await prepare(tx)
                except Exception:
                    ok = False
                await tx.cast(ok)
            if await tx.outcome():
                await commit(tx)
            else:
                await abort(tx)
            await tx.done()

