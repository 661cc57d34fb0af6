"""The server and ensemble page: members, connections, watches, admin commands and charts.

This server's own figures come from `zkserver.server.stats`. Every other member is asked with
the `srvr` four-letter word on its client port (from its `server.N=...;clientPort` line, the
only place the configuration names it): role, last zxid (its epoch is the high 32 bits),
connections; a member that does not answer within `PROBE_TIMEOUT` is shown down. Lag is how
many transactions a member is behind the leader's zxid in the same epoch. Each member's tree
digests come from the `hash` four-letter word, and the page compares them at one zxid
(zkserver/console/digests.py).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import attrs
import trio

from zkserver.console import pages, render
from zkserver.console.digests import DigestBook, Verdict, parse_hash
from zkserver.console.history import History
from zkserver.console.pages import h
from zkserver.server import admin, stats

if TYPE_CHECKING:
    from zkserver.server.server import Server

PROBE_TIMEOUT = 1.0
# What each server's console has seen of its members' digests (kept here, beside the page that
# uses it, for as long as the server lives).
_BOOKS: weakref.WeakKeyDictionary[Server, DigestBook] = weakref.WeakKeyDictionary()
COMMANDS = ("monitor", "connections", "watch_summary", "watches", "watches_by_path",
            "leader", "voting_view", "zabstate", "hash", "configuration", "environment")


@attrs.frozen
class Member:
    sid: int
    address: str
    this: bool
    up: bool
    role: str
    zxid: int | None
    connections: int | None
    watches: int | None = None
    note: str = ""
    digests: tuple[tuple[int, int], ...] = ()  # (zxid, tree digest), oldest first


def _fields(text: str, sep: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, found, value = line.partition(sep)
        if found:
            out[key.strip()] = value.strip()
    return out


async def _four_letter(host: str, port: int, word: bytes) -> str | None:
    """One four-letter word's reply; None when the member does not answer in time."""
    with trio.move_on_after(PROBE_TIMEOUT):
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError:
            return None
        async with stream:
            try:
                await stream.send_all(word)
                chunks = []
                while chunk := await stream.receive_some(65536):
                    chunks.append(chunk)
            except (OSError, trio.BrokenResourceError):
                return None
        return b"".join(chunks).decode("utf-8", errors="replace")
    return None


async def _probe(sid: int, host: str, port: int) -> Member:
    address = f"{host}:{port}"
    replies: dict[bytes, str | None] = {}

    async def ask(word: bytes) -> None:
        replies[word] = await _four_letter(host, port, word)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, b"srvr")
        nursery.start_soon(ask, b"mntr")  # for the watch count, where the whitelist allows
        nursery.start_soon(ask, b"hash")  # the tree digest(s), same proviso
    srvr = replies[b"srvr"]
    if srvr is None:
        return Member(sid, address, False, False, "down", None, None)
    fields = _fields(srvr, ":")
    if "Mode" not in fields:
        return Member(sid, address, False, False, "not serving", None, None)
    watches = _fields(replies[b"mntr"] or "", "\t").get("zk_watch_count")
    try:
        zxid = int(fields.get("Zxid", "-1"), 0)
        conns = int(fields.get("Connections", "0") or 0)
        watch_count = int(watches) if watches is not None else None
    except ValueError:
        return Member(sid, address, False, True, fields["Mode"], None, None,
                      note="unreadable srvr reply")
    digests = tuple(parse_hash(replies[b"hash"] or ""))
    return Member(sid, address, False, True, fields["Mode"], zxid, conns, watch_count,
                  digests=digests)


async def members(server: Server) -> list[Member]:
    cfg = server.config
    out: dict[int, Member] = {}
    s = stats.summary(server)
    own = cfg.server_id if cfg.is_quorum else 0
    spec = cfg.servers.get(own)
    address = f"{spec.host}:{spec.client_port}" if spec and spec.client_port else "—"
    out[own] = Member(own, address, True, server.is_serving(), s.mode, s.zxid, s.connections,
                      stats.watch_summary(server).total, digests=tuple(stats.digests(server)))
    if not cfg.is_quorum:
        return list(out.values())

    async def probe(sid: int, host: str, port: int) -> None:
        out[sid] = await _probe(sid, host, port)

    async with trio.open_nursery() as nursery:
        for sid, spec in sorted(cfg.servers.items()):
            if sid == cfg.server_id:
                continue
            if not spec.client_port:
                out[sid] = Member(sid, spec.host, False, False, "unknown", None, None,
                                  note="no client port in its server line")
                continue
            host = spec.client_host if spec.client_host not in (None, "", "0.0.0.0") \
                else spec.host
            nursery.start_soon(probe, sid, host, spec.client_port)
    return [out[k] for k in sorted(out)]


def members_table(server: Server, found: list[Member]) -> str:
    leader_zxid = next((m.zxid for m in found if m.role == "leader" and m.zxid is not None),
                       None)
    rows = []
    for m in found:
        lag = ""
        if leader_zxid is not None and m.zxid is not None and m.zxid >> 32 == leader_zxid >> 32:
            lag = str(max(0, leader_zxid - m.zxid))
        state = "up" if m.up else "down"
        rows.append(
            f'<tr class="{state}" data-sid="{m.sid}"><td>{m.sid}</td><td>{h(m.address)}'
            f'{" (this server)" if m.this else ""}</td><td class="state">{state}</td>'
            f'<td class="role">{h(m.role)}</td>'
            f'<td>{render.zxid(m.zxid) if m.zxid is not None else ""}</td>'
            f'<td>{m.zxid >> 32 if m.zxid is not None else ""}</td><td>{lag}</td>'
            f'<td>{m.connections if m.connections is not None else ""}</td>'
            f'<td>{m.watches if m.watches is not None else ""}</td>'
            f'<td class="digest">{_latest_digest(m)}</td>'
            f'<td>{h(m.note)}</td></tr>')
    return ('<section id="members" data-region><h2>Members</h2><table><tr><th>id</th>'
            '<th>address</th><th>state</th><th>role</th><th>zxid</th><th>epoch</th>'
            '<th>lag</th><th>connections</th><th>watches</th><th>digest @ zxid</th><th></th>'
            '</tr>' + "".join(rows) + "</table>" + digest_check(check_digests(server, found))
            + "</section>")


