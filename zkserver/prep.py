"""Turn a write request into a transaction, as ZooKeeper's PrepRequestProcessor does.

Checks run against the tree *plus every transaction already prepared but not yet applied*
(waiting for fsync or a quorum), so a create followed at once by a create of its child, or the
ops inside one multi, see each other. The order of checks decides which error a client gets and
follows ZooKeeper exactly. A write that fails its checks still becomes a transaction (an
ErrorTxn) with its own zxid, as in ZooKeeper. Nothing here does I/O or reads a clock: the
caller passes `wall`, the wall-clock time (ms) the transaction carries to every replica and that
the tree stamps as ctime/mtime (ZooKeeper's txn time, taken where the request is prepared).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from zkserver.proto.codes import MAX_TTL_MS, CreateMode, Err, Op, Perm
from zkserver.proto.records import CreateTTLRequest, ReconfigRequest
from zkserver.quorum import reconfig
from zkserver.tree import acl as aclmod
from zkserver.tree import javahash
from zkserver.tree import quota as quotamod
from zkserver.tree.datatree import CONFIG_PATH, CONTAINER_OWNER, DataTree, Node, ttl_owner
from zkserver.tree.paths import SYSTEM_PATHS, is_valid
from zkserver.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    ReconfigTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
)


class KeeperError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class RequestError(Exception):
    """The whole request fails, a multi included (ZooKeeper: an unexpected exception while
    preparing it, answered MARSHALLINGERROR in the reply header, still using up a zxid)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Rec:
    """What prep knows of one node: the tree's state with pending changes applied."""

    __slots__ = ("zxid", "exists", "version", "aversion", "cversion", "num_children", "owner",
                 "acl")

    def __init__(self, zxid: int, exists: bool, version: int = 0, aversion: int = 0,
                 cversion: int = 0, num_children: int = 0, owner: int = 0,
                 acl: aclmod.AclList = ()) -> None:
        self.zxid = zxid
        self.exists = exists
        self.version = version
        self.aversion = aversion
        self.cversion = cversion
        self.num_children = num_children
        self.owner = owner
        self.acl = acl

    def copy(self, zxid: int) -> Rec:
        return Rec(zxid, self.exists, self.version, self.aversion, self.cversion,
                   self.num_children, self.owner, self.acl)


def _node_rec(node: Node, zxid: int) -> Rec:
    """What prep knows of a committed node, as a record at `zxid`."""
    return Rec(zxid, True, node.version, node.aversion, node.cversion, node.child_count(),
               node.owner, node.acl)


def _next_version(current: int, expected: int) -> int:
    if expected != -1 and expected != current:
        raise KeeperError(Err.BADVERSION)
    nxt = current + 1
    if nxt > 0x7FFFFFFF:
        nxt -= 1 << 32
    return 0 if nxt == -1 else nxt


def _parent_for_write(path: str | None) -> str:
    """The parent of a path given to create/delete; a path without '/' or with NUL is -8, a
    null one fails the whole request (a NullPointerException in ZooKeeper's prep)."""
    if path is None:
        raise RequestError(Err.MARSHALLINGERROR)
    i = path.rfind("/")
    if i == -1 or "\0" in path:
        raise KeeperError(Err.BADARGUMENTS)
    return path[:i] or "/"


class _Mode:
    """What a create's flags ask for, looked up once per flag value (an enum's properties
    cost a create more than the checks they make)."""

    __slots__ = ("ephemeral", "sequential", "ttl")

    def __init__(self, mode: CreateMode) -> None:
        self.ephemeral = mode.ephemeral
        self.sequential = mode.sequential
        self.ttl = mode.ttl


_MODES = {int(m): _Mode(m) for m in CreateMode}


