"""What the ZAB core asks of its driver: one `Ready` batch per step (etcd-raft's Ready).

The core (`Peer`) never touches the disk, the network, the clock or the state machine. Each
input it takes adds to a batch, which the driver takes with `Peer.ready()` — after every
input, or after several (a batch then holds what they all decided, each part in order) — and
carries out in this order:

1. `epochs`: write both epochs durably before any message of the batch leaves;
2. `log`: one ordered stream, which the driver may carry out in the background, but in
   order — `Append` transactions (answer `logged(zxid)` once durable); `Truncate` the log
   (and, when `rebuild` is set, take the state machine back to that zxid as recovery would:
   the newest snapshot plus the log, both cut at it; answer `truncated(zxid)` once done and
   durable); `Install` a
   leader's snapshot, chunk by chunk as it arrives, and with the last chunk make it the state
   machine and restart the log after it (answer `installed(zxid)`). The core commits nothing
   while a `Truncate` or `Install` is unconfirmed, so the state machine may lag behind them.
   The driver may start them after step 4 too: nothing the core sends depends on a log
   operation of the same batch (acks and commits wait for its answer);
3. `committed`: apply these transactions to the state machine, in order, then report
   `applied(zxid, digest)` for the last of them;
4. `network`: in order — `Send` a message; `SendSnapshot`: stream a snapshot of the state
   machine (as it stands after step 3, or later: it may be fuzzy) to a learner as `Snap`
   chunks, at that point of its stream (what follows for that learner waits behind it);
   `Disconnect` the quorum connection to a server;
5. `roles`: start serving clients in this role (or stop, when looking);
6. `deliveries`: messages for the server around the core (forwarded writes, sync replies,
   session touches from learners).

A driver may write a `Commit` of step 4 before step 3 (ZooKeeper's leader sends COMMIT, then
applies): a follower applies only what it has logged, whatever the leader has applied. The
driver never edits what the core produced; what it knows that the core needs (sessions
its clients touched, digests after applying) goes back in as an input.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from zkserver.quorum.messages import Commit
from zkserver.quorum.roles import Role
from zkserver.txn import Txn
from zkserver.value import value


@value
class Epochs:
    accepted: int
    current: int


@value
class Append:
    txns: tuple[Txn, ...]


@value
class Truncate:
    zxid: int
    rebuild: bool = False  # the state machine holds transactions after `zxid`


@value
class Install:
    """A chunk of the leader's snapshot at `zxid`; `first` starts a new one (dropping any
    earlier one left unfinished), `last` completes it."""

    zxid: int
    chunk: bytes
    first: bool
    last: bool


LogOp = Append | Truncate | Install


@value
class Send:
    to: int
    msg: Any


@value
class SendSnapshot:
    """Send `to` a SNAP of the applied state; it is at `zxid` or, if the driver applied more
    since, later (the learner skips what the snapshot already holds)."""

    to: int
    zxid: int


@value
class Disconnect:
    """Close the quorum connection to `sid` (the other end learns of it, as with TCP)."""

    sid: int


NetOp = Send | SendSnapshot | Disconnect


@value
class RoleChange:
    """Serve clients in `role` from now on, with membership version `config_version` (what
    /zookeeper/config shows; a higher one than the driver had is a new version to keep)."""

    role: Role
    leader: int | None
    epoch: int
    config_version: int = 0


@value
class Deliver:
    sid: int
    msg: Any


@value
class Ready:
    epochs: Epochs | None = None
    log: tuple[LogOp, ...] = ()
    committed: tuple[Txn, ...] = ()
    network: tuple[NetOp, ...] = ()
    roles: tuple[RoleChange, ...] = ()
    deliveries: tuple[Deliver, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.epochs or self.log or self.committed or self.network or self.roles
                    or self.deliveries)


EMPTY = Ready()


def early_commit(network: tuple[NetOp, ...], streaming: Container[int]) -> Send | None:
    """The first `Commit` of `network` if it may be written ahead of the rest (and of step 3):
    nothing before it goes to the same server or closes a connection, so what each server is
    sent stays in order, and no snapshot is streaming to that server (`streaming`)."""
    earlier: set[int] = set()
    for net in network:
        if isinstance(net, Disconnect):
            return None
        if isinstance(net, Send) and type(net.msg) is Commit:
            return None if net.to in earlier or net.to in streaming else net
        earlier.add(net.to)
    return None