def _latest_digest(m: Member) -> str:
    if not m.digests:
        return ""
    zxid, digest = m.digests[-1]
    return f"{digest:#x} @ {render.zxid(zxid)}"


def check_digests(server: Server, found: list[Member]) -> Verdict:
    """Record what the members report now, and compare the members that are up."""
    book = _BOOKS.get(server)
    if book is None:
        book = _BOOKS[server] = DigestBook()
    for m in found:
        book.record(m.sid, m.digests)
    return book.verdict(m.sid for m in found if m.up)


def digest_check(verdict: Verdict) -> str:
    return (f'<p id="digest-check" class="{verdict.state}" data-zxid="'
            f'{"" if verdict.zxid is None else f"{verdict.zxid:x}"}">{h(verdict.text)}</p>')


def sessions_table(server: Server) -> str:
    rows = []
    for c in sorted(stats.connections(server), key=lambda c: c.remote):
        rows.append(
            f"<tr><td>{h(c.remote[0])}:{c.remote[1]}</td><td>0x{c.session_id:x}</td>"
            f"<td>{c.timeout}</td><td>{h(c.last_op)}</td><td>{c.received}</td>"
            f"<td>{c.sent}</td><td>{c.queued}</td><td>{c.avg_latency}</td>"
            f"<td>{'tls' if c.secure else ''}</td></tr>")
    return ('<section id="sessions" data-region><h2>Connections (cons)</h2><table><tr>'
            "<th>remote</th><th>session</th><th>timeout ms</th><th>last op</th><th>recv</th>"
            "<th>sent</th><th>queued</th><th>avg latency</th><th></th></tr>"
            + "".join(rows) + "</table></section>")


def watches_tables(server: Server) -> str:
    w = stats.watch_summary(server)
    by_path = "".join(f"<tr><td>{h(p)}</td><td>{h(', '.join(f'0x{s:x}' for s in sids))}</td>"
                      "</tr>" for p, sids in stats.watches_by_path(server)[:500])
    by_session = "".join(f"<tr><td>0x{sid:x}</td><td>{h(', '.join(paths))}</td></tr>"
                         for sid, paths in stats.watches_by_session(server)[:500])
    return (f'<section id="watches" data-region><h2>Watches <small>{w.total} on {w.paths} '
            f"paths from {w.connections} connections</small></h2>"
            "<h3>By path (wchp)</h3><table><tr><th>path</th><th>sessions</th></tr>"
            f"{by_path}</table><h3>By session (wchc)</h3><table><tr><th>session</th>"
            f"<th>paths</th></tr>{by_session}</table></section>")


def chart(title: str, values: list[float], unit: str) -> str:
    """A small inline SVG line chart (no script, no library)."""
    width, height = 300, 60
    top = max(values) if values else 0.0
    scale = top if top > 0 else 1.0
    n = max(len(values) - 1, 1)
    points = " ".join(f"{i * width / n:.1f},{height - v / scale * (height - 4) - 2:.1f}"
                      for i, v in enumerate(values))
    last = values[-1] if values else 0.0
    return (f'<figure class="chart"><figcaption>{h(title)}: <b>{last:.1f}</b> {h(unit)} '
            f'<small>(max {top:.1f})</small></figcaption><svg viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{h(title)}">'
            f'<polyline fill="none" stroke="#2a6ebb" stroke-width="1.5" points="{points}"/>'
            "</svg></figure>")


def charts(history: History) -> str:
    minutes = len(history.samples) / 60
    return (f'<section id="charts" data-region><h2>Metrics <small>last {minutes:.1f} min'
            "</small></h2>"
            + chart("requests/s", history.series("requests_per_s"), "req/s")
            + chart("average latency", history.series("avg_latency"), "ms")
            + chart("outstanding requests", history.series("outstanding"), "")
            + chart("znodes", history.series("znodes"), "") + "</section>")


def commands_section(server: Server) -> str:
    """Links to the admin commands' JSON, and `monitor`'s figures for this server."""
    base = "/" + server.config.admin_command_url.strip("/")
    links = " ".join(f'<a href="{h(base)}/{c}">{c}</a>' for c in COMMANDS)
    rows = "".join(f"<tr><th>{h(k)}</th><td>{h(v)}</td></tr>"
                   for k, v in admin.run_command(server, "monitor").items()
                   if k not in ("command", "error"))
    return (f'<section id="commands"><h2>Admin commands</h2><p>{links}</p><details>'
            f"<summary>monitor</summary><table>{rows}</table></details></section>")


async def server_page(server: Server, history: History, user: str, csrf: str) -> str:
    found = await members(server)
    body = ('<h1>Server and ensemble</h1><div data-refresh="2000">'
            f"{members_table(server, found)}{charts(history)}{sessions_table(server)}"
            f"{watches_tables(server)}</div>{commands_section(server)}")
    return pages.layout("Server", body, user=user, csrf=csrf)
