"""The console application: its lifetime beside the AdminServer, and request dispatch.

`Console.running(server)` owns the console's tasks (the logins' client sessions, the idle
reaper, the metrics sampler) for as long as the AdminServer serves; `handle` answers every
request under `/console`. Any failure inside a request becomes an error page: nothing a
browser sends can take the AdminServer (or the server) down.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import trio

from zkserver import client
from zkserver.console import csrf, ensemble, live, pages, routes, web
from zkserver.console.history import History
from zkserver.console.sessions import Login, Logins
from zkserver.server.admin import Reply, Request
from zkserver.tree import acl as aclmod

if TYPE_CHECKING:
    from zkserver.server.server import Server

log = logging.getLogger(__name__)

STATIC = {"console.js": "text/javascript; charset=utf-8",
          "console.css": "text/css; charset=utf-8"}


def loopback_hosts(server: Server) -> str | None:
    """This server's client port as a loopback connection string (None without one)."""
    for listener in server.listeners:
        host, port = listener.socket.getsockname()[:2]
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return None


async def _guarded(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A stream whose failure ends the stream (logged), never the AdminServer."""
    try:
        async for chunk in chunks:
            yield chunk
    except Exception:
        log.exception("console event stream failed")
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class Console:
    PREFIX = pages.PREFIX

    def __init__(self, server: Server, logins: Logins, history: History) -> None:
        self.server = server
        self.logins = logins
        self.history = history
        self._static = {name: resources.files("zkserver.console").joinpath(
            "static", name).read_bytes() for name in STATIC}

    @classmethod
    @asynccontextmanager
    async def running(cls, server: Server) -> AsyncIterator[Console | None]:
        """The console for as long as the block runs; None (and a warning) when this server
        has no plain client port for the console's sessions to use."""
        hosts = loopback_hosts(server)
        if hosts is None:
            log.warning("web console off: it needs a plain clientPort to connect to")
            yield None
            return
        async with trio.open_nursery() as nursery:
            logins = Logins(nursery, hosts, server.config.jute_max_buffer)
            history = History()
            nursery.start_soon(logins.reap)
            nursery.start_soon(history.run, server)
            yield cls(server, logins, history)
            nursery.cancel_scope.cancel()

    async def handle(self, request: Request) -> Reply:
        if not (self.server.config.admin_console_allow_remote or _loopback(request.peer)):
            # The AdminServer binds every address by default, as ZooKeeper's; the console
            # changes the tree, so it answers only on this host unless told otherwise.
            return web.page(pages.error_page(
                403, "the console answers only on this host (admin.console.allowRemote=true "
                     "opens it to others)"), 403)
        try:
            return await self._dispatch(web.parse(request, self.PREFIX))
        except Exception:  # a bug must cost one page, never the AdminServer
            log.exception("console request %s %s failed", request.method,
                          request.target[:200])
            return web.page(pages.error_page(500, "internal error (see the server log)"), 500)

    async def _dispatch(self, req: web.Parsed) -> Reply:
        if req.path.startswith("/static/"):
            name = req.path[len("/static/"):]
            if name in STATIC:
                return Reply(200, STATIC[name], self._static[name],
                             (("Cache-Control", "no-cache"),
                              ("X-Content-Type-Options", "nosniff")))
            return web.page(pages.error_page(404, "no such file"), 404)
        if req.method not in ("GET", "HEAD", "POST"):
            return web.page(pages.error_page(405, "method not allowed"), 405)
        if req.path == "/login":
            return await self._login(req)
        login = self.logins.get(req.cookie)
        if login is None:
            if req.method == "POST":
                return web.page(pages.login_page(
                    self.PREFIX, [("error", "not logged in (or the login expired)")]), 403)
            if req.path == "/events":
                return Reply(401, "text/plain", b"not logged in\n", web.SECURITY_HEADERS)
            return web.redirect(pages.url("login", next=req.target))
        if req.method == "POST":
            if not csrf.same_origin(req.headers):
                return web.page(pages.error_page(
                    403, "refused: a cross-site request", routes.who(login), login.csrf), 403)
            if not csrf.token_ok(login.csrf, req.form.get("csrf")):
                return web.page(pages.error_page(
                    403, "refused: missing or wrong form token (reload the page and retry)",
                    routes.who(login), login.csrf), 403)
            return await self._post(req, login)
        return await self._get(req, login)

    async def _get(self, req: web.Parsed, login: Login) -> Reply:
        if req.path in ("", "/"):
            return web.redirect(pages.tree_url("/"))
        handler = routes.GETS.get(req.path)
        if handler is not None:
            return await handler(req, login)
        if req.path == "/events":
            path = req.query.get("path", "/")
            try:
                path.encode("utf-8")
            except ValueError:
                path = "/"
            return Reply(200, "text/event-stream; charset=utf-8",
                         _guarded(live.events(login, path)), web.SECURITY_HEADERS)
        if req.path == "/server":
            body = await ensemble.server_page(self.server, self.history, routes.who(login),
                                              login.csrf)
            return web.page(body)
        return web.page(pages.error_page(404, "no such page", routes.who(login), login.csrf),
                        404)

    async def _post(self, req: web.Parsed, login: Login) -> Reply:
        if req.path == "/logout":
            self.logins.logout(login)
            return web.redirect(pages.url("login"), (web.clear_cookie(self.PREFIX),))
        if req.path == "/auth":
            user = req.form.get("user", "")
            try:
                if not user:
                    raise ValueError("give a user name")
                await login.zk.add_auth("digest", f"{user}:{req.form.get('password', '')}")
            except (client.ZooKeeperError, ValueError) as e:
                login.flash.append(("error", f"adding identity failed: {routes.explain(e)}"))
            else:
                login.identities.append(f"digest:{user}")
                login.flash.append(("ok", f"identity digest:{user} added"))
            return web.redirect(self._referer(req))
        handler = routes.POSTS.get(req.path)
        if handler is None:
            return web.page(pages.error_page(404, "no such action", routes.who(login),
                                             login.csrf), 404)
        return await handler(req, login)

    def _referer(self, req: web.Parsed) -> str:
        """Where a form on one of our pages came from (the tree's root otherwise)."""
        back = urlsplit(req.headers.get("referer", ""))
        if back.netloc == req.headers.get("host") and back.path.startswith(self.PREFIX + "/"):
            return back.path + (f"?{back.query}" if back.query else "")
        return pages.tree_url("/")

    async def _login(self, req: web.Parsed) -> Reply:
        next_url = req.form.get("next") or req.query.get("next") or pages.tree_url("/")
        if not next_url.startswith(self.PREFIX + "/") and next_url != self.PREFIX:
            next_url = pages.tree_url("/")  # never redirect off the console
        if req.method != "POST":
            return web.page(pages.login_page(next_url, x509=req.x509))
        if not csrf.same_origin(req.headers):
            return web.page(pages.login_page(next_url, [("error", "refused: a cross-site "
                                                         "request")], req.x509), 403)
        user = req.form.get("user", "")
        try:
            if req.form.get("method") == "x509":
                if req.x509 is None:
                    raise ValueError("no client certificate came with this request (the "
                                     "console must be reached over HTTPS with one)")
                login = await self.logins.login_x509(req.x509, self._grant_x509(req.x509))
            else:
                user.encode("utf-8")
                req.form.get("password", "").encode("utf-8")
                if ":" in user:
                    raise ValueError("a user name cannot hold ':'")
                login = await self.logins.login(user, req.form.get("password", ""))
        except (client.ZooKeeperError, OSError, ValueError) as e:
            return web.page(pages.login_page(next_url, [("error", f"login failed: {e}")],
                                             req.x509), 403)
        return web.redirect(quote(next_url, safe="/?=&%:+,;@", errors="replace"),
                            (web.set_cookie(login.token, self.PREFIX, req.secure),))

    def _grant_x509(self, dn: str) -> Callable[[int], None]:
        """Gives the login's own connection (found by its session) the certificate's `x509`
        identity, and `super` for the configured X509AuthenticationProvider.superUser, as the
        secure client port gives them to a connection that presents the certificate."""
        ids: list[aclmod.Identity] = [("x509", dn)]
        if self.server.x509_super_user is not None and dn == self.server.x509_super_user:
            ids.append(aclmod.SUPER)

        def grant(session_id: int) -> None:
            self.server.engine.grant(session_id, ids)
        return grant