class _Fixups:
    """A request's ACL validated and expanded, or the error ZooKeeper answers for it.

    A list without `auth` entries comes out the same whoever sends it, and nearly every create
    sends one of a few such lists: their results are kept (validating them again was a tenth
    of a create's preparation)."""

    LIMIT = 256  # distinct lists kept; forgotten all at once past that

    def __init__(self) -> None:
        self.fixed: dict[tuple, aclmod.AclList] = {}

    def __call__(self, acl: Any, session: Session) -> aclmod.AclList:
        entries = tuple([(a.perms, a.id.scheme, a.id.id) for a in acl]) if acl else ()
        fixed = self.fixed.get(entries)
        if fixed is not None:
            return fixed
        try:
            fixed = aclmod.fixup_acl(list(entries) or None, session.auth_ids)
        except aclmod.InvalidACL:
            raise KeeperError(Err.INVALIDACL) from None
        except aclmod.NullInACL:
            raise RequestError(Err.MARSHALLINGERROR) from None
        if all(scheme != "auth" for _, scheme, _ in entries):
            if len(self.fixed) >= self.LIMIT:
                self.fixed.clear()
            self.fixed[entries] = fixed
        return fixed


class Session:
    """What prep needs of the session a request came from."""

    __slots__ = ("id", "auth_ids")

    def __init__(self, sid: int, auth_ids: list[aclmod.Identity]) -> None:
        self.id = sid
        self.auth_ids = auth_ids


