"""The console's HTML: one function per page or page part, every value escaped.

Pages are plain server-rendered HTML that works without JavaScript; `static/console.js` adds
the data-view tabs, live updates and periodic refresh of the regions marked `data-region`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

from zkserver.console import render
from zkserver.proto.records import ACL, Stat

PREFIX = "/console"


def h(value: object) -> str:
    return html.escape(str(value), quote=True)


def url(where: str, /, **params: object) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{PREFIX}/{where}" + (f"?{query}" if query else "")


def tree_url(path: str, **params: object) -> str:
    return url("tree", path=path, **params)


def layout(title: str, body: str, *, user: str | None = None, csrf: str = "",
           messages: Iterable[tuple[str, str]] = (), live_path: str | None = None) -> str:
    nav = ""
    if user is not None:
        nav = (f'<nav><a href="{tree_url("/")}">Tree</a> <a href="{url("server")}">Server</a>'
               f' <span class="who" id="who">{h(user)}</span>'
               f'<form method="post" action="{url("auth")}" class="inline" id="addauth">'
               f'<input type="hidden" name="csrf" value="{h(csrf)}">'
               '<input name="user" placeholder="user" size="8" autocomplete="username">'
               '<input name="password" type="password" placeholder="password" size="8"'
               ' autocomplete="current-password">'
               '<button>Add identity</button></form>'
               f'<form method="post" action="{url("logout")}" class="inline">'
               f'<input type="hidden" name="csrf" value="{h(csrf)}">'
               '<button id="logout">Log out</button></form></nav>')
    notes = "".join(f'<p class="msg {h(kind)}" role="status">{h(text)}</p>'
                    for kind, text in messages)
    live = f' data-live-path="{h(live_path)}"' if live_path is not None else ""
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{h(title)} · zkserver console</title>"
            f'<link rel="stylesheet" href="{PREFIX}/static/console.css">'
            f'<script src="{PREFIX}/static/console.js" defer></script></head>'
            f'<body><header><a class="brand" href="{PREFIX}">zkserver console</a>{nav}</header>'
            f'<main{live}><div id="messages">{notes}</div>{body}</main></body></html>\n')


def login_page(next_url: str, messages: Iterable[tuple[str, str]] = (),
               x509: str | None = None) -> str:
    certificate = "" if x509 is None else (
        f'<form method="post" action="{url("login")}" id="login-x509">'
        f'<input type="hidden" name="next" value="{h(next_url)}">'
        '<input type="hidden" name="method" value="x509">'
        f"<p>Your browser presented a client certificate: <code>x509:{h(x509)}</code>. "
        "<button>Log in with the certificate</button></p></form><p>Or:</p>")
    body = (
        "<h1>Log in</h1><p>The console acts as a ZooKeeper client with your identity: give "
        "digest credentials (<code>user:password</code>, as <code>addauth digest</code>), or "
        "leave both empty to browse as anyone.</p>" + certificate +
        f'<form method="post" action="{url("login")}" id="login">'
        f'<input type="hidden" name="next" value="{h(next_url)}">'
        '<label>User <input name="user" autocomplete="username"></label> '
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password"></label> <button>Log in</button></form>')
    return layout("Log in", body, messages=messages)


def breadcrumbs(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    links = [f'<a href="{h(tree_url("/"))}">/</a>']
    at = ""
    for part in parts:
        at += "/" + part
        links.append(f'<a href="{h(tree_url(at))}">{h(part)}</a>')
    return f'<p class="crumbs" id="crumbs">{" / ".join(links)}</p>'


def jump_form(path: str) -> str:
    return (f'<form method="get" action="{url("tree")}" class="inline" id="jump">'
            f'<input name="path" value="{h(path)}" size="50" aria-label="path">'
            '<button>Go</button></form>')


def child_path(parent: str, name: str) -> str:
    return ("" if parent == "/" else parent) + "/" + name


def children_section(path: str, names: Sequence[str], total: int, page: int, pages: int,
                     size: int, filt: str, error: str | None) -> str:
    if error:
        return f'<section id="children" data-region><h2>Children</h2><p class="msg error">' \
               f'{h(error)}</p></section>'
    first = (page - 1) * size
    items = "".join(f'<li data-path="{h(child_path(path, n))}"><a href="'
                    f'{h(tree_url(child_path(path, n)))}">{h(n)}</a></li>' for n in names)
    shown = (f"{first + 1}–{first + len(names)} of {total}" if names
             else f"none of {total}")

    def link(label: str, to: int, rel: str) -> str:
        if to < 1 or to > pages or to == page:
            return f'<span class="off">{label}</span>'
        return (f'<a rel="{rel}" class="pg-{rel}" href="'
                f'{h(tree_url(path, page=to, size=size, filter=filt))}">{label}</a>')

    pager = (f'<div class="pager" id="pager">{link("« First", 1, "first")} '
             f'{link("‹ Prev", page - 1, "prev")} <span id="page-of">page {page} of {pages}'
             f'</span> {link("Next ›", page + 1, "next")} {link("Last »", pages, "last")}'
             f'<form method="get" action="{url("tree")}" class="inline">'
             f'<input type="hidden" name="path" value="{h(path)}">'
             f'<input type="hidden" name="filter" value="{h(filt)}">'
             f'<input type="hidden" name="size" value="{size}">'
             f'<input name="page" size="5" aria-label="page number" value="{page}">'
             '<button>Go to page</button></form></div>')
    filter_form = (f'<form method="get" action="{url("tree")}" class="inline" id="filter">'
                   f'<input type="hidden" name="path" value="{h(path)}">'
                   f'<input name="filter" value="{h(filt)}" placeholder="filter by name">'
                   '<button>Filter</button></form>')
    return (f'<section id="children" data-region><h2>Children <small id="child-count">'
            f'{h(shown)}</small></h2>{filter_form}{pager}<ul class="children" id="child-list">'
            f'{items}</ul></section>')


def data_section(path: str, data: bytes | None, error: str | None) -> str:
    if error:
        return (f'<section id="data" data-region><h2>Data</h2><p class="msg error" '
                f'id="data-error">{h(error)}</p></section>')
    v = render.views(data)
    tabs = []
    blocks = []
    first = "text" if v.is_text else "hex"
    if v.is_text:
        tabs.append("text")
        blocks.append(("text", v.text or ""))
        if v.json is not None:
            tabs.append("json")
            blocks.append(("json", v.json))
    tabs += ["hex", "base64"]
    blocks += [("hex", v.hex), ("base64", v.base64)]
    buttons = "".join(f'<button type="button" class="tab" data-view="{t}">{t}</button>'
                      for t in tabs)
    pres = "".join(f'<pre class="view" data-view="{t}"{"" if t == first else " hidden"}>'
                   f'{h(text)}</pre>' for t, text in blocks)
    notes = []
    if data is None:
        notes.append("null data")
    notes.append(f"{v.size} bytes, {'text' if v.is_text else 'binary'}")
    if v.truncated_text or v.truncated_binary:
        notes.append("shown in part")
    raw = f'<a href="{h(url("raw", path=path))}" id="raw">download</a>'
    return (f'<section id="data" data-region><h2>Data <small id="data-kind">'
            f'{h(", ".join(notes))}</small> {raw}</h2><div class="tabs">{buttons}</div>'
            f'{pres}</section>')


def stat_section(stat: Stat | None) -> str:
    if stat is None:
        return ""
    rows = "".join(f'<tr><th>{h(k)}</th><td data-field="{h(k)}">{h(v)}</td></tr>'
                   for k, v in render.stat_rows(stat))
    return f'<section id="stat" data-region><h2>Stat</h2><table>{rows}</table></section>'


def acl_text(acl: Sequence[ACL]) -> str:
    return "\n".join(f"{a.id.scheme}:{a.id.id}:{render.perms_text(a.perms)}" for a in acl)


def acl_section(path: str, acl: Sequence[ACL] | None, aversion: int, csrf: str,
                error: str | None) -> str:
    if error:
        return (f'<section id="acl" data-region><h2>ACL</h2><p class="msg error">{h(error)}'
                '</p></section>')
    rows = "".join(f"<tr><td>{h(a.id.scheme)}</td><td>{h(a.id.id)}</td>"
                   f"<td>{h(render.perms_text(a.perms))}</td></tr>" for a in acl or [])
    form = (f'<details><summary>Set ACL</summary><form method="post" action="{url("acl")}" '
            f'id="acl-form"><input type="hidden" name="csrf" value="{h(csrf)}">'
            f'<input type="hidden" name="path" value="{h(path)}">'
            f'<input type="hidden" name="aversion" value="{aversion}">'
            '<p>One entry a line: <code>scheme:id:perms</code>, perms from <code>rwcda</code>'
            ' (e.g. <code>world:anyone:r</code>, <code>digest:user:HASH:cdrwa</code>, '
            '<code>auth::cdrwa</code>).</p>'
            f'<textarea name="acl" rows="4" cols="60">{h(acl_text(acl or []))}</textarea>'
            '<button>Set ACL</button></form></details>')
    return (f'<section id="acl" data-region><h2>ACL</h2><table id="acl-table"><tr><th>scheme'
            f'</th><th>id</th><th>perms</th></tr>{rows}</table>{form}</section>')


def edit_section(path: str, data: bytes | None, stat: Stat | None, csrf: str,
                 kept: tuple[str, str] | None = None) -> str:
    if stat is None:
        return ""
    raw = data or b""
    if kept is not None:
        encoding, value = kept
    elif len(raw) > render.EDIT_LIMIT:
        return (f'<section id="edit"><h2>Edit data</h2><p class="msg">{len(raw)} bytes: too '
                'large to edit here.</p></section>')
    elif render.is_text(raw):
        encoding, value = "text", raw.decode("utf-8")
    else:
        encoding, value = "base64", render.views(raw).base64
    options = "".join(f'<option{" selected" if e == encoding else ""}>{e}</option>'
                      for e in ("text", "base64", "hex"))
    return (f'<section id="edit"><h2>Edit data <small>(version {stat.version})</small></h2>'
            '<p class="msg" id="edit-stale" hidden>The node changed since this page loaded: '
            'saving now reports a conflict. Reload to edit the new version.</p>'
            f'<form method="post" action="{url("edit")}" id="edit-form">'
            f'<input type="hidden" name="csrf" value="{h(csrf)}">'
            f'<input type="hidden" name="path" value="{h(path)}">'
            f'<input type="hidden" name="version" value="{stat.version}">'
            f'<textarea name="data" rows="6" cols="80">{h(value)}</textarea><br>'
            f'<label>as <select name="encoding">{options}</select></label> '
            '<button>Save</button></form></section>')


MODES = [
    ("persistent", "persistent"), ("persistent_sequential", "persistent sequential"),
    ("ephemeral", "ephemeral (lives as long as this login)"),
    ("ephemeral_sequential", "ephemeral sequential"), ("container", "container"),
    ("persistent_with_ttl", "persistent with TTL"),
    ("persistent_sequential_with_ttl", "persistent sequential with TTL"),
]
ACL_CHOICES = [("open", "world:anyone:cdrwa"), ("creator", "creator only (auth)"),
               ("read", "world:anyone:r")]


def create_section(parent: str, csrf: str) -> str:
    modes = "".join(f'<option value="{v}">{h(label)}</option>' for v, label in MODES)
    acls = "".join(f'<option value="{v}">{h(label)}</option>' for v, label in ACL_CHOICES)
    return (f'<section id="create"><h2>Create child</h2><form method="post" '
            f'action="{url("create")}" id="create-form">'
            f'<input type="hidden" name="csrf" value="{h(csrf)}">'
            f'<input type="hidden" name="parent" value="{h(parent)}">'
            '<label>Name <input name="name" required></label> '
            f'<label>Mode <select name="mode">{modes}</select></label> '
            '<label>TTL ms <input name="ttl" size="8"></label> '
            f'<label>ACL <select name="acl">{acls}</select></label><br>'
            '<textarea name="data" rows="3" cols="80" placeholder="data"></textarea><br>'
            '<label>as <select name="encoding"><option>text</option><option>base64</option>'
            '<option>hex</option></select></label> <button>Create</button></form></section>')


def node_page(path: str, *, children: str, data: str, stat: str, acl: str, edit: str,
              create: str, exists: bool, user: str, csrf: str,
              messages: Iterable[tuple[str, str]]) -> str:
    actions = ""
    if exists and path != "/":
        actions = (f'<p><a class="danger" id="delete-link" href="'
                   f'{h(url("delete", path=path))}">Delete…</a></p>')
    live = ('<section id="live"><h2>Live <small id="live-status">connecting</small></h2>'
            '<ol id="changes"></ol></section>')
    body = (f'{breadcrumbs(path)}{jump_form(path)}<h1 id="node-path">{h(path)}</h1>{actions}'
            f'<div class="cols"><div>{children}{create}</div>'
            f'<div>{data}{edit}{stat}{acl}{live}</div></div>')
    return layout(path, body, user=user, csrf=csrf, messages=messages,
                  live_path=path if exists else None)


def delete_page(path: str, listing: Sequence[str], total: int, version: int, user: str,
                csrf: str, messages: Iterable[tuple[str, str]]) -> str:
    items = "".join(f"<li>{h(p)}</li>" for p in listing)
    more = (f"<p>… and {total - len(listing)} more.</p>" if total > len(listing) else "")
    body = (f"{breadcrumbs(path)}<h1>Delete {h(path)}?</h1>"
            f'<p id="delete-count">This deletes {total + 1} node(s): the node and '
            f"{total} below it.</p><ul id=\"delete-list\"><li>{h(path)}</li>{items}</ul>{more}"
            f'<form method="post" action="{url("delete")}" id="delete-form">'
            f'<input type="hidden" name="csrf" value="{h(csrf)}">'
            f'<input type="hidden" name="path" value="{h(path)}">'
            f'<input type="hidden" name="version" value="{version}">'
            f'<input type="hidden" name="recursive" value="{"1" if total else ""}">'
            f'<button class="danger">Delete {total + 1} node(s)</button> '
            f'<a href="{h(tree_url(path))}">Cancel</a></form>')
    return layout(f"Delete {path}", body, user=user, csrf=csrf, messages=messages)


def error_page(status: int, message: str, user: str | None = None, csrf: str = "") -> str:
    return layout(f"Error {status}", f"<h1>Error {status}</h1>", user=user, csrf=csrf,
                  messages=[("error", message)])
