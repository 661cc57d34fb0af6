"""The tree pages and the changes they make, each run as the logged-in user's own client.

Every ZooKeeper error comes back to the user as a message on the page (a node the user may
not read says so); nothing a request carries can raise out of here but a bug, and the console
turns even that into an error page.
"""

from __future__ import annotations

import binascii
from collections.abc import Awaitable, Callable

import client
from zkserver.console import pages, render
from zkserver.console.sessions import Login
from zkserver.console.web import Parsed, page, redirect
from zkserver.server.admin import Reply

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DELETE_LISTING = 200  # paths shown on the delete confirmation (the count is always whole)

ERRORS = {
    client.NoAuthError: "not allowed by the node's ACL for your identities",
    client.NoNodeError: "no such node",
    client.NodeExistsError: "a node with that name exists",
    client.NotEmptyError: "the node has children",
    client.BadVersionError: "the node changed since the page was loaded (version conflict)",
    client.InvalidACLError: "invalid ACL",
    client.NoChildrenForEphemeralsError: "ephemeral nodes cannot have children",
    client.BadArgumentsError: "bad arguments",
    client.UnimplementedError: "not supported by the server (is extendedTypesEnabled set?)",
    client.ConnectionLossError: "the connection to ZooKeeper was lost: the change may or may "
                                "not have been made",
    client.OperationTimeoutError: "ZooKeeper did not answer in time (is the ensemble serving?)",
}


def explain(e: Exception) -> str:
    """A ZooKeeper error or a refused input as a sentence for the page."""
    for cls, text in ERRORS.items():
        if isinstance(e, cls):
            return f"{text} ({type(e).__name__})"
    if isinstance(e, client.ZooKeeperError):
        return f"{type(e).__name__}: {e}"
    return f"invalid input: {e}"


FAILURES = (client.ZooKeeperError, ValueError)


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value or ""), low), high)
    except ValueError:
        return default


def _path(value: str | None) -> str:
    path = value or "/"
    if not path.startswith("/"):
        path = "/" + path  # jump-to-path takes "a/b" for "/a/b"
    path.encode("utf-8")  # a lone surrogate (bytes that were not UTF-8) is a ValueError
    return path


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


async def node(req: Parsed, login: Login, messages: list[tuple[str, str]],
               kept: tuple[str, str] | None = None) -> Reply:
    """The node page: children (paged, filtered), data views, Stat, ACL and the forms."""
    try:
        path = _path(req.query.get("path"))
        path_ok = True
    except ValueError as e:
        messages.append(("error", explain(e)))
        path, path_ok = "/", False
    zk = login.zk
    data: bytes | None = None
    stat = None
    data_error = None
    exists = True
    if path_ok:
        try:
            data, stat = await zk.get(path)
        except FAILURES as e:
            data_error = explain(e)
            if isinstance(e, client.NoNodeError | ValueError):
                exists = False
                messages.append(("error", f"{path}: {explain(e)}"))
            elif isinstance(e, client.NoAuthError):
                messages.append(("error", f"{path}: you may not read this node: "
                                 f"{explain(e)}"))
    children_html = await _children(req, login, path) if exists else ""
    acl_html = ""
    if exists:
        try:
            acl, acl_stat = await zk.get_acl(path)
            acl_html = pages.acl_section(path, acl, acl_stat.aversion, login.csrf, None)
        except FAILURES as e:
            acl_html = pages.acl_section(path, None, -1, login.csrf, explain(e))
    body = pages.node_page(
        path,
        children=children_html,
        data=pages.data_section(path, data, data_error) if exists else "",
        stat=pages.stat_section(stat),
        acl=acl_html,
        edit=pages.edit_section(path, data, stat, login.csrf, kept),
        create=pages.create_section(path, login.csrf) if exists else "",
        exists=exists, user=who(login), csrf=login.csrf, messages=messages)
    return page(body)