class Prep:
    def __init__(self, tree: DataTree, extended_types: bool = False,
                 skip_acl: bool = False, reconfig_enabled: bool = False,
                 enforce_quota: bool = False) -> None:
        self.extended_types = extended_types
        self.skip_acl = skip_acl
        self.reconfig_enabled = reconfig_enabled
        self.enforce_quota = enforce_quota  # enforceQuota (3.7+): hard limits fail writes
        # What a leading member's driver knows of the ensemble, for reconfig; None on a server
        # that does not lead (or standalone), which answers UNIMPLEMENTED as ZooKeeper does.
        self.leader_view: Callable[[], reconfig.LeaderView] | None = None
        self.changes: dict[str, Rec] = {}
        self.outstanding: deque[tuple[int, str, Rec]] = deque()
        self._fixup = _Fixups()
        self.restart(tree)

    def restart(self, tree: DataTree, last_zxid: int | None = None) -> None:
        """Prepare against `tree` from now on with nothing pending, the next zxid after
        `last_zxid` (default: the tree's): a snapshot installed, the log truncated, or a new
        leader's epoch begun."""
        self.tree = tree
        self.last_zxid = tree.last_zxid if last_zxid is None else last_zxid
        self.changes.clear()
        self.outstanding.clear()

    # -- the pending view ---------------------------------------------------------------------

    def record(self, path: str) -> Rec | None:
        rec = self.changes.get(path)
        if rec is not None:
            return rec if rec.exists else None
        node = self.tree.nodes.get(path)
        return None if node is None else _node_rec(node, 0)

    def _must(self, path: str) -> Rec:
        rec = self.record(path)
        if rec is None:
            raise KeeperError(Err.NONODE)
        return rec

    def _for_change(self, path: str, zxid: int) -> Rec:
        """`_must(path)` as a new record at `zxid`, the caller's to alter (one Rec made where
        `_must` and `copy` made two, on every create, delete and setData)."""
        rec = self.changes.get(path)
        if rec is not None:
            if not rec.exists:
                raise KeeperError(Err.NONODE)
            return rec.copy(zxid)
        node = self.tree.nodes.get(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        return _node_rec(node, zxid)

    def _change(self, path: str, rec: Rec) -> None:
        self.changes[path] = rec
        self.outstanding.append((rec.zxid, path, rec))

    def committed(self, zxid: int) -> None:
        """Forget pending changes made by transactions up to `zxid`, now in the tree."""
        out = self.outstanding
        while out and out[0][0] <= zxid:
            _, path, rec = out.popleft()
            if self.changes.get(path) is rec:
                del self.changes[path]

    def _rollback(self, zxid: int, mark: int) -> None:
        """Undo the changes a failed multi recorded (everything after `mark`).

        An earlier pending change to the same path must show again: the *last* one recorded,
        which may share its zxid with others (the ops of an earlier multi).
        """
        undone = set()
        while len(self.outstanding) > mark:
            _, path, _ = self.outstanding.pop()
            undone.add(path)
            self.changes.pop(path, None)
        for _, path, rec in self.outstanding:
            if path in undone:
                self.changes[path] = rec

    def _quota(self, path: str, data: bytes | None, create: bool) -> None:
        """ZooKeeper's checkQuota (after the ACL check): QUOTAEXCEEDED past a hard limit."""
        try:
            quotamod.check(self.tree, path, data, create)
        except quotamod.QuotaExceeded:
            raise KeeperError(Err.QUOTAEXCEEDED) from None

    def _check(self, acl: aclmod.AclList, perm: int, session: Session) -> None:
        if not self.skip_acl and not aclmod.check(acl, perm, session.auth_ids):
            raise KeeperError(Err.NOAUTH)

    # -- transactions -------------------------------------------------------------------------

    def _txn(self, session_id: int, cxid: int, wall: int, op: Any) -> Txn:
        self.last_zxid += 1
        return Txn(self.last_zxid, wall, session_id, cxid, op)

    def create_session(self, session_id: int, timeout: int, wall: int) -> Txn:
        return self._txn(session_id, 0, wall, CreateSessionTxn(timeout))

    def close_session(self, session_id: int, cxid: int, wall: int) -> Txn:
        """ZooKeeper lists (and deletes) the ephemerals in the iteration order of a clone of the
        session's HashSet, adjusted by the pending changes; clients watching them see that
        order, so it is reproduced (javahash)."""
        zxid = self.last_zxid + 1
        tree = self.tree
        committed = tree.ephemerals.get(session_id, {})
        capacity = tree.ephemeral_capacity.get(session_id, javahash.DEFAULT_CAPACITY)
        paths = dict.fromkeys(javahash.iteration_order(committed, capacity))
        capacity = javahash.clone_capacity(len(paths))
        for _, path, rec in self.outstanding:
            if not rec.exists:
                paths.pop(path, None)
            elif rec.owner == session_id and path not in paths:
                paths[path] = None
                capacity = javahash.grown_capacity(len(paths), capacity)
        ordered = tuple(javahash.iteration_order(paths, capacity))
        for path in ordered:
            parent = path[:path.rfind("/")] or "/"
            prec = self.record(parent)
            if prec is not None:
                prec = prec.copy(zxid)
                prec.num_children -= 1
                self._change(parent, prec)
            self._change(path, Rec(zxid, False))
        return self._txn(session_id, cxid, wall, CloseSessionTxn(ordered))

    def write(self, op: int, req: Any, session: Session, cxid: int, wall: int) -> Txn:
        """A write request -> its transaction (an ErrorTxn if a check fails)."""
        zxid = self.last_zxid + 1
        try:
            if op == Op.MULTI:
                if req is None or any(sub.path is None for _, sub in req):
                    # It did not decode (engine/writes.py), or ZooKeeper's look-up of the
                    # pending changes of each op's path fails on a null one before any op runs.
                    raise RequestError(Err.MARSHALLINGERROR)
                body: Any = self._multi(req, session, zxid)
            else:
                body = self._one(op, req, session, zxid)
        except (KeeperError, RequestError) as e:
            body = ErrorTxn(e.code)
        return self._txn(session.id, cxid, wall, body)

    def error(self, session_id: int, cxid: int, wall: int, err: int) -> Txn:
        return self._txn(session_id, cxid, wall, ErrorTxn(err))

    def _multi(self, ops: list[tuple[int, Any]], session: Session, zxid: int) -> MultiTxn:
        mark = len(self.outstanding)
        txns: list[Any] = []
        failed: int | None = None
        for i, (op, req) in enumerate(ops):
            try:
                txns.append(self._one(op, req, session, zxid))
            except KeeperError as e:
                failed = i
                txns.append(ErrorTxn(e.code))
                break
            except RequestError:
                self._rollback(zxid, mark)
                raise
        if failed is None:
            for _, path, rec in list(self.outstanding)[mark:]:
                if rec.exists and rec.owner == session.id:
                    rec.owner = self._owner_when_applied(path, txns, rec.owner)
            return MultiTxn(tuple(txns))
        self._rollback(zxid, mark)
        errs = [ErrorTxn(Err.OK)] * failed + [txns[failed]]
        errs += [ErrorTxn(Err.RUNTIMEINCONSISTENCY)] * (len(ops) - failed - 1)
        return MultiTxn(tuple(errs))

    @staticmethod
    def _owner_when_applied(path: str, txns: list[Any], owner: int) -> int:
        """The owner a node created by a multi will have once applied (an ephemeral-mode
        createContainer's pending owner is the session only while its multi is prepared)."""
        for txn in txns:
            if isinstance(txn, CreateTxn) and txn.path == path:
                return txn.owner
        return owner

    def _one(self, op: int, req: Any, session: Session, zxid: int) -> Any:
        if op in (Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL):
            return self._create(op, req, session, zxid)
        if op == Op.SET_DATA:
            return self._set_data(req, session, zxid)
        if op == Op.DELETE:
            return self._delete(req.path, req.version, session, zxid)
        if op == Op.SET_ACL:
            return self._set_acl(req, session, zxid)
        if op == Op.RECONFIG:
            return self._reconfig(req, session, zxid)
        if op == Op.CHECK:
            if not is_valid(req.path):
                raise KeeperError(Err.BADARGUMENTS)
            rec = self._must(req.path)
            self._check(rec.acl, Perm.READ, session)
            if req.version != -1 and req.version != rec.version:
                raise KeeperError(Err.BADVERSION)
            return CheckTxn(req.path, req.version)
        raise KeeperError(Err.UNIMPLEMENTED)

    def _create(self, op: int, req: Any, session: Session, zxid: int) -> CreateTxn:
        mode = _MODES.get(req.flags)
        if mode is None:
            raise KeeperError(Err.BADARGUMENTS)
        ttl = req.ttl if isinstance(req, CreateTTLRequest) else -1
        if mode.ttl:
            if not self.extended_types:
                raise KeeperError(Err.UNIMPLEMENTED)
            if not 0 < ttl <= MAX_TTL_MS:
                raise KeeperError(Err.BADARGUMENTS)
        elif ttl >= 0:
            raise KeeperError(Err.BADARGUMENTS)
        path = req.path
        parent_path = _parent_for_write(path)
        acl = self._fixup(req.acl, session)
        prec = self._for_change(parent_path, zxid)
        self._check(prec.acl, Perm.CREATE, session)
        if mode.sequential:
            path = f"{path}{prec.cversion:010d}"
        if not is_valid(path):
            raise KeeperError(Err.BADARGUMENTS)
        if self.record(path) is not None:
            raise KeeperError(Err.NODEEXISTS)
        if prec.owner > 0:
            raise KeeperError(Err.NOCHILDRENFOREPHEMERALS)
        if self.enforce_quota:
            self._quota(path, req.data, True)
        if op == Op.CREATE_CONTAINER:
            owner = CONTAINER_OWNER
        elif mode.ttl:
            owner = ttl_owner(ttl)
        elif mode.ephemeral:
            owner = session.id
        else:
            owner = 0
        prec.cversion += 1
        prec.num_children += 1
        self._change(parent_path, prec)
        # ZooKeeper's pending record takes the owner from the flags: a createContainer with an
        # ephemeral mode (possible in a multi) is the session's while its multi is prepared
        # (`_multi` then sets the owner it is applied with: after that, whether ZooKeeper has
        # applied it when the next request is prepared is a race there).
        pending = session.id if op == Op.CREATE_CONTAINER and mode.ephemeral else owner
        self._change(path, Rec(zxid, True, owner=pending, acl=acl))
        return CreateTxn(path, req.data, acl, owner, prec.cversion)

    def _delete(self, path: str | None, version: int, session: Session, zxid: int) -> DeleteTxn:
        parent_path = _parent_for_write(path)
        assert path is not None
        if path in SYSTEM_PATHS:
            raise KeeperError(Err.BADARGUMENTS)
        prec = self._for_change(parent_path, zxid)
        self._check(prec.acl, Perm.DELETE, session)
        rec = self._must(path)
        _next_version(rec.version, version)
        if rec.num_children > 0:
            raise KeeperError(Err.NOTEMPTY)
        prec.num_children -= 1
        self._change(parent_path, prec)
        self._change(path, Rec(zxid, False))
        return DeleteTxn(path)

    def _set_data(self, req: Any, session: Session, zxid: int) -> SetDataTxn:
        if not is_valid(req.path):
            raise KeeperError(Err.BADARGUMENTS)
        rec = self._for_change(req.path, zxid)
        self._check(rec.acl, Perm.WRITE, session)
        if self.enforce_quota:
            self._quota(req.path, req.data, False)
        version = _next_version(rec.version, req.version)
        rec.version = version
        self._change(req.path, rec)
        return SetDataTxn(req.path, req.data, version)

    def _set_acl(self, req: Any, session: Session, zxid: int) -> SetACLTxn:
        if not is_valid(req.path):
            raise KeeperError(Err.BADARGUMENTS)
        acl = self._fixup(req.acl, session)
        rec = self._for_change(req.path, zxid)
        self._check(rec.acl, Perm.ADMIN, session)
        version = _next_version(rec.aversion, req.version)
        rec.aversion = version
        rec.acl = acl
        self._change(req.path, rec)
        return SetACLTxn(req.path, acl, version)

    def _reconfig(self, req: ReconfigRequest, session: Session, zxid: int) -> ReconfigTxn:
        """ZooKeeper's checks in its order (a refused reconfig uses up a zxid too): disabled,
        not a leader (a standalone server can't reconfigure even when it is enabled), then the
        leader's own checks (`quorum/reconfig.py`), then WRITE on /zookeeper/config, which
        by default only the super user (or skipACL) passes."""
        if not self.reconfig_enabled:
            raise KeeperError(Err.RECONFIGDISABLED)
        if self.leader_view is None:
            raise KeeperError(Err.UNIMPLEMENTED)
        view = self.leader_view()
        pending = self.changes.get(CONFIG_PATH)
        if pending is not None:  # prepared here, not yet committed: in flight already
            view = attrs.evolve(view, last_seen_version=max(view.last_seen_version,
                                                            pending.zxid))
        try:
            new = reconfig.plan(req, view, zxid)
        except reconfig.Refused as e:
            raise KeeperError(e.code) from None
        rec = self._must(CONFIG_PATH)
        self._check(rec.acl, Perm.WRITE, session)
        rec = rec.copy(zxid)
        rec.version = -1
        self._change(CONFIG_PATH, rec)
        return ReconfigTxn(new.data())

    def delete_container(self, path: str, wall: int) -> Txn | None:
        """The reaper's delete of an empty container or expired TTL node (no ACL check).

        Returns None when the node changed since the reaper looked (it has children again or
        is gone), so no zxid is spent on it.
        """
        rec = self.record(path)
        if rec is None or rec.num_children > 0:
            return None
        zxid = self.last_zxid + 1
        parent_path = path[:path.rfind("/")] or "/"
        prec = self._must(parent_path).copy(zxid)
        prec.num_children -= 1
        self._change(parent_path, prec)
        self._change(path, Rec(zxid, False))
        return self._txn(0, 0, wall, DeleteTxn(path))
