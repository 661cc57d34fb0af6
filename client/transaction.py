"""multi (op 14) as a transaction builder, and the ops of multiRead (op 22).

A transaction is all-or-nothing on the server. Here it either returns one result per op
(`Created`, `Deleted`, `SetDataResult`, `Checked`), or raises the error of the op that failed,
the same class a single call would raise, with every op's outcome attached as `.results`
(`RolledBackError` before the failure, `RuntimeInconsistencyError` after it) and the failing
op's position as `.index`.

Plain creates go as op 1, as the Java client and kazoo send them, so `Created.stat` is None
for them (container and TTL creates have their own opcodes, whose results carry a Stat).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from zkserver.proto import records as R
from zkserver.proto.codes import CreateMode, Err, Op
from zkserver.proto.jute import Reader

from . import errors as E
from .results import Checked, Children, Created, Deleted, NodeData, SetDataResult

if TYPE_CHECKING:
    from .client import Client


@attrs.frozen
class GetDataOp:
    """A getData inside `multi_read`."""

    path: str
    opcode: int = attrs.field(default=Op.GET_DATA, init=False)


@attrs.frozen
class GetChildrenOp:
    """A getChildren inside `multi_read` (the reply has no Stat)."""

    path: str
    opcode: int = attrs.field(default=Op.GET_CHILDREN, init=False)


def decode_multi_read(r: Reader, ops: Sequence[GetDataOp | GetChildrenOp],
                      ) -> list[NodeData | Children | E.ZooKeeperError]:
    results: list[NodeData | Children | E.ZooKeeperError] = []
    for op, (typ, err, body) in zip(ops, R.decode_multi_results(r), strict=True):
        if typ == -1 or err != Err.OK:
            results.append(E.error_for(err, op.path))
        elif typ == Op.GET_DATA:
            results.append(NodeData(body.data, body.stat))
        else:
            results.append(Children(body.children or [], None))
    return results


class Transaction:
    """Collects ops; `commit()` sends them as one multi."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._ops: list[tuple[int, Any, str, str]] = []  # opcode, record, client path, kind
        self.committed = False

    def __len__(self) -> int:
        return len(self._ops)

    def create(self, path: str, data: bytes | None = b"", *,
               acl: Sequence[R.ACL] | None = None, mode: CreateMode = CreateMode.PERSISTENT,
               ttl: int | None = None) -> Transaction:
        from .client import create_request

        mode = CreateMode(mode)
        zk = self._client
        op, record = create_request(zk._server_path(path, mode.sequential), data,
                                    list(acl) if acl is not None else zk.default_acl, mode, ttl,
                                    want_stat=False)
        self._ops.append((op, record, path, "create"))
        return self

    def delete(self, path: str, version: int = -1) -> Transaction:
        self._ops.append((Op.DELETE, R.DeleteRequest(self._client._server_path(path), version),
                          path, "delete"))
        return self

    def set_data(self, path: str, data: bytes | None, version: int = -1) -> Transaction:
        self._ops.append((Op.SET_DATA, R.SetDataRequest(self._client._server_path(path), data,
                                                        version), path, "set"))
        return self

    def check(self, path: str, version: int) -> Transaction:
        self._ops.append((Op.CHECK, R.CheckVersionRequest(self._client._server_path(path),
                                                          version), path, "check"))
        return self

    async def commit(self) -> list[Created | Deleted | SetDataResult | Checked]:
        if self.committed:
            raise RuntimeError("transaction already committed")
        self.committed = True
        r = await self._client._multi([(op, rec) for op, rec, _, _ in self._ops])
        raw = R.decode_multi_results(r)
        if len(raw) != len(self._ops):
            raise E.MarshallingError(f"multi: {len(raw)} results for {len(self._ops)} ops")
        failed = next((i for i, (typ, err, _) in enumerate(raw)
                       if typ == -1 and err not in (Err.OK, Err.RUNTIMEINCONSISTENCY)), None)
        if failed is not None:
            outcomes: list[E.ZooKeeperError] = []
            for (_, _, path, _), (_, err, _) in zip(self._ops, raw, strict=True):
                outcomes.append(E.RolledBackError(path=path) if err == Err.OK
                                else E.error_for(err, path))
            error = E.error_for(raw[failed][1], self._ops[failed][2])
            error.results = outcomes
            error.index = failed
            raise error
        chroot = self._client._chroot
        results: list[Created | Deleted | SetDataResult | Checked] = []
        for (_, _, path, kind), (_, _, body) in zip(self._ops, raw, strict=True):
            if kind == "create":
                if isinstance(body, R.Create2Response):
                    results.append(Created(chroot.to_client(body.path or ""), body.stat))
                else:
                    results.append(Created(chroot.to_client(body.path or ""), None))
            elif kind == "delete":
                results.append(Deleted(path))
            elif kind == "set":
                results.append(SetDataResult(path, body.stat))
            else:
                results.append(Checked(path))
        return results

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None and not self.committed:
            self.results = await self.commit()