async def _children(req: Parsed, login: Login, path: str) -> str:
    size = _int(req.query.get("size"), PAGE_SIZE, 1, MAX_PAGE_SIZE)
    filt = req.query.get("filter", "")
    try:
        # Paging through a huge node asks only for its Stat until its children change.
        seen = await login.zk.exists(path)
        ordered = None
        if seen is not None:
            ordered = login.cached_children(path, (seen.czxid, seen.cversion))
        if ordered is None:
            names, stat = await login.zk.get_children(path)
            ordered = sorted(names)
            login.cache_children(path, (stat.czxid, stat.cversion), ordered)
    except FAILURES as e:
        return pages.children_section(path, [], 0, 1, 1, size, filt, explain(e))
    if filt:
        needle = filt.casefold()
        ordered = [n for n in ordered if needle in n.casefold()]
    pages_total = max(1, -(-len(ordered) // size))
    at = _int(req.query.get("page"), 1, 1, pages_total)
    shown = ordered[(at - 1) * size: at * size]
    return pages.children_section(path, shown, len(ordered), at, pages_total, size, filt, None)


def who(login: Login) -> str:
    return ", ".join(login.identities) or "anyone (world)"


def _data(form: dict[str, str], login: Login) -> bytes:
    try:
        data = render.decode_input(form.get("data", ""), form.get("encoding", "text"))
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"data is not valid {form.get('encoding')}: {e}") from e
    if len(data) > login.max_data:
        raise ValueError(f"the value is {len(data)} bytes: over the server's limit of "
                         f"{login.max_data} (jute.maxbuffer)")
    return data


def _acl(choice: str, login: Login) -> list[client.ACL]:
    if choice == "creator":
        if not login.identities:
            raise ValueError("creator-only ACL needs an identity: log in with credentials")
        return list(client.CREATOR_ALL_ACL)
    if choice == "read":
        return list(client.READ_ACL_UNSAFE)
    return list(client.OPEN_ACL_UNSAFE)


MODE_NAMES = {m.name.lower(): m for m in client.CreateMode}


async def create(req: Parsed, login: Login) -> Reply:
    form = req.form
    try:
        parent = _path(form.get("parent"))
    except ValueError as e:
        return await _back(req, login, "/", e)
    try:
        name = form.get("name", "")
        if not name or "/" in name:
            raise ValueError("a name is one path element, without '/'")
        mode = MODE_NAMES.get(form.get("mode", "persistent"))
        if mode is None:
            raise ValueError(f"unknown mode {form.get('mode')!r}")
        ttl = None
        if "TTL" in mode.name:
            ttl = int(form.get("ttl") or "0")
            if ttl <= 0:
                raise ValueError("a TTL node needs a TTL in milliseconds above 0")
        made = await login.zk.create(pages.child_path(parent, name), _data(form, login),
                                     acl=_acl(form.get("acl", "open"), login), mode=mode,
                                     ttl=ttl)
    except FAILURES as e:
        return await _back(req, login, parent, e)
    login.flash.append(("ok", f"created {made}"))
    return redirect(pages.tree_url(parent))


async def edit(req: Parsed, login: Login) -> Reply:
    form = req.form
    try:
        path = _path(form.get("path"))
        version = int(form.get("version", ""))
    except ValueError as e:
        return await _back(req, login, "/", e)
    try:
        data = _data(form, login)
        await login.zk.set(path, data, version)
    except client.BadVersionError:
        # Never overwrite: show the node as it is now, with the user's text kept in the box.
        msg = (f"Version conflict: {path} changed since you loaded version {version}; "
               "nothing was written. The page now shows the current data and version; your "
               "text is kept in the editor, save again to overwrite the new version.")
        return await node(_at(req, path), login, [("error", msg)],
                          kept=(form.get("encoding", "text"), form.get("data", "")))
    except FAILURES as e:
        return await _back(req, login, path, e)
    login.flash.append(("ok", f"saved {path}"))
    return redirect(pages.tree_url(path))


async def set_acl(req: Parsed, login: Login) -> Reply:
    form = req.form
    try:
        path = _path(form.get("path"))
        aversion = int(form.get("aversion", "-1"))
        acl = []
        for line in form.get("acl", "").splitlines():
            line = line.strip()
            if not line:
                continue
            scheme, sep, rest = line.partition(":")
            ident, sep2, perms = rest.rpartition(":")
            if not sep or not sep2:
                raise ValueError(f"ACL line {line!r} is not scheme:id:perms")
            acl.append(client.ACL(render.perms_value(perms), client.Id(scheme, ident)))
        if not acl:
            raise ValueError("an ACL needs at least one entry")
        await login.zk.set_acl(path, acl, aversion)
    except FAILURES as e:
        return await _back(req, login, form.get("path") or "/", e)
    login.flash.append(("ok", f"ACL of {path} set"))
    return redirect(pages.tree_url(path))


async def delete_confirm(req: Parsed, login: Login) -> Reply:
    try:
        path = _path(req.query.get("path"))
        if path == "/":
            raise ValueError("the root cannot be deleted")
        stat = await login.zk.exists(path)
        if stat is None:
            raise client.NoNodeError()
        total = await login.zk.get_all_children_number(path) if stat.numChildren else 0
        listing = await _descendants(login.zk, path, DELETE_LISTING) if total else []
    except FAILURES as e:
        return await _back(req, login, req.query.get("path") or "/", e)
    return page(pages.delete_page(path, listing, total, stat.version, who(login), login.csrf,
                                  _take(login)))


async def _descendants(zk: client.Client, path: str, limit: int) -> list[str]:
    """Up to `limit` paths below `path`, breadth first (what the confirmation lists)."""
    out: list[str] = []
    level = [path]
    while level and len(out) < limit:
        following = []
        for p in level:
            names = sorted((await zk.get_children(p)).children)
            for n in names:
                child = pages.child_path(p, n)
                following.append(child)
                out.append(child)
                if len(out) >= limit:
                    return out
        level = following
    return out


async def delete(req: Parsed, login: Login) -> Reply:
    form = req.form
    try:
        path = _path(form.get("path"))
        if path == "/":
            raise ValueError("the root cannot be deleted")
        if form.get("recursive"):
            await login.zk.delete(path, recursive=True)
        else:
            await login.zk.delete(path, int(form.get("version", "-1")))
    except FAILURES as e:
        return await _back(req, login, form.get("path") or "/", e)
    login.flash.append(("ok", f"deleted {path}"))
    return redirect(pages.tree_url(_parent(path)))


async def raw(req: Parsed, login: Login) -> Reply:
    try:
        path = _path(req.query.get("path"))
        data, _ = await login.zk.get(path)
    except FAILURES as e:
        return await _back(req, login, "/", e)
    return Reply(200, "application/octet-stream", data or b"",
                 (("Content-Disposition", "attachment; filename=znode.bin"),
                  ("X-Content-Type-Options", "nosniff")))


def _at(req: Parsed, path: str) -> Parsed:
    return Parsed("GET", "/tree", {"path": path}, {}, req.headers, req.cookie, req.target)


def _take(login: Login) -> list[tuple[str, str]]:
    out, login.flash[:] = list(login.flash), []
    return out


async def _back(req: Parsed, login: Login, path: str, e: Exception) -> Reply:
    """Show the node page (or the root when the path itself is bad) with the error."""
    messages = _take(login) + [("error", explain(e))]
    try:
        _path(path)
    except ValueError:
        path = "/"
    return await node(_at(req, path), login, messages)


Handler = Callable[[Parsed, Login], Awaitable[Reply]]


async def tree(req: Parsed, login: Login) -> Reply:
    return await node(req, login, _take(login))


GETS: dict[str, Handler] = {"/tree": tree, "/delete": delete_confirm, "/raw": raw}
POSTS: dict[str, Handler] = {"/create": create, "/edit": edit, "/delete": delete,
                             "/acl": set_acl}
