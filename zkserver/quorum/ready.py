"""What the ZAB core asks of its driver: one `Ready` batch per step (etcd-raft's Ready).

The core (`Peer`) never touches the disk, the network, the clock or the state machine. Each
input it takes leaves a batch, which the driver takes with `Peer.ready()` and carries out in
this order:

1. `epochs`: write both epochs durably before any message of the batch leaves;
2. `log`: in order — `Append` transactions (answer `logged(zxid)` once durable); `Truncate`
   the log (and, when `replay` is given, take the state machine back to that zxid: the newest
   snapshot at or below it plus `replay`); `Install` a leader's snapshot as the whole state
   (answer `installed(zxid)` once durable). Only durability may lag; the state changes at once;
3. `committed`: apply these transactions to the state machine, in order, then report
   `applied(zxid, digest)` for the last of them;
4. `network`: in order — `Send` a message; `SendSnapshot`, a snapshot of the state machine
   (as it stands after step 3) to a learner, at that point of its stream; `Disconnect` the
   quorum connection to a server;
5. `roles`: start serving clients in this role (or stop, when looking);
6. `deliveries`: messages for the server around the core (forwarded writes, sync replies,
   session touches from learners).

The driver never edits what the core produced; what it knows that the core needs (sessions
its clients touched, digests after applying) goes back in as an input.
"""

from __future__ import annotations

from typing import Any

import attrs

from zkserver.quorum.roles import Role
from zkserver.txn import Txn


@attrs.frozen(slots=True)
class Epochs:
    accepted: int
    current: int


@attrs.frozen(slots=True)
class Append:
    txns: tuple[Txn, ...]


@attrs.frozen(slots=True)
class Truncate:
    zxid: int
    replay: tuple[Txn, ...] | None = None  # set when the applied state is beyond `zxid`


@attrs.frozen(slots=True)
class Install:
    zxid: int
    state: bytes


LogOp = Append | Truncate | Install


@attrs.frozen(slots=True)
class Send:
    to: int
    msg: Any


@attrs.frozen(slots=True)
class SendSnapshot:
    """Send `to` a SNAP of the applied state; it is at `zxid` or, if the driver applied more
    since, later (the learner skips what the snapshot already holds)."""

    to: int
    zxid: int


@attrs.frozen(slots=True)
class Disconnect:
    """Close the quorum connection to `sid` (the other end learns of it, as with TCP)."""

    sid: int


NetOp = Send | SendSnapshot | Disconnect


@attrs.frozen(slots=True)
class RoleChange:
    role: Role
    leader: int | None
    epoch: int


@attrs.frozen(slots=True)
class Deliver:
    sid: int
    msg: Any


@attrs.frozen(slots=True)
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
