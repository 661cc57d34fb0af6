"""Reads: requests answered from the committed tree, with no transaction.

Each handler takes the tree, the asking connection and a `Reader` on the request body, and
returns (error code, reply body). The body is the reply record of proto/records.py, encoded once
by its `pack`: the layouts live there and nowhere else. A read may register a watch (getData,
exists, getChildren with the watch flag); that is the only change a read makes.

ACLs: READ on the node for getData, getChildren and the rest, READ or ADMIN for getACL; none
for exists, as in ZooKeeper up to 3.8.3/3.9.1 (3.8.4+/3.9.2+ check READ since ZOOKEEPER-2590,
a hardening that is not a CVE fix; docs/compatibility-notes.md). `skipACL=yes` skips them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zkserver.engine.ordering import Client
from zkserver.engine.writes import decode_multi_any
from zkserver.proto import records as R
from zkserver.proto.codes import Err, Op, Perm
from zkserver.proto.jute import JuteError, Reader, Writer
from zkserver.tree import acl as aclmod
from zkserver.tree import javahash
from zkserver.tree.datatree import DataTree
from zkserver.tree.nodetable import Node

# A read: (tree, client, request body) -> (error code, reply body; empty unless the code is 0).
Handler = Callable[[DataTree, Client, Reader], tuple[int, bytes]]

_pack_stat = R.StatResponse.pack
_pack_get_data = R.GetDataResponse.pack
_pack_children = R.GetChildrenResponse.pack
_pack_children2 = R.GetChildren2Response.pack


class Reads:
    """The read handlers, by opcode (`handlers`)."""

    def __init__(self, skip_acl: bool) -> None:
        self.skip_acl = skip_acl
        self.handlers: dict[int, Handler] = {
            Op.EXISTS: self.exists, Op.GET_DATA: self.get_data,
            Op.GET_CHILDREN: self.get_children, Op.GET_CHILDREN2: self.get_children2,
            Op.GET_ACL: self.get_acl, Op.SYNC: sync,
            Op.GET_ALL_CHILDREN_NUMBER: self.all_children_number,
            Op.GET_EPHEMERALS: get_ephemerals, Op.WHO_AM_I: who_am_i,
            Op.MULTI_READ: self.multi_read,
        }

    def _readable(self, tree: DataTree, client: Client, path: str | None,
                  perm: int = Perm.READ) -> tuple[int, Node | None]:
        node = tree.nodes.get(_key(_not_null(path)))
        if node is None:
            return Err.NONODE, None
        if not self.skip_acl and not aclmod.check(node.acl, perm, client.auth_ids):
            return Err.NOAUTH, None
        return 0, node

    def exists(self, tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
        path = r.ustring()
        watch = r.bool()
        path = _not_null(path)
        if "\0" in path:
            return Err.BADARGUMENTS, b""
        node = tree.nodes.get(_key(path))
        if node is None:
            if watch and path:
                tree.watches.add_data(path, client)
            return Err.NONODE, b""
        # READ needed, as ZooKeeper 3.8.4+/3.9.2+ (ZOOKEEPER-2590); refused: no watch either.
        if not self.skip_acl and not aclmod.check(node.acl, Perm.READ, client.auth_ids):
            return Err.NOAUTH, b""
        if watch:
            tree.watches.add_data(path, client)
        return 0, _pack_stat(node.stat())

    def get_data(self, tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
        path = r.ustring()
        watch = r.bool()
        err, node = self._readable(tree, client, path)
        if node is None:
            return err, b""
        if watch:
            tree.watches.add_data(path, client)  # type: ignore[arg-type]
        return 0, _pack_get_data(node.data, node.stat())

    def _children_of(self, tree: DataTree, client: Client, r: Reader
                     ) -> tuple[int, str, Node | None]:
        """getChildren and getChildren2: the node (watched if asked) and its path, or the
        error."""
        path = r.ustring()
        watch = r.bool()
        err, node = self._readable(tree, client, path)
        if node is not None and watch:
            tree.watches.add_child(path, client)  # type: ignore[arg-type]
        return err, path, node  # type: ignore[return-value]

    def get_children(self, tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
        err, path, node = self._children_of(tree, client, r)
        return (err, b"") if node is None else (0, _pack_children(node.child_names(path)))

    def get_children2(self, tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
        err, path, node = self._children_of(tree, client, r)
        if node is None:
            return err, b""
        return 0, _pack_children2(node.child_names(path), node.stat())

    def get_acl(self, tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
        path = r.ustring()
        err, node = self._readable(tree, client, path, Perm.READ | Perm.ADMIN)
        if node is None:
            return err, b""
        acl = node.acl
        if not self.skip_acl and not aclmod.check(acl, Perm.ADMIN, client.auth_ids):
            acl = aclmod.mask_digests(acl)
        return 0, R.GetACLResponse.pack([R.ACL.of(*entry) for entry in acl], node.stat())

    def all_children_number(self, tree: DataTree, client: Client, r: Reader
                            ) -> tuple[int, bytes]:
        path = r.ustring()
        err, node = self._readable(tree, client, path)
        if node is None:
            return err, b""
        if path == "":  # ZooKeeper counts the keys under "" + "/": every node but its "" key
            return 0, R.IntResponse.pack(tree.count_descendants("/") + 1)
        return 0, R.IntResponse.pack(tree.count_descendants(path))  # type: ignore[arg-type]

    def multi_read(self, tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
        """ZooKeeper decodes a multiRead as any multi (write ops included, as long as they are
        not mixed with reads; a failure there is MARSHALLINGERROR with no body), then answers
        its ops in order: a write op, or a null path, ends it with MARSHALLINGERROR and the
        results so far as the body. Its ops set no watches."""
        ops = decode_multi_any(r)
        results: list[tuple[int, int, Any]] = []
        try:
            self._multi_read(tree, client, ops, results)
        except JuteError:
            w = Writer()
            R.encode_multi_results(w, results)
            return Err.MARSHALLINGERROR, w.getvalue()
        w = Writer()
        R.encode_multi_results(w, results)
        return 0, w.getvalue()

    def _multi_read(self, tree: DataTree, client: Client, ops: list[tuple[int, Any]],
                    results: list[tuple[int, int, Any]]) -> None:
        for op, req in ops:
            if op not in R.MULTI_READ_OPS:
                raise JuteError(f"op {op} in a multiRead")
            err, node = self._readable(tree, client, req.path)
            if node is None:
                results.append((-1, err, None))
                continue
            # No watch, whatever the flag says: ZooKeeper keeps only the path of each op.
            if op == Op.GET_DATA:
                results.append((op, 0, R.GetDataResponse(node.data, R.Stat(*node.stat()))))
            else:
                results.append((op, 0, R.GetChildrenResponse(node.child_names(req.path))))


def _key(path: str) -> str:
    """ZooKeeper's node map holds the root under "" as well as "/": reads of the empty path
    find the root (a watch they set stays on "", where nothing fires)."""
    return path or "/"


def _not_null(path: str | None) -> str:
    """ZooKeeper looks a null path up in a map that refuses null keys: the exception it
    catches makes the reply (a whole multiRead's included) MARSHALLINGERROR."""
    if path is None:
        raise JuteError("null path")
    return path


def sync(tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
    """Standalone, everything is applied already: the path comes straight back."""
    return 0, R.PathResponse.pack(r.ustring())


def get_ephemerals(tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
    prefix = r.ustring()
    paths: Any = tree.ephemerals.get(client.session_id, ())
    if prefix and prefix.strip() and prefix != "/":
        paths = [p for p in paths if p.startswith(prefix)]
    return 0, R.StringsResponse.pack(sorted(paths))


def who_am_i(tree: DataTree, client: Client, r: Reader) -> tuple[int, bytes]:
    """Each identity as its provider names the user (a digest id without its hash), in the
    order ZooKeeper iterates a connection's identity set."""
    return 0, R.WhoAmIResponse.pack([
        R.ClientInfo(scheme, ident.split(":", 1)[0] if scheme == "digest" else ident)
        for scheme, ident in javahash.identity_order(client.auth_ids)])
